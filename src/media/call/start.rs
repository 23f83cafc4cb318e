//! What a call's media task starts with: given by the engine (a new call,
//! or one resumed after a restart), taken up on the call's shard.
//!
//! `pub` here reaches media only: `call` is private to it, and re-exports
//! these to it alone. (`pub(in crate::media)` would say so, but reads to
//! the layer check, tests/layers.rs, as an import of `media/mod.rs`.)

use super::LegCodec;
use crate::media::hold::HoldLoop;
use crate::media::liveness::Liveness;
use crate::media::pacer::{Pacer, StreamState};
use crate::media::ports::RtpSocket;
use crate::media::rewrite::Rewriter;
use crate::media::srtp::SrtpLeg;
use crate::media::stats::{ShardStats, StreamsHeld};
use std::net::SocketAddr;
use std::sync::Arc;

/// One leg as a media task starts with it.
pub struct LegStart {
    pub socket: RtpSocket,
    /// The peer's SDP address, or where it was latched to before a restart.
    pub remote: SocketAddr,
    pub latched: bool,
    pub codec: LegCodec,
    /// The peer's SDP says it sends (see `liveness`).
    pub sends: bool,
    /// The leg's SRTP (None: plain RTP).
    pub srtp: Option<Arc<SrtpLeg>>,
}

/// What the caller hears from the start.
pub enum Then {
    /// This, looped, by the pacer.
    Play(Arc<HoldLoop>),
    /// The room (a bridged call resumed after a restart).
    Relay(LegStart, Rewriter),
}

pub struct Start {
    pub id: u64,
    pub caller: LegStart,
    /// Where the caller's stream starts (a fresh one, or a resumed one).
    pub stream: StreamState,
    pub then: Then,
    pub pacer: Pacer,
    /// The counters of the call's shard.
    pub stats: Arc<ShardStats>,
    /// The call's count in its shard's streams (the shard's load).
    pub streams: StreamsHeld,
    pub liveness: Arc<Liveness>,
}
