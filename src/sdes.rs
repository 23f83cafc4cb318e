//! SDES key material (RFC 4568): the SRTP crypto suites pinless speaks and
//! one master key with its salt. A leaf because both `sip` (the `a=crypto`
//! lines of SDP) and `media` (the SRTP contexts) hold keys, and siblings do
//! not import each other. No cryptography is done here: keys are random
//! bytes from the OS, written and read as the base64 `inline:` text of SDP.
//!
//! A key never shows in `Debug` output (so never in a log line by
//! accident); it is written out only into SDP (masked in the SIP ladder)
//! and into a saved call's state (see README, "Secure media").

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

/// An SRTP crypto suite as SDP names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Suite {
    /// AES-128 counter mode, 80-bit HMAC-SHA1 tag (RFC 4568 §6.2.1).
    #[serde(rename = "AES_CM_128_HMAC_SHA1_80")]
    AesCm128HmacSha1_80,
    /// AES-128 counter mode, 32-bit HMAC-SHA1 tag on SRTP (80 on SRTCP).
    #[serde(rename = "AES_CM_128_HMAC_SHA1_32")]
    AesCm128HmacSha1_32,
    /// AES-128 GCM (RFC 7714): a 16-byte tag, a 12-byte salt.
    #[serde(rename = "AEAD_AES_128_GCM")]
    AeadAes128Gcm,
}

/// Our order of preference when we offer (the answerer's order, when we
/// answer, is the offerer's): the suite every SDES peer has first.
pub const SUITES: [Suite; 3] = [
    Suite::AesCm128HmacSha1_80,
    Suite::AesCm128HmacSha1_32,
    Suite::AeadAes128Gcm,
];

impl Suite {
    /// The name in `a=crypto` lines.
    pub fn name(self) -> &'static str {
        match self {
            Suite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            Suite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
            Suite::AeadAes128Gcm => "AEAD_AES_128_GCM",
        }
    }

    /// The suite SDP calls `name`; None for the ones we do not speak.
    pub fn from_name(name: &str) -> Option<Suite> {
        SUITES.into_iter().find(|s| s.name() == name)
    }

    /// Master key length in bytes.
    pub fn key_len(self) -> usize {
        16
    }

    /// Master salt length in bytes.
    pub fn salt_len(self) -> usize {
        match self {
            Suite::AeadAes128Gcm => 12,
            _ => 14,
        }
    }
}

/// One SRTP master key and salt for a suite: what one side of a leg
/// encrypts with (its own `a=crypto` line).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MasterKey {
    pub suite: Suite,
    /// `key || salt`, base64, as after `inline:`.
    #[serde(rename = "inline")]
    inline: String,
}

/// One leg's keys: `local` is in our SDP and encrypts what we send;
/// `remote` is in the peer's and decrypts what it sends (RFC 4568 §6.1:
/// each side sends with the key it announced).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegKeys {
    pub local: MasterKey,
    pub remote: MasterKey,
}

/// Why the key material of an `inline:` parameter is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Not base64.
    #[error("key material is not base64")]
    NotBase64,
    /// Base64, but not as long as the suite's key and salt together.
    #[error("key material is {got} bytes, the suite needs {want}")]
    Length {
        /// Bytes found.
        got: usize,
        /// Key and salt length of the suite.
        want: usize,
    },
}

impl MasterKey {
    /// A fresh random key and salt for `suite` (the OS's random source).
    pub fn fresh(suite: Suite) -> MasterKey {
        let mut bytes = vec![0u8; suite.key_len() + suite.salt_len()];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
        MasterKey {
            suite,
            inline: STANDARD.encode(&bytes),
        }
    }

    /// The key of an `inline:` parameter (without lifetime or MKI).
    pub fn from_inline(suite: Suite, text: &str) -> Result<MasterKey, KeyError> {
        // Some peers drop the base64 padding; accept either form.
        let bytes = STANDARD
            .decode(text)
            .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(text))
            .map_err(|_| KeyError::NotBase64)?;
        Self::from_bytes(suite, &bytes)
    }

    /// The key of `key || salt`.
    pub fn from_bytes(suite: Suite, bytes: &[u8]) -> Result<MasterKey, KeyError> {
        let want = suite.key_len() + suite.salt_len();
        if bytes.len() != want {
            return Err(KeyError::Length {
                got: bytes.len(),
                want,
            });
        }
        Ok(MasterKey {
            suite,
            inline: STANDARD.encode(bytes),
        })
    }

    /// The base64 text after `inline:`.
    pub fn inline(&self) -> &str {
        &self.inline
    }

    /// `(key, salt)`; empty slices for a key that was stored corrupt
    /// (the SRTP context then refuses it by length).
    pub fn key_and_salt(&self) -> (Vec<u8>, Vec<u8>) {
        let bytes = STANDARD.decode(&self.inline).unwrap_or_default();
        if bytes.len() != self.suite.key_len() + self.suite.salt_len() {
            return (Vec::new(), Vec::new());
        }
        let (k, s) = bytes.split_at(self.suite.key_len());
        (k.to_vec(), s.to_vec())
    }
}

impl std::fmt::Debug for MasterKey {
    /// The suite only: key material never reaches a log by `{:?}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MasterKey({}, <masked>)", self.suite.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_keys_have_the_suite_s_length_differ_and_never_print() {
        for suite in SUITES {
            let a = MasterKey::fresh(suite);
            let (k, s) = a.key_and_salt();
            assert_eq!((k.len(), s.len()), (suite.key_len(), suite.salt_len()));
            assert_ne!(a, MasterKey::fresh(suite));
            let shown = format!("{a:?}");
            assert!(!shown.contains(a.inline()), "{shown}");
            assert_eq!(Suite::from_name(suite.name()), Some(suite));
        }
    }

    #[test]
    fn inline_text_is_checked() {
        // RFC 4568 §9's example key: 30 bytes.
        let rfc = "d0RmdmcmVCspeEc3QGZiNWpVLFJhQX1cfHAwJSoj";
        let k = MasterKey::from_inline(Suite::AesCm128HmacSha1_80, rfc).unwrap();
        assert_eq!(k.inline(), rfc);
        assert_eq!(
            MasterKey::from_inline(Suite::AeadAes128Gcm, rfc),
            Err(KeyError::Length { got: 30, want: 28 })
        );
        assert_eq!(
            MasterKey::from_inline(Suite::AesCm128HmacSha1_80, "!!"),
            Err(KeyError::NotBase64)
        );
        assert_eq!(Suite::from_name("F8_128_HMAC_SHA1_80"), None);
    }
}
