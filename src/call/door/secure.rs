//! Whether a leg's media is SRTP, and with which keys: the caller's by
//! its entry's `media_encryption`, the transport its INVITE came on and
//! what it offered; a room's by its URI and the update.
//!
//! The caller's leg (SDES keys travel in the SDP, so only TLS keeps them
//! secret; RFC 4568 §8.3):
//!
//! | offer                         | `disable` | `allow`             | `require`      |
//! |-------------------------------|-----------|---------------------|----------------|
//! | `RTP/SAVP`, over TLS          | 488       | SRTP                | SRTP           |
//! | `RTP/SAVP`, over UDP/TCP      | 488       | 488                 | 488            |
//! | `RTP/AVP` + `a=crypto`, TLS   | plain     | SRTP (best effort)  | SRTP           |
//! | `RTP/AVP` + `a=crypto`, other | plain     | plain, keys ignored | 488            |
//! | `RTP/AVP`                     | plain     | plain               | 488            |
//!
//! SRTP needs a usable `a=crypto` line (see `sip::crypto`); an SRTP-only
//! offer without one gets 488 too. Our answer keeps the offer's profile
//! and answers the chosen line's tag with a fresh key of ours.
//!
//! A room's leg is SRTP for a `sips:` URI, or when the update said
//! `"mediaEncryption": "require"` (which `route` lets through only for
//! TLS targets): we offer `RTP/SAVP` with a fresh key per suite, and a
//! room that answers without SRTP is a failed attempt.

use crate::config::MediaEncryption;
use crate::sdes::{LegKeys, MasterKey};
use crate::sip::Refusal;
use crate::sip::crypto::{self, SdpCrypto};

/// SRTP on the caller's leg, as we answer it.
#[derive(Debug, Clone)]
pub struct CallerSrtp {
    /// The offer was `RTP/SAVP` (we answer the same).
    pub savp: bool,
    /// The tag of the line we answer.
    pub tag: u32,
    pub keys: LegKeys,
}

impl CallerSrtp {
    /// Our answer SDP (made by `sdp::answer`) with our key in it.
    pub fn answer(&self, sdp: String) -> String {
        crypto::secure(sdp, self.savp, &[(self.tag, &self.keys.local)])
    }
}

fn refuse(why: &'static str) -> Refusal {
    Refusal::new(488, why).with_header("Warning", format!("399 pinless \"{why}\""))
}

/// The caller leg's SRTP (None: plain RTP), or the 488 to send.
pub fn caller(
    policy: MediaEncryption,
    transport: &str,
    offer: &[u8],
) -> Result<Option<CallerSrtp>, Refusal> {
    let seen = crypto::read(offer);
    decide(policy, transport.eq_ignore_ascii_case("tls"), &seen)
}

fn decide(
    policy: MediaEncryption,
    tls: bool,
    seen: &SdpCrypto,
) -> Result<Option<CallerSrtp>, Refusal> {
    use MediaEncryption::*;
    let wants = seen.savp || seen.offered > 0;
    match (policy, seen.savp, wants) {
        (Disable, true, _) => return Err(refuse("SRTP offered; this entry takes plain RTP only")),
        (Disable, false, _) => return Ok(None),
        (Require, _, false) => return Err(refuse("SRTP required; the offer is plain RTP")),
        (Allow, _, false) => return Ok(None),
        _ => {}
    }
    if !tls {
        // Keys that crossed the network in clear protect nothing.
        return match (policy, seen.savp) {
            (Allow, false) => Ok(None),
            _ => Err(refuse("SDES keys are only taken over TLS")),
        };
    }
    let Some(line) = seen.pick() else {
        return match (policy, seen.savp) {
            (Allow, false) => Ok(None),
            _ => Err(refuse("no usable a=crypto line")),
        };
    };
    Ok(Some(CallerSrtp {
        savp: seen.savp,
        tag: line.tag,
        keys: crypto::answer_keys(line),
    }))
}

/// Whether a room leg to `target` is SRTP: `sips:`, or the update said
/// `require`.
pub fn room_wants_srtp(target: &str, requested: Option<MediaEncryption>) -> bool {
    requested == Some(MediaEncryption::Require)
        || target
            .get(..5)
            .is_some_and(|s| s.eq_ignore_ascii_case("sips:"))
}

/// Our keys for a room offer, and the offer SDP made secure.
pub fn room_offer(sdp: String) -> (String, Vec<(u32, MasterKey)>) {
    let keys = crypto::offer_keys();
    let refs: Vec<(u32, &MasterKey)> = keys.iter().map(|(t, k)| (*t, k)).collect();
    (crypto::secure(sdp, true, &refs), keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "d0RmdmcmVCspeEc3QGZiNWpVLFJhQX1cfHAwJSoj";

    fn offer(proto: &str, crypto: bool) -> Vec<u8> {
        let line = if crypto {
            format!("a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:{KEY}\r\n")
        } else {
            String::new()
        };
        format!("v=0\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 {proto} 0\r\n{line}")
            .into_bytes()
    }

    #[test]
    fn the_table_of_the_module_doc() {
        use MediaEncryption::*;
        let savp = offer("RTP/SAVP", true);
        let best = offer("RTP/AVP", true);
        let plain = offer("RTP/AVP", false);
        let savp_nokey = offer("RTP/SAVP", false);
        let code = |p, t, o: &[u8]| match caller(p, t, o) {
            Ok(Some(s)) => format!("srtp savp={}", s.savp),
            Ok(None) => "plain".into(),
            Err(r) => r.code.to_string(),
        };
        let rows: &[(&[u8], &str, [&str; 3])] = &[
            (&savp, "tls", ["488", "srtp savp=true", "srtp savp=true"]),
            (&savp, "udp", ["488", "488", "488"]),
            (&savp, "tcp", ["488", "488", "488"]),
            (
                &best,
                "tls",
                ["plain", "srtp savp=false", "srtp savp=false"],
            ),
            (&best, "udp", ["plain", "plain", "488"]),
            (&plain, "tls", ["plain", "plain", "488"]),
            (&plain, "udp", ["plain", "plain", "488"]),
            (&savp_nokey, "tls", ["488", "488", "488"]),
        ];
        for (o, t, want) in rows {
            let got = [Disable, Allow, Require].map(|p| code(p, t, o));
            assert_eq!(
                got,
                want.map(String::from),
                "{t} {}",
                String::from_utf8_lossy(o)
            );
        }
        // The answer carries the offer's tag and a fresh key of ours.
        let s = caller(Allow, "tls", &savp).unwrap().unwrap();
        assert_eq!(s.tag, 3);
        assert_ne!(s.keys.local, s.keys.remote);
        let answer = s.answer("m=audio 1 RTP/AVP 0\r\n".into());
        assert!(
            answer
                .starts_with("m=audio 1 RTP/SAVP 0\r\na=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:")
        );
        assert!(!answer.contains(KEY), "our key, not theirs");
    }

    #[test]
    fn rooms_get_srtp_for_sips_or_when_asked() {
        assert!(room_wants_srtp("sips:room@r", None));
        assert!(room_wants_srtp("SIPS:room@r", None));
        assert!(!room_wants_srtp("sip:room@r;transport=tls", None));
        assert!(room_wants_srtp(
            "sip:room@r;transport=tls",
            Some(MediaEncryption::Require)
        ));
        assert!(!room_wants_srtp(
            "sip:room@r",
            Some(MediaEncryption::Disable)
        ));
    }
}
