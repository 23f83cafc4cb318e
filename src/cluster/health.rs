//! Whether Redis answers, as the node last saw it, and the cluster's
//! counters for `/metrics`. A change of Redis's state is reported once
//! (the log says when Redis goes and when it comes back), not per beat.

use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

const UP: u8 = 1;
const DOWN: u8 = 2;

/// A change in Redis's reachability, to be logged once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// First answer, or the first after an outage.
    Up,
    /// The first failure after it answered (or at start).
    Down,
}

/// Redis's state and the cluster's counters. Shared by the heartbeat, the
/// API and `/metrics`.
#[derive(Debug, Default)]
pub struct ClusterStats {
    /// 0 until the first command, then `UP` or `DOWN`.
    redis: AtomicU8,
    /// Requests forwarded to their owner that got its answer.
    pub forwards_ok: AtomicU64,
    /// Requests that could not be forwarded (Redis or the owner down).
    pub forwards_failed: AtomicU64,
    /// Heartbeat rounds that Redis refused or did not answer.
    pub heartbeats_failed: AtomicU64,
}

impl ClusterStats {
    /// Records the outcome of a Redis command; returns the transition
    /// when it changes what the node believed.
    pub fn observe(&self, ok: bool) -> Option<Transition> {
        let new = if ok { UP } else { DOWN };
        let old = self.redis.swap(new, Ordering::Relaxed);
        match (old, new) {
            (o, n) if o == n => None,
            (_, UP) => Some(Transition::Up),
            _ => Some(Transition::Down),
        }
    }

    /// 1 while the last Redis command succeeded.
    pub fn redis_up(&self) -> bool {
        self.redis.load(Ordering::Relaxed) == UP
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions_are_reported_once() {
        let s = ClusterStats::default();
        assert!(!s.redis_up());
        assert_eq!(s.observe(true), Some(Transition::Up));
        assert_eq!(s.observe(true), None);
        assert!(s.redis_up());
        assert_eq!(s.observe(false), Some(Transition::Down));
        assert_eq!(s.observe(false), None);
        assert!(!s.redis_up());
        assert_eq!(s.observe(true), Some(Transition::Up));
        // Unreachable from the start is news too.
        assert_eq!(
            ClusterStats::default().observe(false),
            Some(Transition::Down)
        );
    }
}
