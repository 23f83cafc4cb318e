//! The small codec types that SIP (SDP offers and answers) and media (the
//! hold music and the relay) both speak, and the DTMF key press both
//! report (SIP INFO, RFC 4733 telephone-events). They live in this leaf so that
//! `sip` and `media`, siblings in the layer order, need not import each
//! other; the G.711 arithmetic itself stays in `media::g711`.

/// Which G.711 law a stream uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Law {
    /// PCMU, static payload type 0.
    Mu,
    /// PCMA, static payload type 8.
    A,
}

impl Law {
    pub fn payload_type(self) -> u8 {
        match self {
            Law::Mu => 0,
            Law::A => 8,
        }
    }

    pub fn from_payload_type(pt: u8) -> Option<Law> {
        match pt {
            0 => Some(Law::Mu),
            8 => Some(Law::A),
            _ => None,
        }
    }

    pub fn encoding_name(self) -> &'static str {
        match self {
            Law::Mu => "PCMU",
            Law::A => "PCMA",
        }
    }
}

/// What one leg negotiated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegCodec {
    pub law: Law,
    pub payload_type: u8,
    /// RFC 4733 telephone-event payload type, if the leg offered it.
    pub event_payload_type: Option<u8>,
}

/// One DTMF key press as the caller made it, however it arrived (RFC 4733
/// telephone-events in RTP, or a SIP INFO): reported once per press.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfPress {
    /// `0`-`9`, `*`, `#` or `A`-`D`.
    pub digit: char,
    /// How long the key was held, in milliseconds (0 when the sender did
    /// not say, as a SIP INFO `application/dtmf` body does not).
    pub duration_ms: u32,
}

/// The key of an RFC 4733 event code (§3.2: 0-9, 10 `*`, 11 `#`, 12-15
/// `A`-`D`); `None` for the other events (flash, tones), which are not keys.
pub fn dtmf_digit(event: u8) -> Option<char> {
    match event {
        0..=9 => Some(char::from(b'0' + event)),
        10 => Some('*'),
        11 => Some('#'),
        12..=15 => Some(char::from(b'A' + event - 12)),
        _ => None,
    }
}

/// The RFC 4733 event code of a DTMF key (`dtmf_digit` backwards).
pub fn dtmf_event(digit: char) -> Option<u8> {
    (0..=15).find(|e| dtmf_digit(*e) == Some(digit))
}
