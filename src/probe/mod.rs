//! `pinless probe SIP_URI`: places one real call and reports what it heard.
//! Works against any SIP endpoint (a trunk, a PBX, a room, pinless).
//!
//! - [`send`]: the outgoing stream (a tone, and DTMF as telephone-events).
//! - [`listen`]: loss, jitter, level of what comes back (sans-IO).
//! - [`quality`]: the E-model estimate from loss and jitter.
//! - [`update`]: with `--update-to`, moves the call through a pinless
//!   API, to check the whole path: hold, webhook, update, room.
//! - here: the call itself and the report.

pub mod listen;
/// The estimate lives with the media, whose calls report it too.
pub use crate::media::quality;
pub mod send;
pub mod update;

use crate::codec::{AudioCodec, Law};
use crate::sip::{DialOutcome, Dialing, LegEvent, OutboundRequest, Stack, StackConfig, sdp};
use listen::{Heard, Listener};
use quality::Quality;
use serde::Serialize;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;

/// What the probe offers and reads: its sender and listener speak G.711.
const G711: [AudioCodec; 2] = [AudioCodec::Pcmu, AudioCodec::Pcma];

/// What to probe, and how.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where to call: `sip:…`, `sips:…`, `;transport=tcp|tls`.
    pub target: String,
    /// How long to listen once answered.
    pub listen: Duration,
    /// Longest wait for an answer.
    pub ring_timeout: Duration,
    /// DTMF keys to send (as telephone-events), from one second in.
    pub dtmf: String,
    /// The From URI; a unique user is made when absent.
    pub from: Option<String>,
    /// Local address for SIP and RTP (default: the one routing to the target).
    pub bind: Option<IpAddr>,
    /// Extra CA for `sips:` targets (PEM).
    pub tls_ca: Option<PathBuf>,
    /// Move the call to this room through a pinless API once held.
    pub update: Option<update::UpdateTo>,
}

/// The outcome, as printed (and as `--json` writes it).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub target: String,
    pub from: String,
    /// `answered`, `rejected`, `no_answer` or `failed`.
    pub result: &'static str,
    /// The final SIP code, when one came.
    pub code: Option<u16>,
    pub reason: Option<String>,
    pub answer_ms: Option<u64>,
    /// The codec the answer chose, like `PCMU/8000`.
    pub codec: Option<String>,
    pub heard: Option<Heard>,
    pub quality: Option<Quality>,
    /// DTMF keys sent (empty when the peer takes no telephone-events).
    pub dtmf_sent: String,
    /// The peer hung up before the probe did, after this long.
    pub remote_hangup_ms: Option<u64>,
    pub update: Option<update::UpdateReport>,
}

impl Report {
    /// 0: answered and heard sound (and, with `--update-to`, bridged);
    /// 1: the call failed; 2: answered but heard nothing or only silence,
    /// or the update did not bridge it.
    pub fn exit_code(&self) -> u8 {
        if self.result != "answered" {
            return 1;
        }
        let heard = self.heard.as_ref().is_some_and(|h| !h.silent);
        let updated = self.update.as_ref().is_none_or(|u| u.bridged);
        if heard && updated { 0 } else { 2 }
    }

    /// The report for a person.
    pub fn text(&self) -> String {
        let mut s = format!("probe {} (from {})\n", self.target, self.from);
        match (self.result, self.code) {
            ("answered", _) => {
                s += &format!(
                    "  answered in {} ms, codec {}\n",
                    self.answer_ms.unwrap_or(0),
                    self.codec.as_deref().unwrap_or("?")
                );
            }
            (r, Some(code)) => {
                s += &format!("  {r}: {code} {}\n", self.reason.as_deref().unwrap_or(""));
            }
            (r, None) => s += &format!("  {r}: {}\n", self.reason.as_deref().unwrap_or("")),
        }
        if let Some(h) = &self.heard {
            s += &format!(
                "  heard {} packets, lost {} ({:.1} %), jitter {:.1} ms, {} (mean level {:.0}), {} stream(s)\n",
                h.received.packets,
                h.received.lost,
                h.received.loss_ratio * 100.0,
                h.received.jitter_ms,
                if h.silent { "silence" } else { "sound" },
                h.mean_level,
                h.ssrcs
            );
        }
        if let Some(q) = &self.quality {
            s += &format!(
                "  quality: R {:.1}, MOS {:.2} (one-way delay assumed {:.0} ms)\n",
                q.r, q.mos, q.assumed_delay_ms
            );
        }
        if !self.dtmf_sent.is_empty() {
            s += &format!("  DTMF sent: {}\n", self.dtmf_sent);
        }
        if let Some(ms) = self.remote_hangup_ms {
            s += &format!("  the far end hung up after {ms} ms\n");
        }
        if let Some(u) = &self.update {
            s += &format!("  update: {}\n", u.summary());
        }
        s
    }
}

