//! Media: hold music and the RTP relay. Nothing here touches SIP.
//!
//! - `g711`, `rtp`, `rewrite`: pure codecs and header arithmetic.
//! - `hold`: decode the music once, pre-encode 20 ms frames.
//! - `pacer`: one OS thread that sends every held call's packets on time.
//! - `load`: whether the pacer keeps up (new calls get 503 when it does not).
//! - `session`: one call's media task (latching, relay) on the media runtime.
//! - `ports`: RTP port allocation.

pub mod g711;
pub mod hold;
pub mod load;
pub mod pacer;
pub mod ports;
pub mod rewrite;
pub mod rtp;
pub mod session;

pub use g711::Law;
pub use hold::{HoldError, HoldLoop};
pub use ports::RtpSocket;
pub use session::{CallMedia, LegCodec, RelayStats};

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Why media could not be set up for a call.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// Every port of the configured range is in use.
    #[error("no free RTP port in the configured range")]
    NoPorts,
    /// The OS refused a socket operation.
    #[error("RTP socket: {0}")]
    Io(#[from] std::io::Error),
}

/// The media side of the gateway: ports, the pacer thread and the runtime
/// on which per-call media tasks run, apart from SIP and HTTP.
pub struct MediaEngine {
    ports: ports::Ports,
    pacer: pacer::Pacer,
    runtime: tokio::runtime::Handle,
    relay_stats: Arc<RelayStats>,
    next_id: AtomicU64,
    public_ip: IpAddr,
}

impl MediaEngine {
    /// Starts the pacer thread and a one-thread runtime for media tasks.
    pub fn start(
        music: HoldLoop,
        public_ip: IpAddr,
        port_min: u16,
        port_max: u16,
        pacer_busy_limit: f64,
    ) -> Result<Self, MediaError> {
        let pacer = pacer::Pacer::start(music, pacer_busy_limit)?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let runtime = rt.handle().clone();
        std::thread::Builder::new()
            .name("pinless-media".into())
            .spawn(move || rt.block_on(std::future::pending::<()>()))?;
        Ok(Self {
            ports: ports::Ports::new(public_ip, port_min, port_max),
            pacer,
            runtime,
            relay_stats: Arc::new(RelayStats::default()),
            next_id: AtomicU64::new(1),
            public_ip,
        })
    }

    /// The address written in SDP.
    pub fn public_ip(&self) -> IpAddr {
        self.public_ip
    }

    /// A fresh RTP socket from the configured range.
    pub fn allocate(&self) -> Result<RtpSocket, MediaError> {
        self.ports.allocate().ok_or(MediaError::NoPorts)
    }

    /// Starts `music` (looped) from `socket` towards `remote` (the address
    /// in the caller's SDP until the caller's own packets show where it is).
    pub fn hold(
        &self,
        socket: RtpSocket,
        remote: SocketAddr,
        codec: LegCodec,
        music: Arc<HoldLoop>,
    ) -> Result<CallMedia, MediaError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        Ok(CallMedia::start(
            &self.runtime,
            session::Start {
                id,
                caller: socket,
                remote,
                codec,
                music,
                pacer: self.pacer.clone(),
                ssrc: rand::random(),
                stats: self.relay_stats.clone(),
            },
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
