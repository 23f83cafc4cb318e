//! A recording as the writer thread gets it (`Job`), how it ends
//! (`Ended`), and the node's recordings counted (`RecorderStats`).

use super::tap::Shared;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use tokio::sync::oneshot;

/// What to record, and where.
#[derive(Debug, Clone)]
pub struct Spec {
    pub path: PathBuf,
    /// 8000 or 16000 (see `AudioCodec::sample_rate`).
    pub sample_rate: u32,
    /// When the recording's clock starts (now, for a new one).
    pub origin: Instant,
    /// None: a new file (which must not exist). Some(ms): go on with the
    /// file at `path`, the recording's clock reading `ms` at `origin` (a
    /// call resumed after a restart: the downtime becomes silence).
    pub resume_at: Option<u64>,
}

/// A recording as the writer gets it.
pub(super) struct Job {
    pub spec: Spec,
    /// What the taps and the call put in.
    pub shared: Arc<Shared>,
    /// Taken when the recording ends.
    pub ended: Option<oneshot::Sender<Ended>>,
    pub stats: Arc<RecorderStats>,
}

impl Drop for Job {
    /// A job dropped unended (its writer could not start, or stopped)
    /// still leaves the count of active recordings.
    fn drop(&mut self) {
        if self.ended.is_some() {
            self.stats.active.fetch_sub(1, Ordering::Relaxed);
            self.stats.failed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Job {
    pub fn end(&mut self, ended: Ended) {
        let Some(tx) = self.ended.take() else {
            return;
        };
        let s = &self.stats;
        s.active.fetch_sub(1, Ordering::Relaxed);
        match &ended {
            Ended::Finished(f) => {
                s.finished.fetch_add(1, Ordering::Relaxed);
                s.lost_packets.fetch_add(f.lost_packets, Ordering::Relaxed);
            }
            Ended::Failed(_) => {
                s.failed.fetch_add(1, Ordering::Relaxed);
            }
            Ended::Detached => {}
        }
        let _ = tx.send(ended);
    }
}

/// How a recording ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    Finished(Finished),
    /// Its file could not be written (the error).
    Failed(String),
    /// Left to be appended to (`Recording::detach`).
    Detached,
}

/// A finished recording's file, summed up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    pub duration_ms: u64,
    pub bytes: u64,
    /// Hex.
    pub sha256: String,
    pub sample_rate: u32,
    pub channels: u16,
    /// Packets the file lacks (silence in their place): the writer was
    /// behind and the batch full, or a peer sent too fast.
    pub lost_packets: u64,
}

/// The node's recordings, counted (`/metrics`).
#[derive(Debug, Default)]
pub struct RecorderStats {
    /// Recordings being written.
    pub active: AtomicU64,
    pub finished: AtomicU64,
    pub failed: AtomicU64,
    /// Packets finished recordings lack (the writer was behind: a slow
    /// disk).
    pub lost_packets: AtomicU64,
}
