//! HEP3 capture to a Homer (or sngrep) collector: every SIP message a
//! call's ladder records (both legs, both directions) is sent as it went
//! over the wire, and a quality report when the call ends. A leaf: the
//! SIP layer's `Trace` hands messages here, the call driver its report.
//!
//! - `packet`: the HEP3 encoding, without I/O.
//! - `call_id`: the SIP Call-ID, found by a scan, for the correlation chunk.
//! - this file: `Hep`, the handle the ladders hold, and the one task per
//!   node that encodes and sends. A call never waits for it: captures go
//!   into a bounded queue, and what does not fit is dropped and counted
//!   (`pinless_hep_dropped_total`), as is what the collector could not be
//!   sent.

pub mod call_id;
pub mod packet;

use bytes::Bytes;
use packet::{Frame, Ip, Payload};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

/// Captures waiting for the sender, at most: about a second of SIP at a
/// few hundred calls per second. Beyond, captures are dropped.
const QUEUE: usize = 4096;
/// A TCP collector that went away is tried again after this long.
const RECONNECT: Duration = Duration::from_secs(2);

/// `[hep] url`: where the collector listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Collector {
    Udp(SocketAddr),
    Tcp(SocketAddr),
}

/// As `[hep] url` writes it.
impl std::fmt::Display for Collector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Collector::Udp(addr) => write!(f, "udp:{addr}"),
            Collector::Tcp(addr) => write!(f, "tcp:{addr}"),
        }
    }
}

/// Why `[hep] url` cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UrlError(String);

impl Collector {
    /// `udp:HOST:PORT` or `tcp:HOST:PORT`, HOST an IP address or a name
    /// (resolved once, now).
    pub fn parse(url: &str) -> Result<Collector, UrlError> {
        let (scheme, rest) = url
            .split_once(':')
            .ok_or_else(|| UrlError(format!("{url:?} is not udp:HOST:PORT or tcp:HOST:PORT")))?;
        let addr = resolve(rest)?;
        match scheme {
            "udp" => Ok(Collector::Udp(addr)),
            "tcp" => Ok(Collector::Tcp(addr)),
            other => Err(UrlError(format!("transport {other:?} is not udp or tcp"))),
        }
    }
}

fn resolve(host_port: &str) -> Result<SocketAddr, UrlError> {
    use std::net::ToSocketAddrs;
    if let Ok(addr) = host_port.parse() {
        return Ok(addr);
    }
    let mut found = host_port
        .to_socket_addrs()
        .map_err(|e| UrlError(format!("{host_port:?}: {e}")))?;
    found
        .next()
        .ok_or_else(|| UrlError(format!("{host_port:?} resolves to no address")))
}

/// `[hep]` as the node runs it.
#[derive(Debug, Clone)]
pub struct Settings {
    pub collector: Collector,
    pub node_id: u32,
    pub password: String,
}

/// One SIP message as a ladder recorded it.
#[derive(Debug)]
pub struct SipCapture {
    pub at: SystemTime,
    pub tcp: bool,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub message: Bytes,
}

/// A call's quality when it ended, as its record shows it.
#[derive(Debug)]
pub struct QualityReport {
    pub at: SystemTime,
    /// The caller leg's SIP Call-ID, which the report is grouped under.
    pub call_id: String,
    /// Our media address and the caller's.
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// MOS ×100 (the E-model of `pinless probe`).
    pub mos: u16,
    /// The report's JSON.
    pub json: Vec<u8>,
}

#[derive(Debug)]
enum Capture {
    Sip(SipCapture),
    Report(QualityReport),
}

/// What `/metrics` shows of HEP.
#[derive(Debug, Default)]
pub struct HepStats {
    sent: AtomicU64,
    dropped: AtomicU64,
}

impl HepStats {
    /// Packets handed to the collector's socket.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Captures not sent: the queue was full, the message too large for
    /// one HEP packet, or the collector could not be reached.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    fn drop_one(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }
}

/// The node's HEP sender. Cheap to clone; every clone feeds one task.
#[derive(Debug, Clone)]
pub struct Hep {
    tx: mpsc::Sender<Capture>,
    stats: Arc<HepStats>,
}

impl Hep {
    /// Starts the sender task (on the current runtime).
    pub fn start(settings: Settings) -> Hep {
        let (tx, rx) = mpsc::channel(QUEUE);
        let stats = Arc::new(HepStats::default());
        tokio::spawn(send_all(settings, rx, stats.clone()));
        Hep { tx, stats }
    }

    pub fn stats(&self) -> Arc<HepStats> {
        self.stats.clone()
    }

    /// Queues a SIP message; never waits.
    pub fn sip(&self, c: SipCapture) {
        self.offer(Capture::Sip(c));
    }

    /// Queues a call's quality report; never waits.
    pub fn report(&self, r: QualityReport) {
        self.offer(Capture::Report(r));
    }

    fn offer(&self, c: Capture) {
        if self.tx.try_send(c).is_err() {
            self.stats.drop_one();
        }
    }
}

/// Encodes one capture; None when it does not fit in a HEP packet.
fn encode(s: &Settings, c: &Capture) -> Option<Vec<u8>> {
    let frame = match c {
        Capture::Sip(m) => Frame {
            payload_type: Payload::Sip,
            ip: if m.tcp { Ip::Tcp } else { Ip::Udp },
            src: m.src,
            dst: m.dst,
            at: m.at,
            node_id: s.node_id,
            password: &s.password,
            correlation: call_id::of(&m.message),
            mos: None,
            payload: &m.message,
        },
        Capture::Report(r) => Frame {
            payload_type: Payload::QualityReport,
            ip: Ip::Udp,
            src: r.local,
            dst: r.remote,
            at: r.at,
            node_id: s.node_id,
            password: &s.password,
            correlation: Some(&r.call_id),
            mos: Some(r.mos),
            payload: &r.json,
        },
    };
    packet::encode(&frame)
}

