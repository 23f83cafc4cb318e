//! Transfers that never drop a caller, over real SIP, RTP and HTTP on
//! loopback: rooms not ready yet, lists of targets, duplicate and
//! conflicting updates, re-transfer, return to hold, REFER refused, hold
//! timeouts, and the events webhook.

use crate::support;

use pinless::sip::{IncomingInvite, LegEvent};
use serde_json::json;
use std::time::{Duration, Instant};
use support::peers::Packet;
use support::*;

/// The largest gap between consecutive packets, and whether sequence
/// numbers ran on without a hole and the SSRC never changed.
fn continuity(packets: &[Packet]) -> (Duration, bool) {
    let mut gap = Duration::ZERO;
    let mut continuous = true;
    for w in packets.windows(2) {
        gap = gap.max(w[1].at.duration_since(w[0].at));
        continuous &= w[1].header.sequence == w[0].header.sequence.wrapping_add(1)
            && w[1].header.ssrc == w[0].header.ssrc;
    }
    (gap, continuous)
}

/// Answers `invite` at `room` and starts sending `byte` from the room.
async fn answer_with_pattern(
    room: &Room,
    invite: IncomingInvite,
    byte: u8,
) -> (pinless::sip::Leg, tokio::task::JoinHandle<()>) {
    let (leg, offer) = room.answer(invite).await;
    let sending = room.rtp.send_pattern(offer.addr, 0, byte, 500);
    (leg, sending)
}

/// Waits until the caller receives a packet whose payload is all `byte`.
async fn caller_hears(phone: &Phone, byte: u8) -> Packet {
    phone.rtp.hears(byte).await
}

#[tokio::test]
async fn a_room_not_ready_is_retried_while_the_caller_hears_music() {
    let call = held_call("", &[]).await;
    let mut room = Room::new().await;
    let asked = Instant::now();
    let (status, _) = call
        .update(json!({ "sipUri": room.uri("late", false) }))
        .await;
    assert_eq!(status, 200);
    assert!(
        asked.elapsed() < Duration::from_millis(500),
        "200 without waiting for the room"
    );
    // Music keeps flowing while the room refuses twice.
    call.phone.rtp.drain();
    let listening = tokio::spawn({
        let socket = call.phone.rtp.socket.clone();
        async move {
            let peer = RtpPeer {
                addr: socket.local_addr().unwrap(),
                socket,
            };
            peer.collect(Duration::from_millis(900)).await
        }
    });
    room.next_invite().await.reject(480, None, &[]).await;
    room.next_invite().await.reject(503, None, &[]).await;
    let music = listening.await.unwrap();
    let (gap, continuous) = continuity(&music);
    assert!(music.len() >= 40, "{} packets of music", music.len());
    assert!(
        gap < Duration::from_millis(40),
        "gap of {gap:?} in the music"
    );
    assert!(continuous, "one unbroken stream");
    let third = room.next_invite().await;
    let (_room_leg, _send) = answer_with_pattern(&room, third, 0x55).await;
    caller_hears(&call.phone, 0x55).await;
    let state = call.wait(|c| c["state"] == "bridged").await;
    assert_eq!(state["transferAttempts"], 3);
    let codes: Vec<_> = details(&state, "call.transfer_failed")
        .iter()
        .map(|d| d["code"].clone())
        .collect();
    assert_eq!(codes, [json!(480), json!(503)]);
}

#[tokio::test]
async fn a_list_of_targets_is_tried_in_turn() {
    let call = held_call("", &[]).await;
    let mut room = Room::new().await;
    let targets = [room.uri("first", false), room.uri("second", true)];
    assert_eq!(call.update(json!({ "sipUris": targets })).await.0, 200);
    let first = room.next_invite().await;
    assert_eq!(first.info.request_user.as_deref(), Some("first"));
    first.reject(603, None, &[]).await;
    let second = room.next_invite().await;
    assert_eq!(second.info.request_user.as_deref(), Some("second"));
    assert_eq!(second.info.transport, "tcp");
    let (_leg, _send) = answer_with_pattern(&room, second, 0x33).await;
    caller_hears(&call.phone, 0x33).await;
    let state = call.wait(|c| c["state"] == "bridged").await;
    assert_eq!(state["target"], targets[1].as_str());
}

