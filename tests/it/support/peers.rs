//! A phone and a room built on pinless's own SIP code, with real RTP.

use pinless::media::rtp::{self, HEADER_LEN, Header};
use pinless::sip::sdp::{self, PeerMedia};
use pinless::sip::{Dialing, IncomingInvite, Leg, OutboundRequest, Stack, StackConfig};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

/// A received RTP packet.
#[derive(Debug, Clone)]
pub struct Packet {
    pub header: Header,
    pub payload: Vec<u8>,
    pub at: Instant,
    pub from: SocketAddr,
}

/// One RTP endpoint on 127.0.0.1.
pub struct RtpPeer {
    pub socket: Arc<UdpSocket>,
    pub addr: SocketAddr,
}

impl RtpPeer {
    pub async fn new() -> RtpPeer {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        RtpPeer {
            socket: Arc::new(socket),
            addr,
        }
    }

    /// Every RTP packet received during `d`.
    pub async fn collect(&self, d: Duration) -> Vec<Packet> {
        let mut out = Vec::new();
        let deadline = tokio::time::Instant::now() + d;
        let mut buf = [0u8; 2048];
        while let Ok(Ok((n, from))) =
            tokio::time::timeout_at(deadline, self.socket.recv_from(&mut buf)).await
        {
            if let Some((header, range)) = rtp::parse(&buf[..n]) {
                out.push(Packet {
                    header,
                    payload: buf[range].to_vec(),
                    at: Instant::now(),
                    from,
                });
            }
        }
        out
    }

