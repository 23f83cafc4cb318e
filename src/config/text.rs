//! The configuration as written, before its addresses are typed: serde
//! reads this (unknown keys and wrong types are its errors, as always),
//! then `into_config` parses each address once into `Config`'s typed
//! fields. Parsing here rather than in a serde `deserialize_with` keeps the
//! errors as they have always read (`config key `api.listen`: "x" is not an
//! IP:port address`): toml would append its own "in `api.listen`" to them.

use super::{
    ApiConfig, ClusterConfig, Config, ConfigError, DialinEntry, HepConfig, HoldConfig,
    LimitsConfig, MediaConfig, NodeConfig, RecordingConfig, RegistrationConfig, SipConfig,
};
use crate::codec::AudioCodec;
use crate::hep::Collector;
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// `Config` with its addresses as text.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct ConfigText {
    node: NodeConfig,
    sip: SipText,
    media: MediaText,
    api: ApiText,
    hold: HoldConfig,
    pub(super) dialin: Vec<DialinEntry>,
    limits: LimitsConfig,
    cluster: ClusterConfig,
    registration: Vec<RegistrationConfig>,
    hep: HepText,
    recording: RecordingConfig,
}

/// `HepConfig` as written; `url` "" is off.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct HepText {
    url: String,
    node_id: u32,
    password: String,
}

/// `SipConfig` as written; "" disables a transport.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct SipText {
    udp: String,
    tcp: String,
    tls: String,
    tls_cert: String,
    tls_key: String,
    tls_ca: String,
    public_host: String,
}

/// `MediaConfig` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct MediaText {
    public_ip: String,
    /// "" means `public_ip`.
    bind_ip: String,
    rtp_port_min: u16,
    rtp_port_max: u16,
    rtp_timeout_secs: u64,
    threads: u16,
    /// SDP encoding names, as `AudioCodec::from_name` reads them.
    codecs: Vec<String>,
}

/// `ApiConfig` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct ApiText {
    listen: String,
    bearer_tokens: Vec<String>,
    /// "" means none.
    media_dir: String,
    allow_private_urls: bool,
}

impl ConfigText {
    /// Parses the addresses; an error names the key.
    pub(super) fn into_config(self) -> Result<Config, ConfigError> {
        let ConfigText {
            node,
            sip,
            media,
            api,
            hold,
            dialin,
            limits,
            cluster,
            registration,
            hep,
            recording,
        } = self;
        Ok(Config {
            node,
            sip: SipConfig {
                udp: optional_addr("sip.udp", &sip.udp)?,
                tcp: optional_addr("sip.tcp", &sip.tcp)?,
                tls: optional_addr("sip.tls", &sip.tls)?,
                tls_cert: optional_path(sip.tls_cert),
                tls_key: optional_path(sip.tls_key),
                tls_ca: optional_path(sip.tls_ca),
                public_host: sip.public_host,
            },
            media: MediaConfig {
                public_ip: media
                    .public_ip
                    .parse::<IpAddr>()
                    .map_err(|_| ConfigError::key("media.public_ip", "not an IP address"))?,
                bind_ip: match media.bind_ip.as_str() {
                    "" => None,
                    ip => Some(ip.parse::<IpAddr>().map_err(|_| {
                        ConfigError::key("media.bind_ip", format!("{ip:?} is not an IP address"))
                    })?),
                },
                rtp_port_min: media.rtp_port_min,
                rtp_port_max: media.rtp_port_max,
                rtp_timeout: (media.rtp_timeout_secs > 0)
                    .then(|| Duration::from_secs(media.rtp_timeout_secs)),
                threads: media.threads,
                codecs: codecs(&media.codecs)?,
            },
            api: ApiConfig {
                listen: optional_addr("api.listen", &api.listen)?
                    .ok_or_else(|| ConfigError::key("api.listen", "must not be empty"))?,
                bearer_tokens: api.bearer_tokens,
                media_dir: optional_path(api.media_dir),
                allow_private_urls: api.allow_private_urls,
            },
            hold,
            dialin,
            limits,
            cluster,
            registration,
            hep: HepConfig {
                collector: match hep.url.as_str() {
                    "" => None,
                    url => Some(
                        Collector::parse(url)
                            .map_err(|e| ConfigError::key("hep.url", e.to_string()))?,
                    ),
                },
                node_id: hep.node_id,
                password: hep.password,
            },
            recording,
        })
    }
}

