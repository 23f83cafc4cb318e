//! DTMF carried in SIP INFO (the legacy way, still common on PBXs and
//! trunks that do not send RFC 4733): `application/dtmf-relay`
//! (`Signal=5` and `Duration=160` lines, the duration in ms) and
//! `application/dtmf` (the key alone). Parsing only; the leg answers.

use crate::codec::{DtmfPress, dtmf_digit};

/// Why a DTMF INFO body was refused (the phrase of its 400).
pub(crate) const BAD_DTMF: &str = "Bad DTMF Body";

/// What an INFO with `content_type` and `body` says: a key press, nothing
/// (another body type, or a DTMF event that is no key, such as flash), or
/// `Err` for a DTMF body that names no key.
pub(crate) fn dtmf(content_type: Option<&str>, body: &[u8]) -> Result<Option<DtmfPress>, ()> {
    let media = content_type
        .and_then(|c| c.split(';').next())
        .map(|c| c.trim().to_ascii_lowercase());
    let text = || std::str::from_utf8(body).map_err(|_| ());
    match media.as_deref() {
        Some("application/dtmf-relay") => relay(text()?),
        Some("application/dtmf") => signal(text()?.trim()).map(|key| {
            key.map(|digit| DtmfPress {
                digit,
                duration_ms: 0,
            })
        }),
        _ => Ok(None),
    }
}

/// `Signal=…` and `Duration=…` lines, in any order and case.
fn relay(text: &str) -> Result<Option<DtmfPress>, ()> {
    let mut key = None;
    let mut duration_ms = 0;
    for line in text.lines() {
        let Some((name, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "signal" => key = Some(signal(value)?),
            // A missing or odd duration is not worth losing the key for.
            "duration" => duration_ms = value.parse().unwrap_or(0),
            _ => {}
        }
    }
    let key = key.ok_or(())?;
    Ok(key.map(|digit| DtmfPress { digit, duration_ms }))
}

/// A key as senders write it: the character itself, or its RFC 4733 event
/// code (`10` for `*`, `16` for flash, which is no key: `None`).
fn signal(value: &str) -> Result<Option<char>, ()> {
    let mut chars = value.chars();
    if let (Some(c), None) = (chars.next(), chars.next()) {
        let c = c.to_ascii_uppercase();
        if crate::codec::dtmf_event(c).is_some() {
            return Ok(Some(c));
        }
    }
    match value.parse::<u8>() {
        Ok(code @ 10..=16) => Ok(dtmf_digit(code)),
        _ => Err(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn press(digit: char, duration_ms: u32) -> Option<DtmfPress> {
        Some(DtmfPress { digit, duration_ms })
    }

    #[test]
    fn dtmf_relay_bodies() {
        let relay = Some("application/dtmf-relay");
        assert_eq!(
            dtmf(relay, b"Signal=5\r\nDuration=160\r\n"),
            Ok(press('5', 160))
        );
        assert_eq!(
            dtmf(
                Some("Application/DTMF-Relay; charset=utf-8"),
                b"duration = 250\nsignal = #\n"
            ),
            Ok(press('#', 250))
        );
        assert_eq!(dtmf(relay, b"Signal=10\r\n"), Ok(press('*', 0)));
        assert_eq!(dtmf(relay, b"Signal=d\r\n"), Ok(press('D', 0)));
        // Flash is an event, not a key.
        assert_eq!(dtmf(relay, b"Signal=16\r\nDuration=100\r\n"), Ok(None));
        assert_eq!(dtmf(relay, b"Duration=160\r\n"), Err(()));
        assert_eq!(dtmf(relay, b"Signal=X\r\n"), Err(()));
        assert_eq!(dtmf(relay, b"Signal=55\r\n"), Err(()));
    }

    #[test]
    fn dtmf_bodies() {
        let plain = Some("application/dtmf");
        assert_eq!(dtmf(plain, b"7"), Ok(press('7', 0)));
        assert_eq!(dtmf(plain, b" *\r\n"), Ok(press('*', 0)));
        assert_eq!(dtmf(plain, b""), Err(()));
        assert_eq!(dtmf(plain, b"\xff"), Err(()));
    }

    #[test]
    fn other_bodies_are_no_press() {
        assert_eq!(
            dtmf(Some("application/media_control+xml"), b"<x/>"),
            Ok(None)
        );
        assert_eq!(dtmf(None, b""), Ok(None));
    }
}
