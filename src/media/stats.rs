//! What the media shards count, and the node's totals over them.
//!
//! Each shard keeps its own counters (no atomic is written by two threads
//! on the hot path: a shared counter would bounce its cache line between
//! cores at every packet); `/metrics` and the benchmarks add them up when
//! they read.

use super::pacer::PacerStats;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Relay counters, for `/metrics` and the benchmarks.
#[derive(Debug, Default)]
pub struct RelayStats {
    pub relayed: AtomicU64,
    pub dropped_foreign: AtomicU64,
    /// SRTP/SRTCP packets that failed authentication (wrong key,
    /// tampered, replayed) and were dropped.
    pub srtp_failed: AtomicU64,
}

/// One shard's counters.
#[derive(Debug, Default)]
pub struct ShardStats {
    /// Hold music: packets, lateness, and the shard's busy share (which
    /// covers everything the shard's thread does, relaying included).
    pub pacer: PacerStats,
    /// Relayed packets of the shard's bridged calls.
    pub relay: RelayStats,
    /// RTP streams the shard sends: one per held call (music to the
    /// caller), two per bridged call (to the caller and to the room). New
    /// calls go to the shard with the fewest.
    pub streams: AtomicU64,
}

impl ShardStats {
    pub fn streams(&self) -> u64 {
        self.streams.load(Ordering::Relaxed)
    }

    /// Whether the shard refuses new calls (see `load`).
    pub fn overloaded(&self) -> bool {
        self.pacer.overloaded.load(Ordering::Relaxed)
    }
}

/// A call's share of its shard's `streams`, given back when dropped (the
/// call's media task ends, or never starts).
#[derive(Debug)]
pub(super) struct StreamsHeld {
    stats: Arc<ShardStats>,
    held: u64,
}

impl StreamsHeld {
    /// Counts `n` streams on `stats`' shard at once, so that the next
    /// placement already sees them.
    pub fn new(stats: Arc<ShardStats>, n: u64) -> Self {
        stats.streams.fetch_add(n, Ordering::Relaxed);
        StreamsHeld { stats, held: n }
    }

    /// The call now sends `n` streams (1 held, 2 bridged).
    pub fn set(&mut self, n: u64) {
        if n > self.held {
            self.stats
                .streams
                .fetch_add(n - self.held, Ordering::Relaxed);
        } else {
            self.stats
                .streams
                .fetch_sub(self.held - n, Ordering::Relaxed);
        }
        self.held = n;
    }
}

impl Drop for StreamsHeld {
    fn drop(&mut self) {
        self.stats.streams.fetch_sub(self.held, Ordering::Relaxed);
    }
}

/// Every shard's counters; cheap to clone. The node's totals are sums,
/// except the busy share (the mean: how much of the node's media capacity
/// is in use) and the overload flag (set when no shard takes new calls).
#[derive(Debug, Clone)]
pub struct MediaStats {
    shards: Arc<[Arc<ShardStats>]>,
    /// The node's call recordings.
    recordings: Arc<super::record::RecorderStats>,
}

impl Default for MediaStats {
    /// One idle shard.
    fn default() -> Self {
        Self::with_shards(1)
    }
}

impl MediaStats {
    /// `n` shards' worth of zeroed counters (at least one).
    pub fn with_shards(n: usize) -> Self {
        Self::of((0..n.max(1)).map(|_| Arc::default()).collect())
    }

    pub(super) fn of(shards: Vec<Arc<ShardStats>>) -> Self {
        MediaStats {
            shards: shards.into(),
            recordings: Arc::default(),
        }
    }

    /// The node's call recordings, counted.
    pub fn recordings(&self) -> &Arc<super::record::RecorderStats> {
        &self.recordings
    }

    /// Per shard, in shard order (`shard` label `0`, `1`, …).
    pub fn shards(&self) -> &[Arc<ShardStats>] {
        &self.shards
    }

    fn sum(&self, read: impl Fn(&ShardStats) -> &AtomicU64) -> u64 {
        self.shards
            .iter()
            .map(|s| read(s).load(Ordering::Relaxed))
            .fold(0, u64::saturating_add)
    }

    /// Hold-music streams being paced.
    pub fn hold_streams(&self) -> u64 {
        self.sum(|s| &s.pacer.streams)
    }

    pub fn hold_packets_sent(&self) -> u64 {
        self.sum(|s| &s.pacer.packets_sent)
    }

    pub fn hold_send_errors(&self) -> u64 {
        self.sum(|s| &s.pacer.send_errors)
    }

    pub fn late_slots(&self) -> u64 {
        self.sum(|s| &s.pacer.late_slots)
    }

    /// The shards' mean busy share of the last window, in thousandths.
    pub fn busy_permille(&self) -> u64 {
        // `shards` is never empty (see `with_shards`, `MediaEngine::start`).
        self.sum(|s| &s.pacer.busy_permille) / self.shards.len().max(1) as u64
    }

    /// No shard takes new calls.
    pub fn overloaded(&self) -> bool {
        self.shards.iter().all(|s| s.overloaded())
    }

    pub fn relayed(&self) -> u64 {
        self.sum(|s| &s.relay.relayed)
    }

    pub fn dropped_foreign(&self) -> u64 {
        self.sum(|s| &s.relay.dropped_foreign)
    }

    pub fn srtp_failed(&self) -> u64 {
        self.sum(|s| &s.relay.srtp_failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_add_up_the_shards_and_busy_is_their_mean() {
        let stats = MediaStats::with_shards(2);
        let [a, b] = stats.shards() else {
            panic!("two shards")
        };
        a.pacer.packets_sent.store(u64::MAX, Ordering::Relaxed);
        b.pacer.packets_sent.store(5, Ordering::Relaxed);
        a.relay.relayed.store(3, Ordering::Relaxed);
        b.relay.relayed.store(4, Ordering::Relaxed);
        a.pacer.busy_permille.store(900, Ordering::Relaxed);
        b.pacer.busy_permille.store(100, Ordering::Relaxed);
        assert_eq!(stats.hold_packets_sent(), u64::MAX, "saturates");
        assert_eq!(stats.relayed(), 7);
        assert_eq!(stats.busy_permille(), 500);
        a.pacer.overloaded.store(true, Ordering::Relaxed);
        assert!(!stats.overloaded(), "shard 1 still takes calls");
        b.pacer.overloaded.store(true, Ordering::Relaxed);
        assert!(stats.overloaded());
    }

    #[test]
    fn a_calls_streams_are_counted_while_it_lives() {
        let shard = Arc::new(ShardStats::default());
        let mut call = StreamsHeld::new(shard.clone(), 1);
        let other = StreamsHeld::new(shard.clone(), 2);
        assert_eq!(shard.streams(), 3);
        call.set(2);
        assert_eq!(shard.streams(), 4);
        call.set(1);
        assert_eq!(shard.streams(), 3);
        drop(other);
        drop(call);
        assert_eq!(shard.streams(), 0);
    }
}
