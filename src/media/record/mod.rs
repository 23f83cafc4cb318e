//! Call recording: two channels (left the caller, right what the caller
//! hears), written as WAV off the shards.
//!
//! - `tap`: what a call's media hands a recording, on the shard, without
//!   waiting (a bounded batch the writer swaps; a full one is a counted
//!   gap).
//! - `writer`: the node's one recording thread, which owns the files.
//! - `track`: the two channels laid on the call's clock (sans-IO).
//! - `decode`: a channel's packets to audio at the file's rate.
//! - `wav`: a WAV file whose header is valid after every chunk.
//! - `job`: a recording as the writer gets it, and how it ends.
//!
//! `Recorder` starts recordings; a `Recording` is the call's side of one:
//! the tap for its media, the controls (pause, resume, stop), and how it
//! ended.

mod decode;
mod job;
mod tap;
mod track;
pub mod wav;
mod writer;

pub use job::{Ended, Finished, RecorderStats, Spec};
pub use tap::Tap;
use tap::{Control, Shared};
pub use track::PauseMode;

use job::Job;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::oneshot;

/// The call's side of one recording. Dropped without `stop` (its call's
/// task ended abnormally), it stops the recording.
pub struct Recording {
    shared: Arc<Shared>,
    /// Taken by `stop` or `detach`.
    ended: Option<oneshot::Receiver<Ended>>,
}

impl Recording {
    /// The tap to hand the call's media.
    pub fn tap(&self) -> Tap {
        Tap::new(self.shared.clone())
    }

    pub fn pause(&self, mode: PauseMode) {
        let at = Instant::now();
        self.shared.control(Control::Pause { at, mode });
    }

    pub fn resume(&self) {
        self.shared.control(Control::Resume { at: Instant::now() });
    }

    /// Ends the recording now; resolves once the file is finished.
    pub async fn stop(mut self) -> Ended {
        self.shared.control(Control::Stop { at: Instant::now() });
        self.outcome().await
    }

    /// Writes what there is and leaves the file to the next process;
    /// resolves once written.
    pub async fn detach(mut self) -> Ended {
        self.shared.control(Control::Detach { at: Instant::now() });
        self.outcome().await
    }

    async fn outcome(&mut self) -> Ended {
        match self.ended.take() {
            Some(rx) => rx
                .await
                .unwrap_or(Ended::Failed("the recording writer stopped".into())),
            None => Ended::Failed("the recording writer stopped".into()),
        }
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        if self.ended.is_some() {
            self.shared.control(Control::Stop { at: Instant::now() });
        }
    }
}

/// The node's recorder: starts recordings on its writer thread (started
/// with the first recording).
#[derive(Default)]
pub struct Recorder {
    jobs: Mutex<Option<Sender<Job>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    stats: Arc<RecorderStats>,
}

impl Recorder {
    /// A recorder counting into `stats`.
    pub fn new(stats: Arc<RecorderStats>) -> Recorder {
        Recorder {
            stats,
            ..Recorder::default()
        }
    }

    /// Starts a recording; its file is opened on the writer thread (a
    /// failure ends it at once, as `Ended::Failed`).
    pub fn start(&self, spec: Spec) -> Recording {
        let (ended_tx, ended) = oneshot::channel();
        let shared = Arc::new(Shared::default());
        self.stats.active.fetch_add(1, Ordering::Relaxed);
        let job = Job {
            spec,
            shared: shared.clone(),
            ended: Some(ended_tx),
            stats: self.stats.clone(),
        };
        // A writer that cannot start drops the job: `ended` then reads as
        // failed.
        if let Some(jobs) = self.jobs() {
            let _ = jobs.send(job);
        }
        Recording {
            shared,
            ended: Some(ended),
        }
    }

    /// The writer's job channel, starting the thread the first time.
    fn jobs(&self) -> Option<Sender<Job>> {
        let mut jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(tx) = jobs.as_ref() {
            return Some(tx.clone());
        }
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("pinless-recorder".into())
            .spawn(move || writer::run(rx));
        match thread {
            Ok(handle) => {
                *self.thread.lock().unwrap_or_else(|e| e.into_inner()) = Some(handle);
                *jobs = Some(tx.clone());
                Some(tx)
            }
            Err(error) => {
                tracing::error!(%error, "recording writer thread not started");
                None
            }
        }
    }

    /// Lets the writer finish the recordings under way (their calls stop
    /// or detach them) and waits for it.
    pub fn close(&self) {
        drop(self.jobs.lock().unwrap_or_else(|e| e.into_inner()).take());
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(handle) = thread {
            let _ = handle.join();
        }
    }
}

#[cfg(test)]
mod tests;
