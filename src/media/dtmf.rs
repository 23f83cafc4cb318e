//! RFC 4733 telephone-events from the caller, turned into key presses,
//! without I/O: the media task hands over each event packet and the time,
//! and gets back the presses that are over.
//!
//! One press is many packets: a start, continuation updates every 50 ms or
//! so (same RTP timestamp, growing duration), and an end packet sent three
//! times (§2.5.1.4). The press is reported once, on its first end packet.
//! When every end packet is lost, the press is over when a packet of a new
//! event arrives (another timestamp), or after `END_TIMEOUT` without any.

use crate::codec::{DtmfPress, dtmf_digit};
use std::time::{Duration, Instant};

/// How long after its last packet an event with no end packet counts as
/// over: twenty update intervals, so a mere late packet never cuts a
/// press in two, short enough that a lost end still reaches the app.
pub const END_TIMEOUT: Duration = Duration::from_secs(1);

/// Event timestamps this far (in 8 kHz units: 10 s) behind the last
/// finished press are that press's late packets; further behind, the
/// sender's stream started over and they are new.
const LATE_WINDOW: u32 = 80_000;

/// The caller's telephone-events, as presses.
#[derive(Debug)]
pub struct DtmfDetector {
    /// The events' RTP clock in ticks per millisecond (8, or 48 beside
    /// Opus: an event counts on its audio's clock, RFC 4733 §2.1).
    ticks_per_ms: u32,
    /// The press under way.
    current: Option<Tone>,
    /// The SSRC and RTP timestamp of the last press reported: its
    /// retransmitted end packets (and anything older) are not a new press.
    done: Option<(u32, u32)>,
}

#[derive(Debug)]
struct Tone {
    ssrc: u32,
    timestamp: u32,
    digit: char,
    /// The event's duration field (clock ticks), the largest seen.
    duration: u16,
    heard: Instant,
}

impl Tone {
    fn press(&self, ticks_per_ms: u32) -> DtmfPress {
        DtmfPress {
            digit: self.digit,
            duration_ms: u32::from(self.duration) / ticks_per_ms.max(1),
        }
    }
}

impl Default for DtmfDetector {
    fn default() -> Self {
        Self::at_clock(8000)
    }
}

impl DtmfDetector {
    /// A detector of events on the 8 kHz clock.
    pub fn new() -> Self {
        Self::default()
    }

    /// A detector of events on a clock of `rate` Hz.
    pub fn at_clock(rate: u32) -> Self {
        DtmfDetector {
            ticks_per_ms: rate / 1000,
            current: None,
            done: None,
        }
    }

    /// One RTP packet of the telephone-event payload type (its SSRC, its
    /// timestamp, its payload); the presses it ends, oldest first (at
    /// most two: one whose end was lost, and a one-packet press).
    pub fn packet(
        &mut self,
        ssrc: u32,
        timestamp: u32,
        payload: &[u8],
        now: Instant,
    ) -> Vec<DtmfPress> {
        let mut ended = Vec::new();
        let [event, flags, d0, d1, ..] = *payload else {
            return ended; // shorter than an event: not one
        };
        // Flash and tones are events but no key: ignored altogether.
        let Some(digit) = dtmf_digit(event) else {
            return ended;
        };
        let end = flags & 0x80 != 0;
        let duration = u16::from_be_bytes([d0, d1]);
        if self.finished(ssrc, timestamp) {
            return ended;
        }
        match self.current.as_mut() {
            Some(t) if t.ssrc == ssrc && t.timestamp == timestamp => {
                t.duration = t.duration.max(duration);
                t.heard = now;
            }
            _ => {
                // Another event began: the one under way lost its end.
                if let Some(old) = self.current.take() {
                    ended.push(old.press(self.ticks_per_ms));
                    self.done = Some((old.ssrc, old.timestamp));
                }
                self.current = Some(Tone {
                    ssrc,
                    timestamp,
                    digit,
                    duration,
                    heard: now,
                });
            }
        }
        if end && let Some(t) = self.current.take() {
            ended.push(t.press(self.ticks_per_ms));
            self.done = Some((ssrc, timestamp));
        }
        ended
    }

    /// True for a packet of the last press reported, or of an older one.
    fn finished(&self, ssrc: u32, timestamp: u32) -> bool {
        match self.done {
            Some((s, ts)) if s == ssrc => ts.wrapping_sub(timestamp) < LATE_WINDOW,
            _ => false,
        }
    }

    /// When the press under way counts as over if nothing more comes.
    pub fn deadline(&self) -> Option<Instant> {
        self.current.as_ref().map(|t| t.heard + END_TIMEOUT)
    }

