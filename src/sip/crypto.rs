//! SDES in SDP (RFC 4568): reading the `a=crypto` lines of a peer's offer
//! or answer, and writing ours. Plain text in and out, beside `sdp`
//! (which reads codecs and addresses): our SDP is made plain by `sdp` and
//! made secure here (`secure`), so the two stay apart.
//!
//! `a=crypto:<tag> <suite> inline:<base64 key||salt>[|lifetime][|MKI:len]
//! [session params]`. A line is usable when we speak its suite, it has
//! one key without an MKI (the crate has no MKI), and no session
//! parameter but `WSH` (the others, like `UNENCRYPTED_SRTP` or `KDR`,
//! change what SRTP does and are not supported); a lifetime (`2^n` or
//! decimal) of 2^31 packets or more is accepted and not enforced (days
//! of audio per call), a shorter or malformed one makes the line
//! unusable, as we do not count packets to re-key. The key method
//! (`inline`) is matched without regard to case.

use crate::sdes::{KeyError, LegKeys, MasterKey, SUITES, Suite};

/// One usable `a=crypto` line of a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CryptoLine {
    pub tag: u32,
    /// The peer's key: what it encrypts with.
    pub key: MasterKey,
}

/// What a peer's SDP says about SRTP, for its first active audio stream
/// (the one `sdp::parse` uses).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SdpCrypto {
    /// The stream's profile is `RTP/SAVP`: SRTP or nothing. (`RTP/AVP`
    /// with `a=crypto` lines is "best effort": SRTP if the answer has it.)
    pub savp: bool,
    /// Usable lines, in the peer's order (its preference).
    pub lines: Vec<CryptoLine>,
    /// `a=crypto` lines seen, usable or not.
    pub offered: usize,
}

/// Why a room's answer does not give the leg SRTP.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// The answer has no `a=crypto` line (a plain RTP/AVP answer).
    #[error("the room answered without SRTP")]
    Plain,
    /// Its line names a tag or suite we did not offer.
    #[error("the room's a=crypto answer matches none we offered")]
    Unmatched,
    /// We offered plain RTP and the room answered with SRTP (`RTP/SAVP`
    /// or `a=crypto`): we would relay its ciphertext as audio.
    #[error("the room answered a plain offer with SRTP")]
    Unoffered,
    /// Its key is one of ours, sent back: the two directions would share
    /// a keystream.
    #[error("the room's a=crypto answer repeats our own key")]
    Echo,
    /// The key in its line is unusable.
    #[error("the room's SRTP key: {0}")]
    Key(#[from] KeyError),
}

/// Reads the SRTP side of an SDP body; nothing for a body that is not SDP.
pub fn read(body: &[u8]) -> SdpCrypto {
    let Ok(text) = std::str::from_utf8(body) else {
        return SdpCrypto::default();
    };
    let mut out = SdpCrypto::default();
    let mut in_stream = false;
    let mut done = false;
    for line in text.lines().map(str::trim) {
        if let Some(m) = line.strip_prefix("m=") {
            if in_stream {
                done = true;
            }
            if done {
                break;
            }
            let f: Vec<&str> = m.split_whitespace().collect();
            in_stream = f.len() >= 3
                && f[0] == "audio"
                && f[1] != "0"
                && matches!(f[2], "RTP/AVP" | "RTP/SAVP");
            out.savp = in_stream && f[2] == "RTP/SAVP";
            continue;
        }
        if !in_stream {
            continue;
        }
        if let Some(value) = line.strip_prefix("a=crypto:") {
            out.offered += 1;
            if let Some(l) = parse_line(value) {
                out.lines.push(l);
            }
        }
    }
    out
}

/// The shortest key lifetime we take, in packets: 2^31 is days of audio
/// in one call; we do not count packets to re-key at a shorter one.
const MIN_LIFETIME: u64 = 1 << 31;

/// A key lifetime, `2^n` or decimal (RFC 4568 §6.1); None when it is
/// neither (an MKI, or garbage).
fn lifetime(text: &str) -> Option<u64> {
    match text.strip_prefix("2^") {
        Some(n) => {
            let n: u32 = n.parse().ok()?;
            Some(1u64.checked_shl(n).unwrap_or(u64::MAX))
        }
        None if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) => {
            Some(text.parse().unwrap_or(u64::MAX))
        }
        None => None,
    }
}

/// One `a=crypto` value (after the colon), if usable.
fn parse_line(value: &str) -> Option<CryptoLine> {
    let mut f = value.split_whitespace();
    let tag: u32 = f.next()?.parse().ok()?;
    let suite = Suite::from_name(f.next()?)?;
    let keys = f.next()?;
    if f.any(|param| !param.starts_with("WSH=")) {
        return None;
    }
    if keys.contains(';') {
        return None;
    }
    // The key method is matched without regard to case.
    let method = keys.get(..7)?;
    if !method.eq_ignore_ascii_case("inline:") {
        return None;
    }
    let mut parts = keys[7..].split('|');
    let material = parts.next()?;
    match (parts.next(), parts.next()) {
        (None, _) => {}
        // `n:len` in the lifetime's place is an MKI, and a line with
        // both has one too: the crate has no MKI.
        (Some(p), None) if lifetime(p)? >= MIN_LIFETIME => {}
        _ => return None,
    }
    let key = MasterKey::from_inline(suite, material).ok()?;
    Some(CryptoLine { tag, key })
}

