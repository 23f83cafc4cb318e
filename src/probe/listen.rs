//! What the probe heard, without I/O: RTP packets in, statistics out.
//! Loss and interarrival jitter as RFC 3550 defines them (§6.4.1, A.1,
//! A.8), and whether the audio was more than silence.

use crate::codec::Law;
use crate::media::reception::{RATE_8K, Received, Reception};
use crate::media::rtp;
use serde::Serialize;
use std::time::Duration;

/// A 20 ms frame whose mean magnitude (16-bit scale) is above this is
/// sound; comfort noise and digital silence stay well below.
const SOUND_LEVEL: f64 = 200.0;

/// The statistics of one received stream.
#[derive(Debug)]
pub struct Listener {
    /// Loss and jitter (G.711 and telephone-event: an 8 kHz clock).
    reception: Reception,
    audio_frames: u64,
    sound_frames: u64,
    level_sum: f64,
    ssrcs: Vec<u32>,
    events: u64,
    first_at: Option<Duration>,
}

/// What `Listener` found, as the report shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Heard {
    /// Packets, loss and jitter (RFC 3550), as the report's own fields.
    #[serde(flatten)]
    pub received: Received,
    /// Audio frames louder than silence.
    pub sound_frames: u64,
    /// Mean magnitude of the audio, 16-bit scale.
    pub mean_level: f64,
    /// The stream was silence throughout (or there was none).
    pub silent: bool,
    /// Distinct SSRCs seen (1 for one unbroken stream).
    pub ssrcs: usize,
    /// telephone-event packets received.
    pub event_packets: u64,
    /// When the first packet came, from the start of listening.
    pub first_packet_ms: Option<u64>,
}

impl Default for Listener {
    fn default() -> Self {
        Listener {
            reception: Reception::new(RATE_8K),
            audio_frames: 0,
            sound_frames: 0,
            level_sum: 0.0,
            ssrcs: vec![],
            events: 0,
            first_at: None,
        }
    }
}

impl Listener {
    /// One packet that arrived `at` after listening started. `law` decodes
    /// the audio payload type `audio_pt`; other types count as events when
    /// they are `event_pt`, and are ignored otherwise.
    pub fn packet(
        &mut self,
        packet: &[u8],
        at: Duration,
        audio_pt: u8,
        law: Law,
        event_pt: Option<u8>,
    ) {
        let Some((header, payload)) = rtp::parse(packet) else {
            return;
        };
        let payload = &packet[payload];
        self.first_at.get_or_insert(at);
        if !self.ssrcs.contains(&header.ssrc) {
            self.ssrcs.push(header.ssrc);
        }
        (self.reception).packet(header.sequence, header.timestamp, at);
        if header.payload_type == audio_pt {
            self.audio(payload, law);
        } else if Some(header.payload_type) == event_pt {
            self.events += 1;
        }
    }

    fn audio(&mut self, payload: &[u8], law: Law) {
        if payload.is_empty() {
            return;
        }
        let sum: f64 = payload
            .iter()
            .map(|b| f64::from(law.decode(*b)).abs())
            .sum();
        let level = sum / payload.len() as f64;
        self.audio_frames += 1;
        self.level_sum += level;
        if level > SOUND_LEVEL {
            self.sound_frames += 1;
        }
    }

    pub fn heard(&self) -> Heard {
        Heard {
            received: self.reception.received(),
            sound_frames: self.sound_frames,
            mean_level: if self.audio_frames == 0 {
                0.0
            } else {
                self.level_sum / self.audio_frames as f64
            },
            silent: self.sound_frames == 0,
            ssrcs: self.ssrcs.len(),
            event_packets: self.events,
            first_packet_ms: self.first_at.map(|d| d.as_millis() as u64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::rtp::{HEADER_LEN, Header};

    fn packet(seq: u16, ts: u32, pt: u8, fill: u8) -> Vec<u8> {
        let mut head = [0u8; HEADER_LEN];
        Header {
            marker: false,
            payload_type: pt,
            sequence: seq,
            timestamp: ts,
            ssrc: 9,
        }
        .write(&mut head);
        let mut p = head.to_vec();
        p.extend(std::iter::repeat_n(fill, 160));
        p
    }

    #[test]
    fn a_clean_stream_across_the_sequence_wrap() {
        let mut l = Listener::default();
        for i in 0..100u16 {
            let seq = 65500u16.wrapping_add(i);
            let at = Duration::from_millis(20 * u64::from(i));
            // 0x10 in μ-law is loud.
            l.packet(
                &packet(seq, 160 * u32::from(i), 0, 0x10),
                at,
                0,
                Law::Mu,
                None,
            );
        }
        let h = l.heard();
        assert_eq!((h.received.packets, h.received.lost), (100, 0));
        assert!(h.received.jitter_ms < 0.01, "{h:?}");
        assert!(!h.silent);
        assert_eq!(h.ssrcs, 1);
    }

    #[test]
    fn losses_jitter_and_silence_are_seen() {
        let mut l = Listener::default();
        for i in (0..50u16).filter(|i| i % 10 != 3) {
            // Every other packet 4 ms late.
            let late = if i % 2 == 0 { 4 } else { 0 };
            let at = Duration::from_millis(20 * u64::from(i) + late);
            // 0xFF is μ-law silence.
            l.packet(
                &packet(i, 160 * u32::from(i), 0, 0xFF),
                at,
                0,
                Law::Mu,
                Some(101),
            );
        }
        l.packet(
            &packet(50, 8000, 101, 0),
            Duration::from_millis(1000),
            0,
            Law::Mu,
            Some(101),
        );
        let h = l.heard();
        assert_eq!(h.received.lost, 5);
        assert!((h.received.loss_ratio - 5.0 / 51.0).abs() < 1e-9, "{h:?}");
        assert!(
            h.received.jitter_ms > 1.0 && h.received.jitter_ms < 5.0,
            "{h:?}"
        );
        assert!(h.silent);
        assert_eq!(h.event_packets, 1);
    }
}
