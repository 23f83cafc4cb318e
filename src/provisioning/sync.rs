//! Provisioned entries kept the same on every node of a cluster: Redis
//! holds them; each node keeps a copy in its own database (its cache,
//! which a restart or a Redis outage does not lose) and puts that copy in
//! force as the provisioning API does locally.
//!
//! A node checks the entries' version and epoch on every change notice and
//! every `ENTRIES_POLL_EVERY`, and re-reads them only when either moved.
//!
//! Epochs keep a Redis that lost its data (or a new one) from wiping the
//! nodes' copies. The epoch is a random id in Redis, set by the first node
//! that finds none; each node remembers (in its database) the epoch it last
//! synced with. A node whose epoch differs from Redis's merges first: it
//! adds the entries of its copy that Redis lacks (never overwriting one)
//! and raises the version only if it added any; then, like every round,
//! it makes its copy what Redis holds. So a deletion reaches the other
//! nodes only within one epoch: an entry deleted while Redis was being
//! refilled may come back from a node that still had it, but no entry is
//! lost because Redis came back empty. A record this node cannot read is
//! skipped (its local copy, if any, is kept), and an entry that cannot be
//! put in force here is skipped by the `EntryBook`: neither stops the
//! others.

use super::WRITES;
use super::record::{from_record, same, to_record};
use crate::call::EntryBook;
use crate::cluster::{Cluster, ClusterError, EntryRecord, keys};
use crate::store::{Store, StoreError, StoredEntry};
use std::sync::Arc;
use tokio::sync::{Notify, watch};

/// The `node` table key under which the node keeps the epoch it synced.
const EPOCH_KEY: &str = "entries_epoch";

/// The version and epoch a node last applied.
pub type Stamp = (Option<u64>, Option<String>);

/// Why one sync round failed; the next round tries again.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// Redis could not be read.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// The node's own copy could not be read or written.
    #[error("local copy of the entries: {0}")]
    Store(String),
    /// Redis lost its data again while this node merged into it.
    #[error("redis's entries epoch changed during the merge")]
    EpochMoved,
}

/// What the sync task works on.
pub struct EntrySync {
    pub cluster: Arc<Cluster>,
    pub store: Arc<Store>,
    pub entries: EntryBook,
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, SyncError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(SyncError::Store(e.to_string())),
        Err(e) => Err(SyncError::Store(e.to_string())),
    }
}

