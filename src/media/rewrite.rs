//! Sans-IO header rewriting for the room → caller direction, so that the
//! caller sees one continuous stream (SSRC, sequence, timestamp) across
//! the switch from hold music to the room, and across a room that changes
//! its own SSRC.

use super::pacer::StreamState;
use super::rtp::Header;
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// Maps incoming room headers onto the caller's outgoing stream.
#[derive(Debug, Clone)]
pub struct Rewriter {
    ssrc: u32,
    /// Where the caller's stream continues from if a (re)base happens now.
    resume: Resume,
    base: Option<Mapping>,
    /// The next packet starts a talkspurt whatever the room says: set
    /// after a restart, whose gap the caller must not take for jitter.
    mark_next: bool,
    /// The caller's RTP clock ticks in a 20 ms packet (160, or 960 for
    /// Opus): how far the timestamp moves per packet period.
    frame_ticks: u32,
}

#[derive(Debug, Clone, Copy)]
struct Resume {
    next_sequence: u16,
    /// Timestamp of the last packet sent to the caller, and when it left.
    last: Option<(u32, Instant)>,
    next_timestamp: u32,
}

/// How room packets map onto the caller's stream: the room's stream
/// `in_ssrc` at (`in_sequence`, `in_timestamp`) is the caller's
/// (`out_sequence`, `out_timestamp`). Saved with a bridged call so that
/// after a restart the room's packets, which went on numbering through the
/// gap, map to exactly the numbers they would have had: the caller sees a
/// gap (lost packets), never a step back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mapping {
    pub in_ssrc: u32,
    pub in_sequence: u16,
    pub in_timestamp: u32,
    pub out_sequence: u16,
    pub out_timestamp: u32,
}

impl Rewriter {
    /// Continues the stream the pacer left at `state`, on a clock of
    /// `frame_ticks` per 20 ms (the caller's codec's).
    pub fn new(state: StreamState, frame_ticks: u32) -> Self {
        Self {
            ssrc: state.ssrc,
            resume: Resume {
                next_sequence: state.next_sequence,
                last: state
                    .last_sent
                    .map(|at| (state.next_timestamp.wrapping_sub(frame_ticks), at)),
                next_timestamp: state.next_timestamp,
            },
            base: None,
            mark_next: false,
            frame_ticks,
        }
    }

    /// Continues a bridged call after a restart: `state` is where the
    /// caller's stream is estimated to stand now (see `state::project`),
    /// `mapping` the one saved. A room that kept its SSRC maps through it;
    /// one that changed rebases from `state`. The next packet is marked.
    pub fn restored(state: StreamState, mapping: Option<Mapping>, frame_ticks: u32) -> Self {
        Self {
            base: mapping,
            mark_next: true,
            ..Self::new(state, frame_ticks)
        }
    }

    /// The mapping in force, to save; None before the room's first packet.
    pub fn mapping(&self) -> Option<Mapping> {
        self.base
    }

    /// The header to send to the caller for a room packet with header `h`
    /// received at `now`. The payload type is left for the caller to set.
    pub fn rewrite(&mut self, h: &Header, now: Instant) -> Header {
        let base = match self.base {
            Some(b) if b.in_ssrc == h.ssrc => b,
            _ => {
                // First packet, or the room changed SSRC: continue from where
                // the caller's stream stands, advancing the timestamp by the
                // time that passed so the caller's jitter buffer stays sane.
                let out_timestamp = match self.resume.last {
                    Some((ts, at)) => {
                        advance(ts, now.saturating_duration_since(at), self.frame_ticks)
                    }
                    None => self.resume.next_timestamp,
                };
                let b = Mapping {
                    in_ssrc: h.ssrc,
                    in_sequence: h.sequence,
                    in_timestamp: h.timestamp,
                    out_sequence: self.resume.next_sequence,
                    out_timestamp,
                };
                self.base = Some(b);
                return self.emit(h, b, true, now);
            }
        };
        let marker = h.marker || self.mark_next;
        self.emit(h, base, marker, now)
    }

