//! Loss and interarrival jitter of one received RTP stream, as RFC 3550
//! defines them (§6.4.1, A.1, A.8), without I/O: a call's legs keep one
//! each (the quality report at a call's end), and `pinless probe` keeps
//! one for what it hears.

use serde::Serialize;
use std::time::Duration;

/// The RTP clock of G.711, G.722 (RFC 3551 keeps it at 8000 Hz) and
/// telephone-event.
pub const RATE_8K: f64 = 8000.0;

/// The statistics of one received stream.
#[derive(Debug, Clone)]
pub struct Reception {
    /// The stream's RTP clock, in Hz.
    rate: f64,
    received: u64,
    first_seq: Option<u64>,
    /// Highest extended sequence number (RFC 3550 A.1: cycles counted).
    highest: u64,
    /// Interarrival jitter in RTP timestamp units (RFC 3550 A.8).
    jitter: f64,
    last_transit: Option<f64>,
}

/// What `Reception` found.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Received {
    pub packets: u64,
    /// Packets the sequence numbers say were sent but never arrived.
    pub lost: u64,
    /// `lost` over expected, 0 to 1.
    pub loss_ratio: f64,
    pub jitter_ms: f64,
}

impl Reception {
    /// A stream on an RTP clock of `rate` Hz.
    pub fn new(rate: f64) -> Reception {
        Reception {
            rate,
            received: 0,
            first_seq: None,
            highest: 0,
            jitter: 0.0,
            last_transit: None,
        }
    }

    /// One packet with `sequence` and `timestamp` that arrived `at` (from
    /// any fixed origin).
    pub fn packet(&mut self, sequence: u16, timestamp: u32, at: Duration) {
        self.received += 1;
        self.sequence(sequence);
        let arrival = at.as_secs_f64() * self.rate;
        let transit = arrival - f64::from(timestamp);
        if let Some(last) = self.last_transit {
            let d = (transit - last).abs();
            // A new SSRC or a timestamp jump is not jitter.
            if d < self.rate {
                self.jitter += (d - self.jitter) / 16.0;
            }
        }
        self.last_transit = Some(transit);
    }

    /// A packet of the stream that says nothing of its timing (a
    /// telephone-event, whose packets all carry the event's start): it
    /// counts for loss only.
    pub fn counted(&mut self, sequence: u16) {
        self.received += 1;
        self.sequence(sequence);
    }

    /// Tracks the highest extended sequence number.
    fn sequence(&mut self, seq: u16) {
        let seq = u64::from(seq);
        if self.first_seq.is_none() {
            self.first_seq = Some(seq);
            self.highest = seq;
            return;
        }
        let low = self.highest & 0xFFFF;
        let ahead = (seq.wrapping_sub(low)) & 0xFFFF;
        // Up to half the sequence space ahead is new; the rest is late.
        if ahead != 0 && ahead < 0x8000 {
            self.highest += ahead;
        }
    }

    pub fn received(&self) -> Received {
        let expected = match self.first_seq {
            Some(first) => self.highest - first + 1,
            None => 0,
        };
        let lost = expected.saturating_sub(self.received);
        Received {
            packets: self.received,
            lost,
            // Counts of packets are far below 2^52: exact as f64.
            loss_ratio: if expected == 0 {
                0.0
            } else {
                lost as f64 / expected as f64
            },
            jitter_ms: self.jitter / self.rate * 1000.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clean_stream_across_the_sequence_wrap_has_no_loss_nor_jitter() {
        let mut r = Reception::new(RATE_8K);
        for i in 0..100u16 {
            let at = Duration::from_millis(20 * u64::from(i));
            r.packet(65500u16.wrapping_add(i), 160 * u32::from(i), at);
        }
        let got = r.received();
        assert_eq!((got.packets, got.lost), (100, 0));
        assert!(got.jitter_ms < 0.01, "{got:?}");
    }

    #[test]
    fn gaps_are_loss_and_uneven_arrival_is_jitter() {
        let mut r = Reception::new(RATE_8K);
        for i in (0..50u16).filter(|i| i % 10 != 3) {
            let late = if i % 2 == 0 { 4 } else { 0 };
            let at = Duration::from_millis(20 * u64::from(i) + late);
            r.packet(i, 160 * u32::from(i), at);
        }
        let got = r.received();
        assert_eq!(got.lost, 5);
        assert!((got.loss_ratio - 5.0 / 50.0).abs() < 1e-9, "{got:?}");
        assert!(got.jitter_ms > 1.0 && got.jitter_ms < 5.0, "{got:?}");
        // A late packet fills its gap; an event's packet counts for loss.
        r.packet(3, 480, Duration::from_millis(1_100));
        assert_eq!(r.received().lost, 4);
        let jitter = r.received().jitter_ms;
        r.counted(13);
        assert_eq!(r.received().lost, 3);
        assert_eq!(r.received().jitter_ms, jitter);
    }

    #[test]
    fn nothing_received_is_no_loss() {
        let got = Reception::new(RATE_8K).received();
        assert_eq!((got.packets, got.lost, got.loss_ratio), (0, 0, 0.0));
    }
}
