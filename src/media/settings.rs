//! What the media engine is started with, read from `[media]` and
//! `[limits]` of the config, or built directly by tests and benchmarks.

use crate::codec::AudioCodec;
use crate::config::Config;
use std::net::IpAddr;
use std::time::Duration;

/// The engine's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaSettings {
    /// The address written in SDP.
    pub public_ip: IpAddr,
    /// The address RTP sockets bind to (`public_ip` unless the host is
    /// behind 1:1 NAT). Where music goes is still where the caller's
    /// packets come from (latching), whatever the SDP said.
    pub bind_ip: IpAddr,
    /// Even ports of `[rtp_port_min, rtp_port_max]` carry RTP.
    pub rtp_port_min: u16,
    pub rtp_port_max: u16,
    /// Share of its time (0.0–1.0) a shard may be busy (sending music,
    /// relaying) before it refuses new calls (see `load`).
    pub pacer_busy_limit: f64,
    /// A leg that should send and sends nothing this long is reported
    /// (`CallMedia::silent`); None: never.
    pub rtp_timeout: Option<Duration>,
    /// Media shards (OS threads) to run; 0 is taken as 1.
    pub threads: usize,
    /// The codecs we speak, in the order we offer them (`[media] codecs`).
    pub codecs: Vec<AudioCodec>,
}

impl MediaSettings {
    /// The config's defaults around `public_ip` (bound to as well).
    pub fn new(public_ip: IpAddr) -> Self {
        Self::from_config(&Config::default()).with_public_ip(public_ip)
    }

    /// What `[media]` and `[limits]` say.
    pub fn from_config(config: &Config) -> Self {
        Self {
            public_ip: config.media.public_ip,
            bind_ip: config.media.bind_addr(),
            rtp_port_min: config.media.rtp_port_min,
            rtp_port_max: config.media.rtp_port_max,
            pacer_busy_limit: f64::from(config.limits.pacer_busy_max_pct) / 100.0,
            rtp_timeout: config.media.rtp_timeout,
            threads: config.media.media_threads(),
            codecs: config.media.codecs.clone(),
        }
    }

    fn with_public_ip(self, public_ip: IpAddr) -> Self {
        Self {
            public_ip,
            bind_ip: public_ip,
            ..self
        }
    }
}
