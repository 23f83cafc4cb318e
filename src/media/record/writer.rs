//! The node's recording writer: one OS thread, off the shards, that owns
//! every recording's file. Each pass (every `PASS`) it swaps each
//! recording's batch (see `tap`) for an empty one, decodes what came, lays
//! it on the recording's clock (`track`), and about once a second appends
//! a chunk to the file and mends its header (`wav`). It never wakes for a
//! packet: the batches are taken on its own clock, so a packet costs the
//! shard a copy, no thread hand-off. A slow disk slows this thread only:
//! the batches fill, and what does not fit is counted lost.

use super::decode::ChannelDecoder;
use super::job::{Ended, Finished, Job};
use super::tap::{Batch, Captured, Control};
use super::track::Track;
use super::wav::{Format, Wav, WavError};
use sha2::{Digest, Sha256};
use std::collections::VecDeque;
use std::io::Read;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::{Duration, Instant};

/// How often the writer takes the taps' batches: each pass costs every
/// recording a lock and a look at its clock whether or not packets came,
/// so not more often than a stop needs (it is written within a pass).
const PASS: Duration = Duration::from_millis(100);
/// Writing work between two yields to other threads (see `run`).
const SLICE: Duration = Duration::from_micros(200);
/// How often a chunk goes to the file (at most this much is lost to a
/// crash).
const CHUNK: Duration = Duration::from_secs(1);
/// How long after a stop the writer still takes packets from before it
/// (in flight from the shard when the stop was sent).
const GRACE: Duration = Duration::from_millis(60);

/// The writer thread's loop: until its job channel closes and every
/// recording has ended.
pub(super) fn run(jobs: Receiver<Job>) {
    let mut active: Vec<Active> = Vec::new();
    let mut open = true;
    loop {
        if active.is_empty() {
            // Nothing to pass over: sleep until a recording starts.
            match jobs.recv() {
                Ok(job) => active.extend(Active::start(job)),
                Err(_) => return,
            }
        }
        while open {
            match jobs.try_recv() {
                Ok(job) => active.extend(Active::start(job)),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => open = false,
            }
        }
        let now = Instant::now();
        let mut slice = Instant::now();
        active.retain_mut(|a| {
            // The shards may share this core: a pass over many
            // recordings gives way every `SLICE`, so a shard's 1 ms tick
            // never waits for the whole pass.
            if slice.elapsed() >= SLICE {
                std::thread::yield_now();
                slice = Instant::now();
            }
            !a.pass(now)
        });
        if !open && active.is_empty() {
            return;
        }
        std::thread::sleep(PASS);
    }
}

/// One recording being written.
struct Active {
    job: Job,
    wav: Wav,
    track: Track,
    decoders: [ChannelDecoder; 2],
    /// Pauses, resumes and the stop, in the order they were asked for.
    controls: VecDeque<Control>,
    /// Frames handed out by the track, not yet in the file.
    chunk: Vec<u8>,
    last_write: Instant,
    samples: Vec<i16>,
    /// The batch taken at the last pass, emptied for the next swap.
    spare: Batch,
}

impl Active {
    /// Opens the job's file (None, and the job ended with the error, when
    /// that fails).
    fn start(mut job: Job) -> Option<Active> {
        let spec = &job.spec;
        let format = Format {
            sample_rate: spec.sample_rate,
            channels: 2,
        };
        let opened = match spec.resume_at {
            None => Wav::create(&spec.path, format),
            Some(_) => Wav::append(&spec.path, format),
        };
        let wav = match opened {
            Ok(wav) => wav,
            Err(e) => {
                let error = format!("cannot open {}: {e}", spec.path.display());
                job.end(Ended::Failed(error));
                return None;
            }
        };
        let written = wav.frames();
        let base = spec
            .resume_at
            .map_or(0, |ms| ms * u64::from(spec.sample_rate) / 1000);
        let track = Track::new(spec.sample_rate, spec.origin, base, written);
        Some(Active {
            decoders: [
                ChannelDecoder::new(spec.sample_rate),
                ChannelDecoder::new(spec.sample_rate),
            ],
            wav,
            track,
            controls: VecDeque::new(),
            // A second of frames and some: a chunk never grows past it.
            chunk: Vec::with_capacity(spec.sample_rate as usize * 4 * 5 / 4),
            last_write: Instant::now(),
            samples: Vec::new(),
            spare: Batch::default(),
            job,
        })
    }

