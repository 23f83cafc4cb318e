//! A recording's two channels laid on the call's clock, without I/O: the
//! decoded audio of each packet is placed where its arrival says it
//! belongs, gaps (loss, a silent peer, a pause) become silence, and what
//! both channels have is handed out interleaved, so the channels stay
//! aligned with each other and the file's length with the time recorded.
//!
//! A packet's audio is taken to end when it arrives (sent or received).
//! Audio that comes a little late or early (jitter) is appended as it is:
//! silence is put in only when a channel is behind by more than `SLACK`,
//! and a channel more than `AHEAD` ahead of the clock (a peer sending too
//! fast) drops the packet. So a channel's audio is never more than `SLACK`
//! early nor `AHEAD` late, and a steady stream is never cut by silence.
//! What is handed out lags the clock by `HOLD_BACK`, so that a channel
//! whose packets come late is not padded with silence before they do.

use std::time::{Duration, Instant};

/// The recording's left channel (the caller) and right (what it hears).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Caller = 0,
    Heard = 1,
}

/// What a pause does to the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PauseMode {
    /// Silence for the pause: the file's timeline stays the call's.
    Silence,
    /// The pause is left out of the file.
    Skip,
}

const SLACK: Duration = Duration::from_millis(40);
const AHEAD: Duration = Duration::from_millis(200);
pub const HOLD_BACK: Duration = Duration::from_millis(200);
/// Samples handed out before a channel's buffer is compacted.
const COMPACT: usize = 2_048;

pub struct Track {
    rate: u32,
    /// When the recording's clock read `base`.
    origin: Instant,
    /// Frames of the file's clock at `origin` (an earlier process's
    /// frames and the time it was down, when a call goes on recording
    /// after a restart).
    base: u64,
    /// Time left out of the file by pauses that skip.
    skipped: Duration,
    paused: Option<(Instant, PauseMode)>,
    /// Each channel's audio: handed out up to `taken`, the rest not yet.
    /// Kept in place until `COMPACT` samples are taken (the rest then
    /// moves to the front), not moved at every hand-out.
    pending: [Vec<i16>; 2],
    taken: usize,
    /// Frames handed out.
    written: u64,
    /// Packets dropped as too far ahead of the clock.
    pub dropped: u64,
}

impl Track {
    /// A track at `rate` Hz whose clock reads `base` frames at `origin`,
    /// `written` of them already in the file.
    pub fn new(rate: u32, origin: Instant, base: u64, written: u64) -> Track {
        Track {
            rate,
            origin,
            base,
            skipped: Duration::ZERO,
            paused: None,
            pending: [Vec::new(), Vec::new()],
            taken: 0,
            written,
            dropped: 0,
        }
    }

    fn frames(&self, d: Duration) -> u64 {
        (d.as_micros() * u128::from(self.rate) / 1_000_000) as u64
    }

    /// The recording's clock at `at`, in frames: time since `origin`
    /// less what pauses skipped (a skipping pause under way stops it).
    pub fn position(&self, at: Instant) -> u64 {
        let at = match self.paused {
            Some((since, PauseMode::Skip)) => at.min(since),
            _ => at,
        };
        let elapsed = at.saturating_duration_since(self.origin);
        self.base + self.frames(elapsed.saturating_sub(self.skipped))
    }

    fn cursor(&self, ch: usize) -> u64 {
        self.written + (self.pending[ch].len() - self.taken) as u64
    }

    fn pad(&mut self, ch: usize, to: u64) {
        let behind = to.saturating_sub(self.cursor(ch));
        let len = self.pending[ch].len() + behind as usize;
        self.pending[ch].resize(len, 0);
    }

    /// Samples not handed out yet, of channel `ch`.
    fn waiting(&self, ch: usize) -> usize {
        self.pending[ch].len() - self.taken
    }

    /// Audio of `channel` that arrived at `at`. Dropped while paused.
    pub fn audio(&mut self, channel: Channel, at: Instant, samples: &[i16]) {
        if self.paused.is_some_and(|(since, _)| at >= since) {
            return;
        }
        let ch = channel as usize;
        let end = self.position(at);
        let start = end.saturating_sub(samples.len() as u64);
        if self.cursor(ch) > end + self.frames(AHEAD) {
            self.dropped += 1;
            return;
        }
        if start > self.cursor(ch) + self.frames(SLACK) {
            self.pad(ch, start);
        }
        self.pending[ch].extend_from_slice(samples);
    }

    pub fn pause(&mut self, at: Instant, mode: PauseMode) {
        if self.paused.is_none() {
            self.paused = Some((at, mode));
        }
    }

    pub fn resume(&mut self, at: Instant) {
        if let Some((since, mode)) = self.paused.take()
            && mode == PauseMode::Skip
        {
            self.skipped += at.saturating_duration_since(since);
        }
    }

    /// Hands out (appends to `out`, interleaved) the frames both channels
    /// have up to `HOLD_BACK` before `now`, a silent channel's as silence.
    pub fn take(&mut self, now: Instant, out: &mut Vec<u8>) {
        let horizon = self
            .position(now)
            .saturating_sub(self.frames(HOLD_BACK))
            .max(self.written);
        for ch in 0..2 {
            if self.cursor(ch) < horizon {
                self.pad(ch, horizon);
            }
        }
        let ready = self.cursor(0).min(self.cursor(1)) - self.written;
        self.hand_out(ready as usize, out);
    }