impl SdpCrypto {
    /// The line to answer: the first usable one in the offerer's order.
    pub fn pick(&self) -> Option<&CryptoLine> {
        self.lines.first()
    }
}

/// Our keys for an offer: one fresh key per suite we speak, tags 1, 2, 3
/// in our order of preference.
pub fn offer_keys() -> Vec<(u32, MasterKey)> {
    SUITES
        .iter()
        .enumerate()
        .map(|(i, s)| (i as u32 + 1, MasterKey::fresh(*s)))
        .collect()
}

/// Our answer to `line`: a fresh key of its suite, under its tag. The
/// leg's keys and the tag to write.
pub fn answer_keys(line: &CryptoLine) -> LegKeys {
    LegKeys {
        local: MasterKey::fresh(line.key.suite),
        remote: line.key.clone(),
    }
}

/// Our SDP (`sdp::offer` or `sdp::answer`) made secure: the audio line's
/// profile becomes `RTP/SAVP` when `savp`, and our `a=crypto` lines
/// follow the stream's attributes (it is our only stream).
pub fn secure(sdp: String, savp: bool, lines: &[(u32, &MasterKey)]) -> String {
    let mut out = String::with_capacity(sdp.len() + 80 * lines.len());
    for line in sdp.split_inclusive("\r\n") {
        if savp && line.starts_with("m=audio ") {
            out.push_str(&line.replacen(" RTP/AVP ", " RTP/SAVP ", 1));
        } else {
            out.push_str(line);
        }
    }
    for (tag, key) in lines {
        out.push_str(&format!(
            "a=crypto:{tag} {} inline:{}\r\n",
            key.suite.name(),
            key.inline()
        ));
    }
    out
}

/// The leg's keys from a room's answer to our offer of `ours`.
pub fn answered(answer: &[u8], ours: &[(u32, MasterKey)]) -> Result<LegKeys, CryptoError> {
    let seen = read(answer);
    if seen.offered == 0 {
        return Err(CryptoError::Plain);
    }
    let line = seen.lines.first().ok_or(CryptoError::Unmatched)?;
    let (_, local) = ours
        .iter()
        .find(|(tag, k)| *tag == line.tag && k.suite == line.key.suite)
        .ok_or(CryptoError::Unmatched)?;
    if ours.iter().any(|(_, k)| *k == line.key) {
        return Err(CryptoError::Echo);
    }
    Ok(LegKeys {
        local: local.clone(),
        remote: line.key.clone(),
    })
}

/// A room's answer to our plain offer: plain too, or the attempt fails.
pub fn answered_plain(answer: &[u8]) -> Result<(), CryptoError> {
    let seen = read(answer);
    if seen.savp || seen.offered > 0 {
        return Err(CryptoError::Unoffered);
    }
    Ok(())
}