/// The sender task: encodes each capture and sends it, until every
/// `Hep` is dropped.
async fn send_all(s: Settings, mut rx: mpsc::Receiver<Capture>, stats: Arc<HepStats>) {
    let mut link = Link::new(s.collector);
    while let Some(capture) = rx.recv().await {
        let Some(packet) = encode(&s, &capture) else {
            stats.drop_one();
            continue;
        };
        if link.send(&packet).await {
            stats.sent.fetch_add(1, Ordering::Relaxed);
        } else {
            stats.drop_one();
        }
    }
}

/// The socket to the collector, opened when first needed and, for TCP,
/// again after a failure (not before `RECONNECT` has passed, so that a
/// collector that is down costs one attempt per interval, not one per
/// message).
struct Link {
    collector: Collector,
    udp: Option<tokio::net::UdpSocket>,
    tcp: Option<tokio::net::TcpStream>,
    failed_at: Option<tokio::time::Instant>,
}

impl Link {
    fn new(collector: Collector) -> Link {
        Link {
            collector,
            udp: None,
            tcp: None,
            failed_at: None,
        }
    }

    async fn send(&mut self, packet: &[u8]) -> bool {
        if self.failed_at.is_some_and(|at| at.elapsed() < RECONNECT) {
            return false;
        }
        let sent = match self.collector {
            Collector::Udp(addr) => self.send_udp(addr, packet).await,
            Collector::Tcp(addr) => self.send_tcp(addr, packet).await,
        };
        if let Err(error) = &sent {
            if self.failed_at.is_none() {
                tracing::warn!(%error, collector = ?self.collector, "HEP capture not sent");
            }
            self.failed_at = Some(tokio::time::Instant::now());
            self.udp = None;
            self.tcp = None;
        } else {
            self.failed_at = None;
        }
        sent.is_ok()
    }

    async fn send_udp(&mut self, addr: SocketAddr, packet: &[u8]) -> std::io::Result<()> {
        if self.udp.is_none() {
            let any: SocketAddr = if addr.is_ipv4() {
                ([0, 0, 0, 0], 0).into()
            } else {
                (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
            };
            let socket = tokio::net::UdpSocket::bind(any).await?;
            socket.connect(addr).await?;
            self.udp = Some(socket);
        }
        match &self.udp {
            Some(socket) => socket.send(packet).await.map(drop),
            None => Ok(()),
        }
    }

    async fn send_tcp(&mut self, addr: SocketAddr, packet: &[u8]) -> std::io::Result<()> {
        if self.tcp.is_none() {
            let connect = tokio::net::TcpStream::connect(addr);
            let stream = tokio::time::timeout(RECONNECT, connect)
                .await
                .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
            self.tcp = Some(stream);
        }
        match self.tcp.as_mut() {
            // HEP over TCP is a stream of whole packets, each with its
            // length in its header.
            Some(stream) => stream.write_all(packet).await,
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collector_urls_are_read_or_refused_with_a_reason() {
        assert_eq!(
            Collector::parse("udp:127.0.0.1:9060"),
            Ok(Collector::Udp("127.0.0.1:9060".parse().unwrap()))
        );
        assert_eq!(
            Collector::parse("tcp:[::1]:9061"),
            Ok(Collector::Tcp("[::1]:9061".parse().unwrap()))
        );
        assert!(Collector::parse("localhost:9060").is_err());
        let e = Collector::parse("sctp:127.0.0.1:9060").unwrap_err();
        assert_eq!(e.to_string(), "transport \"sctp\" is not udp or tcp");
        assert!(Collector::parse("udp:127.0.0.1").is_err());
        assert!(Collector::parse("127.0.0.1:9060").is_err());
        // Written back as read.
        for url in ["udp:127.0.0.1:9060", "tcp:[::1]:9061"] {
            assert_eq!(Collector::parse(url).map(|c| c.to_string()), Ok(url.into()));
        }
    }

    #[tokio::test]
    async fn captures_reach_a_udp_collector_and_a_full_queue_drops_not_waits() {
        let collector = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let hep = Hep::start(Settings {
            collector: Collector::Udp(collector.local_addr().unwrap()),
            node_id: 7,
            password: String::new(),
        });
        hep.sip(SipCapture {
            at: SystemTime::now(),
            tcp: false,
            src: "127.0.0.1:5060".parse().unwrap(),
            dst: "127.0.0.1:5070".parse().unwrap(),
            message: Bytes::from_static(b"OPTIONS sip:x SIP/2.0\r\nCall-ID: c1\r\n\r\n"),
        });
        let mut buf = vec![0; 2048];
        let n = tokio::time::timeout(Duration::from_secs(2), collector.recv(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&buf[..4], b"HEP3");
        let packet = &buf[..n];
        assert!(
            packet.windows(2).any(|w| w == b"c1"),
            "the Call-ID is correlated"
        );
        assert!(packet.ends_with(b"\r\n\r\n"));
        // Far more than the queue holds, at once: none waits, the rest
        // are counted.
        for _ in 0..(QUEUE * 3) {
            hep.report(QualityReport {
                at: SystemTime::now(),
                call_id: "c1".into(),
                local: "127.0.0.1:1".parse().unwrap(),
                remote: "127.0.0.1:2".parse().unwrap(),
                mos: 440,
                json: b"{}".to_vec(),
            });
        }
        assert!(hep.stats().dropped() > 0);
    }
}
