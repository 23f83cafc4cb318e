//! Call recording: two channels (left the caller, right what the caller
//! hears), written as WAV off the shards.
//!
//! - `tap`: what a call's media hands a recording, on the shard, without
//!   waiting (a bounded queue; a full one is a counted gap).
//! - `writer`: the node's one recording thread, which owns the files.
//! - `track`: the two channels laid on the call's clock (sans-IO).
//! - `decode`: a channel's packets to audio at the file's rate.
//! - `wav`: a WAV file whose header is valid after every chunk.
//!
//! `Recorder` starts recordings; a `Recording` is the call's side of one:
//! the tap for its media, the controls (pause, resume, stop), and how it
//! ended.

mod decode;
mod tap;
mod track;
pub mod wav;
mod writer;

pub use tap::Tap;
pub use track::PauseMode;

use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};
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
struct Job {
    spec: Spec,
    packets: Receiver<tap::Captured>,
    control: Receiver<Control>,
    lost: Arc<AtomicU64>,
    /// Taken when the recording ends.
    ended: Option<oneshot::Sender<Ended>>,
}

impl Job {
    fn end(&mut self, ended: Ended) {
        if let Some(tx) = self.ended.take() {
            let _ = tx.send(ended);
        }
    }
}

/// What the call asks of its recording, with when it asked.
#[derive(Debug, Clone, Copy)]
enum Control {
    Pause {
        at: Instant,
        mode: PauseMode,
    },
    Resume {
        at: Instant,
    },
    Stop {
        at: Instant,
    },
    /// Write what there is and leave the file to be appended to (the node
    /// stops and the call goes on in the next process).
    Detach {
        at: Instant,
    },
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
    /// behind and the queue full, or a peer sent too fast.
    pub lost_packets: u64,
}

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
