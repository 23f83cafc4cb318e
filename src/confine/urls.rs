//! URLs an API client supplied: every address they name or resolve to is
//! checked before a connection is made, and the connection goes to the
//! checked address (a name is not resolved a second time in between, so
//! a DNS answer that changes cannot slip past the check).
//!
//! HTTP fetches use `http_client`: its resolver checks what it resolves,
//! its redirect policy checks the literal addresses redirects name (names
//! go through the resolver again), and it ignores proxy settings (a proxy
//! would resolve the name where no check runs). Callers that want the
//! reason before any packet is sent call `check_url` first.

use super::addr::{Kind, refused};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// Most redirects a fetch follows.
const MAX_REDIRECTS: usize = 5;

/// `[api] allow_private_urls`: whether client-supplied URLs may reach
/// loopback and private addresses. Link-local, metadata, multicast and
/// unspecified addresses are refused either way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UrlPolicy {
    pub allow_private: bool,
}

/// Why a URL is refused.
#[derive(Debug, Clone, thiserror::Error)]
pub enum UrlRefused {
    /// The host is, or resolves to, an address the policy refuses.
    #[error("refused: {}", address_text(.host, .ip, *.kind))]
    Address {
        host: String,
        ip: IpAddr,
        kind: Kind,
    },
    /// The name does not resolve (to anything).
    #[error("cannot resolve {host}: {reason}")]
    Unresolved { host: String, reason: String },
    /// No host to connect to.
    #[error("has no host")]
    NoHost,
    /// Not a URL at all.
    #[error("not a valid URL: {0}")]
    Invalid(String),
}

fn address_text(host: &str, ip: &IpAddr, kind: Kind) -> String {
    let what = if host.trim_matches(['[', ']']) == ip.to_string() {
        format!("{ip} is {}", kind.name())
    } else {
        format!("{host} resolves to {ip}, {}", kind.name())
    };
    if kind.private() {
        format!("{what} (set api.allow_private_urls = true to allow it)")
    } else {
        what
    }
}

impl UrlPolicy {
    /// The refusal of one address `host` named or resolved to.
    fn judge(&self, host: &str, ip: IpAddr) -> Result<(), UrlRefused> {
        match refused(ip, self.allow_private) {
            Some(kind) => Err(UrlRefused::Address {
                host: host.to_string(),
                ip,
                kind,
            }),
            None => Ok(()),
        }
    }

    /// The addresses to connect to for `host:port`, all of them checked:
    /// a name with one refused address among its answers is refused
    /// whole (the answer is the name owner's to choose, not ours).
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, UrlRefused> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            self.judge(host, ip)?;
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        let unresolved = |reason: String| UrlRefused::Unresolved {
            host: host.to_string(),
            reason,
        };
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((bare, port))
            .await
            .map_err(|e| unresolved(e.to_string()))?
            .collect();
        if addrs.is_empty() {
            return Err(unresolved("no address".into()));
        }
        for a in &addrs {
            self.judge(host, a.ip())?;
        }
        Ok(addrs)
    }

    /// Checks an http(s) URL: resolves its host and judges every address.
    pub async fn check_url(&self, url: &str) -> Result<(), UrlRefused> {
        let parsed = reqwest::Url::parse(url).map_err(|e| UrlRefused::Invalid(e.to_string()))?;
        let host = parsed.host_str().ok_or(UrlRefused::NoHost)?;
        let port = parsed.port_or_known_default().unwrap_or(80);
        self.resolve(host, port).await.map(|_| ())
    }

    /// The refusal of a URL whose host is a literal address (names are
    /// left to the resolver).
    fn literal(&self, url: &reqwest::Url) -> Result<(), UrlRefused> {
        match url.host() {
            Some(url::Host::Ipv4(ip)) => self.judge(&ip.to_string(), IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => self.judge(&ip.to_string(), IpAddr::V6(ip)),
            Some(url::Host::Domain(_)) => Ok(()),
            None => Err(UrlRefused::NoHost),
        }
    }

    /// Judges `url`'s host when it is a literal address, with no lookup:
    /// what a client from `http_client` must be told before it sends,
    /// as its resolver sees only names.
    pub fn check_literal(&self, url: &str) -> Result<(), UrlRefused> {
        let parsed = reqwest::Url::parse(url).map_err(|e| UrlRefused::Invalid(e.to_string()))?;
        self.literal(&parsed)
    }

    /// An HTTP client for client-supplied URLs (see the module's text).
    pub fn http_client(&self, timeout: Duration) -> reqwest::ClientBuilder {
        let policy = *self;
        let redirects = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= MAX_REDIRECTS {
                return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
            }
            match policy.literal(attempt.url()) {
                Ok(()) => attempt.follow(),
                Err(refusal) => attempt.error(refusal),
            }
        });
        reqwest::Client::builder()
            .timeout(timeout)
            .no_proxy()
            .redirect(redirects)
            .dns_resolver(Arc::new(Checked(policy)))
    }
}

/// A resolver that refuses what the policy refuses.
struct Checked(UrlPolicy);

impl reqwest::dns::Resolve for Checked {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.0;
        let host = name.as_str().to_string();
        Box::pin(async move {
            // The port is the URL's; the connector sets it.
            let addrs = policy.resolve(&host, 0).await?;
            let addrs: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// The refusal behind a failed fetch, if a check caused it.
pub fn refusal_in<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a UrlRefused> {
    let mut next = Some(e);
    while let Some(e) = next {
        if let Some(r) = e.downcast_ref::<UrlRefused>() {
            return Some(r);
        }
        next = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRICT: UrlPolicy = UrlPolicy {
        allow_private: false,
    };
    const LAX: UrlPolicy = UrlPolicy {
        allow_private: true,
    };

    #[tokio::test]
    async fn names_and_literals_are_judged_after_resolution() {
        let e = STRICT
            .check_url("http://localhost:9/x.wav")
            .await
            .unwrap_err();
        assert!(
            matches!(
                e,
                UrlRefused::Address {
                    kind: Kind::Loopback,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("localhost resolves to"), "{e}");
        assert!(e.to_string().contains("allow_private_urls"), "{e}");
        let e = LAX
            .check_url("http://169.254.169.254/latest/")
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "refused: 169.254.169.254 is a link-local address (where clouds serve instance metadata)"
        );
        let e = LAX.check_url("http://[fe80::1]:80/").await.unwrap_err();
        assert!(
            matches!(
                e,
                UrlRefused::Address {
                    kind: Kind::LinkLocal,
                    ..
                }
            ),
            "{e}"
        );
        assert!(LAX.check_url("http://localhost:9/x.wav").await.is_ok());
        assert!(LAX.check_url("http://127.0.0.1:9/x.wav").await.is_ok());
        assert!(STRICT.check_url("http://203.0.113.9/x.wav").await.is_ok());
        assert!(matches!(
            STRICT.check_url("not a url").await,
            Err(UrlRefused::Invalid(_))
        ));
    }

    #[test]
    fn a_refusal_is_found_inside_an_error_chain() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer")]
        struct Outer(#[source] UrlRefused);
        let outer = Outer(UrlRefused::NoHost);
        assert!(matches!(refusal_in(&outer), Some(UrlRefused::NoHost)));
        let plain = std::io::Error::other("x");
        assert!(refusal_in(&plain).is_none());
    }
}