    fn emit(&mut self, h: &Header, b: Mapping, marker: bool, now: Instant) -> Header {
        self.mark_next = false;
        let sequence = b
            .out_sequence
            .wrapping_add(h.sequence.wrapping_sub(b.in_sequence));
        let timestamp = b
            .out_timestamp
            .wrapping_add(h.timestamp.wrapping_sub(b.in_timestamp));
        // Only move forward: a late packet must not pull the resume point back.
        let ahead = sequence.wrapping_sub(self.resume.next_sequence) < 0x8000;
        if ahead {
            self.resume.next_sequence = sequence.wrapping_add(1);
            self.resume.last = Some((timestamp, now));
        }
        Header {
            marker,
            payload_type: h.payload_type,
            sequence,
            timestamp,
            ssrc: self.ssrc,
        }
    }

    /// Where the caller's stream stands, to hand back to the pacer.
    pub fn state(&self) -> StreamState {
        StreamState {
            ssrc: self.ssrc,
            next_sequence: self.resume.next_sequence,
            next_timestamp: self
                .resume
                .last
                .map(|(ts, _)| ts.wrapping_add(self.frame_ticks))
                .unwrap_or(self.resume.next_timestamp),
            last_sent: self.resume.last.map(|(_, at)| at),
        }
    }
}

