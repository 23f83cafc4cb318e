//! SIP written by hand over UDP, for what a well-behaved stack will not
//! send: digest headers computed here, replays, malformed messages.

use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::UdpSocket;

/// One UDP socket on 127.0.0.1 talking raw SIP to `to`.
pub struct RawSip {
    pub socket: UdpSocket,
    pub local: SocketAddr,
    pub to: SocketAddr,
}

/// A response as text, with header lookup.
#[derive(Debug, Clone)]
pub struct RawResponse(pub String);

impl RawResponse {
    pub fn code(&self) -> u16 {
        self.0
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.0.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    /// A parameter of a header like `Digest realm="x", nonce="y"`.
    pub fn param(&self, header: &str, name: &str) -> Option<String> {
        let h = self.header(header)?;
        let start = h.find(&format!("{name}="))? + name.len() + 1;
        let rest = h[start..].trim_start_matches('"');
        Some(rest.split(['"', ',']).next()?.to_string())
    }
}

impl RawSip {
    pub async fn new(to: SocketAddr) -> RawSip {
        Self::bound(std::net::Ipv4Addr::LOCALHOST.into(), to).await
    }

    /// Like `new`, its socket bound to `ip`.
    pub async fn bound(ip: std::net::IpAddr, to: SocketAddr) -> RawSip {
        let socket = UdpSocket::bind((ip, 0)).await.unwrap();
        let local = socket.local_addr().unwrap();
        RawSip { socket, local, to }
    }

    /// Sends OPTIONS until one is answered (10 s at most); the code of
    /// the first answer. `what` names the peer in a timeout's message.
    pub async fn first_options_answer(&self, what: &str) -> u16 {
        let mut n = 0;
        super::within(10, &format!("{what} to answer OPTIONS"), async {
            loop {
                n += 1;
                self.send(&self.options(&format!("up-{n}-{}", uuid::Uuid::new_v4().simple())))
                    .await;
                if let Some(r) = self.response(Duration::from_millis(200), true).await {
                    return r.code();
                }
            }
        })
        .await
    }

    pub async fn send(&self, text: &str) {
        self.socket.send_to(text.as_bytes(), self.to).await.unwrap();
    }

    /// The next response within `wait`, skipping provisional ones when
    /// `final_only`.
    pub async fn response(&self, wait: Duration, final_only: bool) -> Option<RawResponse> {
        // A request (BYE, retransmission…) is not for us here.
        self.next_where(wait, |text| {
            text.starts_with("SIP/2.0 ") && !(final_only && RawResponse(text.into()).code() < 200)
        })
        .await
    }

    /// The next message within `wait` for which `wanted` holds (the others
    /// are dropped).
    async fn next_where(
        &self,
        wait: Duration,
        wanted: impl Fn(&str) -> bool,
    ) -> Option<RawResponse> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut buf = vec![0u8; 65_536];
        loop {
            let (n, _) = tokio::time::timeout_at(deadline, self.socket.recv_from(&mut buf))
                .await
                .ok()?
                .ok()?;
            let text = String::from_utf8_lossy(&buf[..n]).to_string();
            if wanted(&text) {
                return Some(RawResponse(text));
            }
        }
    }

    /// An INVITE to `user` with an SDP offer; `extra` header lines are
    /// added as given (each ending in CRLF).
    pub fn invite(&self, user: &str, call_id: &str, cseq: u32, extra: &str) -> String {
        self.invite_rtp(user, call_id, cseq, extra, self.local.port() + 2)
    }

    /// Like `invite`, with the SDP's audio on `rtp_port` (a socket the
    /// test holds, to hear what the gateway sends).
    pub fn invite_rtp(
        &self,
        user: &str,
        call_id: &str,
        cseq: u32,
        extra: &str,
        rtp_port: u16,
    ) -> String {
        let sdp = format!(
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {rtp_port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n",
        );
        format!(
            "INVITE sip:{user}@{to} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {local};branch=z9hG4bK{branch}\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:+15557654321@{local}>;tag=raw{cseq}\r\n\
             To: <sip:{user}@{to}>\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: {cseq} INVITE\r\n\
             Contact: <sip:raw@{local}>\r\n\
             {extra}\
             Content-Type: application/sdp\r\n\
             Content-Length: {len}\r\n\r\n{sdp}",
            to = self.to,
            local = self.local,
            branch = uuid::Uuid::new_v4().simple(),
            len = sdp.len(),
        )
    }
}

impl RawSip {
    /// ACKs a 2xx to our INVITE `call_id` (CSeq 1), as a caller must.
    pub async fn ack(&self, ok: &RawResponse, call_id: &str) {
        let to = ok.header("To").expect("To in 200 OK");
        let from = ok.header("From").expect("From in 200 OK");
        let ack = format!(
            "ACK sip:support@{to_addr} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {local};branch=z9hG4bK{branch}\r\n\
             Max-Forwards: 70\r\n\
             From: {from}\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: 1 ACK\r\n\
             Content-Length: 0\r\n\r\n",
            to_addr = self.to,
            local = self.local,
            branch = uuid::Uuid::new_v4().simple(),
        );
        self.send(&ack).await;
    }

    /// The next request that comes within `wait` (responses are skipped).
    pub async fn request(&self, wait: Duration) -> Option<RawResponse> {
        self.next_where(wait, |text| !text.starts_with("SIP/2.0 "))
            .await
    }

    /// Answers `request` 200 OK (its Via, From, To, Call-ID and CSeq
    /// copied).
    pub async fn ok(&self, request: &RawResponse) {
        let copy = |n: &str| {
            request
                .header(n)
                .map(|v| format!("{n}: {v}\r\n"))
                .unwrap_or_default()
        };
        let answer = format!(
            "SIP/2.0 200 OK\r\n{}{}{}{}{}Content-Length: 0\r\n\r\n",
            copy("Via"),
            copy("From"),
            copy("To"),
            copy("Call-ID"),
            copy("CSeq"),
        );
        self.send(&answer).await;
    }

    /// An OPTIONS outside any dialog (a dispatcher's probe) to `to`.
    pub fn options(&self, call_id: &str) -> String {
        format!(
            "OPTIONS sip:{to} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {local};branch=z9hG4bK{branch};rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:probe@{local}>;tag=probe\r\n\
             To: <sip:{to}>\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: 1 OPTIONS\r\n\
             Content-Length: 0\r\n\r\n",
            to = self.to,
            local = self.local,
            branch = uuid::Uuid::new_v4().simple(),
        )
    }
}
