//! The tap: where a call's media hands a recording its packets, on the
//! shard's thread. A tap never waits: each packet is copied into the
//! recording's bounded queue, and when the queue is full (the writer is
//! behind: a slow disk) the packet is counted lost, the writer fills its
//! time with silence, and the recording's end says how many were lost.

use super::track::Channel;
use crate::codec::AudioCodec;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::time::Instant;

/// Packets a recording's queue holds: 2.5 s of both channels at 20 ms,
/// ten times what the writer takes between two of its passes.
pub const QUEUE: usize = 256;

/// One packet's audio, as the writer gets it.
pub struct Captured {
    pub channel: Channel,
    pub at: Instant,
    pub codec: AudioCodec,
    pub payload: Box<[u8]>,
}

/// A recording's tap. Cheap to clone: the call's media task keeps one,
/// the pacer another for the music it sends.
#[derive(Clone)]
pub struct Tap(Arc<Shared>);

struct Shared {
    tx: SyncSender<Captured>,
    lost: Arc<AtomicU64>,
}

impl Tap {
    pub(super) fn new(tx: SyncSender<Captured>, lost: Arc<AtomicU64>) -> Tap {
        Tap(Arc::new(Shared { tx, lost }))
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
        let captured = Captured {
            channel,
            at: Instant::now(),
            codec,
            payload: payload.into(),
        };
        match self.0.tx.try_send(captured) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.0.lost.fetch_add(1, Ordering::Relaxed);
            }
            // The recording is over: what the media sends meanwhile is
            // after its end.
            Err(TrySendError::Disconnected(_)) => {}
        }
    }
}