/// Why the probe could not even try.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The local SIP stack or RTP socket did not start.
    #[error("cannot start the probe's SIP stack: {0}")]
    Stack(#[from] crate::sip::StackError),
    /// The RTP socket could not be bound.
    #[error("cannot bind an RTP socket on {ip}: {source}")]
    Rtp {
        ip: IpAddr,
        #[source]
        source: std::io::Error,
    },
    /// The `sips:` CA file is unusable.
    #[error("--tls-ca: {0}")]
    Tls(#[from] crate::sip::tls::TlsError),
    /// A DTMF key that is not one.
    #[error("--dtmf: {0:?} is not a DTMF key (0-9, *, #, A-D)")]
    Dtmf(char),
}

/// Places the call and listens; the report says how it went.
pub async fn run(o: Options) -> Result<Report, ProbeError> {
    let codes = o
        .dtmf
        .chars()
        .map(|c| crate::codec::dtmf_event(c).ok_or(ProbeError::Dtmf(c)))
        .collect::<Result<Vec<u8>, _>>()?;
    let ip = match o.bind {
        Some(ip) => ip,
        None => local_ip_towards(&o.target).await,
    };
    let tls_connector = Some(crate::sip::tls::connector(o.tls_ca.as_deref())?);
    let (stack, _invites) = Stack::start(StackConfig {
        udp: Some(SocketAddr::new(ip, 0)),
        tcp: Some(SocketAddr::new(ip, 0)),
        tls: None,
        tls_connector,
        public_host: ip.to_string(),
        invite_queue: 1,
    })
    .await?;
    let rtp = UdpSocket::bind(SocketAddr::new(ip, 0))
        .await
        .map_err(|source| ProbeError::Rtp { ip, source })?;
    let port = rtp
        .local_addr()
        .map_err(|source| ProbeError::Rtp { ip, source })?
        .port();
    let host = stack
        .udp_addr()
        .map_or_else(|| ip.to_string(), |a| a.to_string());
    let from = o
        .from
        .clone()
        .unwrap_or_else(|| format!("sip:probe-{:08x}@{host}", rand::random::<u32>()));
    let mut report = Report {
        target: o.target.clone(),
        from: from.clone(),
        result: "failed",
        code: None,
        reason: None,
        answer_ms: None,
        codec: None,
        heard: None,
        quality: None,
        dtmf_sent: String::new(),
        remote_hangup_ms: None,
        update: None,
    };
    let started = Instant::now();
    let mut dialing = Dialing::start(
        &stack,
        OutboundRequest {
            target: o.target.clone(),
            from: from.clone(),
            headers: vec![],
            sdp: sdp::offer(ip, port),
            ring_timeout: Some(o.ring_timeout),
            trace: None,
        },
    );
    let (mut leg, body) = match dialing.outcome().await {
        DialOutcome::Answered { leg, sdp } => (leg, sdp),
        DialOutcome::Rejected { code, reason } => {
            report.result = "rejected";
            report.code = Some(code);
            report.reason = Some(reason);
            return Ok(report);
        }
        DialOutcome::TimedOut => {
            report.result = "no_answer";
            report.reason = Some(format!("no answer within {:?}", o.ring_timeout));
            return Ok(report);
        }
        DialOutcome::Cancelled => {
            report.reason = Some("cancelled".into());
            return Ok(report);
        }
        DialOutcome::Failed(e) => {
            report.reason = Some(e.to_string());
            return Ok(report);
        }
    };
    report.result = "answered";
    report.answer_ms = Some(started.elapsed().as_millis() as u64);
    let peer = match sdp::parse_for(&body, &G711) {
        Ok(peer) => peer,
        Err(e) => {
            report.reason = Some(format!("the answer's SDP is unusable: {e}"));
            leg.hangup();
            return Ok(report);
        }
    };
    let codec = peer.choose();
    // Always a law: the answer was read for G.711 only.
    let law = codec.audio.law().unwrap_or(Law::Mu);
    report.codec = Some(format!("{}/8000", codec.audio.encoding_name()));
    let mut out = send::Outgoing::new(law, codec.payload_type, codec.event_payload_type, codes);
    if codec.event_payload_type.is_some() {
        report.dtmf_sent = o.dtmf.clone();
    }
    let mut listener = Listener::default();
    let listening = Instant::now();
    let until = listening + o.listen;
    let mut pace = tokio::time::interval(Duration::from_millis(20));
    pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut buf = [0u8; 2048];
    let mut mover = o.update.clone().map(|u| Box::pin(u.run(from.clone())));
    let mut hung_up = false;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        tokio::select! {
            _ = pace.tick() => {
                // Symmetric RTP: send to where the SDP said.
                let _ = rtp.send_to(&out.next_packet(), peer.addr).await;
            }
            got = rtp.recv_from(&mut buf) => {
                if let Ok((n, _)) = got {
                    listener.packet(
                        &buf[..n],
                        listening.elapsed(),
                        codec.payload_type,
                        law,
                        codec.event_payload_type,
                    );
                }
            }
            event = leg.next_event() => {
                if matches!(event, LegEvent::Bye | LegEvent::AckTimeout) {
                    report.remote_hangup_ms = Some(started.elapsed().as_millis() as u64);
                    hung_up = true;
                    break;
                }
            }
            done = finish(&mut mover) => {
                report.update = Some(done);
                mover = None;
            }
            _ = tokio::time::sleep(left) => break,
        }
    }
    if !out.digits_sent() {
        report.dtmf_sent = String::new();
    }
    if mover.is_some() {
        report.update = Some(update::UpdateReport::unfinished());
    }
    if !hung_up {
        leg.hangup();
    }
    let heard = listener.heard();
    let r = heard.received;
    report.quality = (r.packets > 0).then(|| quality::estimate(r.loss_ratio, r.jitter_ms));
    report.heard = Some(heard);
    // Let the BYE leave before the stack goes.
    tokio::time::sleep(Duration::from_millis(200)).await;
    Ok(report)
}

