//! The tap: where a call's media hands a recording its packets, on the
//! shard's thread, and where the call's driver puts its pauses and stop.
//! Both go into one batch behind a lock that the writer swaps for an
//! empty one at each pass, so a packet costs a copy into a buffer that
//! keeps its capacity: no allocation, no channel, no wake-up.
//!
//! A tap never waits for the writer: a batch holds at most `QUEUE`
//! packets, and when it is full (the writer is behind: a slow disk) the
//! packet is counted lost, the writer fills its time with silence, and the
//! recording's end says how many were lost.

use super::track::{Channel, PauseMode};
use crate::codec::AudioCodec;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

/// Packets a batch holds: 2.5 s of both channels at 20 ms, over a hundred
/// times what the writer takes at each pass.
pub const QUEUE: usize = 256;

/// What the call asks of its recording, with when it asked.
#[derive(Debug, Clone, Copy)]
pub enum Control {
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

/// One packet's audio, as the writer gets it: its payload is
/// `bytes[start..start + len]` of its batch.
#[derive(Debug, Clone, Copy)]
pub struct Captured {
    pub channel: Channel,
    pub at: Instant,
    pub codec: AudioCodec,
    start: u32,
    len: u32,
}

/// What the taps and the call put in since the writer's last pass.
#[derive(Debug, Default)]
pub struct Batch {
    pub packets: Vec<Captured>,
    bytes: Vec<u8>,
    pub controls: Vec<Control>,
}

impl Batch {
    pub fn payload(&self, c: &Captured) -> &[u8] {
        let start = c.start as usize;
        self.bytes.get(start..start + c.len as usize).unwrap_or(&[])
    }

    /// Empties it, keeping its buffers' capacity.
    pub fn clear(&mut self) {
        self.packets.clear();
        self.bytes.clear();
        self.controls.clear();
    }
}

/// What the taps, the call and the writer of one recording share.
#[derive(Debug, Default)]
pub struct Shared {
    batch: Mutex<Batch>,
    /// Packets that found the batch full.
    pub lost: AtomicU64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Batch> {
        self.batch.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The writer's side: what came since the last pass is now in
    /// `spare` (which must be empty), and the taps fill `spare`'s old
    /// buffers.
    pub fn swap(&self, spare: &mut Batch) {
        std::mem::swap(&mut *self.lock(), spare);
    }

    /// The call's side: a pause, a resume or the end.
    pub fn control(&self, c: Control) {
        self.lock().controls.push(c);
    }
}

/// A recording's tap. Cheap to clone: the call's media task keeps one,
/// the pacer another for the music it sends.
#[derive(Clone)]
pub struct Tap(Arc<Shared>);

impl Tap {
    pub(super) fn new(shared: Arc<Shared>) -> Tap {
        Tap(shared)
    }

    /// Audio the caller sent (decrypted), in `codec`.
    pub fn caller(&self, codec: AudioCodec, payload: &[u8]) {
        self.put(Channel::Caller, codec, payload);
    }

    /// Audio sent to the caller (before encryption), in `codec`.
    pub fn heard(&self, codec: AudioCodec, payload: &[u8]) {
        self.put(Channel::Heard, codec, payload);
    }

    fn put(&self, channel: Channel, codec: AudioCodec, payload: &[u8]) {
        let at = Instant::now();
        let mut batch = self.0.lock();
        if batch.packets.len() >= QUEUE {
            drop(batch);
            self.0.lost.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let start = batch.bytes.len() as u32;
        batch.bytes.extend_from_slice(payload);
        batch.packets.push(Captured {
            channel,
            at,
            codec,
            start,
            len: payload.len() as u32,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_batch_counts_what_it_cannot_take_and_a_swap_empties_it() {
        let shared = Arc::new(Shared::default());
        let tap = Tap::new(shared.clone());
        for i in 0..QUEUE + 3 {
            tap.heard(AudioCodec::Pcmu, &[i as u8; 160]);
        }
        assert_eq!(shared.lost.load(Ordering::Relaxed), 3);
        let mut spare = Batch::default();
        shared.swap(&mut spare);
        assert_eq!(spare.packets.len(), QUEUE);
        assert_eq!(spare.payload(&spare.packets[5]), &[5u8; 160][..]);
        tap.caller(AudioCodec::Pcmu, &[9; 10]);
        spare.clear();
        shared.swap(&mut spare);
        assert_eq!(
            spare.packets.len(),
            1,
            "the taps go on in the emptied batch"
        );
        assert_eq!(spare.payload(&spare.packets[0]), &[9; 10][..]);
    }
}
