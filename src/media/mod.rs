//! Media: hold music and the RTP relay. Nothing here touches SIP.
//!
//! - `g711`, `rtp`, `rewrite`: pure codecs and header arithmetic.
//! - `hold`: decode the music once, pre-encode 20 ms frames.
//! - `pacer`: one OS thread that sends every held call's packets on time.
//! - `load`: whether the pacer keeps up (new calls get 503 when it does not).
//! - `session`: one call's media task (latching, relay) on the media runtime.
//! - `liveness`: dead peers (`[media] rtp_timeout_secs`), one sweep for all.
//! - `ports`: RTP port allocation (and claiming a saved call's port).
//! - `state`: a call's media as data, to resume it in a new process.
//! - `error`: `MediaError`.
//! - `settings`: what the engine starts with.

mod error;
pub mod g711;
pub mod hold;
mod liveness;
pub mod load;
pub mod pacer;
pub mod ports;
pub mod rewrite;
pub mod rtp;
pub mod session;
mod settings;
pub mod state;

pub use error::MediaError;
pub use g711::Law;
pub use hold::{HoldError, HoldLoop};
pub use liveness::MediaLeg;
pub use ports::RtpSocket;
pub use session::{CallMedia, LegCodec, RelayStats};
pub use settings::MediaSettings;
pub use state::MediaState;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// The media side of the gateway: ports, the pacer thread and the runtime
/// on which per-call media tasks run, apart from SIP and HTTP.
pub struct MediaEngine {
    ports: ports::Ports,
    pacer: pacer::Pacer,
    runtime: tokio::runtime::Handle,
    relay_stats: Arc<RelayStats>,
    next_id: AtomicU64,
    public_ip: IpAddr,
    /// Watches every call's legs for silence; None when the timeout is off.
    sweep: Option<Arc<liveness::Sweep>>,
    /// Dropped with the engine: the media runtime then stops, ending every
    /// call's media task and freeing its ports (a new engine, as after a
    /// restart, can then claim them).
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl MediaEngine {
    /// Starts the pacer thread and a one-thread runtime for media tasks.
    pub fn start(music: HoldLoop, settings: MediaSettings) -> Result<Self, MediaError> {
        let pacer = pacer::Pacer::start(music, settings.pacer_busy_limit)?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let runtime = rt.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("pinless-media".into())
            .spawn(move || {
                // Returns when the engine is dropped (the sender with it);
                // the runtime is then dropped here, off any async context.
                let _ = rt.block_on(stopped);
            })?;
        let sweep = settings.rtp_timeout.map(|timeout| {
            let sweep = Arc::new(liveness::Sweep::default());
            runtime.spawn(sweep.clone().run(timeout));
            sweep
        });
        Ok(Self {
            sweep,
            ports: ports::Ports::new(
                settings.bind_ip,
                settings.rtp_port_min,
                settings.rtp_port_max,
            ),
            pacer,
            runtime,
            relay_stats: Arc::new(RelayStats::default()),
            next_id: AtomicU64::new(1),
            public_ip: settings.public_ip,
            _stop: stop,
        })
    }

    /// The address written in SDP (`[media] public_ip`), whatever the
    /// sockets are bound to.
    pub fn public_ip(&self) -> IpAddr {
        self.public_ip
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
        let stream = pacer::StreamState {
            ssrc: rand::random(),
            next_sequence: rand::random(),
            next_timestamp: rand::random(),
            last_sent: None,
        };
        let caller = session::LegStart {
            socket,
            remote,
            latched: false,
            codec,
            sends,
        };
        self.start_media(caller, stream, session::Then::Play(music))
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
        let stream = state
            .stream
            .project(crate::clock::unix_ms(), Instant::now());
        let caller = session::LegStart {
            socket: self.ports.claim(state.caller.port)?,
            remote: state.caller.remote,
            latched: state.caller.latched,
            codec: state.caller.codec.into(),
            sends: state.caller.sends,
        };
        let then = match &state.room {
            None => session::Then::Play(music),
            Some(room) => session::Then::Relay(
                session::LegStart {
                    socket: self.ports.claim(room.leg.port)?,
                    remote: room.leg.remote,
                    latched: room.leg.latched,
                    codec: room.leg.codec.into(),
                    sends: room.leg.sends,
                },
                rewrite::Rewriter::restored(stream, room.mapping),
            ),
        };
        self.start_media(caller, stream, then)
    }

    fn start_media(
        &self,
        caller: session::LegStart,
        stream: pacer::StreamState,
        then: session::Then,
    ) -> Result<CallMedia, MediaError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        // Both legs count as heard now: a resumed call's peers get a whole
        // timeout from the restart.
        let room_sends = match &then {
            session::Then::Relay(room, _) => Some(room.sends),
            session::Then::Play(_) => None,
        };
        let liveness = Arc::new(liveness::Liveness::new(caller.sends, room_sends));
        let (report, silent) = tokio::sync::oneshot::channel();
        if let Some(sweep) = &self.sweep {
            sweep.watch(&liveness, report, Instant::now());
        }
        Ok(CallMedia::start(
            &self.runtime,
            session::Start {
                id,
                caller,
                stream,
                then,
                pacer: self.pacer.clone(),
                stats: self.relay_stats.clone(),
                liveness,
            },
            silent,
        )?)
    }

    /// The hold music of `[hold].music`, for entries without their own.
    pub fn music(&self) -> Arc<HoldLoop> {
        self.pacer.music().clone()
    }

    /// True while the pacer cannot take more streams without audio
    /// suffering (see `load`).
    pub fn overloaded(&self) -> bool {
        self.pacer.stats().overloaded.load(Ordering::Relaxed)
    }

    pub fn pacer_stats(&self) -> &Arc<pacer::PacerStats> {
        self.pacer.stats()
    }

    pub fn relay_stats(&self) -> &Arc<RelayStats> {
        &self.relay_stats
    }
}
