//! The incoming-call webhook's answer routes the call (as TwiML does):
//! a 2xx whose JSON names `sipUri`/`sipUris` starts that transfer with no
//! update request; any other answer leaves the caller on hold, as Daily
//! does. Real SIP, RTP and HTTP on loopback.

use crate::support;

use serde_json::json;
use std::time::Duration;
use support::*;

/// Calls a gateway whose webhook answers with `body`; returns the
/// gateway, the phone's leg and media, and the callId.
async fn call_answered_with(
    body: &str,
) -> (
    TestGateway,
    WebhookReceiver,
    Phone,
    pinless::sip::Leg,
    String,
) {
    let mut hooks = WebhookReceiver::start(&[]).await;
    hooks.answer_with(body);
    let gw = TestGateway::start(&hooks.url(), "").await;
    let phone = Phone::new().await;
    let (leg, _media) = phone
        .call(&gw.sip_uri("support", false), &[("X-Caller", "c1")])
        .await;
    let hook = hooks.next().await;
    let id = hook.json()["callId"].as_str().expect("callId").to_string();
    (gw, hooks, phone, leg, id)
}

#[tokio::test]
async fn a_webhook_answer_naming_a_room_bridges_the_call_without_an_update() {
    let mut room = Room::new().await;
    let answer = json!({
        "status": "OK",
        "sipUri": room.uri("bot", false),
        "headers": { "X-Route": "from-webhook" },
    });
    let (gw, _hooks, phone, _leg, id) = call_answered_with(&answer.to_string()).await;
    let invite = room.next_invite().await;
    assert_eq!(invite.info.request_user.as_deref(), Some("bot"));
    let headers = &invite.info.custom_headers;
    let has = |n: &str, v: &str| {
        headers
            .iter()
            .any(|(hn, hv)| hn.eq_ignore_ascii_case(n) && hv == v)
    };
    assert!(has("X-Route", "from-webhook"), "{headers:?}");
    assert!(has("X-Caller", "c1"), "{headers:?}");
    let (_room_leg, offer) = room.answer(invite).await;
    let _send = room.rtp.send_pattern(offer.addr, 0, 0x5A, 200);
    let call = gw
        .wait_call(&id, Duration::from_secs(5), |c| c["state"] == "bridged")
        .await;
    phone.rtp.hears(0x5A).await;
    let names = event_names(&call);
    let routed = names.iter().position(|n| n == "webhook.routed");
    let started = names.iter().position(|n| n == "call.transfer_started");
    assert!(
        routed.is_some() && routed < started,
        "routed, then the transfer: {names:?}"
    );
    // The app also sends the same update (as a Daily-style app would):
    // 200, and no second leg.
    let (status, _) = gw
        .update(gw.update_body(&id, json!({ "sipUri": room.uri("bot", false) })))
        .await;
    assert_eq!(status, 200);
    let again = tokio::time::timeout(Duration::from_millis(800), room.next_invite()).await;
    assert!(again.is_err(), "a second INVITE reached the room");
}

#[tokio::test]
async fn answers_that_name_no_room_leave_the_caller_on_hold() {
    for body in ["", "{}", r#"{"status":"OK"}"#, "not json"] {
        let mut room = Room::new().await;
        let (gw, _hooks, phone, _leg, id) = call_answered_with(body).await;
        // Music goes on and nothing is dialled.
        let music = phone.rtp.collect(Duration::from_millis(600)).await;
        assert!(
            music.len() >= 20,
            "answer {body:?}: {} packets",
            music.len()
        );
        let dialled = tokio::time::timeout(Duration::from_millis(400), room.next_invite()).await;
        assert!(dialled.is_err(), "answer {body:?} dialled a room");
        let (_, call) = gw.get_call(&id).await;
        assert_eq!(call["state"], "held", "answer {body:?}");
        assert!(
            !event_names(&call).contains(&"webhook.routed".to_string()),
            "answer {body:?}"
        );
        // The caller can still be moved by an update.
        let (status, _) = gw
            .update(gw.update_body(&id, json!({ "sipUri": room.uri("later", false) })))
            .await;
        assert_eq!(status, 200, "answer {body:?}");
        room.next_invite().await;
    }
}

#[tokio::test]
async fn an_unusable_route_in_the_answer_is_logged_and_the_caller_stays_held() {
    let (gw, _hooks, _phone, _leg, id) =
        call_answered_with(r#"{"sipUri":"http://example.com/room"}"#).await;
    let call = gw
        .wait_call(&id, Duration::from_secs(5), |c| {
            event_names(c).contains(&"webhook.routed".to_string())
        })
        .await;
    assert_eq!(call["state"], "held");
    let routed = details(&call, "webhook.routed");
    let error = routed[0]["error"].as_str().unwrap_or_default();
    assert!(error.starts_with("sipUri: must be a sip:"), "{routed:?}");
}
