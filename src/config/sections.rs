//! The configuration's types: one documented struct per section, with the
//! built-in defaults. Types only: loading is `mod.rs`'s, parsing `text`'s,
//! checking `validate`'s.

use super::dialin::DialinEntry;
use super::registration::RegistrationConfig;
use crate::codec::AudioCodec;
use serde::Deserialize;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Everything the gateway reads at start-up. Read through `text`, which
/// parses the addresses once.
#[derive(Debug, Clone)]
pub struct Config {
    pub node: NodeConfig,
    pub sip: SipConfig,
    pub media: MediaConfig,
    pub api: ApiConfig,
    pub hold: HoldConfig,
    pub dialin: Vec<DialinEntry>,
    pub limits: LimitsConfig,
    pub cluster: ClusterConfig,
    /// Bindings kept at providers' registrars.
    pub registration: Vec<RegistrationConfig>,
    pub hep: HepConfig,
    pub recording: RecordingConfig,
}

/// `[node]`: identity and persistent state of this node.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeConfig {
    /// Stable id of this node, sent as `callDomain`. Generated once and kept
    /// in `state_dir` when absent.
    pub call_domain: Option<String>,
    /// Where the node keeps what must survive a restart.
    pub state_dir: PathBuf,
    /// What SIGTERM/SIGINT does with the calls that are up.
    pub shutdown: ShutdownMode,
    /// In drain mode, the longest a stop waits for calls to end by
    /// themselves before hanging up the rest (`drain_secs`).
    #[serde(
        rename = "drain_secs",
        deserialize_with = "super::duration::secs::deserialize"
    )]
    pub drain: Duration,
}

/// `node.shutdown`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ShutdownMode {
    /// Stop taking calls, save every live call and exit at once, leaving
    /// the calls up; the next start with the same `state_dir` resumes them.
    #[default]
    Resume,
    /// Stop taking calls, serve the live ones until they end or
    /// `drain_secs` pass, then hang up the rest and exit.
    Drain,
}

/// `[sip]`: listening sockets. An empty string disables a transport
/// (`None` here).
#[derive(Debug, Clone)]
pub struct SipConfig {
    pub udp: Option<SocketAddr>,
    pub tcp: Option<SocketAddr>,
    pub tls: Option<SocketAddr>,
    /// The TLS listener's certificate chain and key (PEM); required with
    /// `tls` (`""` in the file: none).
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Extra CA certificates (PEM) trusted for room legs over TLS, besides
    /// the web PKI roots; None: none.
    pub tls_ca: Option<PathBuf>,
    /// Host written in Contact headers and static SIP URIs.
    pub public_host: String,
}

/// `[media]`: RTP addresses and port range.
#[derive(Debug, Clone)]
pub struct MediaConfig {
    /// Address written in SDP `c=` lines.
    pub public_ip: IpAddr,
    /// Address RTP sockets bind to; `None` (`""` in the file): `public_ip`.
    /// Set apart on hosts behind 1:1 NAT, where the public address is on
    /// no interface (see `bind_addr`).
    pub bind_ip: Option<IpAddr>,
    pub rtp_port_min: u16,
    pub rtp_port_max: u16,
    /// A leg whose SDP says it sends and that sends nothing (RTP nor RTCP)
    /// this long ends the call, reason `rtp_timeout` (`rtp_timeout_secs`;
    /// 0 in the file: None, off).
    pub rtp_timeout: Option<Duration>,
    /// Media shards: OS threads that each carry the hold music and relay
    /// of their calls; 0 = one per core available to the process (see
    /// `media_threads`).
    pub threads: u16,
    /// The audio codecs we speak, in the order we offer them (rooms get
    /// this order; a caller's answer follows the caller's own order among
    /// them). Never empty, no repeats (checked when read).
    pub codecs: Vec<AudioCodec>,
}

/// `[api]`: the HTTP API.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    pub listen: SocketAddr,
    /// Accepted in `Authorization: Bearer …`; empty refuses every call but
    /// health and metrics.
    pub bearer_tokens: Vec<String>,
    /// The one directory whose files API clients may name (play `audio`,
    /// a provisioned entry's audio files); None refuses every file.
    pub media_dir: Option<PathBuf>,
    /// Whether URLs API clients supply may reach loopback and private
    /// addresses (link-local and metadata ones never).
    pub allow_private_urls: bool,
}

/// `[hold]`: what callers hear while parked.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HoldConfig {
    /// wav, flac, ogg/vorbis or mp3; any rate and channel count.
    pub music: PathBuf,
    /// How long a caller may stay on hold before `hold_timeout_action`
    /// (`max_hold_secs`; an entry's own wins).
    #[serde(
        rename = "max_hold_secs",
        deserialize_with = "super::duration::secs::deserialize"
    )]
    pub max_hold: Duration,
}

/// `[limits]`: protection against overload.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Concurrent calls; beyond it an INVITE gets 503 + Retry-After.
    pub max_calls: usize,
    /// INVITEs per second per source address; beyond it 503 + Retry-After.
    pub invites_per_sec_per_ip: u32,
    /// Share of its time (percent) the hold-music pacer may spend sending
    /// before new INVITEs get 503 + Retry-After; they also do while it runs
    /// late (see `media::load`). 100 leaves only lateness.
    pub pacer_busy_max_pct: u8,
    /// An INVITE larger than this (headers and body) gets 513.
    pub max_message_bytes: usize,
    /// An INVITE with more headers gets 400.
    pub max_headers: usize,
    /// An INVITE with a longer header line gets 400.
    pub max_header_line_bytes: usize,
}