    /// One pass at `now`; true when the recording has ended.
    fn pass(&mut self, now: Instant) -> bool {
        let mut batch = std::mem::take(&mut self.spare);
        self.job.shared.swap(&mut batch);
        self.controls.extend(batch.controls.drain(..));
        for c in &batch.packets {
            self.apply_controls(c.at);
            self.packet(c, batch.payload(c));
        }
        batch.clear();
        self.spare = batch;
        self.apply_controls(now);
        let stop = match self.controls.front() {
            Some(Control::Stop { at } | Control::Detach { at }) if now >= *at + GRACE => Some(*at),
            _ => None,
        };
        let result = match stop {
            Some(at) => {
                let detach = matches!(self.controls.front(), Some(Control::Detach { .. }));
                self.end(at, detach)
            }
            None => self.progress(now).map(|()| None),
        };
        match result {
            Ok(None) => false,
            Ok(Some(ended)) => {
                self.job.end(ended);
                true
            }
            Err(e) => {
                self.job.end(Ended::Failed(e.to_string()));
                true
            }
        }
    }

    /// Applies the pauses and resumes asked for by `at` (a stop stays at
    /// the front: it ends the recording after its grace).
    fn apply_controls(&mut self, at: Instant) {
        while let Some(c) = self.controls.front() {
            match *c {
                Control::Pause { at: t, mode } if t <= at => self.track.pause(t, mode),
                Control::Resume { at: t } if t <= at => self.track.resume(t),
                _ => break,
            }
            self.controls.pop_front();
        }
    }

    fn packet(&mut self, c: &Captured, payload: &[u8]) {
        if let Some(Control::Stop { at } | Control::Detach { at }) = self.controls.front()
            && c.at > *at
        {
            return;
        }
        self.samples.clear();
        let ch = c.channel as usize;
        if self.decoders[ch].decode(c.codec, payload, &mut self.samples) {
            self.track.audio(c.channel, c.at, &self.samples);
        }
    }

    /// Hands the track's ready frames to the chunk, and the chunk to the
    /// file once a second.
    fn progress(&mut self, now: Instant) -> Result<(), WavError> {
        self.track.take(now, &mut self.chunk);
        if now.duration_since(self.last_write) >= CHUNK {
            self.wav.write_chunk(&self.chunk)?;
            self.chunk.clear();
            self.last_write = now;
        }
        Ok(())
    }

    /// Writes the rest up to `at`. A detached recording (the node stops
    /// and the call goes on in the next process) is left as it is, to be
    /// appended to; a finished one is summed up.
    fn end(&mut self, at: Instant, detach: bool) -> Result<Option<Ended>, WavError> {
        if detach {
            self.track
                .take(at + super::track::HOLD_BACK, &mut self.chunk);
        } else {
            self.track.finish(at, &mut self.chunk);
        }
        self.wav.write_chunk(&self.chunk)?;
        self.chunk.clear();
        self.wav.sync()?;
        if detach {
            return Ok(Some(Ended::Detached));
        }
        let format = self.wav.format();
        let frames = self.wav.frames();
        Ok(Some(Ended::Finished(Finished {
            duration_ms: frames * 1000 / u64::from(format.sample_rate),
            bytes: self.wav.bytes(),
            sha256: sha256_of(&self.job.spec.path)?,
            sample_rate: format.sample_rate,
            channels: format.channels,
            lost_packets: self.job.shared.lost.load(Ordering::Relaxed) + self.track.dropped,
        })))
    }
}

/// The file's SHA-256, hex.
fn sha256_of(path: &std::path::Path) -> Result<String, WavError> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}