#[tokio::test]
async fn giving_up_after_transfer_timeout_leaves_the_caller_on_hold() {
    let call = held_call("transfer_timeout_secs = 1", &[]).await;
    let mut room = Room::new().await;
    call.update(json!({ "sipUri": room.uri("never", false) }))
        .await;
    let started = Instant::now();
    loop {
        let invite = tokio::select! {
            i = room.next_invite() => i,
            _ = tokio::time::sleep(Duration::from_secs(3)) => break,
        };
        invite.reject(480, None, &[]).await;
    }
    let state = call.wait(|c| c["state"] == "held").await;
    assert!(started.elapsed() < Duration::from_secs(4));
    let failures = details(&state, "call.transfer_failed");
    let last_failure = failures.last().expect("a failure in the timeline");
    assert_eq!(last_failure["final"], true);
    assert_eq!(last_failure["gaveUp"], "transfer_timeout_secs reached");
    // Still on music.
    call.phone.rtp.drain();
    assert!(
        call.phone
            .rtp
            .collect(Duration::from_millis(300))
            .await
            .len()
            >= 12
    );
}

#[tokio::test]
async fn duplicate_updates_never_make_a_second_room_leg() {
    let call = held_call("", &[]).await;
    let mut room = Room::new().await;
    let target = json!({ "sipUri": room.uri("room", false) });
    let body = call.gw.update_body(&call.call_id, target.clone());
    let (a, b, c) = tokio::join!(
        call.gw.update_with_key(body.clone(), Some("key-1")),
        call.gw.update_with_key(body.clone(), Some("key-1")),
        call.gw.update(body.clone()),
    );
    assert_eq!((a.0, b.0, c.0), (200, 200, 200));
    assert_eq!(a.1, b.1, "a retried request gets the same answer");
    // Same key, another body; another target while one is under way: 409.
    let other = call
        .gw
        .update_body(&call.call_id, json!({ "sipUri": room.uri("other", false) }));
    let (status, reply) = call.gw.update_with_key(other.clone(), Some("key-1")).await;
    assert_eq!(status, 409, "{reply}");
    assert!(reply["error"].as_str().unwrap().contains("Idempotency-Key"));
    assert_eq!(call.gw.update(other).await.0, 409);

    let invite = room.next_invite().await;
    let (_leg, _send) = answer_with_pattern(&room, invite, 0x44).await;
    call.wait(|c| c["state"] == "bridged").await;
    // A late duplicate after the bridge is absorbed too.
    assert_eq!(call.gw.update(body).await.0, 200);
    let extra = tokio::time::timeout(Duration::from_millis(700), room.next_invite()).await;
    assert!(extra.is_err(), "the room saw a second INVITE");
    let (_, state) = call.gw.get_call(&call.call_id).await;
    assert_eq!(state["transferAttempts"], 1);
}

#[tokio::test]
async fn a_bridged_call_moves_to_another_room_then_back_to_hold() {
    let mut call = held_call("", &[]).await;
    let mut room1 = Room::new().await;
    let mut room2 = Room::new().await;
    call.update(json!({ "sipUri": room1.uri("one", false) }))
        .await;
    let invite1 = room1.next_invite().await;
    let (mut leg1, _send1) = answer_with_pattern(&room1, invite1, 0x11).await;
    let before = caller_hears(&call.phone, 0x11).await;

    assert_eq!(
        call.update(json!({ "sipUri": room2.uri("two", false) }))
            .await
            .0,
        200
    );
    let invite2 = room2.next_invite().await;
    // Make before break: room 1 still speaks while room 2 is asked.
    caller_hears(&call.phone, 0x11).await;
    let (mut leg2, _send2) = answer_with_pattern(&room2, invite2, 0x22).await;
    let after = caller_hears(&call.phone, 0x22).await;
    assert_eq!(
        after.header.ssrc, before.header.ssrc,
        "one stream for the caller"
    );
    assert_eq!(
        within(5, "BYE at room 1", leg1.next_event()).await,
        LegEvent::Bye
    );
    let state = call.wait(|c| c["state"] == "bridged").await;
    assert_eq!(state["target"], room2.uri("two", false));

    let (status, _) = call
        .gw
        .post(&format!("/v1/calls/{}/hold", call.call_id))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        within(5, "BYE at room 2", leg2.next_event()).await,
        LegEvent::Bye
    );
    call.wait(|c| c["state"] == "held").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    call.phone.rtp.drain();
    let music = call.phone.rtp.collect(Duration::from_millis(500)).await;
    assert!(music.len() >= 22, "{} packets of music", music.len());
    assert!(music.iter().all(|p| p.header.ssrc == before.header.ssrc));
    assert!(
        music.iter().all(|p| !p.payload.iter().all(|b| *b == 0x22)),
        "music, not the room"
    );
    // And it can be transferred again.
    assert_eq!(
        call.update(json!({ "sipUri": room1.uri("again", false) }))
            .await
            .0,
        200
    );
    room1.next_invite().await;
    let _ = &mut call.caller;
}