/// `[recording]`: where call recordings go (which calls are recorded is
/// each entry's `record`, an update's `record` and the recording API).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecordingConfig {
    /// Relative to `state_dir` unless absolute.
    pub dir: PathBuf,
    /// 0 keeps them; else finished recordings older than this many days
    /// are deleted (file and index row).
    pub retention_days: u32,
    /// Keys of the uploading and encryption to come; refused when set
    /// (see `validate`), so that a config written for them fails loudly.
    pub upload: String,
    pub s3_endpoint: String,
    pub s3_region: String,
    pub keep_local: bool,
    pub encrypt_to: Vec<String>,
}

impl Default for RecordingConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("recordings"),
            retention_days: 0,
            upload: String::new(),
            s3_endpoint: String::new(),
            s3_region: "us-east-1".into(),
            keep_local: true,
            encrypt_to: Vec::new(),
        }
    }
}

impl RecordingConfig {
    /// The directory, resolved against `state_dir`.
    pub fn dir_in(&self, state_dir: &Path) -> PathBuf {
        if self.dir.is_absolute() {
            self.dir.clone()
        } else {
            state_dir.join(&self.dir)
        }
    }
}

/// `[cluster]`: several nodes sharing call ownership and provisioned
/// entries through Redis. Both "" (the default): one node on its own.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// e.g. `redis://127.0.0.1:6379/0`; "" = no cluster.
    pub redis_url: String,
    /// This node's API base URL as the other nodes reach it (they forward
    /// requests for this node's calls there), e.g. `http://10.0.0.5:8080`.
    pub advertise_api: String,
}

/// `[hep]`: every call's SIP messages (and a quality report per call)
/// sent as HEP3 to a Homer or sngrep collector. Off (`url = ""`) by
/// default. Read through `text`, which parses `url` once.
#[derive(Debug, Clone)]
pub struct HepConfig {
    /// `url`: `udp:HOST:PORT` or `tcp:HOST:PORT`; None: off.
    pub collector: Option<crate::hep::Collector>,
    /// The capture agent's number, which the collector shows per message.
    pub node_id: u32,
    /// Sent in each packet when set (the collector's `capture password`).
    pub password: String,
}

impl Default for HepConfig {
    fn default() -> Self {
        Self {
            collector: None,
            node_id: 2001,
            password: String::new(),
        }
    }
}

impl ClusterConfig {
    /// Whether the node is part of a cluster.
    pub fn enabled(&self) -> bool {
        !self.redis_url.is_empty()
    }
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            call_domain: None,
            state_dir: PathBuf::from("./state"),
            shutdown: ShutdownMode::Resume,
            drain: Duration::from_secs(600),
        }
    }
}

/// `127.0.0.1:5060`, the default of `sip.udp` and `sip.tcp`.
const LOOPBACK_SIP: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 5060);

impl Default for SipConfig {
    fn default() -> Self {
        Self {
            udp: Some(LOOPBACK_SIP),
            tcp: Some(LOOPBACK_SIP),
            tls: None,
            tls_cert: None,
            tls_key: None,
            tls_ca: None,
            public_host: "127.0.0.1".into(),
        }
    }
}

impl Default for MediaConfig {
    fn default() -> Self {
        Self {
            public_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            bind_ip: None,
            rtp_port_min: 20000,
            rtp_port_max: 29999,
            rtp_timeout: Some(Duration::from_secs(30)),
            threads: 0,
            codecs: AudioCodec::DEFAULT.to_vec(),
        }
    }
}

impl MediaConfig {
    /// The address RTP sockets bind to: `bind_ip`, else `public_ip`.
    pub fn bind_addr(&self) -> IpAddr {
        self.bind_ip.unwrap_or(self.public_ip)
    }

    /// How many media shards to run: `threads`, or when it is 0 the cores
    /// this process may use (its CPU affinity and cgroup quota included),
    /// and at least 1.
    pub fn media_threads(&self) -> usize {
        match self.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => usize::from(n),
        }
    }
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080),
            bearer_tokens: vec!["dev-token".into()],
            media_dir: None,
            allow_private_urls: false,
        }
    }
}

impl Default for HoldConfig {
    fn default() -> Self {
        Self {
            music: PathBuf::from("assets/hold.flac"),
            max_hold: Duration::from_secs(600),
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_calls: 5000,
            invites_per_sec_per_ip: 50,
            pacer_busy_max_pct: 80,
            max_message_bytes: 16 * 1024,
            max_headers: 64,
            max_header_line_bytes: 4096,
        }
    }
}

impl Default for Config {
    /// Built-in defaults: loopback everywhere, the bundled hold music, and
    /// one open demo entry (`sip:support@127.0.0.1`, webhook on port 9000)
    /// so that `cargo run --release` takes a call with no file at all.
    fn default() -> Self {
        Self {
            node: NodeConfig::default(),
            sip: SipConfig::default(),
            media: MediaConfig::default(),
            api: ApiConfig::default(),
            hold: HoldConfig::default(),
            dialin: vec![DialinEntry {
                name_prefix: "support".into(),
                phone_number: None,
                sip_uri: Some("sip:support@127.0.0.1".into()),
                room_creation_api: "http://127.0.0.1:9000/dialin".into(),
                hmac: None,
                allowed_cidrs: vec![],
                credentials: vec![],
                open: true,
                ..DialinEntry::default()
            }],
            limits: LimitsConfig::default(),
            cluster: ClusterConfig::default(),
            registration: Vec::new(),
            hep: HepConfig::default(),
            recording: RecordingConfig::default(),
        }
    }
}
