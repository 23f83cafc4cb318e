//! The gateway as a whole, from inside the crate (for test-only hooks).
//!
//! A call driver that panics must not leak its call: the whole gateway on
//! loopback, a caller whose INVITE carries the test-only header that
//! makes the driver panic right after answering (compiled into unit tests
//! only), then a second caller with `max_calls = 1`.

use crate::call::driver::test_hooks::PANIC_HEADER;
use crate::{Config, Gateway};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::UdpSocket;

/// Sends one INVITE over UDP; the final response's status code.
async fn call(to: SocketAddr, extra_header: &str) -> u16 {
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
    let mut buf = vec![0u8; 65_536];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(5), socket.recv(&mut buf))
            .await
            .expect("a response in time")
            .unwrap();
        let text = String::from_utf8_lossy(&buf[..n]).to_string();
        let code: u16 = text
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        if code >= 200 {
            return code;
        }
    }
}

#[tokio::test]
async fn a_panicking_driver_releases_its_place_and_registry_entry() {
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
max_calls = 1
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
    let gw = Gateway::start(config).await.unwrap();
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
