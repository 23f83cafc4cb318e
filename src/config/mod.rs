//! The gateway's configuration: one documented struct with defaults,
//! loaded once (file, then `PINLESS_` environment overrides) and validated
//! once. Every key of CONTRACT.md parses; an unknown key is an error that
//! names it.
//!
//! Config sits below every layer but the leaves, so it imports none of
//! them: `syntax` holds the value formats it shares with `sip` and
//! `webhook` (which re-export them), `text` turns what serde read into
//! typed addresses, `validate` checks what serde cannot, `env` applies the
//! `PINLESS_` overrides, `dialin` is the `[[dialin]]` entry.

mod dialin;
mod env;
pub mod syntax;
mod text;
mod validate;

use serde::Deserialize;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

pub use dialin::{Credential, DialinEntry, HeaderPolicyConfig, HoldTimeoutAction, OnRoomHangup};
pub use validate::{ConfigError, validate_entry};

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
}

/// `[sip]`: listening sockets. An empty string disables a transport
/// (`None` here).
#[derive(Debug, Clone)]
pub struct SipConfig {
    pub udp: Option<SocketAddr>,
    pub tcp: Option<SocketAddr>,
    pub tls: Option<SocketAddr>,
    pub tls_cert: String,
    pub tls_key: String,
    /// Extra CA certificates (PEM) trusted for room legs over TLS, besides
    /// the web PKI roots; "" for none.
    pub tls_ca: String,
    /// Host written in Contact headers and static SIP URIs.
    pub public_host: String,
}

/// `[media]`: RTP addresses and port range.
#[derive(Debug, Clone)]
pub struct MediaConfig {
    /// Address written in SDP `c=` lines; RTP sockets bind to it too.
    pub public_ip: IpAddr,
    pub rtp_port_min: u16,
    pub rtp_port_max: u16,
}

/// `[api]`: the HTTP API.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    pub listen: SocketAddr,
    /// Accepted in `Authorization: Bearer …`; empty refuses every call but
    /// health and metrics.
    pub bearer_tokens: Vec<String>,
}

/// `[hold]`: what callers hear while parked.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HoldConfig {
    /// wav, flac, ogg/vorbis or mp3; any rate and channel count.
    pub music: PathBuf,
    /// How long a caller may stay on hold before the call is ended.
    pub max_hold_secs: u64,
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

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            call_domain: None,
            state_dir: PathBuf::from("./state"),
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
            tls_cert: String::new(),
            tls_key: String::new(),
            tls_ca: String::new(),
            public_host: "127.0.0.1".into(),
        }
    }
}

impl Default for MediaConfig {
    fn default() -> Self {
        Self {
            public_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            rtp_port_min: 20000,
            rtp_port_max: 29999,
        }
    }
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080),
            bearer_tokens: vec!["dev-token".into()],
        }
    }
}

impl Default for HoldConfig {
    fn default() -> Self {
        Self {
            music: PathBuf::from("assets/hold.flac"),
            max_hold_secs: 600,
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
        }
    }
}

/// Where the configuration came from, for the start-up log line.
#[derive(Debug, Clone)]
pub enum Source {
    File(PathBuf),
    BuiltIn,
}

impl Config {
    /// Reads `path` (or, with `None`, `config/pinless.toml` when present,
    /// else the built-in defaults), applies `PINLESS_` overrides from
    /// `vars`, and validates the result.
    pub fn load(
        path: Option<&Path>,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(Config, Source), ConfigError> {
        let (text, source) = match path {
            Some(p) => (read(p)?, Source::File(p.to_path_buf())),
            None => {
                let p = Path::new("config/pinless.toml");
                if p.exists() {
                    (read(p)?, Source::File(p.to_path_buf()))
                } else {
                    (String::new(), Source::BuiltIn)
                }
            }
        };
        let config = Self::from_toml_with_env(&text, vars, matches!(source, Source::BuiltIn))?;
        Ok((config, source))
    }

    /// Parses TOML text, applies overrides and validates. With `builtin`,
    /// empty text means the built-in defaults (including the demo entry).
    pub fn from_toml_with_env(
        text: &str,
        vars: impl IntoIterator<Item = (String, String)>,
        builtin: bool,
    ) -> Result<Config, ConfigError> {
        let mut table: toml::Table =
            toml::from_str(text).map_err(|source| ConfigError::Syntax { source })?;
        env::apply(&mut table, vars)?;
        let mut config: text::ConfigText =
            serde_path_to_error::deserialize(toml::Value::Table(table.clone())).map_err(|e| {
                ConfigError::Key {
                    key: e.path().to_string(),
                    reason: e.inner().to_string(),
                }
            })?;
        if !builtin && !table.contains_key("dialin") {
            // A file with no entries means no entries, not the demo one.
            config.dialin.clear();
        }
        let config = config.into_config()?;
        config.validate()?;
        Ok(config)
    }
}

/// Parses `203.0.113.0/24` (or a bare address, as a single host) into a
/// network address and prefix length. Enforced by the security issue; parsed
/// now so that a typo fails at start-up.
pub fn parse_cidr(text: &str) -> Option<(std::net::IpAddr, u8)> {
    let (addr, len) = match text.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (text, None),
    };
    let addr: std::net::IpAddr = addr.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let len = match len {
        Some(l) => l.parse::<u8>().ok().filter(|l| *l <= max)?,
        None => max,
    };
    Some((addr, len))
}

fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::File {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests;
