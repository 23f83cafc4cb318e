//! Is a media shard keeping up? A sans-IO gauge, one per shard, fed once
//! per 1 ms slot with how late the slot started and how long the shard's
//! thread was busy since the last one (music, relay: see `shard`). Every
//! 100 slots it decides; an overloaded shard takes no new calls, and when
//! no shard takes them they are refused (503), so that the calls already
//! up keep clean audio rather than every call getting choppy together.
//!
//! Overloaded when, over a window, either
//! - the shard was busy more than `busy_limit` of the time (more calls
//!   would soon push a slot's sends past its 1 ms), or
//! - in two windows running, at least 5 % of the slots that had streams to
//!   send started more than 2 ms late (the core is shared with something
//!   that starves the pacer). Idle slots and a single bad window (a busy
//!   test machine, a VM hiccup) do not count.
//!
//! It clears after a window with no late slot and, when it was too busy,
//! under 90 % of `busy_limit`, so the answer does not flap at the edge; an
//! overload from lateness alone clears with the first clean window (a
//! hiccup at steady load must not refuse calls until some hang up).

use std::time::Duration;

/// Slots per decision.
pub const WINDOW: u32 = 100;
/// A slot this late counts as late.
pub const LATE: Duration = Duration::from_millis(2);
/// Late slots per window that mean overload (5 %).
const LATE_LIMIT: u32 = WINDOW / 20;

/// The gauge. `busy_limit` is a share of wall time, 0.0–1.0.
#[derive(Debug, Clone)]
pub struct LoadGauge {
    busy_limit: f64,
    slots: u32,
    late: u32,
    busy: Duration,
    overloaded: bool,
    /// The current overload began with the pacer too busy (not only late).
    too_busy: bool,
    /// The previous window was late too.
    was_late: bool,
}

/// What a finished window found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Verdict {
    pub overloaded: bool,
    /// Share of the window spent sending, 0.0–1.0.
    pub busy: f64,
    /// Slots of the window that started late.
    pub late: u32,
}

impl LoadGauge {
    pub fn new(busy_limit: f64) -> Self {
        Self {
            busy_limit,
            slots: 0,
            late: 0,
            busy: Duration::ZERO,
            overloaded: false,
            too_busy: false,
            was_late: false,
        }
    }

    /// Records one slot (`work` is zero when it had nothing to send); at
    /// the end of a window returns the new verdict.
    pub fn slot(&mut self, lateness: Duration, work: Duration) -> Option<Verdict> {
        self.slots += 1;
        self.busy += work;
        if lateness > LATE && !work.is_zero() {
            self.late += 1;
        }
        if self.slots < WINDOW {
            return None;
        }
        let busy = self.busy.as_secs_f64() / (Duration::from_millis(1) * WINDOW).as_secs_f64();
        let late = self.late;
        let late_window = late >= LATE_LIMIT;
        let late_again = late_window && self.was_late;
        self.was_late = late_window;
        if self.overloaded {
            let calm = if self.too_busy {
                busy < self.busy_limit * 0.9
            } else {
                busy <= self.busy_limit
            };
            self.overloaded = !(calm && late == 0);
        } else {
            self.too_busy = busy > self.busy_limit;
            self.overloaded = self.too_busy || late_again;
        }
        self.slots = 0;
        self.late = 0;
        self.busy = Duration::ZERO;
        Some(Verdict {
            overloaded: self.overloaded,
            busy,
            late,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// Feeds one window of identical slots.
    fn window(g: &mut LoadGauge, lateness: Duration, work: Duration) -> Verdict {
        for _ in 0..WINDOW - 1 {
            assert_eq!(g.slot(lateness, work), None);
        }
        g.slot(lateness, work)
            .expect("a verdict at the end of the window")
    }

    #[test]
    fn busy_past_the_limit_is_overload_and_clears_with_margin() {
        let mut g = LoadGauge::new(0.8);
        assert!(!window(&mut g, Duration::ZERO, MS / 2).overloaded);
        let v = window(&mut g, Duration::ZERO, MS * 85 / 100);
        assert!(v.overloaded);
        assert!((v.busy - 0.85).abs() < 1e-9);
        // Just under the limit is not enough to clear: hysteresis.
        assert!(window(&mut g, Duration::ZERO, MS * 78 / 100).overloaded);
        assert!(!window(&mut g, Duration::ZERO, MS * 70 / 100).overloaded);
    }

    /// One window in which the first `late` slots start 3 ms late, every
    /// slot sending for `work`.
    fn late_window(g: &mut LoadGauge, late: u32, work: Duration) -> Verdict {
        let mut verdict = None;
        for i in 0..WINDOW {
            let lateness = if i < late { MS * 3 } else { Duration::ZERO };
            verdict = g.slot(lateness, work);
        }
        verdict.expect("a verdict at the end of the window")
    }

    #[test]
    fn lateness_in_two_windows_running_is_overload() {
        let mut g = LoadGauge::new(0.8);
        let work = MS / 10;
        // Four late slots: a hiccup, tolerated.
        assert_eq!(late_window(&mut g, 4, work).late, 4);
        assert!(!late_window(&mut g, 4, work).overloaded);
        // Five in one window, then a clean one: still a hiccup.
        assert!(!late_window(&mut g, 5, work).overloaded);
        assert!(!late_window(&mut g, 0, work).overloaded);
        // Five in two windows running: overload.
        assert!(!late_window(&mut g, 5, work).overloaded);
        assert!(late_window(&mut g, 5, work).overloaded);
        // One late slot keeps it; a clean window clears it, even at a
        // steady 75 % (under the limit, above 90 % of it).
        assert!(late_window(&mut g, 1, work).overloaded);
        assert!(!late_window(&mut g, 0, MS * 75 / 100).overloaded);
    }

    #[test]
    fn idle_slots_that_run_late_do_not_count() {
        let mut g = LoadGauge::new(0.8);
        for _ in 0..5 {
            let v = late_window(&mut g, WINDOW, Duration::ZERO);
            assert!(!v.overloaded);
            assert_eq!(v.late, 0);
        }
    }

    #[test]
    fn a_limit_of_zero_refuses_as_soon_as_anything_is_sent() {
        let mut g = LoadGauge::new(0.0);
        assert!(!window(&mut g, Duration::ZERO, Duration::ZERO).overloaded);
        assert!(window(&mut g, Duration::ZERO, Duration::from_nanos(1)).overloaded);
    }
}