/// The timestamp `elapsed` after a packet stamped `ts` (at least one
/// packet period on), on a clock of `frame_ticks` per 20 ms. Why widened: the elapsed time is counted in u128 and
/// only reduced modulo 2^32 at the end, as RTP timestamps wrap by design.
/// In u32, `ms * 8` overflowed after 6.2 days (a panic in debug builds) and
/// `as_millis() as u32` cut the gap itself after 49.7 days.
fn advance(ts: u32, elapsed: Duration, frame_ticks: u32) -> u32 {
    let ticks = elapsed.as_millis().max(20) * u128::from(frame_ticks) / 20;
    // The cast keeps the low 32 bits: exactly the modulo-2^32 reduction
    // that RTP timestamp arithmetic is defined by.
    ts.wrapping_add(ticks as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(seq: u16, ts: u32, ssrc: u32) -> Header {
        Header {
            marker: false,
            payload_type: 0,
            sequence: seq,
            timestamp: ts,
            ssrc,
        }
    }

    #[test]
    fn continues_the_hold_stream() {
        let t0 = Instant::now();
        let state = StreamState {
            ssrc: 42,
            next_sequence: 1000,
            next_timestamp: 16_000,
            last_sent: Some(t0),
        };
        let mut r = Rewriter::new(state, 160);
        let a = r.rewrite(&room(60_000, 9_999_000, 7), t0 + Duration::from_millis(20));
        assert_eq!(
            (a.ssrc, a.sequence, a.timestamp, a.marker),
            (42, 1000, 16_000, true)
        );
        let b = r.rewrite(&room(60_001, 9_999_160, 7), t0 + Duration::from_millis(40));
        assert_eq!((b.sequence, b.timestamp, b.marker), (1001, 16_160, false));
        // Sequence wrap on the room side maps straight through.
        let mut r2 = Rewriter::new(state, 160);
        r2.rewrite(&room(65_535, 0, 7), t0);
        assert_eq!(r2.rewrite(&room(0, 160, 7), t0).sequence, 1001);
    }

    #[test]
    fn a_new_room_ssrc_rebases_without_a_jump_back() {
        let t0 = Instant::now();
        let mut r = Rewriter::new(
            StreamState {
                ssrc: 1,
                next_sequence: 10,
                next_timestamp: 1600,
                last_sent: None,
            },
            160,
        );
        r.rewrite(&room(500, 80_000, 7), t0);
        let x = r.rewrite(&room(501, 80_160, 7), t0 + Duration::from_millis(20));
        let y = r.rewrite(&room(3, 40, 8), t0 + Duration::from_millis(100));
        assert_eq!(y.sequence, x.sequence.wrapping_add(1));
        assert_eq!(y.timestamp, x.timestamp + 80 * 8);
        assert!(y.marker);
        assert_eq!(r.state().next_sequence, y.sequence.wrapping_add(1));
    }

    #[test]
    fn a_restored_mapping_continues_the_room_s_numbering_after_a_gap() {
        let t0 = Instant::now();
        let state = StreamState {
            ssrc: 42,
            next_sequence: 1000,
            next_timestamp: 16_000,
            last_sent: Some(t0),
        };
        let mut before = Rewriter::new(state, 160);
        let a = before.rewrite(&room(500, 80_000, 7), t0);
        let mapping = before.mapping().unwrap();
        // 50 packets (one second) later the room is still on SSRC 7.
        let estimate = StreamState {
            next_sequence: 1100,
            next_timestamp: 24_000,
            ..before.state()
        };
        let mut after = Rewriter::restored(estimate, Some(mapping), 160);
        let b = after.rewrite(&room(550, 88_000, 7), t0 + Duration::from_secs(1));
        assert_eq!(
            (b.ssrc, b.sequence, b.timestamp),
            (42, a.sequence + 50, 88_000 - 80_000 + a.timestamp)
        );
        assert!(b.marker, "the first packet after a restart is marked");
        let c = after.rewrite(&room(551, 88_160, 7), t0 + Duration::from_secs(1));
        assert!(!c.marker);
        // A room that changed SSRC meanwhile continues from the estimate.
        let mut other = Rewriter::restored(estimate, Some(mapping), 160);
        let d = other.rewrite(&room(3, 40, 8), t0 + Duration::from_secs(1));
        assert_eq!(d.sequence, 1100);
        assert!(d.marker);
    }

    const DAY: Duration = Duration::from_secs(86_400);

    /// What `advance` must give, in u64: ts + ms × 8 modulo 2^32.
    fn expected(ts: u32, gap: Duration) -> u32 {
        let ticks = u64::try_from(gap.as_millis()).unwrap() * 8;
        ((u64::from(ts) + ticks) % (1 << 32)) as u32
    }

    #[test]
    fn long_gaps_advance_the_timestamp_modulo_two_to_the_32() {
        for gap in [
            Duration::from_secs(3 * 3600),
            DAY * 7,  // ms × 8 no longer fits a u32
            DAY * 50, // the ms themselves no longer fit a u32
            DAY * 365 * 10,
        ] {
            for ts in [0, 1_000, u32::MAX - 100] {
                assert_eq!(
                    advance(ts, gap, 160),
                    expected(ts, gap),
                    "{gap:?} from {ts}"
                );
            }
        }
        // Under a packet period: one period on, as before.
        assert_eq!(advance(u32::MAX, Duration::from_millis(3), 160), 159);
    }

    #[test]
    fn a_room_after_a_long_hold_continues_the_stream() {
        let t0 = Instant::now();
        let state = StreamState {
            ssrc: 5,
            next_sequence: 65_535,
            next_timestamp: u32::MAX - 59,
            last_sent: Some(t0),
        };
        for gap in [Duration::from_secs(5 * 3600), DAY * 8, DAY * 60] {
            let mut r = Rewriter::new(state, 160);
            let at = t0 + gap;
            let a = r.rewrite(&room(7, 123, 9), at);
            let last = state.next_timestamp.wrapping_sub(160);
            assert_eq!(a.timestamp, expected(last, gap), "{gap:?}");
            assert_eq!(a.sequence, 65_535);
            let b = r.rewrite(&room(8, 283, 9), at + Duration::from_millis(20));
            assert_eq!(b.sequence, 0, "sequence wraps");
            assert_eq!(b.timestamp, a.timestamp.wrapping_add(160));
        }
    }

    #[test]
    fn an_opus_caller_s_stream_moves_on_by_its_48_khz_clock() {
        let t0 = Instant::now();
        let state = StreamState {
            ssrc: 5,
            next_sequence: 100,
            next_timestamp: 96_000,
            last_sent: Some(t0),
        };
        let mut r = Rewriter::new(state, 960);
        // The room's first packet 100 ms after the music's last: 4,800
        // ticks on from that packet (stamped 95,040).
        let a = r.rewrite(&room(7, 123, 9), t0 + Duration::from_millis(100));
        assert_eq!(a.timestamp, 95_040 + 4_800);
        assert_eq!(r.state().next_timestamp, a.timestamp + 960);
    }
}
