//! Client-side digest (RFC 7616 / RFC 2617, MD5 and SHA-256, `qop=auth`
//! or none): the credentials a request carries after a 401 or 407, for
//! REGISTER to a provider. Without I/O; the caller keeps the nonce count.

use super::digest::{digest_params, hash_fn, hex};
use rand::RngCore;

/// A challenge (`WWW-Authenticate` or `Proxy-Authenticate`), read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub realm: String,
    pub nonce: String,
    pub opaque: Option<String>,
    /// `MD5` or `SHA-256` (as written); None means MD5.
    pub algorithm: Option<String>,
    /// Whether `qop=auth` is offered.
    pub qop_auth: bool,
    /// The registrar says our nonce was merely old, not our password wrong.
    pub stale: bool,
}

/// Why a challenge cannot be answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChallengeError {
    #[error("the challenge is not Digest or lacks a nonce")]
    Unreadable,
    #[error("digest algorithm {0} is not supported (MD5 and SHA-256 are)")]
    Algorithm(String),
    #[error("the challenge offers only qop {0}, not auth")]
    Qop(String),
}

impl Challenge {
    pub fn parse(header: &str) -> Result<Challenge, ChallengeError> {
        let params = digest_params(header).ok_or(ChallengeError::Unreadable)?;
        let get = |n: &str| params.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        let nonce = get("nonce").filter(|n| !n.is_empty());
        let nonce = nonce.ok_or(ChallengeError::Unreadable)?;
        let algorithm = get("algorithm");
        if hash_fn(algorithm.as_deref()).is_none() {
            return Err(ChallengeError::Algorithm(algorithm.unwrap_or_default()));
        }
        let qop = get("qop");
        let qop_auth = match &qop {
            None => false,
            Some(list)
                if list
                    .split(',')
                    .any(|q| q.trim().eq_ignore_ascii_case("auth")) =>
            {
                true
            }
            Some(other) => return Err(ChallengeError::Qop(other.clone())),
        };
        Ok(Challenge {
            realm: get("realm").unwrap_or_default(),
            nonce,
            opaque: get("opaque"),
            algorithm,
            qop_auth,
            stale: get("stale").is_some_and(|s| s.eq_ignore_ascii_case("true")),
        })
    }

    /// The `Authorization` (or `Proxy-Authorization`) value for `method`
    /// to `uri`, the `nc`-th use of this nonce (1 first).
    pub fn answer(&self, method: &str, uri: &str, user: &str, password: &str, nc: u32) -> String {
        let mut cnonce = [0u8; 8];
        rand::thread_rng().fill_bytes(&mut cnonce);
        self.answer_with(method, uri, user, password, nc, &hex(&cnonce))
    }

    fn answer_with(
        &self,
        method: &str,
        uri: &str,
        user: &str,
        password: &str,
        nc: u32,
        cnonce: &str,
    ) -> String {
        // The algorithm was checked by `parse`.
        let h = hash_fn(self.algorithm.as_deref()).unwrap_or(|s| s.to_string());
        let ha1 = h(&format!("{user}:{}:{password}", self.realm));
        let ha2 = h(&format!("{method}:{uri}"));
        let quoted = |v: &str| v.replace('\\', "\\\\").replace('"', "\\\"");
        let mut out = format!(
            "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{}\"",
            quoted(user),
            quoted(&self.realm),
            quoted(&self.nonce),
            quoted(uri)
        );
        let response = if self.qop_auth {
            let nc = format!("{nc:08x}");
            let r = h(&format!("{ha1}:{}:{nc}:{cnonce}:auth:{ha2}", self.nonce));
            out.push_str(&format!(", qop=auth, nc={nc}, cnonce=\"{cnonce}\""));
            r
        } else {
            h(&format!("{ha1}:{}:{ha2}", self.nonce))
        };
        out.push_str(&format!(", response=\"{response}\""));
        if let Some(a) = &self.algorithm {
            out.push_str(&format!(", algorithm={a}"));
        }
        if let Some(o) = &self.opaque {
            out.push_str(&format!(", opaque=\"{}\"", quoted(o)));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::digest::{DigestAuth, Verdict};

    #[test]
    fn rfc_2617_example_without_qop_and_rfc_7616_style_with_it() {
        // RFC 2617 §3.5's worked example is HTTP; the formula is the same.
        let c = Challenge::parse(
            "Digest realm=\"testrealm@host.com\", nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
        )
        .unwrap();
        let a = c.answer_with("GET", "/dir/index.html", "Mufasa", "Circle Of Life", 1, "x");
        assert!(
            a.contains("response=\"670fd8c2df070c60b045671b8b24ff02\""),
            "{a}"
        );
        assert!(a.contains("opaque=\"5ccc069c403ebaf9f0171e9517f40e41\""));
        assert!(!a.contains("qop="));
    }

    #[test]
    fn our_own_server_side_accepts_what_the_client_side_sends() {
        let server = DigestAuth::new("pinless.test");
        for algorithm in ["MD5", "SHA-256"] {
            let header = server.challenge(1_000, false).replace("MD5", algorithm);
            let c = Challenge::parse(&header).unwrap();
            assert!(c.qop_auth);
            let answer = c.answer("INVITE", "sip:a@b", "joe", "secret", 1);
            let verdict = server.check(
                "INVITE",
                Some(&answer),
                Some("a"),
                |u| (u == "joe").then(|| "secret".to_string()),
                2_000,
            );
            assert!(
                matches!(verdict, Verdict::Ok { .. }),
                "{algorithm}: {verdict:?}"
            );
            let wrong = c.answer("INVITE", "sip:a@b", "joe", "nope", 2);
            let verdict = server.check(
                "INVITE",
                Some(&wrong),
                Some("a"),
                |_| Some("secret".into()),
                2_000,
            );
            assert!(matches!(verdict, Verdict::Forbidden { .. }), "{verdict:?}");
        }
    }

    #[test]
    fn unusable_challenges_say_why() {
        assert_eq!(
            Challenge::parse("Basic realm=x"),
            Err(ChallengeError::Unreadable)
        );
        assert!(matches!(
            Challenge::parse("Digest realm=\"r\", nonce=\"n\", algorithm=SHA-512-256"),
            Err(ChallengeError::Algorithm(_))
        ));
        assert!(matches!(
            Challenge::parse("Digest realm=\"r\", nonce=\"n\", qop=\"auth-int\""),
            Err(ChallengeError::Qop(_))
        ));
        let c =
            Challenge::parse("Digest realm=\"r\", nonce=\"n\", stale=TRUE, qop=\"auth-int,auth\"")
                .unwrap();
        assert!(c.stale && c.qop_auth);
    }
}
