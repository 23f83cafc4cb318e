//! Provisioned entries kept the same on every node of a cluster: Redis
//! holds them; each node keeps a copy in its own database (its cache,
//! which a restart or a Redis outage does not lose) and puts that copy in
//! force as the provisioning API does locally.
//!
//! A node checks the entries' version on every change notice and every
//! `ENTRIES_POLL_EVERY`, and re-reads them only when it moved. When Redis
//! comes back without its data, nodes put their copies back (an entry a
//! node never had is not lost; one deleted during the outage may return).

use super::entry_record::{from_record, same, to_record};
use super::provision::WRITES;
use crate::call::EntryBook;
use crate::cluster::{Cluster, ClusterError, keys};
use crate::store::{Store, StoreError, StoredEntry};
use std::sync::Arc;
use tokio::sync::{Notify, watch};

/// Why one sync round failed; the next round tries again.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// Redis could not be read.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// The node's own copy could not be read or written.
    #[error("local copy of the entries: {0}")]
    Store(String),
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
        let mut applied: Option<u64> = None;
        let mut last_error = String::new();
        loop {
            match self.round(applied).await {
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

    /// One check: nothing to do when the version is the one applied.
    async fn round(&self, applied: Option<u64>) -> Result<Option<u64>, SyncError> {
        let version = self.cluster.entries_version().await?;
        if version.is_some() && version == applied {
            return Ok(applied);
        }
        self.sync().await
    }

    /// Makes the node's copy what Redis holds and puts it in force;
    /// returns the version applied.
    pub async fn sync(&self) -> Result<Option<u64>, SyncError> {
        // One writer at a time: the provisioning API's writes too.
        let _write = WRITES.lock().await;
        let (mut version, mut records) = self.cluster.entries().await?;
        let store = self.store.clone();
        let local = blocking(move || store.entries()).await?;
        if version.is_none() {
            // Redis lost its data (or is new): put our copy back.
            let ours: Vec<_> = local.iter().map(to_record).collect();
            self.cluster.seed_entries(&ours).await?;
            tracing::info!(
                entries = ours.len(),
                "cluster: provisioned entries written back to redis"
            );
            (version, records) = self.cluster.entries().await?;
        }
        let mut stale: Vec<String> = Vec::new();
        let mut fresh: Vec<StoredEntry> = Vec::new();
        for r in &records {
            match local.iter().find(|s| s.id == r.id) {
                Some(s) if same(s, r) => {}
                Some(s) => {
                    stale.push(s.id.clone());
                    fresh.push(from_record(r.clone()));
                }
                None => fresh.push(from_record(r.clone())),
            }
        }
        for s in &local {
            if !records.iter().any(|r| r.id == s.id) {
                stale.push(s.id.clone());
            }
        }
        if stale.is_empty() && fresh.is_empty() {
            return Ok(version);
        }
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
        // An entry this node cannot apply is skipped (and logged) by the
        // book; the rest go in force.
        let skipped = self.entries.rebuild(&all);
        tracing::info!(
            written = fresh.len(),
            skipped = skipped.len(),
            removed = stale.len(),
            version = ?version,
            "cluster: provisioned entries synced"
        );
        Ok(version)
    }
}