impl EntrySync {
    /// Runs until `stop` turns true; `notice` is signalled by the change
    /// subscription.
    pub async fn run(self, notice: Arc<Notify>, mut stop: watch::Receiver<bool>) {
        let mut applied: Option<Stamp> = None;
        let mut last_error = String::new();
        loop {
            match self.round(applied.take()).await {
                Ok(v) => {
                    applied = v;
                    last_error.clear();
                }
                Err(e) => {
                    // Said once per kind of trouble, not every poll.
                    let text = e.to_string();
                    if text != last_error {
                        tracing::warn!(error = %text, "cluster: provisioned entries not synced; the node's copy stays in force");
                        last_error = text;
                    }
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(keys::ENTRIES_POLL_EVERY) => {}
                _ = notice.notified() => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }

    /// One check: nothing to do when version and epoch are the ones
    /// applied.
    async fn round(&self, applied: Option<Stamp>) -> Result<Option<Stamp>, SyncError> {
        let now = self.cluster.entries_state().await?;
        if now.0.is_some() && now.1.is_some() && Some(&now) == applied.as_ref() {
            return Ok(applied);
        }
        self.sync().await.map(Some)
    }

    /// Makes the node's copy what Redis holds (merging it in first when
    /// the epoch is new to this node) and puts it in force; returns the
    /// version and epoch applied.
    pub async fn sync(&self) -> Result<Stamp, SyncError> {
        // One writer at a time: the provisioning API's writes too.
        let _write = WRITES.lock().await;
        let store = self.store.clone();
        let (local, mine) =
            blocking(move || Ok((store.entries()?, store.node_value(EPOCH_KEY)?))).await?;
        let mut read = self.cluster.entries().await?;
        let epoch = match read.epoch.clone() {
            Some(e) => e,
            None => {
                let proposed = uuid::Uuid::new_v4().to_string();
                self.cluster.claim_epoch(&proposed).await?
            }
        };
        if mine.as_ref() != Some(&epoch) {
            // A new epoch for this node: add what Redis lacks, delete
            // nothing.
            let ours: Vec<_> = local.iter().map(to_record).collect();
            let added = self.cluster.merge_entries(&ours).await?;
            tracing::info!(
                added,
                epoch = %epoch,
                "cluster: this node's provisioned entries merged into redis"
            );
            read = self.cluster.entries().await?;
            if read.epoch.as_ref() != Some(&epoch) {
                return Err(SyncError::EpochMoved);
            }
        }
        let (stale, fresh) = plan(&local, &read.records, &read.unreadable);
        if !stale.is_empty() || !fresh.is_empty() {
            let (store, changes) = (self.store.clone(), (stale.clone(), fresh.clone()));
            let all = blocking(move || {
                let (stale, fresh) = changes;
                for id in &stale {
                    store.delete_entry(id)?;
                }
                for s in &fresh {
                    store.insert_entry(s)?;
                }
                store.entries()
            })
            .await?;
            // An entry this node cannot apply is skipped (and logged) by
            // the book; the rest go in force.
            let skipped = self.entries.rebuild(&all);
            tracing::info!(
                written = fresh.len(),
                skipped = skipped.len(),
                removed = stale.len(),
                version = ?read.version,
                "cluster: provisioned entries synced"
            );
        }
        if mine.as_ref() != Some(&epoch) {
            let (store, e) = (self.store.clone(), epoch.clone());
            blocking(move || store.set_node_value(EPOCH_KEY, &e)).await?;
        }
        Ok((read.version, Some(epoch)))
    }
}

/// What makes the local copy `local` what Redis holds: the ids to delete
/// and the entries to write (a changed one is in both). An id whose record
/// this node cannot read (`unreadable`) is left as the copy has it.
fn plan(
    local: &[StoredEntry],
    records: &[EntryRecord],
    unreadable: &[String],
) -> (Vec<String>, Vec<StoredEntry>) {
    let mut stale: Vec<String> = Vec::new();
    let mut fresh: Vec<StoredEntry> = Vec::new();
    for r in records {
        match local.iter().find(|s| s.id == r.id) {
            Some(s) if same(s, r) => {}
            Some(s) => {
                stale.push(s.id.clone());
                fresh.push(from_record(r.clone()));
            }
            None => fresh.push(from_record(r.clone())),
        }
    }
    for s in local {
        if !records.iter().any(|r| r.id == s.id) && !unreadable.contains(&s.id) {
            stale.push(s.id.clone());
        }
    }
    (stale, fresh)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DialinEntry;

    fn entry(id: &str, updated_at: u64) -> StoredEntry {
        let config = DialinEntry {
            name_prefix: id.into(),
            room_creation_api: "http://127.0.0.1:9/dialin".into(),
            open: true,
            ..DialinEntry::default()
        };
        StoredEntry::for_tests(id, config, updated_at)
    }

    #[test]
    fn plan_adopts_redis_but_keeps_what_it_cannot_read() {
        let local = [
            entry("same", 1),
            entry("changed", 1),
            entry("gone", 1),
            entry("bad", 1),
        ];
        let records = [
            to_record(&entry("same", 1)),
            to_record(&entry("changed", 2)),
            to_record(&entry("new", 1)),
        ];
        let (stale, fresh) = plan(&local, &records, &["bad".to_string()]);
        assert_eq!(stale, ["changed", "gone"]);
        let ids: Vec<_> = fresh.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["changed", "new"]);
        assert_eq!(fresh[0].updated_at, 2);
    }
}