    /// The press under way, if its deadline has passed by `now`.
    pub fn timeout(&mut self, now: Instant) -> Option<DtmfPress> {
        if self.deadline().is_none_or(|at| at > now) {
            return None;
        }
        let t = self.current.take()?;
        self.done = Some((t.ssrc, t.timestamp));
        Some(t.press(self.ticks_per_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(event: u8, end: bool, duration: u16) -> [u8; 4] {
        let d = duration.to_be_bytes();
        [event, if end { 0x80 | 10 } else { 10 }, d[0], d[1]]
    }

    fn press(digit: char, duration_ms: u32) -> DtmfPress {
        DtmfPress { digit, duration_ms }
    }

    /// A whole press as a sender makes it: start, updates, three ends.
    fn whole(d: &mut DtmfDetector, event: u8, ts: u32, t0: Instant) -> Vec<DtmfPress> {
        let mut out = Vec::new();
        for (i, dur) in [160u16, 320, 480, 640].into_iter().enumerate() {
            let at = t0 + Duration::from_millis(20 * i as u64);
            out.extend(d.packet(7, ts, &ev(event, false, dur), at));
        }
        for i in 0..3 {
            let at = t0 + Duration::from_millis(100 + 20 * i);
            out.extend(d.packet(7, ts, &ev(event, true, 800), at));
        }
        out
    }

    #[test]
    fn every_key_has_its_digit() {
        let keys: String = (0..=15).filter_map(dtmf_digit).collect();
        assert_eq!(keys, "0123456789*#ABCD");
        assert_eq!(dtmf_digit(16), None); // flash
    }

    #[test]
    fn a_press_is_reported_once_on_its_first_end_packet() {
        let mut d = DtmfDetector::new();
        let t0 = Instant::now();
        assert_eq!(whole(&mut d, 5, 1000, t0), vec![press('5', 100)]);
        assert_eq!(d.deadline(), None);
        // Two presses of the same key are two presses.
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(whole(&mut d, 5, 9000, t1), vec![press('5', 100)]);
        assert_eq!(whole(&mut d, 11, 17000, t1), vec![press('#', 100)]);
    }

    #[test]
    fn late_packets_of_a_reported_press_are_not_a_new_one() {
        let mut d = DtmfDetector::new();
        let t0 = Instant::now();
        assert_eq!(whole(&mut d, 1, 1000, t0).len(), 1);
        // A continuation packet reordered behind the ends.
        assert!(d.packet(7, 1000, &ev(1, false, 640), t0).is_empty());
        // Anything older than the last press is late too.
        assert!(d.packet(7, 800, &ev(1, true, 800), t0).is_empty());
        assert_eq!(d.deadline(), None);
    }

    #[test]
    fn a_lost_end_is_closed_by_the_next_event() {
        let mut d = DtmfDetector::new();
        let t0 = Instant::now();
        assert!(d.packet(7, 1000, &ev(3, false, 400), t0).is_empty());
        assert!(d.packet(7, 1000, &ev(3, false, 720), t0).is_empty());
        let next = d.packet(7, 5000, &ev(4, false, 160), t0);
        assert_eq!(next, vec![press('3', 90)]);
        // The first press's late end packet changes nothing.
        assert!(d.packet(7, 1000, &ev(3, true, 800), t0).is_empty());
        assert_eq!(
            d.packet(7, 5000, &ev(4, true, 480), t0),
            vec![press('4', 60)]
        );
    }

    #[test]
    fn a_lost_end_is_closed_by_the_timeout() {
        let mut d = DtmfDetector::new();
        let t0 = Instant::now();
        assert!(d.packet(7, 1000, &ev(9, false, 800), t0).is_empty());
        assert_eq!(d.deadline(), Some(t0 + END_TIMEOUT));
        assert_eq!(d.timeout(t0 + END_TIMEOUT / 2), None);
        assert_eq!(d.timeout(t0 + END_TIMEOUT), Some(press('9', 100)));
        assert_eq!(d.timeout(t0 + END_TIMEOUT * 2), None);
        // Its end packets, arriving after all, are no second press.
        assert!(d.packet(7, 1000, &ev(9, true, 800), t0).is_empty());
    }

    #[test]
    fn a_one_packet_press_and_a_new_stream_are_reported() {
        let mut d = DtmfDetector::new();
        let t0 = Instant::now();
        assert_eq!(
            d.packet(7, 1000, &ev(12, true, 400), t0),
            vec![press('A', 50)]
        );
        // A new SSRC (the sender restarted its stream) whose timestamps
        // are behind the old one's: its presses count.
        assert_eq!(
            d.packet(8, 500, &ev(10, true, 400), t0),
            vec![press('*', 50)]
        );
        // A lost end, then a one-packet press: both, oldest first.
        assert!(d.packet(8, 2000, &ev(1, false, 160), t0).is_empty());
        assert_eq!(
            d.packet(8, 4000, &ev(2, true, 160), t0),
            vec![press('1', 20), press('2', 20)]
        );
    }

    #[test]
    fn short_payloads_and_non_key_events_are_ignored() {
        let mut d = DtmfDetector::new();
        let t0 = Instant::now();
        assert!(d.packet(7, 1000, &[5, 0x80], t0).is_empty());
        assert!(d.packet(7, 1000, &ev(16, true, 800), t0).is_empty());
        assert_eq!(d.deadline(), None);
    }
}
