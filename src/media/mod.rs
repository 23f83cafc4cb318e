//! Media: hold music and the RTP relay. Nothing here touches SIP.
//!
//! The engine runs `[media] threads` shards; each call's media lives on
//! one shard from start to end (both legs, its music, its relay).
//!
//! - `g711`, `g722`, `rtp`, `rewrite`: pure codecs and header arithmetic;
//!   `opus`: libopus's encoder and decoder as we use them, and a loop of
//!   Opus frames; `joiner`: 20 ms Opus packets joined into the 40 or
//!   60 ms ones a peer's ptime asks for; `resample` (16 kHz ↔ 8 kHz) and `transcode` (G.722 ↔
//!   G.711, Opus ↔ the others, per stream, and RTP clocks of different
//!   rates) for relaying between legs of different codecs.
//! - `hold`: decode the music once, pre-encode 20 ms frames (Opus ones on
//!   a node that speaks it).
//! - `prompt`: one-shot clips the pacer plays in place of the music;
//!   `prompts`: the prompt set position announcements are built from.
//! - `shard`: one OS thread with its own runtime, its calls' sockets and
//!   media tasks, and its one 1 ms tick that paces their music; `thread`:
//!   that thread, stopped and waited for when the engine goes.
//! - `fd`: registering a socket or timer with a shard's reactor for
//!   reading only (the one way media does it).
//! - `placement`: which shard takes a new call (least loaded, not
//!   overloaded).
//! - `pacer`: a shard's held streams by slot, and the handle calls use.
//! - `load`: whether a shard keeps up (new calls get 503 when none does).
//! - `stats`: per-shard counters and the node's totals.
//! - `call/`: one call's media on its shard: the handle the call driver
//!   holds (`handle`, `command`), the task behind it (`task`, `start`),
//!   what the caller hears (`mode`), a leg's packets taken in (`leg`:
//!   latching, SRTP, liveness) and the relay between legs (`relay`).
//! - `bot`: a voice bot's audio queue, paced by the pacer like music, and
//!   the caller's audio cut into chunks for the bot's stream.
//! - `dtmf`: the caller's RFC 4733 telephone-events as key presses.
//! - `liveness`: dead peers (`[media] rtp_timeout_secs`), one sweep per shard.
//! - `reception`: loss and jitter of a received stream (RFC 3550), per
//!   leg; `quality`: the MOS they map to (the E-model).
//! - `ports`: RTP port allocation (and claiming a saved call's port).
//! - `srtp`: SRTP (SDES keys) on a leg: the relay and the pacer encrypt
//!   and decrypt through it.
//! - `record`: call recording, two channels as WAV: the tap a call's
//!   media feeds on its shard, and the node's writer thread that owns the
//!   files.
//! - `state`: a call's media as data, to resume it in a new process.
//! - `error`: `MediaError`.
//! - `settings`: what the engine starts with.

pub mod bot;
mod call;
pub mod dtmf;
mod error;
mod fd;
pub mod g711;
pub mod g722;
pub mod hold;
pub mod joiner;
mod liveness;
pub mod load;
pub mod opus;
pub mod pacer;
pub mod placement;
pub mod ports;
pub mod prompt;
pub mod prompts;
pub mod quality;
pub mod reception;
pub mod record;
pub mod resample;
pub mod rewrite;
pub mod rtp;
mod settings;
mod shard;
pub mod srtp;
pub mod state;
pub mod stats;
mod thread;
pub mod transcode;

pub use bot::BotQueue;
pub use call::{CallMedia, CallQuality, LegCodec, LegQuality, Presses};
pub use error::MediaError;
pub use g711::Law;
pub use hold::{HoldError, HoldLoop};
pub use liveness::MediaLeg;
pub use ports::RtpSocket;
pub use prompt::Prompt;
pub use prompts::{PromptSet, PromptsError, Wait};
pub use settings::MediaSettings;
pub use srtp::{Gap, LegKeys, SrtpLeg, SrtpState};
pub use state::MediaState;
pub use stats::{MediaStats, RelayStats, ShardStats};

