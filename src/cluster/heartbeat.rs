//! The heartbeat: the thin async driver that keeps this node's record and
//! its calls' owner keys in Redis.
//!
//! Each round writes everything (record, every live call's owner key), so
//! a Redis that comes back empty after an outage holds it all again one
//! round later. Between rounds, a call just answered is written at once
//! (the registry signals it): the app may send its update to another node
//! as soon as the webhook arrives.

use super::client::Cluster;
use super::keys::HEARTBEAT_EVERY;
use std::collections::BTreeSet;
use std::sync::Arc;
use tokio::sync::{Notify, watch};

/// What the heartbeat must still write or delete: sans-IO bookkeeping of
/// the owner keys, so that a failed round is retried whole.
#[derive(Debug, Default)]
pub struct Ownership {
    /// Calls whose owner key Redis holds (as far as we know).
    written: BTreeSet<String>,
    /// Calls whose key a failed round may or may not have written: still
    /// to write (they are not in `written`), and to delete if they end
    /// first.
    uncertain: BTreeSet<String>,
}

/// One round's work.
#[derive(Debug, PartialEq, Eq)]
pub struct Round {
    /// Owner keys to write.
    pub write: Vec<String>,
    /// Owner keys to delete: calls that ended.
    pub delete: Vec<String>,
}

impl Ownership {
    /// The work for `live` (this node's live calls now): with `all`, every
    /// live call (a full beat); else only calls not yet written.
    pub fn round(&self, live: &BTreeSet<String>, all: bool) -> Round {
        let write = if all {
            live.iter().cloned().collect()
        } else {
            live.difference(&self.written).cloned().collect()
        };
        let delete = self
            .written
            .union(&self.uncertain)
            .filter(|id| !live.contains(*id))
            .cloned()
            .collect();
        Round { write, delete }
    }

    /// The round went through: every live call is written, every ended
    /// one deleted.
    pub fn done(&mut self, live: BTreeSet<String>) {
        self.written = live;
        self.uncertain.clear();
    }

    /// The round failed: what was to be deleted stays to delete, and what
    /// was to be written stays to write (a call never written is not
    /// counted as written, so the next round between beats retries it).
    pub fn failed(&mut self, live: &BTreeSet<String>) {
        self.uncertain
            .extend(live.difference(&self.written).cloned());
    }
}

/// Runs until `stop` turns true. `live_calls` lists this node's live
/// calls; `changed` is signalled when a call starts or ends.
pub async fn run(
    cluster: Arc<Cluster>,
    live_calls: impl Fn() -> Vec<String>,
    changed: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    let mut ownership = Ownership::default();
    let mut next_beat = tokio::time::Instant::now();
    loop {
        let full = tokio::time::Instant::now() >= next_beat;
        let live: BTreeSet<String> = live_calls().into_iter().collect();
        let round = ownership.round(&live, full);
        let result = if full {
            next_beat = tokio::time::Instant::now() + HEARTBEAT_EVERY;
            cluster
                .beat(&round.write, &round.delete, crate::clock::unix_ms())
                .await
                .map(|_| ())
        } else {
            cluster.own(&round.write, &round.delete).await
        };
        match result {
            Ok(()) => ownership.done(live),
            Err(e) => {
                cluster
                    .stats
                    .heartbeats_failed
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::debug!(error = %e, "cluster heartbeat failed");
                ownership.failed(&live);
            }
        }
        tokio::select! {
            _ = tokio::time::sleep_until(next_beat) => {}
            _ = changed.notified() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ids: &[&str]) -> BTreeSet<String> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn new_calls_between_beats_ended_calls_deleted_failures_retried() {
        let mut o = Ownership::default();
        let live = set(&["a", "b"]);
        let r = o.round(&live, false);
        assert_eq!(r.write, ["a", "b"]);
        assert!(r.delete.is_empty());
        o.done(live);
        // A new call between beats: only it is written.
        let live = set(&["a", "b", "c"]);
        assert_eq!(o.round(&live, false).write, ["c"]);
        o.done(live);
        // b ended; the full beat rewrites the rest and deletes b.
        let live = set(&["a", "c"]);
        let r = o.round(&live, true);
        assert_eq!(
            (r.write, r.delete),
            (vec!["a".into(), "c".into()], vec!["b".to_string()])
        );
        // That round failed (Redis down) and c ended meanwhile: both b and
        // c are deleted when Redis answers again.
        o.failed(&live);
        let live = set(&["a"]);
        let r = o.round(&live, true);
        assert_eq!(r.write, ["a"]);
        assert_eq!(r.delete, ["b", "c"]);
        o.done(live);
        assert!(o.round(&set(&["a"]), false).write.is_empty());
        // A new call whose write failed is written by the next round
        // between beats, not left for the next full beat; one that ends
        // first is deleted (the failed write may have reached Redis).
        let live = set(&["a", "d", "e"]);
        assert_eq!(o.round(&live, false).write, ["d", "e"]);
        o.failed(&live);
        let live = set(&["a", "d"]);
        let r = o.round(&live, false);
        assert_eq!(
            (r.write, r.delete),
            (vec!["d".to_string()], vec!["e".to_string()])
        );
        o.done(live);
        assert_eq!(
            o.round(&set(&["a", "d"]), false),
            Round {
                write: vec![],
                delete: vec![]
            }
        );
    }
}