/// `[media] codecs`: known names (any case), at least one, none twice.
fn codecs(names: &[String]) -> Result<Vec<AudioCodec>, ConfigError> {
    const KEY: &str = "media.codecs";
    if names.is_empty() {
        return Err(ConfigError::key(
            KEY,
            "must name at least one codec (PCMU, PCMA, G722, opus)",
        ));
    }
    let mut codecs = Vec::with_capacity(names.len());
    for name in names {
        let codec = AudioCodec::from_name(name).ok_or_else(|| {
            ConfigError::key(
                KEY,
                format!("{name:?} is not a codec pinless speaks (PCMU, PCMA, G722, opus)"),
            )
        })?;
        if codecs.contains(&codec) {
            return Err(ConfigError::key(KEY, format!("{name:?} is listed twice")));
        }
        codecs.push(codec);
    }
    Ok(codecs)
}

/// A socket address key; "" means disabled.
fn optional_addr(key: &str, value: &str) -> Result<Option<SocketAddr>, ConfigError> {
    if value.is_empty() {
        return Ok(None);
    }
    value
        .parse()
        .map(Some)
        .map_err(|_| ConfigError::key(key, format!("{value:?} is not an IP:port address")))
}

fn addr_text(addr: Option<SocketAddr>) -> String {
    addr.map(|a| a.to_string()).unwrap_or_default()
}

impl Default for ConfigText {
    /// The built-in defaults are `Config`'s, written out: one source.
    fn default() -> Self {
        let Config {
            node,
            sip,
            media,
            api,
            hold,
            dialin,
            limits,
            cluster,
            registration,
            hep,
            recording,
        } = Config::default();
        ConfigText {
            node,
            sip: SipText {
                udp: addr_text(sip.udp),
                tcp: addr_text(sip.tcp),
                tls: addr_text(sip.tls),
                tls_cert: path_text(sip.tls_cert),
                tls_key: path_text(sip.tls_key),
                tls_ca: path_text(sip.tls_ca),
                public_host: sip.public_host,
            },
            media: MediaText {
                public_ip: media.public_ip.to_string(),
                bind_ip: media.bind_ip.map(|ip| ip.to_string()).unwrap_or_default(),
                rtp_port_min: media.rtp_port_min,
                rtp_port_max: media.rtp_port_max,
                rtp_timeout_secs: media.rtp_timeout.map_or(0, |d| d.as_secs()),
                threads: media.threads,
                codecs: media
                    .codecs
                    .iter()
                    .map(|c| c.encoding_name().to_string())
                    .collect(),
            },
            api: ApiText {
                listen: api.listen.to_string(),
                bearer_tokens: api.bearer_tokens,
                media_dir: path_text(api.media_dir),
                allow_private_urls: api.allow_private_urls,
            },
            hold,
            dialin,
            limits,
            cluster,
            registration,
            hep: HepText {
                url: hep.collector.map(|c| c.to_string()).unwrap_or_default(),
                node_id: hep.node_id,
                password: hep.password,
            },
            recording,
        }
    }
}

impl Default for HepText {
    fn default() -> Self {
        ConfigText::default().hep
    }
}

impl Default for SipText {
    fn default() -> Self {
        ConfigText::default().sip
    }
}

impl Default for MediaText {
    fn default() -> Self {
        ConfigText::default().media
    }
}

impl Default for ApiText {
    fn default() -> Self {
        ConfigText::default().api
    }
}

/// A path setting as the file writes it: `""` means none.
fn optional_path(text: String) -> Option<PathBuf> {
    (!text.is_empty()).then(|| PathBuf::from(text))
}

/// The file's spelling of an optional path.
fn path_text(path: Option<PathBuf>) -> String {
    path.map(|p| p.display().to_string()).unwrap_or_default()
}
