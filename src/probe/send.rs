//! What the probe sends, without I/O: one RTP packet per 20 ms, a 440 Hz
//! tone (so that an echo has something to return) with the digits asked
//! for as RFC 4733 telephone-events, each pressed for 100 ms with 100 ms
//! between presses, from one second in.

use crate::codec::Law;
use crate::media::rtp::{HEADER_LEN, Header};

const FRAME: u32 = 160;
/// Packets of one key press (100 ms), then three end packets.
const PRESS: u32 = 5;
const ENDS: u32 = 3;
/// Packets between presses (100 ms of tone).
const GAP: u32 = 5;
/// The first press starts one second in.
const FIRST_PRESS: u32 = 50;

/// The probe's outgoing stream.
pub struct Outgoing {
    ssrc: u32,
    sequence: u16,
    /// Packets sent so far.
    tick: u32,
    law: Law,
    audio_pt: u8,
    event_pt: Option<u8>,
    digits: Vec<u8>,
}

impl Outgoing {
    /// `digits` must be event codes (see `codec::dtmf_event`); they are sent only
    /// when the peer takes telephone-events (`event_pt`).
    pub fn new(law: Law, audio_pt: u8, event_pt: Option<u8>, digits: Vec<u8>) -> Outgoing {
        Outgoing {
            ssrc: rand::random(),
            sequence: rand::random(),
            tick: 0,
            law,
            audio_pt,
            event_pt,
            digits,
        }
    }

    /// Whether every digit has been sent.
    pub fn digits_sent(&self) -> bool {
        self.event_pt.is_none()
            || self.tick >= FIRST_PRESS + self.digits.len() as u32 * (PRESS + ENDS + GAP)
    }

    /// The next packet (call every 20 ms).
    pub fn next_packet(&mut self) -> Vec<u8> {
        let tick = self.tick;
        self.tick += 1;
        let sequence = self.sequence;
        self.sequence = self.sequence.wrapping_add(1);
        let timestamp = tick.wrapping_mul(FRAME);
        let (pt, marker, ts, payload) = match self.press_at(tick) {
            Some((code, n, event_ts)) => {
                let end = n >= PRESS;
                // Duration so far, in timestamp units; fixed once ended.
                let duration = (n.min(PRESS - 1) + 1) * FRAME;
                let flags = if end { 0x80 } else { 0 } | 10; // volume -10 dBm0
                let d = duration.min(0xFFFF) as u16;
                let payload = vec![code, flags, (d >> 8) as u8, d as u8];
                (self.event_pt.unwrap_or(101), n == 0, event_ts, payload)
            }
            None => (self.audio_pt, tick == 0, timestamp, self.tone(tick)),
        };
        let mut head = [0u8; HEADER_LEN];
        Header {
            marker,
            payload_type: pt,
            sequence,
            timestamp: ts,
            ssrc: self.ssrc,
        }
        .write(&mut head);
        let mut packet = head.to_vec();
        packet.extend(payload);
        packet
    }

    /// The key being pressed at `tick`: its code, the packet's index in
    /// the press (from `PRESS` on: end packets), and the event timestamp.
    fn press_at(&self, tick: u32) -> Option<(u8, u32, u32)> {
        self.event_pt?;
        let since = tick.checked_sub(FIRST_PRESS)?;
        let slot = PRESS + ENDS + GAP;
        let index = (since / slot) as usize;
        let n = since % slot;
        let code = *self.digits.get(index)?;
        if n >= PRESS + ENDS {
            return None;
        }
        let start = tick - n;
        Some((code, n, start.wrapping_mul(FRAME)))
    }

    /// 20 ms of a 440 Hz tone at about -12 dBFS.
    fn tone(&self, tick: u32) -> Vec<u8> {
        (0..FRAME)
            .map(|i| {
                let t = f64::from(tick * FRAME + i) / 8000.0;
                let s = (2.0 * std::f64::consts::PI * 440.0 * t).sin() * 8000.0;
                self.law.encode(s as i16)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::rtp;

    #[test]
    fn digits_go_out_as_telephone_events_between_tone() {
        let codes = "5#".chars().filter_map(crate::codec::dtmf_event).collect();
        let mut out = Outgoing::new(Law::Mu, 0, Some(101), codes);
        let packets: Vec<Vec<u8>> = (0..80).map(|_| out.next_packet()).collect();
        let head = |p: &Vec<u8>| rtp::parse(p).unwrap().0;
        assert!(packets[..50].iter().all(|p| head(p).payload_type == 0));
        let first: Vec<&Vec<u8>> = packets[50..58].iter().collect();
        assert!(first.iter().all(|p| head(p).payload_type == 101));
        assert!(head(first[0]).marker);
        assert!(first.iter().all(|p| p[12] == 5));
        // One timestamp for the whole press; the last three packets end it.
        assert!(first.iter().all(|p| head(p).timestamp == 50 * 160));
        assert_eq!(first.iter().filter(|p| p[13] & 0x80 != 0).count(), 3);
        assert_eq!(head(&packets[58]).payload_type, 0, "tone between presses");
        assert_eq!(packets[63][12], 11, "then #");
        assert!(out.digits_sent(), "both presses are out by packet 76");
        // Sequence numbers run on through it all.
        let seqs: Vec<u16> = packets.iter().map(|p| head(p).sequence).collect();
        assert!(seqs.windows(2).all(|w| w[1] == w[0].wrapping_add(1)));
        assert_eq!(crate::codec::dtmf_event('x'), None);
        assert_eq!(crate::codec::dtmf_event('D'), Some(15));
    }
}