/// Our offer as the session keeps it once `answer` came: with only the
/// `a=crypto` line the answer accepted (RFC 4568 §7.1.1: the answer
/// names one), since our later answers and offers in the dialog
/// (re-INVITE, UPDATE) repeat it and must carry one key, the one in use.
/// An answer without a line leaves the offer as it is.
pub fn settle(offer: &str, answer: &[u8]) -> String {
    let Some(tag) = read(answer).lines.first().map(|l| l.tag) else {
        return offer.to_string();
    };
    offer
        .split_inclusive('\n')
        .filter(|line| match line.trim().strip_prefix("a=crypto:") {
            Some(rest) => rest.split_whitespace().next() == Some(&tag.to_string()),
            None => true,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC_KEY: &str = "d0RmdmcmVCspeEc3QGZiNWpVLFJhQX1cfHAwJSoj";

    fn offer(proto: &str, crypto: &str) -> String {
        format!(
            "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
             m=audio 4000 {proto} 0 8\r\n{crypto}a=sendrecv\r\n"
        )
    }

    #[test]
    fn usable_lines_are_read_in_the_offerers_order() {
        let crypto = format!(
            "a=crypto:1 AES_CM_128_HMAC_SHA1_32 INLINE:{RFC_KEY}|2^31\r\n\
             a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:{RFC_KEY}|2^20|1:4\r\n\
             a=crypto:3 F8_128_HMAC_SHA1_80 inline:{RFC_KEY}\r\n\
             a=crypto:4 AES_CM_128_HMAC_SHA1_80 inline:{RFC_KEY} UNENCRYPTED_SRTP\r\n\
             a=crypto:5 AES_CM_128_HMAC_SHA1_80 inline:{RFC_KEY} WSH=64\r\n"
        );
        let c = read(offer("RTP/SAVP", &crypto).as_bytes());
        assert!(c.savp);
        assert_eq!(c.offered, 5);
        let tags: Vec<u32> = c.lines.iter().map(|l| l.tag).collect();
        assert_eq!(
            tags,
            vec![1, 5],
            "MKI, F8 and UNENCRYPTED_SRTP are not usable"
        );
        assert_eq!(c.pick().unwrap().key.suite, Suite::AesCm128HmacSha1_32);
        let plain = read(offer("RTP/AVP", "").as_bytes());
        assert_eq!((plain.savp, plain.offered), (false, 0));
        // Only the first active audio stream counts.
        let two = format!(
            "{}m=audio 5000 RTP/SAVP 0\r\na=crypto:9 AES_CM_128_HMAC_SHA1_80 inline:{RFC_KEY}\r\n",
            offer("RTP/AVP", "")
        );
        assert_eq!(read(two.as_bytes()).offered, 0);
    }

    #[test]
    fn lifetimes_below_2_31_or_malformed_make_a_line_unusable() {
        let usable = |tail: &str| {
            let line = format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{RFC_KEY}{tail}\r\n");
            read(offer("RTP/SAVP", &line).as_bytes()).lines.len() == 1
        };
        assert!(usable(""));
        assert!(usable("|2^31"));
        assert!(usable("|2^48"));
        assert!(usable("|2147483648"));
        assert!(!usable("|2^20"), "too short to go unenforced");
        assert!(!usable("|1048576"));
        assert!(!usable("|0"));
        assert!(!usable("|garbage"));
        assert!(!usable("|2^x"));
        assert!(!usable("|"));
        assert!(!usable("|1:4"), "an MKI");
        assert!(!usable("|2^31|1:4"), "an MKI");
        assert!(!usable("|2^31|2^31"));
        assert_eq!(lifetime("2^99"), Some(u64::MAX));
    }

    #[test]
    fn our_offer_and_answer_read_back() {
        let ours = offer_keys();
        let plain = "v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 20000 RTP/AVP 0 8 101\r\na=sendrecv\r\n";
        let refs: Vec<(u32, &MasterKey)> = ours.iter().map(|(t, k)| (*t, k)).collect();
        let sdp = secure(plain.to_string(), true, &refs);
        assert!(sdp.contains("m=audio 20000 RTP/SAVP 0 8 101\r\n"), "{sdp}");
        let seen = read(sdp.as_bytes());
        assert_eq!(seen.lines.len(), 3);
        assert_eq!(seen.lines[0].key, ours[0].1);
        // A room answers tag 2 with its own key.
        let theirs = answer_keys(&seen.lines[1]);
        let answer = secure(plain.to_string(), true, &[(2, &theirs.local)]);
        let keys = answered(answer.as_bytes(), &ours).unwrap();
        assert_eq!(keys.local, ours[1].1);
        assert_eq!(keys.remote, theirs.local);
        assert_eq!(answered(plain.as_bytes(), &ours), Err(CryptoError::Plain));
        let wrong = secure(plain.to_string(), true, &[(7, &theirs.local)]);
        assert_eq!(
            answered(wrong.as_bytes(), &ours),
            Err(CryptoError::Unmatched)
        );
        // Our own key sent back is refused.
        let echo = secure(plain.to_string(), true, &[(2, &ours[1].1)]);
        assert_eq!(answered(echo.as_bytes(), &ours), Err(CryptoError::Echo));
        // A plain offer wants a plain answer.
        assert_eq!(answered_plain(plain.as_bytes()), Ok(()));
        assert_eq!(
            answered_plain(answer.as_bytes()),
            Err(CryptoError::Unoffered)
        );
        // Best effort keeps RTP/AVP.
        let avp = secure(plain.to_string(), false, &refs);
        assert!(avp.contains(" RTP/AVP ") && !read(avp.as_bytes()).savp);
    }

    #[test]
    fn the_session_keeps_only_the_accepted_line() {
        let ours = offer_keys();
        let refs: Vec<(u32, &MasterKey)> = ours.iter().map(|(t, k)| (*t, k)).collect();
        let plain = "v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 20000 RTP/AVP 0\r\na=sendrecv\r\n";
        let offer = secure(plain.to_string(), true, &refs);
        let seen = read(offer.as_bytes());
        let theirs = answer_keys(&seen.lines[1]);
        let answer = secure(plain.to_string(), true, &[(2, &theirs.local)]);
        let kept = settle(&offer, answer.as_bytes());
        let left = read(kept.as_bytes());
        assert_eq!(left.offered, 1, "{kept}");
        assert_eq!(left.lines[0].tag, 2);
        assert_eq!(left.lines[0].key, ours[1].1);
        assert!(kept.contains("m=audio 20000 RTP/SAVP 0\r\na=sendrecv\r\n"));
        assert_eq!(settle(&offer, plain.as_bytes()), offer);
    }
}
