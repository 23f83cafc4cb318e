//! Interop with sipp (Debian `sip-tester`), a SIP peer written by others.
//! Run with `cargo test --features interop`; fails, never skips, when sipp
//! is missing.
#![cfg(feature = "interop")]

mod support;

use serde_json::json;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use support::*;

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn scenario(name: &str) -> String {
    format!("{}/tests/sipp/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn sipp(args: &[&str]) -> Child {
    Command::new("sipp")
        .args(args)
        .args(["-buff_size", "4194304"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sipp is installed (apt-get install sip-tester); interop tests do not skip")
}

/// Waits for sipp to exit; its exit code 0 means every call succeeded.
async fn finished(mut child: Child, what: &str, secs: u64) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            if !status.success() {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    use std::io::Read;
                    let _ = e.read_to_string(&mut err);
                }
                eprintln!("{what} exited with {status}: {err}");
            }
            return status.success();
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("{what} did not finish in {secs}s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("pinless-sipp-{}-{name}", uuid::Uuid::new_v4()))
}

#[tokio::test]
async fn sipp_caller_is_held_then_bridged_to_a_sipp_echo_room() {
    let mut hooks = WebhookReceiver::start(&[]).await;
    let gw = TestGateway::start(&hooks.url(), "").await;
    let room_port = free_udp_port().to_string();
    let room_media = free_udp_port().to_string();
    let room_log = temp("room.log");
    let room = sipp(&[
        "-sn",
        "uas",
        "-rtp_echo",
        "-i",
        "127.0.0.1",
        "-p",
        &room_port,
        "-mp",
        &room_media,
        "-m",
        "1",
        "-timeout",
        "40",
        "-trace_msg",
        "-message_file",
        room_log.to_str().unwrap(),
    ]);
    let gw_addr = gw.gw.sip_udp.unwrap().to_string();
    let caller_port = free_udp_port().to_string();
    let caller_media = free_udp_port().to_string();
    let caller = sipp(&[
        &gw_addr,
        "-sf",
        &scenario("caller.xml"),
        "-s",
        "support",
        "-i",
        "127.0.0.1",
        "-p",
        &caller_port,
        "-mp",
        &caller_media,
        "-m",
        "1",
        "-timeout",
        "40",
    ]);

    let hook = hooks.next().await;
    let body = hook.json();
    assert_eq!(body["sipHeaders"], json!({"X-Lang": "de"}));
    assert_eq!(body["From"], "+15557654321");
    let call_id = body["callId"].as_str().unwrap().to_string();
    let (status, reply) = gw
        .update(json!({
            "callId": call_id, "callDomain": gw.gw.call_domain,
            "sipUri": format!("sip:room@127.0.0.1:{room_port}"),
            "headers": {"X-Pinless-Test": "1"}
        }))
        .await;
    assert_eq!(status, 200, "{reply}");
    gw.wait_call(&call_id, Duration::from_secs(5), |c| {
        c["state"] == "bridged"
    })
    .await;

    assert!(
        finished(caller, "sipp caller", 30).await,
        "sipp caller reports its call successful"
    );
    assert!(
        finished(room, "sipp room", 30).await,
        "sipp room reports its call successful"
    );
    let log = std::fs::read_to_string(&room_log).expect("room message log");
    assert!(
        log.contains("X-Lang: de"),
        "room INVITE carries the caller's X-Lang"
    );
    assert!(
        log.contains("X-Pinless-Test: 1"),
        "room INVITE carries the update's header"
    );
    let ended = gw
        .wait_call(&call_id, Duration::from_secs(5), |c| c["state"] == "ended")
        .await;
    assert_eq!(ended["endReason"], "caller_hangup");
    let _ = std::fs::remove_file(room_log);
}

#[tokio::test]
async fn sipp_cancel_before_answer_gets_487() {
    let hooks = WebhookReceiver::start(&[]).await;
    let gw = TestGateway::start(&hooks.url(), "answer_delay_ms = 5000").await;
    let gw_addr = gw.gw.sip_udp.unwrap().to_string();
    let port = free_udp_port().to_string();
    let media = free_udp_port().to_string();
    let caller = sipp(&[
        &gw_addr,
        "-sf",
        &scenario("cancel.xml"),
        "-s",
        "support",
        "-i",
        "127.0.0.1",
        "-p",
        &port,
        "-mp",
        &media,
        "-m",
        "1",
        "-timeout",
        "20",
    ]);
    assert!(
        finished(caller, "sipp cancel", 20).await,
        "sipp saw 200 to CANCEL and 487 to INVITE"
    );
    assert_eq!(
        gw.gw.registry.len(),
        0,
        "a cancelled call leaves nothing behind"
    );
}