/// The update under way, if any, to its end; pending without one.
async fn finish<F: std::future::Future>(f: &mut Option<std::pin::Pin<Box<F>>>) -> F::Output {
    match f {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

/// The local address that routes to the target's host (a UDP socket
/// "connected" there sends nothing); loopback when that cannot be told.
async fn local_ip_towards(target: &str) -> IpAddr {
    let loopback = IpAddr::from([127, 0, 0, 1]);
    let Some(host) = host_port(target) else {
        return loopback;
    };
    let Ok(mut addrs) = tokio::net::lookup_host(host).await else {
        return loopback;
    };
    let Some(addr) = addrs.next() else {
        return loopback;
    };
    let any = if addr.is_ipv4() {
        IpAddr::from([0, 0, 0, 0])
    } else {
        IpAddr::from([0u16; 8])
    };
    match UdpSocket::bind(SocketAddr::new(any, 0)).await {
        Ok(s) if s.connect(addr).await.is_ok() => s.local_addr().map_or(loopback, |a| a.ip()),
        _ => loopback,
    }
}

/// `host:port` of a SIP URI (the default port for its scheme).
fn host_port(uri: &str) -> Option<String> {
    let secure = uri.starts_with("sips:") || uri.contains("transport=tls");
    let rest = uri.split_once(':')?.1;
    let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    let hostport = rest.split([';', '?', '>']).next()?;
    if hostport.is_empty() {
        return None;
    }
    let has_port = match hostport.rfind(']') {
        Some(end) => hostport[end..].contains(':'),
        None => hostport.contains(':'),
    };
    Some(if has_port {
        hostport.to_string()
    } else {
        format!("{hostport}:{}", if secure { 5061 } else { 5060 })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_port_of_sip_uris() {
        assert_eq!(
            host_port("sip:a@10.0.0.1").as_deref(),
            Some("10.0.0.1:5060")
        );
        assert_eq!(
            host_port("sip:a@127.0.0.1:5070;transport=tcp").as_deref(),
            Some("127.0.0.1:5070")
        );
        assert_eq!(
            host_port("sips:a@example.com").as_deref(),
            Some("example.com:5061")
        );
        assert_eq!(host_port("sip:[::1]:5080").as_deref(), Some("[::1]:5080"));
        assert_eq!(host_port("sip:a@").as_deref(), None);
    }

    #[test]
    fn exit_codes_say_what_failed() {
        let mut r = Report {
            target: "sip:a@b".into(),
            from: "sip:p@c".into(),
            result: "rejected",
            code: Some(486),
            reason: Some("Busy Here".into()),
            answer_ms: None,
            codec: None,
            heard: None,
            quality: None,
            dtmf_sent: String::new(),
            remote_hangup_ms: None,
            update: None,
        };
        assert_eq!(r.exit_code(), 1);
        assert!(r.text().contains("rejected: 486 Busy Here"), "{}", r.text());
        r.result = "answered";
        assert_eq!(r.exit_code(), 2, "answered, heard nothing");
    }
}
