//! Interop with baresip (Debian `baresip-core`), a SIP user agent written
//! by others, as the caller: a REFER transfer. Run with `cargo test
//! --features interop`; fails, never skips, when baresip is missing.

use crate::support;

use serde_json::json;
use std::path::Path;
use std::time::Duration;
use support::baresip::Baresip;
use support::*;

/// A headless baresip: no sound card (a sine source, no player), one
/// account that never registers, SIP on `port`.
fn baresip_config(dir: &Path, port: u16) {
    let config = format!(
        "poll_method epoll\n\
         sip_listen 127.0.0.1:{port}\n\
         net_interface 127.0.0.1\n\
         audio_source ausine,440\n\
         ausrc_srate 48000\n\
         auplay_srate 48000\n\
         ausrc_channels 2\n\
         auplay_channels 2\n\
         module_path /usr/lib/baresip/modules\n\
         module g711.so\n\
         module ausine.so\n\
         module account.so\n\
         module_app menu.so\n"
    );
    std::fs::write(dir.join("config"), config).unwrap();
    std::fs::write(dir.join("accounts"), "<sip:caller@127.0.0.1>;regint=0\n").unwrap();
}

/// A headless baresip as above, dialling `target`.
fn dial(target: &str, port: u16) -> Baresip {
    let dir = Baresip::dir();
    baresip_config(&dir, port);
    Baresip::dial(dir, target, 40)
}

#[tokio::test]
async fn refer_moves_a_baresip_caller_to_the_room_directly() {
    let mut hooks = WebhookReceiver::start(&[]).await;
    let gw = TestGateway::start(&hooks.url(), "").await;
    let mut room = Room::new().await;
    let port = free_udp_and_tcp_port();
    let caller = dial(&gw.sip_uri("support", false), port);
    let hook = hooks.next().await.json();
    let call_id = hook["callId"].as_str().unwrap().to_string();
    assert_eq!(hook["From"], "sip:caller@127.0.0.1");

    let (status, _) = gw
        .update(gw.update_body(
            &call_id,
            json!({ "sipUri": room.uri("agent", false), "mode": "refer" }),
        ))
        .await;
    assert_eq!(status, 200);
    let invite = room.next_invite().await;
    assert_eq!(
        invite.info.source.port(),
        port,
        "the room is called by baresip itself, not by the gateway; baresip log:\n{}",
        caller.log()
    );
    let (_leg, _) = room.answer(invite).await;
    let state = gw
        .wait_call(&call_id, Duration::from_secs(10), |c| c["state"] == "ended")
        .await;
    assert_eq!(state["endReason"], "referred", "{state:#}");
    let events = event_names(&state);
    assert!(events.contains(&"call.referred".to_string()), "{events:?}");
    assert!(
        !events.contains(&"call.bridged".to_string()),
        "no bridge through the gateway"
    );
}

#[tokio::test]
async fn refer_on_an_early_media_call_answers_the_caller_first() {
    let mut hooks = WebhookReceiver::start(&[]).await;
    let gw = TestGateway::start(&hooks.url(), "answer = \"early\"").await;
    let mut room = Room::new().await;
    let port = free_udp_and_tcp_port();
    let caller = dial(&gw.sip_uri("support", false), port);
    let call_id = hooks.next().await.json()["callId"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, call) = gw.get_call(&call_id).await;
    assert_eq!(call["answered"], false, "held in early media");

    let (status, _) = gw
        .update(gw.update_body(
            &call_id,
            json!({ "sipUri": room.uri("agent", false), "mode": "refer" }),
        ))
        .await;
    assert_eq!(status, 200);
    let invite = room.next_invite().await;
    assert_eq!(
        invite.info.source.port(),
        port,
        "baresip took the REFER (it needs an answered call); baresip log:\n{}",
        caller.log()
    );
    let (_leg, _) = room.answer(invite).await;
    let state = gw
        .wait_call(&call_id, Duration::from_secs(10), |c| c["state"] == "ended")
        .await;
    assert_eq!(state["endReason"], "referred", "{state:#}");
    let events = event_names(&state);
    let at = |n: &str| events.iter().position(|e| e == n);
    assert!(at("call.answered") < at("call.referred"), "{events:?}");
    assert_eq!(details(&state, "call.answered")[0]["reason"], "refer");
}
