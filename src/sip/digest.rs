//! Server-side digest authentication of INVITEs (RFC 7616 / RFC 2617,
//! MD5 and SHA-256, `qop=auth`), without I/O. ezk-sip-auth only has the
//! client side, so this is ours.
//!
//! Nonces are stateless: the issue time and an HMAC of it under a key
//! drawn at start, so any nonce we did not make is told apart, and one
//! older than `NONCE_LIFETIME` is answered with a fresh challenge marked
//! `stale=true`. Replays are refused by remembering, per nonce still
//! valid, the highest nonce-count seen (a nonce without `qop` is single
//! use); that memory is bounded by the lifetime and by `MAX_TRACKED`.

use hmac::{Hmac, Mac};
use md5::Md5;
use rand::RngCore;
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;

/// How long a nonce may be used.
pub const NONCE_LIFETIME_MS: u64 = 5 * 60 * 1000;
/// Nonces remembered for replay checks at most; beyond, the oldest go.
const MAX_TRACKED: usize = 100_000;

/// What to do with an INVITE, as far as digest is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Proven: this user knows its password.
    Ok { username: String },
    /// Answer 407 with this `Proxy-Authenticate` value.
    Challenge { header: String, why: &'static str },
    /// Answer 403: credentials were given and are wrong.
    Forbidden { why: &'static str },
}

/// Issues and checks nonces for one node.
pub struct DigestAuth {
    key: [u8; 32],
    realm: String,
    /// nonce → (expires at, highest nc seen; 0 for a nonce used without qop).
    seen: Mutex<HashMap<String, (u64, u32)>>,
}

/// The parameters of a `Digest` credentials header.
#[derive(Debug, Default, PartialEq, Eq)]
struct Credentials {
    username: String,
    realm: String,
    nonce: String,
    uri: String,
    response: String,
    algorithm: Option<String>,
    qop: Option<String>,
    nc: Option<String>,
    cnonce: Option<String>,
}

/// The parameters of `Digest a="b", c=d, …` (names lower-cased, quotes
/// and escapes removed); None if it is not Digest. Challenges and
/// credentials share this syntax (RFC 7616 §3.3, §3.4).
pub(super) fn digest_params(header: &str) -> Option<Vec<(String, String)>> {
    let rest = header.trim();
    let (scheme, params) = rest.split_once(char::is_whitespace)?;
    if !scheme.eq_ignore_ascii_case("digest") {
        return None;
    }
    let mut out = Vec::new();
    let mut chars = params.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        let name: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if name.is_empty() {
            break;
        }
        let value: String = if chars.peek() == Some(&'"') {
            chars.next();
            let mut v = String::new();
            while let Some(ch) = chars.next() {
                match ch {
                    '\\' => v.extend(chars.next()),
                    '"' => break,
                    other => v.push(other),
                }
            }
            v
        } else {
            chars
                .by_ref()
                .take_while(|c| *c != ',')
                .collect::<String>()
                .trim()
                .to_string()
        };
        out.push((name.trim().to_ascii_lowercase(), value));
    }
    Some(out)
}

/// Parses `Digest a="b", c=d, …`; None if it is not Digest or lacks a
/// required parameter.
fn parse(header: &str) -> Option<Credentials> {
    let mut c = Credentials::default();
    for (name, value) in digest_params(header)? {
        match name.as_str() {
            "username" => c.username = value,
            "realm" => c.realm = value,
            "nonce" => c.nonce = value,
            "uri" => c.uri = value,
            "response" => c.response = value.to_ascii_lowercase(),
            "algorithm" => c.algorithm = Some(value),
            "qop" => c.qop = Some(value),
            "nc" => c.nc = Some(value),
            "cnonce" => c.cnonce = Some(value),
            _ => {}
        }
    }
    let required = [&c.username, &c.nonce, &c.uri, &c.response];
    (!required.iter().any(|v| v.is_empty())).then_some(c)
}

pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The hash function a credentials header names (MD5 when it names none).
pub(super) fn hash_fn(algorithm: Option<&str>) -> Option<fn(&str) -> String> {
    match algorithm.map(str::to_ascii_uppercase).as_deref() {
        None | Some("MD5") => Some(|s| hex(&Md5::digest(s.as_bytes()))),
        Some("SHA-256") => Some(|s| hex(&Sha256::digest(s.as_bytes()))),
        _ => None,
    }
}

/// The response a client that knows `password` sends (RFC 7616 §3.4.1).
fn expected_response(c: &Credentials, method: &str, password: &str) -> Option<String> {
    let h = hash_fn(c.algorithm.as_deref())?;
    let ha1 = h(&format!("{}:{}:{password}", c.username, c.realm));
    let ha2 = h(&format!("{method}:{}", c.uri));
    Some(match (&c.qop, &c.nc, &c.cnonce) {
        (Some(qop), Some(nc), Some(cnonce)) => {
            h(&format!("{ha1}:{}:{nc}:{cnonce}:{qop}:{ha2}", c.nonce))
        }
        _ => h(&format!("{ha1}:{}:{ha2}", c.nonce)),
    })
}

