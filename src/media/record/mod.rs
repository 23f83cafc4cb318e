//! Call recording: two channels (left the caller, right what the caller
//! hears), written as WAV off the shards.
//!
//! - `tap`: what a call's media hands a recording, on the shard, without
//!   waiting (a bounded queue; a full one is a counted gap).
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

pub use job::{Ended, Finished, Spec};
pub use tap::Tap;
pub use track::PauseMode;

use job::{Control, Job};
use std::sync::atomic::AtomicU64;
use std::sync::mpsc::{self, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::oneshot;

/// The call's side of one recording.
pub struct Recording {
    tap: Tap,
    control: Sender<Control>,
    ended: oneshot::Receiver<Ended>,
}

impl Recording {
    /// The tap to hand the call's media.
    pub fn tap(&self) -> Tap {
        self.tap.clone()
    }

    pub fn pause(&self, mode: PauseMode) {
        let _ = self.control.send(Control::Pause {
            at: Instant::now(),
            mode,
        });
    }

    pub fn resume(&self) {
        let _ = self.control.send(Control::Resume { at: Instant::now() });
    }

    /// Ends the recording now; resolves once the file is finished.
    pub async fn stop(self) -> Ended {
        let _ = self.control.send(Control::Stop { at: Instant::now() });
        self.ended
            .await
            .unwrap_or(Ended::Failed("the recording writer stopped".into()))
    }

    /// Writes what there is and leaves the file to the next process;
    /// resolves once written.
    pub async fn detach(self) -> Ended {
        let _ = self.control.send(Control::Detach { at: Instant::now() });
        self.ended
            .await
            .unwrap_or(Ended::Failed("the recording writer stopped".into()))
    }
}

/// The node's recorder: starts recordings on its writer thread (started
/// with the first recording).
#[derive(Default)]
pub struct Recorder {
    jobs: Mutex<Option<Sender<Job>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Recorder {
    /// Starts a recording; its file is opened on the writer thread (a
    /// failure ends it at once, as `Ended::Failed`).
    pub fn start(&self, spec: Spec) -> Recording {
        let (packets_tx, packets): (SyncSender<_>, _) = mpsc::sync_channel(tap::QUEUE);
        let (control_tx, control) = mpsc::channel();
        let (ended_tx, ended) = oneshot::channel();
        let lost = Arc::new(AtomicU64::new(0));
        let job = Job {
            spec,
            packets,
            control,
            lost: lost.clone(),
            ended: Some(ended_tx),
        };
        // A writer that cannot start drops the job: `ended` then reads as
        // failed.
        if let Some(jobs) = self.jobs() {
            let _ = jobs.send(job);
        }
        Recording {
            tap: Tap::new(packets_tx, lost),
            control: control_tx,
            ended,
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
