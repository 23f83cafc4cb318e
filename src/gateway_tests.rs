//! The gateway as a whole, from inside the crate (for test-only hooks):
//!
//! - A call driver that panics must not leak its call: a caller whose
//!   INVITE carries the test-only header that makes the driver panic right
//!   after answering (compiled into unit tests only), then a second caller
//!   with `max_calls = 1`.
//! - A caller's RFC 4028 session that nobody refreshes ends the call with
//!   reason `session_expired` and a BYE (the 90 s minimum lowered through
//!   the stack's test-only setting).

use crate::call::driver::test_hooks::PANIC_HEADER;
use crate::{Config, Gateway};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tokio::net::UdpSocket;

/// A gateway on loopback with one open entry and `max_calls`; its state
/// directory, to remove afterwards.
async fn gateway(max_calls: usize) -> (Gateway, PathBuf) {
    let state = std::env::temp_dir().join(format!("pinless-unit-{}", uuid::Uuid::new_v4()));
    let toml = format!(
        r#"
[node]
state_dir = "{state}"
[sip]
udp = "127.0.0.1:0"
tcp = ""
[api]
listen = "127.0.0.1:0"
[hold]
music = "{music}"
[limits]
max_calls = {max_calls}
[[dialin]]
name_prefix = "support"
sip_uri = "sip:support@127.0.0.1"
room_creation_api = "http://127.0.0.1:9/none"
open = true
"#,
        state = state.display(),
        music = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/hold.flac"),
    );
    let config = Config::from_toml_with_env(&toml, std::iter::empty(), false).unwrap();
    (Gateway::start(config).await.unwrap(), state)
}

/// A caller over UDP: its socket and the Call-ID of its INVITE.
struct Caller {
    socket: UdpSocket,
    to: SocketAddr,
    call_id: String,
}

impl Caller {
    /// Sends an INVITE with `extra_header` lines; the final response.
    async fn invite(to: SocketAddr, extra_header: &str) -> (Caller, String) {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let local = socket.local_addr().unwrap();
        let id = uuid::Uuid::new_v4().simple().to_string();
        let sdp = format!(
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n",
            local.port() + 2
        );
        let invite = format!(
            "INVITE sip:support@{to} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK{id}\r\nMax-Forwards: 70\r\nFrom: <sip:caller@127.0.0.1>;tag={id}\r\nTo: <sip:support@127.0.0.1>\r\nCall-ID: {id}\r\nCSeq: 1 INVITE\r\nContact: <sip:caller@{local}>\r\n{extra_header}Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
            sdp.len()
        );
        socket.send_to(invite.as_bytes(), to).await.unwrap();
        let caller = Caller {
            socket,
            to,
            call_id: id,
        };
        loop {
            let text = caller
                .next(Duration::from_secs(5))
                .await
                .expect("a response in time");
            if code(&text) >= 200 {
                return (caller, text);
            }
        }
    }

    /// The next message within `wait`.
    async fn next(&self, wait: Duration) -> Option<String> {
        let mut buf = vec![0u8; 65_536];
        let n = tokio::time::timeout(wait, self.socket.recv(&mut buf))
            .await
            .ok()?
            .ok()?;
        Some(String::from_utf8_lossy(&buf[..n]).to_string())
    }

    /// ACKs the 2xx `ok`.
    async fn ack(&self, ok: &str) {
        let to = header(ok, "To").expect("To in 200 OK");
        let local = self.socket.local_addr().unwrap();
        let ack = format!(
            "ACK sip:support@{} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK{}\r\nMax-Forwards: 70\r\nFrom: <sip:caller@127.0.0.1>;tag={id}\r\nTo: {to}\r\nCall-ID: {id}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
            self.to,
            uuid::Uuid::new_v4().simple(),
            id = self.call_id,
        );
        self.socket.send_to(ack.as_bytes(), self.to).await.unwrap();
    }
}

fn code(text: &str) -> u16 {
    text.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

fn header<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// One INVITE's final status code.
async fn call(to: SocketAddr, extra_header: &str) -> u16 {
    code(&Caller::invite(to, extra_header).await.1)
}

#[tokio::test]
async fn a_panicking_driver_releases_its_place_and_registry_entry() {
    let (gw, state) = gateway(1).await;
    let sip = gw.sip_udp.unwrap();

    assert_eq!(call(sip, &format!("{PANIC_HEADER}: 1\r\n")).await, 200);
    // The driver panicked right after the answer; its place comes back.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while !gw.registry.is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(gw.registry.is_empty(), "registry entry released");
    assert_eq!(
        call(sip, "").await,
        200,
        "max_calls = 1 and the panicked call's permit was released"
    );
    // And with that call up, the node is full.
    assert_eq!(call(sip, "").await, 503);
    gw.shutdown();
    let _ = std::fs::remove_dir_all(&state);
}

#[tokio::test]
async fn an_unrefreshed_session_ends_the_call_with_a_bye() {
    let (gw, state) = gateway(10).await;
    gw.stack.set_min_session_expires_for_tests(1);
    let timer = "Session-Expires: 3\r\nSupported: timer\r\n";
    let (caller, ok) = Caller::invite(gw.sip_udp.unwrap(), timer).await;
    assert_eq!(code(&ok), 200, "{ok}");
    assert_eq!(header(&ok, "Session-Expires"), Some("3;refresher=uac"));
    caller.ack(&ok).await;
    let id = gw.registry.live_snapshots()[0].call_id.clone();

    // The caller never refreshes: about 2 s later the gateway says BYE.
    let bye = loop {
        let msg = caller.next(Duration::from_secs(6)).await.expect("a BYE");
        if msg.starts_with("BYE ") {
            break msg;
        }
    };
    assert_eq!(header(&bye, "Call-ID"), Some(caller.call_id.as_str()));
    let id = crate::call::CallId(id);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    let ended = loop {
        let view = gw.registry.snapshot(&id).expect("the call is remembered");
        if view.state == crate::call::State::Ended || tokio::time::Instant::now() > deadline {
            break view;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(ended.state, crate::call::State::Ended);
    assert_eq!(
        ended.end_reason,
        Some(crate::call::EndReason::SessionExpired)
    );
    gw.shutdown();
    let _ = std::fs::remove_dir_all(&state);
}
