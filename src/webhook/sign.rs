//! Webhook signatures: pure functions of key, time, id and body.
//!
//! Two schemes are sent side by side with the same key:
//! - pinless/Daily style: `X-Pinless-Timestamp` (Unix ms) and
//!   `X-Pinless-Signature` = base64(HMAC-SHA256(key, ts + "." + body));
//! - Standard Webhooks: `webhook-id`, `webhook-timestamp` (Unix s) and
//!   `webhook-signature` = `v1,` + base64(HMAC-SHA256(key, id.ts.body)).
//!
//! During a secret rotation's grace period the previous key signs too:
//! `X-Pinless-Signature-Previous` carries its pinless signature, and
//! `webhook-signature` lists both (`v1,new v1,old`, as Standard Webhooks
//! allows), so an app holding either secret verifies.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// An entry's signing keys: the current one, and during a rotation's
/// grace period the previous one with the Unix ms it expires at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKeys {
    pub current: Vec<u8>,
    pub previous: Option<(Vec<u8>, u64)>,
}

impl SigningKeys {
    pub fn single(key: Vec<u8>) -> Self {
        Self {
            current: key,
            previous: None,
        }
    }

    /// The previous key if it still signs at `now_ms`.
    fn previous_at(&self, now_ms: u64) -> Option<&[u8]> {
        match &self.previous {
            Some((key, until)) if now_ms < *until => Some(key),
            _ => None,
        }
    }
}

/// The headers that sign one webhook body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    pub pinless_timestamp: String,
    pub pinless_signature: String,
    /// With the previous key, during a rotation's grace period.
    pub pinless_signature_previous: Option<String>,
    pub webhook_id: String,
    pub webhook_timestamp: String,
    pub webhook_signature: String,
}

impl SignedHeaders {
    /// Header name/value pairs, in the order they are sent.
    pub fn pairs(&self) -> Vec<(&'static str, &str)> {
        let mut pairs = vec![
            ("X-Pinless-Timestamp", self.pinless_timestamp.as_str()),
            ("X-Pinless-Signature", &self.pinless_signature),
        ];
        if let Some(previous) = &self.pinless_signature_previous {
            pairs.push(("X-Pinless-Signature-Previous", previous));
        }
        pairs.extend([
            ("webhook-id", self.webhook_id.as_str()),
            ("webhook-timestamp", &self.webhook_timestamp),
            ("webhook-signature", &self.webhook_signature),
        ]);
        pairs
    }
}

fn mac(key: &[u8], parts: &[&[u8]]) -> String {
    // HMAC accepts keys of any length; new_from_slice cannot fail for it.
    let mut m = match HmacSha256::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC-SHA256 takes keys of any length"),
    };
    for p in parts {
        m.update(p);
    }
    STANDARD.encode(m.finalize().into_bytes())
}

/// `X-Pinless-Signature` for a body sent at `timestamp_ms`.
pub fn pinless_signature(key: &[u8], timestamp_ms: u64, body: &[u8]) -> String {
    mac(key, &[timestamp_ms.to_string().as_bytes(), b".", body])
}

/// `webhook-signature` (Standard Webhooks, `v1,` prefixed).
pub fn standard_signature(key: &[u8], id: &str, timestamp_s: u64, body: &[u8]) -> String {
    let sig = mac(
        key,
        &[
            id.as_bytes(),
            b".",
            timestamp_s.to_string().as_bytes(),
            b".",
            body,
        ],
    );
    format!("v1,{sig}")
}

/// All signature headers for `body`, sent at `now_ms`, with message `id`.
pub fn sign(keys: &SigningKeys, id: &str, now_ms: u64, body: &[u8]) -> SignedHeaders {
    let secs = now_ms / 1000;
    let previous = keys.previous_at(now_ms);
    let mut webhook_signature = standard_signature(&keys.current, id, secs, body);
    if let Some(old) = previous {
        webhook_signature.push(' ');
        webhook_signature.push_str(&standard_signature(old, id, secs, body));
    }
    SignedHeaders {
        pinless_timestamp: now_ms.to_string(),
        pinless_signature: pinless_signature(&keys.current, now_ms, body),
        pinless_signature_previous: previous.map(|old| pinless_signature(old, now_ms, body)),
        webhook_id: id.to_string(),
        webhook_timestamp: secs.to_string(),
        webhook_signature,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
    #[test]
    fn hmac_matches_rfc4231_vector() {
        let expect = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
        let got = STANDARD
            .decode(mac(b"Jefe", &[b"what do ya want ", b"for nothing?"]))
            .unwrap();
        let hex: String = got.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, expect);
    }

    #[test]
    fn pinless_signature_fixed_vector() {
        // Computed independently: printf '1700000000000.{"Test":"test"}' |
        // openssl dgst -sha256 -hmac secret-key -binary | base64
        let sig = pinless_signature(b"secret-key", 1_700_000_000_000, br#"{"Test":"test"}"#);
        assert_eq!(sig, "lDfWLQlaS7vNBwKz5oAXD+OxYDFRS3zy3a19RYMuO2o=");
    }

    #[test]
    fn sign_uses_seconds_for_standard_and_ms_for_pinless() {
        let k = |key: &[u8]| SigningKeys::single(key.to_vec());
        let h = sign(&k(b"k"), "msg_1", 1_700_000_000_123, b"{}");
        assert_eq!(h.pinless_timestamp, "1700000000123");
        assert_eq!(h.webhook_timestamp, "1700000000");
        assert!(h.webhook_signature.starts_with("v1,"));
        assert_eq!(h.pinless_signature_previous, None);
        assert_ne!(sign(&k(b"k2"), "msg_1", 1_700_000_000_123, b"{}"), h);
    }

    #[test]
    fn the_previous_key_signs_until_its_grace_ends() {
        let keys = SigningKeys {
            current: b"new".to_vec(),
            previous: Some((b"old".to_vec(), 2_000)),
        };
        let during = sign(&keys, "msg_1", 1_999, b"{}");
        assert_eq!(
            during.pinless_signature_previous,
            Some(pinless_signature(b"old", 1_999, b"{}"))
        );
        assert_eq!(
            during.webhook_signature,
            format!(
                "{} {}",
                standard_signature(b"new", "msg_1", 1, b"{}"),
                standard_signature(b"old", "msg_1", 1, b"{}")
            )
        );
        let after = sign(&keys, "msg_1", 2_000, b"{}");
        assert_eq!(after.pinless_signature_previous, None);
        assert!(!after.webhook_signature.contains(' '));
        assert_eq!(
            after.pinless_signature,
            pinless_signature(b"new", 2_000, b"{}")
        );
    }
}