    /// Hands out everything up to `at` (the end of the recording), both
    /// channels made as long as the longer.
    pub fn finish(&mut self, at: Instant, out: &mut Vec<u8>) {
        let end = self.position(at).max(self.cursor(0)).max(self.cursor(1));
        self.pad(0, end);
        self.pad(1, end);
        let n = self.waiting(0);
        self.hand_out(n, out);
    }

    fn hand_out(&mut self, n: usize, out: &mut Vec<u8>) {
        if n == 0 {
            return;
        }
        let (from, to) = (self.taken, self.taken + n);
        super::wav::interleave(&self.pending[0][from..to], &self.pending[1][from..to], out);
        self.taken = to;
        self.written += n as u64;
        if self.taken >= COMPACT {
            for p in &mut self.pending {
                p.drain(..to);
            }
            self.taken = 0;
        }
    }

    /// Frames handed out so far.
    #[cfg(test)]
    pub fn written(&self) -> u64 {
        self.written
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn frames(out: &[u8]) -> Vec<(i16, i16)> {
        out.chunks(4)
            .map(|f| {
                (
                    i16::from_le_bytes([f[0], f[1]]),
                    i16::from_le_bytes([f[2], f[3]]),
                )
            })
            .collect()
    }

    #[test]
    fn steady_jittered_packets_are_laid_end_to_end_and_a_silent_channel_is_silence() {
        let t0 = Instant::now();
        let mut t = Track::new(8000, t0, 0, 0);
        let mut out = Vec::new();
        for i in 1..=50u64 {
            // 20 ms packets, each up to 15 ms late.
            let at = t0 + 20 * i as u32 * MS + (i % 4) as u32 * 5 * MS;
            t.audio(Channel::Caller, at, &[i as i16; 160]);
        }
        t.finish(t0 + 1000 * MS, &mut out);
        let f = frames(&out);
        assert_eq!(f.len(), 8000, "one second, as long as the time recorded");
        // No silence between packets: each packet's 160 samples in order.
        let left: Vec<i16> = f.iter().map(|x| x.0).collect();
        let expected: Vec<i16> = (1..=50).flat_map(|i| [i as i16; 160]).collect();
        assert_eq!(left, expected);
        assert!(f.iter().all(|x| x.1 == 0), "nothing heard: silence");
    }

    #[test]
    fn a_gap_is_silence_and_the_audio_after_it_keeps_its_time() {
        let t0 = Instant::now();
        let mut t = Track::new(8000, t0, 0, 0);
        let mut out = Vec::new();
        t.audio(Channel::Heard, t0 + 20 * MS, &[5; 160]);
        // 300 ms of nothing, then a packet ending at 340 ms.
        t.audio(Channel::Heard, t0 + 340 * MS, &[7; 160]);
        t.finish(t0 + 400 * MS, &mut out);
        let right: Vec<i16> = frames(&out).iter().map(|x| x.1).collect();
        assert_eq!(right.len(), 3200);
        assert!(right[..160].iter().all(|s| *s == 5));
        assert!(right[160..2560].iter().all(|s| *s == 0));
        assert!(right[2560..2720].iter().all(|s| *s == 7), "at 320 ms");
    }

    #[test]
    fn take_waits_for_late_audio_then_pads_what_never_came() {
        let t0 = Instant::now();
        let mut t = Track::new(8000, t0, 0, 0);
        let mut out = Vec::new();
        t.audio(Channel::Caller, t0 + 20 * MS, &[1; 160]);
        t.take(t0 + 20 * MS, &mut out);
        assert!(out.is_empty(), "held back");
        t.take(t0 + 500 * MS, &mut out);
        // Up to 300 ms (500 less the hold-back), the heard side silent.
        assert_eq!(frames(&out).len(), 2400);
    }

    #[test]
    fn a_silent_pause_keeps_the_timeline_and_a_skipping_one_leaves_it_out() {
        for (mode, len) in [(PauseMode::Silence, 8000), (PauseMode::Skip, 4000)] {
            let t0 = Instant::now();
            let mut t = Track::new(8000, t0, 0, 0);
            let mut out = Vec::new();
            for i in 1..=50u32 {
                let at = t0 + 20 * i * MS;
                if i == 13 {
                    t.pause(at, mode);
                }
                if i == 38 {
                    t.resume(at);
                }
                t.audio(Channel::Caller, at, &[1; 160]);
            }
            t.finish(t0 + 1000 * MS, &mut out);
            let left: Vec<i16> = frames(&out).iter().map(|x| x.0).collect();
            assert_eq!(left.len(), len, "{mode:?}");
            let audible = left.iter().filter(|s| **s == 1).count();
            assert_eq!(audible, 25 * 160, "{mode:?}: the paused packets left out");
        }
    }

    #[test]
    fn a_sender_far_ahead_of_the_clock_is_cut_and_a_resumed_file_goes_on() {
        let t0 = Instant::now();
        // 2 s in the file already, the clock at 3 s: a second of downtime.
        let mut t = Track::new(8000, t0, 24000, 16000);
        let mut out = Vec::new();
        for _ in 0..30 {
            t.audio(Channel::Caller, t0 + 20 * MS, &[1; 160]);
        }
        assert!(t.dropped > 0);
        t.finish(t0 + 20 * MS, &mut out);
        let left: Vec<i16> = frames(&out).iter().map(|x| x.0).collect();
        assert!(left[..8000 - 160].iter().all(|s| *s == 0), "the downtime");
        assert!(left.len() <= 8160 + 1600 + 160);
        assert_eq!(t.written(), 16000 + left.len() as u64);
    }
}