#[tokio::test]
async fn a_room_hangup_returns_the_caller_to_hold_with_a_new_webhook() {
    let mut call = held_call(r#"on_room_hangup = "hold""#, &[("X-Lang", "de")]).await;
    let mut room = Room::new().await;
    call.update(json!({ "sipUri": room.uri("room", false) }))
        .await;
    let invite = room.next_invite().await;
    let (leg, _send) = answer_with_pattern(&room, invite, 0x66).await;
    caller_hears(&call.phone, 0x66).await;
    leg.hangup();
    let again = call.hooks.next().await.json();
    assert_eq!(again["callId"], call.call_id.as_str());
    assert_eq!(again["sipHeaders"]["X-Lang"], "de");
    call.wait(|c| c["state"] == "held").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    call.phone.rtp.drain();
    let music = call.phone.rtp.collect(Duration::from_millis(400)).await;
    assert!(music.len() >= 17, "music again: {} packets", music.len());
    // The caller's leg is still up: no BYE arrived.
    let bye = tokio::time::timeout(Duration::from_millis(200), call.caller.next_event()).await;
    assert!(bye.is_err(), "caller was hung up on");
}

#[tokio::test]
async fn refer_refused_by_the_caller_falls_back_to_the_bridge() {
    let call = held_call("", &[]).await;
    let mut room = Room::new().await;
    // Our test phone answers REFER with 405, as many carriers do.
    let HeldCall {
        mut caller,
        phone,
        gw,
        call_id,
        ..
    } = call;
    let answering = tokio::spawn(async move { caller.next_event().await });
    let body = gw.update_body(
        &call_id,
        json!({ "sipUri": room.uri("room", false), "mode": "refer" }),
    );
    assert_eq!(gw.update(body).await.0, 200);
    let invite = room.next_invite().await;
    let (_leg, _send) = answer_with_pattern(&room, invite, 0x77).await;
    caller_hears(&phone, 0x77).await;
    let state = gw
        .wait_call(&call_id, Duration::from_secs(5), |c| {
            c["state"] == "bridged"
        })
        .await;
    let failed = details(&state, "call.refer_failed");
    assert_eq!(failed.len(), 1, "{state:#}");
    assert_eq!(failed[0]["code"], 405);
    answering.abort();
}

#[tokio::test]
async fn hold_timeout_plays_the_announcement_then_hangs_up() {
    let wav = std::env::temp_dir().join(format!("pinless-bye-{}.wav", uuid::Uuid::new_v4()));
    silent_wav(&wav, 0.6);
    let extra = format!(
        "max_hold_secs = 1\ntimeout_announcement = \"{}\"",
        wav.display()
    );
    let mut call = held_call(&extra, &[]).await;
    // From the webhook (a few ms after the answer), not from the start of
    // a gateway whose start-up time varies with the machine's load: the
    // hold's second, then the announcement's 0.6 s.
    let held = Instant::now();
    let packets = call.phone.rtp.collect(Duration::from_millis(1300)).await;
    let bye = within(3, "BYE after the announcement", call.caller.next_event()).await;
    let ended_after = held.elapsed();
    assert_eq!(bye, LegEvent::Bye);
    assert!(
        ended_after > Duration::from_millis(1400) && ended_after < Duration::from_millis(2300),
        "hung up after {ended_after:?}"
    );
    let silent = |p: &Packet| p.payload.iter().all(|b| matches!(b, 0xFF | 0x7F));
    let tail = &packets[packets.len() - 10..];
    assert!(tail.iter().all(silent), "the announcement (silence) plays");
    assert!(!packets[..10].iter().all(silent), "music played before");
    let (_, continuous) = continuity(&packets);
    assert!(continuous, "one stream across music and announcement");
    let state = call.wait(|c| c["state"] == "ended").await;
    assert_eq!(state["endReason"], "hold_timeout");
    let _ = std::fs::remove_file(wav);
}

#[tokio::test]
async fn hold_timeout_transfers_to_the_overflow_uri() {
    let mut room = Room::new().await;
    let extra = format!(
        "max_hold_secs = 1\nhold_timeout_action = \"transfer\"\ntimeout_sip_uri = \"{}\"",
        room.uri("overflow", false)
    );
    let call = held_call(&extra, &[("X-Customer-Id", "42")]).await;
    let invite = room.next_invite().await;
    assert_eq!(invite.info.request_user.as_deref(), Some("overflow"));
    assert!(
        invite
            .info
            .custom_headers
            .contains(&("X-Customer-Id".into(), "42".into()))
    );
    let (_leg, _send) = answer_with_pattern(&room, invite, 0x12).await;
    caller_hears(&call.phone, 0x12).await;
    let events = call.events().await;
    assert!(
        events.contains(&"call.hold_timeout".to_string()),
        "{events:?}"
    );
}

#[tokio::test]
async fn the_events_webhook_tells_the_whole_call_in_order() {
    let mut events_rx = WebhookReceiver::start(&[]).await;
    let extra = format!("events_url = \"http://{}/events\"", events_rx.addr);
    let call = held_call(&extra, &[]).await;
    let mut room = Room::new().await;
    call.update(json!({ "sipUri": room.uri("busy", false) }))
        .await;
    room.next_invite().await.reject(486, None, &[]).await;
    call.wait(|c| c["state"] == "held").await;
    call.update(json!({ "sipUri": room.uri("room", false) }))
        .await;
    let invite = room.next_invite().await;
    let (mut leg, _send) = answer_with_pattern(&room, invite, 0x21).await;
    caller_hears(&call.phone, 0x21).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    call.caller.hangup();
    within(5, "BYE at the room", leg.next_event()).await;

    let mut got = Vec::new();
    while got
        .last()
        .map(|e: &serde_json::Value| e["type"] != "call.ended")
        != Some(false)
    {
        let hook = events_rx.next().await;
        assert!(hook.header("X-Pinless-Signature").is_some());
        assert!(hook.header("webhook-id").is_some());
        got.push(hook.json());
    }
    let types: Vec<_> = got.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "call.held",
            "call.transfer_started",
            "call.transfer_failed",
            "call.returned_to_hold",
            "call.transfer_started",
            "call.bridged",
            "call.ended"
        ]
    );
    assert!(got.iter().all(|e| e["callId"] == call.call_id.as_str()));
    assert_eq!(got[2]["data"]["code"], 486);
    let ended = &got[6]["data"];
    assert_eq!(ended["by"], "caller");
    assert!(ended["talkMs"].as_u64().unwrap() >= 200, "{ended}");
    assert!(ended["holdMs"].as_u64().unwrap() > 0, "{ended}");
}

#[tokio::test]
async fn a_caller_leaving_between_retries_stops_them_and_nothing_lingers() {
    let call = held_call("", &[]).await;
    let mut room = Room::new().await;
    call.update(json!({ "sipUri": room.uri("late", false) }))
        .await;
    room.next_invite().await.reject(480, None, &[]).await;
    // The retry is now waiting on its backoff; the caller gives up.
    call.caller.hangup();
    call.gw
        .wait_call(&call.call_id, Duration::from_secs(5), |c| {
            c["state"] == "ended"
        })
        .await;
    let again = tokio::time::timeout(Duration::from_millis(1500), room.next_invite()).await;
    assert!(again.is_err(), "a retry went out after the caller left");
    assert_eq!(call.gw.gw.registry.len(), 0);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(call.gw.metric("pinless_hold_streams").await, 0.0);
    assert_eq!(call.gw.metric("pinless_calls_live").await, 0.0);
}