impl DigestAuth {
    pub fn new(realm: &str) -> Self {
        let mut key = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut key);
        Self {
            key,
            realm: realm.to_string(),
            seen: Mutex::new(HashMap::new()),
        }
    }

    fn mac(&self, issued: &str) -> String {
        // HMAC accepts keys of any length; new_from_slice cannot fail.
        let mut m = match Hmac::<Sha256>::new_from_slice(&self.key) {
            Ok(m) => m,
            Err(_) => unreachable!("HMAC-SHA256 takes keys of any length"),
        };
        m.update(issued.as_bytes());
        hex(&m.finalize().into_bytes()[..12])
    }

    /// `issued-salt.mac`: the random salt keeps two challenges issued in
    /// the same millisecond apart, so one caller's use of a nonce never makes
    /// another caller's look like a replay.
    fn nonce(&self, now_ms: u64) -> String {
        let issued = format!("{now_ms:x}-{:08x}", rand::thread_rng().next_u32());
        format!("{issued}.{}", self.mac(&issued))
    }

    /// A `Proxy-Authenticate` value with a fresh nonce.
    pub fn challenge(&self, now_ms: u64, stale: bool) -> String {
        format!(
            "Digest realm=\"{}\", nonce=\"{}\", algorithm=MD5, qop=\"auth\"{}",
            self.realm,
            self.nonce(now_ms),
            if stale { ", stale=true" } else { "" }
        )
    }

    /// When `nonce` was issued, if we issued it.
    fn issued_at(&self, nonce: &str) -> Option<u64> {
        let (issued, mac) = nonce.split_once('.')?;
        if !crate::ct::eq(self.mac(issued).as_bytes(), mac.as_bytes()) {
            return None;
        }
        let (ms, _salt) = issued.split_once('-')?;
        u64::from_str_radix(ms, 16).ok()
    }

    /// Checks the `Proxy-Authorization` value of a request to
    /// `request_user` against `password_of`.
    pub fn check(
        &self,
        method: &str,
        header: Option<&str>,
        request_user: Option<&str>,
        password_of: impl Fn(&str) -> Option<String>,
        now_ms: u64,
    ) -> Verdict {
        let challenge = |why, stale| Verdict::Challenge {
            header: self.challenge(now_ms, stale),
            why,
        };
        let Some(header) = header else {
            return challenge("no credentials", false);
        };
        let Some(c) = parse(header) else {
            return challenge("credentials unreadable", false);
        };
        if c.realm != self.realm {
            return challenge("another realm", false);
        }
        let Some(issued) = self.issued_at(&c.nonce) else {
            return challenge("a nonce we did not issue", false);
        };
        let expires = issued + NONCE_LIFETIME_MS;
        if now_ms >= expires {
            return challenge("stale nonce", true);
        }
        if let Some(user) = request_user {
            let uri_user = super::uri_user(&c.uri);
            if uri_user.is_some_and(|u| u != user) {
                return Verdict::Forbidden {
                    why: "digest uri names another user",
                };
            }
        }
        let Some(password) = password_of(&c.username) else {
            return Verdict::Forbidden {
                why: "unknown username",
            };
        };
        let Some(expected) = expected_response(&c, method, &password) else {
            return challenge("unsupported algorithm", false);
        };
        if !crate::ct::eq(expected.as_bytes(), c.response.as_bytes()) {
            return Verdict::Forbidden {
                why: "wrong password",
            };
        }
        let nc = match &c.nc {
            Some(nc) => match u32::from_str_radix(nc, 16) {
                Ok(n) if n > 0 => n,
                _ => return challenge("bad nonce count", false),
            },
            None => 0,
        };
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        match seen.get(&c.nonce) {
            Some((_, last)) if nc == 0 || nc <= *last => return challenge("replayed nonce", false),
            _ => {}
        }
        if seen.len() >= MAX_TRACKED {
            seen.retain(|_, (exp, _)| *exp > now_ms);
            if seen.len() >= MAX_TRACKED {
                // Still full of live nonces: forget the oldest half rather
                // than grow without bound (those nonces can then be replayed
                // until they expire; logged for the operator).
                tracing::warn!("digest replay memory full; forgetting older nonces");
                let mut by_expiry: Vec<u64> = seen.values().map(|(e, _)| *e).collect();
                by_expiry.sort_unstable();
                let cut = by_expiry[by_expiry.len() / 2];
                seen.retain(|_, (exp, _)| *exp > cut);
            }
        }
        seen.insert(c.nonce.clone(), (expires, nc));
        Verdict::Ok {
            username: c.username,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client's header for `nonce`, computed here the RFC 2617 way.
    fn client(nonce: &str, user: &str, password: &str, nc: &str) -> String {
        let h = |s: String| hex(&Md5::digest(s.as_bytes()));
        let ha1 = h(format!("{user}:pinless:{password}"));
        let ha2 = h("INVITE:sip:support@127.0.0.1".to_string());
        let response = h(format!("{ha1}:{nonce}:{nc}:abc:auth:{ha2}"));
        format!(
            "Digest username=\"{user}\", realm=\"pinless\", nonce=\"{nonce}\", uri=\"sip:support@127.0.0.1\", response=\"{response}\", algorithm=MD5, qop=auth, nc={nc}, cnonce=\"abc\""
        )
    }

    fn nonce_of(v: &Verdict) -> String {
        let Verdict::Challenge { header, .. } = v else {
            panic!("{v:?}")
        };
        let start = header.find("nonce=\"").unwrap() + 7;
        header[start..].split('"').next().unwrap().to_string()
    }

    fn pw(user: &str) -> Option<String> {
        (user == "joe").then(|| "secret".to_string())
    }

    #[test]
    fn rfc2617_example_response() {
        // RFC 2617 §3.5 (GET /dir/index.html, "Circle Of Life").
        let c = Credentials {
            username: "Mufasa".into(),
            realm: "testrealm@host.com".into(),
            nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093".into(),
            uri: "/dir/index.html".into(),
            response: String::new(),
            algorithm: None,
            qop: Some("auth".into()),
            nc: Some("00000001".into()),
            cnonce: Some("0a4f113b".into()),
        };
        assert_eq!(
            expected_response(&c, "GET", "Circle Of Life").unwrap(),
            "6629fae49393a05397450978507c4ef1"
        );
    }

    #[test]
    fn challenge_then_success_then_replay_refused() {
        let d = DigestAuth::new("pinless");
        let first = d.check("INVITE", None, Some("support"), pw, 1_000);
        let nonce = nonce_of(&first);
        let ok = client(&nonce, "joe", "secret", "00000001");
        assert_eq!(
            d.check("INVITE", Some(&ok), Some("support"), pw, 2_000),
            Verdict::Ok {
                username: "joe".into()
            }
        );
        // The same header again is a replay; a higher count is fine.
        let again = d.check("INVITE", Some(&ok), Some("support"), pw, 2_100);
        assert!(matches!(
            again,
            Verdict::Challenge {
                why: "replayed nonce",
                ..
            }
        ));
        let next = client(&nonce, "joe", "secret", "00000002");
        assert!(matches!(
            d.check("INVITE", Some(&next), Some("support"), pw, 2_200),
            Verdict::Ok { .. }
        ));
    }

    #[test]
    fn two_callers_challenged_in_the_same_millisecond_both_get_in() {
        let d = DigestAuth::new("pinless");
        let a = nonce_of(&d.check("INVITE", None, Some("support"), pw, 1_000));
        let b = nonce_of(&d.check("INVITE", None, Some("support"), pw, 1_000));
        assert_ne!(a, b);
        for nonce in [a, b] {
            let header = client(&nonce, "joe", "secret", "00000001");
            assert!(matches!(
                d.check("INVITE", Some(&header), Some("support"), pw, 1_500),
                Verdict::Ok { .. }
            ));
        }
    }

    #[test]
    fn wrong_password_stale_and_forged_nonces() {
        let d = DigestAuth::new("pinless");
        let nonce = nonce_of(&d.check("INVITE", None, None, pw, 1_000));
        let wrong = client(&nonce, "joe", "guess", "00000001");
        assert_eq!(
            d.check("INVITE", Some(&wrong), Some("support"), pw, 1_500),
            Verdict::Forbidden {
                why: "wrong password"
            }
        );
        let stranger = client(&nonce, "eve", "x", "00000001");
        assert!(matches!(
            d.check("INVITE", Some(&stranger), Some("support"), pw, 1_500),
            Verdict::Forbidden { .. }
        ));
        let late = client(&nonce, "joe", "secret", "00000001");
        let v = d.check(
            "INVITE",
            Some(&late),
            Some("support"),
            pw,
            1_000 + NONCE_LIFETIME_MS,
        );
        match v {
            Verdict::Challenge { header, why } => {
                assert_eq!(why, "stale nonce");
                assert!(header.ends_with("stale=true"));
            }
            other => panic!("{other:?}"),
        }
        let forged = client(
            "5f5e100.000000000000000000000000",
            "joe",
            "secret",
            "00000001",
        );
        assert!(matches!(
            d.check("INVITE", Some(&forged), Some("support"), pw, 2_000),
            Verdict::Challenge {
                why: "a nonce we did not issue",
                ..
            }
        ));
        let other_node = DigestAuth::new("pinless");
        let theirs = nonce_of(&other_node.check("INVITE", None, None, pw, 1_000));
        let h = client(&theirs, "joe", "secret", "00000001");
        assert!(matches!(
            d.check("INVITE", Some(&h), Some("support"), pw, 2_000),
            Verdict::Challenge { .. }
        ));
    }

    #[test]
    fn header_parsing_tolerates_spacing_and_quoting() {
        let c =
            parse(r#"Digest   username="a\"b",realm="r", nonce=n1 ,uri="sip:x@y",response="ABC""#)
                .unwrap();
        assert_eq!(c.username, "a\"b");
        assert_eq!(c.nonce, "n1");
        assert_eq!(c.response, "abc");
        assert!(parse("Basic dXNlcjpwYXNz").is_none());
        assert!(parse(r#"Digest username="a""#).is_none());
    }
}