use crate::codec::AudioCodec;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// A saved leg's SRTP taken up again (None for a plain leg).
fn restore(
    saved: Option<&srtp::SrtpState>,
    gap: srtp::Gap,
) -> Result<Option<Arc<SrtpLeg>>, MediaError> {
    Ok(saved
        .map(|s| SrtpLeg::restore_after(s, gap))
        .transpose()?
        .map(Arc::new))
}

/// The media side of the gateway: ports, and the shards on which calls'
/// media runs, apart from SIP and HTTP.
pub struct MediaEngine {
    ports: ports::Ports,
    /// Never empty. Stopped when the engine is dropped, which waits for
    /// their threads (a bounded while, see `thread`): their calls' media
    /// tasks have then ended and their ports are free (a new engine, as
    /// after a restart, can claim them at once).
    shards: Vec<shard::Shard>,
    stats: MediaStats,
    music: Arc<HoldLoop>,
    next_id: AtomicU64,
    public_ip: IpAddr,
    codecs: Vec<AudioCodec>,
    /// Call recordings' writer (its thread starts with the first one).
    recorder: record::Recorder,
}

impl MediaEngine {
    /// Starts `settings.threads` shards (at least one); `music` is what
    /// held calls hear unless told otherwise.
    pub fn start(music: HoldLoop, settings: MediaSettings) -> Result<Self, MediaError> {
        let shards = (0..settings.threads.max(1))
            .map(|i| shard::Shard::start(i, settings.pacer_busy_limit, settings.rtp_timeout))
            .collect::<Result<Vec<_>, _>>()?;
        let stats = MediaStats::of(shards.iter().map(|s| s.stats.clone()).collect());
        let recorder = record::Recorder::new(stats.recordings().clone());
        Ok(Self {
            ports: ports::Ports::new(
                settings.bind_ip,
                settings.rtp_port_min,
                settings.rtp_port_max,
            ),
            shards,
            stats,
            music: Arc::new(music),
            next_id: AtomicU64::new(1),
            public_ip: settings.public_ip,
            codecs: settings.codecs,
            recorder,
        })
    }

    /// The address written in SDP (`[media] public_ip`), whatever the
    /// sockets are bound to.
    pub fn public_ip(&self) -> IpAddr {
        self.public_ip
    }

    /// The codecs we speak, in the order we offer them (`[media] codecs`):
    /// what SDP offers list and answers choose from.
    pub fn codecs(&self) -> &[AudioCodec] {
        &self.codecs
    }

    /// Where calls start their recordings.
    pub fn recorder(&self) -> &record::Recorder {
        &self.recorder
    }

    /// A fresh RTP socket from the configured range.
    pub fn allocate(&self) -> Result<RtpSocket, MediaError> {
        self.ports.allocate().ok_or(MediaError::NoPorts)
    }

    /// Starts `music` (looped) from `socket` towards `remote` (the address
    /// in the caller's SDP until the caller's own packets show where it is).
    /// `sends`: the caller's SDP says it sends (sendrecv or sendonly), so
    /// its silence ends the call (see `CallMedia::silent`).
    pub fn hold(
        &self,
        socket: RtpSocket,
        remote: SocketAddr,
        codec: LegCodec,
        sends: bool,
        music: Arc<HoldLoop>,
    ) -> Result<CallMedia, MediaError> {
        self.hold_secure(socket, remote, codec, sends, music, None)
    }

    /// `hold`, with SRTP on the caller's leg when `srtp` has its keys: the
    /// music is encrypted for the caller, and what the caller sends is
    /// decrypted (and authenticated) before anything reads it.
    pub fn hold_secure(
        &self,
        socket: RtpSocket,
        remote: SocketAddr,
        codec: LegCodec,
        sends: bool,
        music: Arc<HoldLoop>,
        srtp: Option<LegKeys>,
    ) -> Result<CallMedia, MediaError> {
        let srtp = srtp.map(SrtpLeg::new).transpose()?.map(Arc::new);
        let stream = pacer::StreamState {
            ssrc: rand::random(),
            next_sequence: rand::random(),
            next_timestamp: rand::random(),
            last_sent: None,
        };
        let caller = call::LegStart {
            socket,
            remote,
            latched: false,
            codec,
            sends,
            srtp,
        };
        self.start_media(caller, stream, call::Then::Play(music))
    }

