//! Interop with sipp (Debian `sip-tester`), a SIP peer written by others.
//! Run with `cargo test --features interop`; fails, never skips, when sipp
//! is missing.

use crate::support;

use serde_json::json;
use std::time::Duration;
use support::sipp::*;
use support::*;

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
    let caller = sipp_call(&gw_addr, "caller.xml", &[]);

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
    let caller = sipp_call(&gw_addr, "cancel.xml", &[]);
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