    /// Every RTP packet received during `d`, read and time-stamped on an
    /// OS thread of its own: a test whose runtime is kept busy (the
    /// gateway's SIP work runs on it) would otherwise measure its own
    /// scheduling delays as gaps in the audio.
    #[cfg(feature = "interop")]
    pub async fn collect_apart(&self, d: Duration) -> Vec<Packet> {
        use std::os::fd::AsFd;
        // A second descriptor of the same socket, non-blocking like the
        // first (they share their flags): polled, never set blocking.
        let fd = self.socket.as_fd().try_clone_to_owned().unwrap();
        let socket = std::net::UdpSocket::from(fd);
        let reader = std::thread::spawn(move || {
            let mut out = Vec::new();
            let mut buf = [0u8; 2048];
            let deadline = Instant::now() + d;
            while Instant::now() < deadline {
                match socket.recv_from(&mut buf) {
                    Ok((n, from)) => {
                        if let Some((header, range)) = rtp::parse(&buf[..n]) {
                            out.push(Packet {
                                header,
                                payload: buf[range].to_vec(),
                                at: Instant::now(),
                                from,
                            });
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_micros(200)),
                }
            }
            out
        });
        tokio::task::spawn_blocking(move || reader.join().unwrap())
            .await
            .unwrap()
    }

    /// Waits (5 s at most) for a packet whose payload is all `byte`.
    pub async fn hears(&self, byte: u8) -> Packet {
        super::within(5, &format!("audio 0x{byte:02X}"), async {
            loop {
                for p in self.collect(Duration::from_millis(40)).await {
                    if p.payload.iter().all(|b| *b == byte) {
                        return p;
                    }
                }
            }
        })
        .await
    }

    /// Drops whatever is queued on the socket.
    pub fn drain(&self) {
        let mut buf = [0u8; 2048];
        while self.socket.try_recv_from(&mut buf).is_ok() {}
    }

    /// Sends `count` packets of `payload_byte` × 160 every 20 ms to `to`.
    pub fn send_pattern(
        &self,
        to: SocketAddr,
        payload_type: u8,
        payload_byte: u8,
        count: u16,
    ) -> tokio::task::JoinHandle<()> {
        let socket = self.socket.clone();
        tokio::spawn(async move {
            let ssrc = rand::random();
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            for i in 0..count {
                tick.tick().await;
                let mut head = [0u8; HEADER_LEN];
                Header {
                    marker: i == 0,
                    payload_type,
                    sequence: 100 + i,
                    timestamp: 1000 + i as u32 * 160,
                    ssrc,
                }
                .write(&mut head);
                let mut packet = head.to_vec();
                packet.extend(std::iter::repeat_n(payload_byte, 160));
                let _ = socket.send_to(&packet, to).await;
            }
        })
    }
}

/// Certificate files for TLS tests: one self-signed certificate for
/// 127.0.0.1, used by every TLS listener and trusted by every TLS client.
pub struct TestCert {
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
}

impl TestCert {
    pub fn new() -> TestCert {
        let dir = std::env::temp_dir().join(format!("pinless-cert-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
            .expect("a test certificate");
        let cert = dir.join("cert.pem");
        let key = dir.join("key.pem");
        std::fs::write(&cert, made.cert.pem()).unwrap();
        std::fs::write(&key, made.key_pair.serialize_pem()).unwrap();
        TestCert { cert, key }
    }
}

/// A stack on free loopback ports; with `cert`, also a TLS listener and a
/// connector that trusts it.
pub async fn stack_with(cert: Option<&TestCert>) -> (Stack, mpsc::Receiver<IncomingInvite>) {
    let tls = cert.map(|c| {
        let acceptor = pinless::sip::tls::acceptor(&c.cert, &c.key).expect("test acceptor");
        ("127.0.0.1:0".parse().unwrap(), acceptor)
    });
    let tls_connector =
        cert.map(|c| pinless::sip::tls::connector(Some(&c.cert)).expect("test connector"));
    Stack::start(StackConfig {
        udp: Some("127.0.0.1:0".parse().unwrap()),
        tcp: Some("127.0.0.1:0".parse().unwrap()),
        tls,
        tls_connector,
        public_host: "127.0.0.1".into(),
        invite_queue: 16,
    })
    .await
    .expect("test stack starts")
}

/// A caller.
pub struct Phone {
    pub stack: Stack,
    pub rtp: RtpPeer,
    _invites: mpsc::Receiver<IncomingInvite>,
}

impl Phone {
    pub async fn new() -> Phone {
        Self::with(None).await
    }

    /// A phone that can also call over TLS, trusting `cert`.
    pub async fn with(cert: Option<&TestCert>) -> Phone {
        let (stack, invites) = stack_with(cert).await;
        Phone {
            stack,
            rtp: RtpPeer::new().await,
            _invites: invites,
        }
    }

    /// Calls `target` offering PCMU, PCMA and telephone-event.
    pub fn dial(&self, target: &str, headers: &[(&str, &str)]) -> Dialing {
        self.dial_sdp(
            target,
            headers,
            sdp::offer(self.rtp.addr.ip(), self.rtp.addr.port()),
        )
    }

    pub fn dial_sdp(&self, target: &str, headers: &[(&str, &str)], offer: String) -> Dialing {
        Dialing::start(
            &self.stack,
            OutboundRequest {
                target: target.to_string(),
                from: "sip:+15557654321@127.0.0.1".into(),
                headers: headers
                    .iter()
                    .map(|(n, v)| (n.to_string(), v.to_string()))
                    .collect(),
                sdp: offer,
                ring_timeout: Some(Duration::from_secs(10)),
                trace: None,
            },
        )
    }

    /// Dials and expects an answer: the leg and the gateway's media.
    pub async fn call(&self, target: &str, headers: &[(&str, &str)]) -> (Leg, PeerMedia) {
        let mut dialing = self.dial(target, headers);
        match super::within(10, "the gateway to answer", dialing.outcome()).await {
            pinless::sip::DialOutcome::Answered { leg, sdp: body } => {
                (leg, sdp::parse(&body).expect("answer SDP"))
            }
            other => panic!("call not answered: {other:?}"),
        }
    }
}

/// A room that answers (or refuses) INVITEs on request.
pub struct Room {
    pub stack: Stack,
    pub rtp: RtpPeer,
    invites: mpsc::Receiver<IncomingInvite>,
}

impl Room {
    pub async fn new() -> Room {
        Self::with(None).await
    }

    /// A room that also listens over TLS with `cert`.
    pub async fn with(cert: Option<&TestCert>) -> Room {
        let (stack, invites) = stack_with(cert).await;
        Room {
            stack,
            rtp: RtpPeer::new().await,
            invites,
        }
    }

    pub fn uri(&self, user: &str, tcp: bool) -> String {
        if tcp {
            format!(
                "sip:{user}@{};transport=tcp",
                self.stack.tcp_addr().unwrap()
            )
        } else {
            format!("sip:{user}@{}", self.stack.udp_addr().unwrap())
        }
    }

    pub async fn next_invite(&mut self) -> IncomingInvite {
        super::within(10, "an INVITE at the room", self.invites.recv())
            .await
            .expect("room stack running")
    }

    /// Answers with the first codec of the offer; returns the leg and
    /// where the gateway wants the room's RTP.
    pub async fn answer(&self, invite: IncomingInvite) -> (Leg, PeerMedia) {
        self.answer_only(invite, &[]).await
    }

    /// Answers with `codec` (its payload type as the room chooses,
    /// whatever the offer said): a room that speaks one codec its way.
    pub async fn answer_as(&self, invite: IncomingInvite, codec: pinless::codec::LegCodec) -> Leg {
        let answer = sdp::answer(self.rtp.addr.ip(), self.rtp.addr.port(), codec);
        invite
            .accept(&self.stack, answer)
            .await
            .expect("room answers")
    }

    /// Answers with the first offered codec among `speaks` (any offered
    /// one when empty): a room that speaks only some of them.
    pub async fn answer_only(
        &self,
        invite: IncomingInvite,
        speaks: &[pinless::codec::AudioCodec],
    ) -> (Leg, PeerMedia) {
        let mut offer = sdp::parse(&invite.info.sdp).expect("gateway's offer parses");
        if !speaks.is_empty() {
            offer.codecs.retain(|(_, c)| speaks.contains(c));
        }
        let answer = sdp::answer(self.rtp.addr.ip(), self.rtp.addr.port(), offer.choose());
        let leg = invite
            .accept(&self.stack, answer)
            .await
            .expect("room answers");
        (leg, offer)
    }
}