    /// Takes up a saved call's media (see `CallMedia::state`) in this
    /// process: binds exactly the saved ports, then plays `music` to the
    /// caller (held) or relays to the saved room (bridged). The caller's
    /// stream keeps its SSRC; its sequence number and timestamp move on by
    /// the time since the state was saved (see `StreamPosition::project`),
    /// never back, so the caller's jitter buffer takes the new packets as
    /// the same stream after a gap.
    pub fn resume(
        &self,
        state: &MediaState,
        music: Arc<HoldLoop>,
    ) -> Result<CallMedia, MediaError> {
        let unix_now = crate::clock::unix_ms();
        let caller_codec: crate::codec::LegCodec = state.caller.codec.into();
        let frame_ticks = caller_codec.audio.ticks_per_frame();
        let stream = state.stream.project(unix_now, Instant::now(), frame_ticks);
        let caller = call::LegStart {
            socket: self.ports.claim(state.caller.port)?,
            remote: state.caller.remote,
            latched: state.caller.latched,
            codec: state.caller.codec.into(),
            sends: state.caller.sends,
            srtp: restore(
                state.caller_srtp.as_ref(),
                state.stream.srtp_gap(unix_now, true),
            )?,
        };
        let then = match &state.room {
            None => call::Then::Play(music),
            Some(room) => call::Then::Relay(
                call::LegStart {
                    socket: self.ports.claim(room.leg.port)?,
                    remote: room.leg.remote,
                    latched: room.leg.latched,
                    codec: room.leg.codec.into(),
                    sends: room.leg.sends,
                    srtp: restore(
                        state.room_srtp.as_ref(),
                        state.stream.srtp_gap(unix_now, false),
                    )?,
                },
                rewrite::Rewriter::restored(stream, room.mapping, frame_ticks),
            ),
        };
        self.start_media(caller, stream, then)
    }

    /// Places the call on a shard (see `placement`) and starts its media
    /// task there.
    fn start_media(
        &self,
        caller: call::LegStart,
        stream: pacer::StreamState,
        then: call::Then,
    ) -> Result<CallMedia, MediaError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let candidates: Vec<placement::Candidate> = self
            .shards
            .iter()
            .map(|s| placement::Candidate {
                streams: s.stats.streams(),
                overloaded: s.stats.overloaded(),
            })
            .collect();
        // `shards` is never empty; `place` answers within it.
        let shard = &self.shards[placement::place(&candidates).min(self.shards.len() - 1)];
        // Both legs count as heard now: a resumed call's peers get a whole
        // timeout from the restart.
        let room_sends = match &then {
            call::Then::Relay(room, _) => Some(room.sends),
            call::Then::Play(_) => None,
        };
        let streams = stats::StreamsHeld::new(
            shard.stats.clone(),
            if room_sends.is_some() { 2 } else { 1 },
        );
        // An idle shard does not tick; a bridged call resumed after a
        // restart sends its pacer nothing, so it is woken here.
        shard.pacer.wake();
        let liveness = Arc::new(liveness::Liveness::new(caller.sends, room_sends));
        let (report, silent) = tokio::sync::oneshot::channel();
        if let Some(sweep) = &shard.sweep {
            sweep.watch(&liveness, report, Instant::now());
        }
        Ok(call::spawn(
            &shard.runtime,
            call::Start {
                id,
                caller,
                stream,
                then,
                pacer: shard.pacer.clone(),
                stats: shard.stats.clone(),
                streams,
                liveness,
            },
            silent,
        )?)
    }

    /// The hold music of `[hold].music`, for entries without their own.
    pub fn music(&self) -> Arc<HoldLoop> {
        self.music.clone()
    }

    /// True while no shard can take a call without audio suffering (see
    /// `load`): admission then refuses new calls with 503.
    pub fn overloaded(&self) -> bool {
        self.stats.overloaded()
    }

    /// Every shard's counters, and the node's totals (for `/metrics`).
    pub fn stats(&self) -> &MediaStats {
        &self.stats
    }

    /// How many shards run.
    pub fn shards(&self) -> usize {
        self.shards.len()
    }
}

impl Drop for MediaEngine {
    fn drop(&mut self) {
        shard::stop_all(&mut self.shards);
    }
}
