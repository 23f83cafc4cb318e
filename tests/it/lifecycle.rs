//! Stops that drop no caller, on the real binary: SIGTERM in drain mode
//! keeps serving live calls (updates, transfers, hang-ups) while new ones
//! get 503, and exits when they are done or `drain_secs` have passed
//! (then hanging up the rest with a Reason header).

use crate::support;

use std::time::Duration;
use support::binary::Binary;
use support::raw::RawSip;
use support::*;

/// OPTIONS outside any dialog, raw.
async fn options(sip: &RawSip) -> u16 {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let msg = format!(
        "OPTIONS sip:support@{to} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK{id}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:probe@{local}>;tag={id}\r\nTo: <sip:support@{to}>\r\n\
         Call-ID: {id}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
        to = sip.to,
        local = sip.local,
    );
    sip.send(&msg).await;
    sip.response(Duration::from_secs(3), true)
        .await
        .map(|r| r.code())
        .unwrap_or(0)
}

async fn get(url: &str) -> (u16, serde_json::Value) {
    let r = reqwest::get(url).await.unwrap();
    let status = r.status().as_u16();
    let path = r.url().path().to_string();
    let body = r.json().await.unwrap_or_default();
    crate::support::openapi::check("GET", &path, status, &body);
    (status, body)
}

#[tokio::test]
async fn drain_serves_live_calls_refuses_new_ones_and_exits_when_they_end() {
    let mut hooks = WebhookReceiver::start(&[]).await;
    let mut gw = Binary::new(
        "shutdown = \"drain\"\ndrain_secs = 60",
        &hooks.url(),
        "",
        "",
    );
    gw.start().await;
    let target = format!("sip:support@{}", gw.sip);
    let mut room = Room::new().await;

    // One call bridged before the stop, one held.
    let bridged = Phone::new().await;
    let (bridged_leg, _) = bridged.call(&target, &[]).await;
    let first = hooks.next().await.json()["callId"]
        .as_str()
        .unwrap()
        .to_string();
    let held = Phone::new().await;
    let (held_leg, _) = held.call(&target, &[]).await;
    let second = hooks.next().await.json()["callId"]
        .as_str()
        .unwrap()
        .to_string();
    let http = reqwest::Client::new();
    let room_uri = room.uri("room", false);
    let domain = hooks_domain(&gw);
    let update = |id: &str| {
        http.post(format!("{}/v1/dialin/pinlessCallUpdate", gw.api))
            .bearer_auth(TOKEN)
            .json(&serde_json::json!({
                "callId": id,
                "callDomain": domain,
                "sipUri": room_uri,
            }))
            .send()
    };
    assert_eq!(update(&first).await.unwrap().status(), 200);
    let invite = room.next_invite().await;
    let (mut room_leg_1, _) = room.answer(invite).await;

    gw.signal("TERM");
    tokio::time::sleep(Duration::from_millis(300)).await;

    // No new calls: OPTIONS and INVITE get 503, /readyz 503, /healthz 200.
    let probe = RawSip::new(gw.sip).await;
    assert_eq!(options(&probe).await, 503);
    let caller = RawSip::new(gw.sip).await;
    caller
        .send(&caller.invite("support", "late-caller", 1, ""))
        .await;
    let refused = caller
        .response(Duration::from_secs(3), true)
        .await
        .expect("an answer to a new INVITE");
    assert_eq!(refused.code(), 503, "{}", refused.0);
    assert!(refused.header("Retry-After").is_some());
    assert_eq!(
        get(&format!("{}/readyz", gw.api)).await,
        (503, serde_json::json!({ "status": "draining" }))
    );
    assert_eq!(get(&format!("{}/healthz", gw.api)).await.0, 200);

    // The held caller still hears music, and can still be transferred.
    held.rtp.drain();
    let music = held.rtp.collect(Duration::from_millis(500)).await;
    assert!(
        music.len() >= 15,
        "music goes on while draining: {}",
        music.len()
    );
    assert_eq!(update(&second).await.unwrap().status(), 200);
    let invite = room.next_invite().await;
    let (mut room_leg_2, _) = room.answer(invite).await;

    // Both callers hang up: the process exits 0 with both records.
    bridged_leg.hangup();
    held_leg.hangup();
    for leg in [&mut room_leg_1, &mut room_leg_2] {
        let bye = tokio::time::timeout(Duration::from_secs(5), leg.next_event()).await;
        assert!(bye.is_ok(), "no BYE at a room; log:\n{}", gw.log());
    }
    let status = gw.exited(10).await;
    assert!(status.success(), "{status:?}\n{}", gw.log());
    let records = gw.records();
    assert_eq!(records.len(), 2, "{records:?}");
    assert!(
        records
            .iter()
            .all(|(r, _)| r.as_deref() == Some("caller_hangup"))
    );
}

/// The callDomain the binary generated, from a call's view.
fn hooks_domain(gw: &Binary) -> String {
    let conn = rusqlite::Connection::open(gw.db()).unwrap();
    conn.query_row(
        "SELECT value FROM node WHERE key = 'call_domain'",
        [],
        |r| r.get(0),
    )
    .unwrap()
}

#[tokio::test]
async fn drain_deadline_hangs_up_the_rest_with_a_reason() {
    let mut hooks = WebhookReceiver::start(&[]).await;
    let mut gw = Binary::new("shutdown = \"drain\"\ndrain_secs = 1", &hooks.url(), "", "");
    gw.start().await;
    let caller = RawSip::new(gw.sip).await;
    caller
        .send(&caller.invite("support", "held-to-the-end", 1, ""))
        .await;
    let ok = caller
        .response(Duration::from_secs(5), true)
        .await
        .expect("answered");
    assert_eq!(ok.code(), 200);
    caller.ack(&ok, "held-to-the-end").await;
    hooks.next().await;

    gw.signal("TERM");
    let bye = caller
        .request(Duration::from_secs(6))
        .await
        .expect("a BYE once drain_secs pass");
    assert!(bye.0.starts_with("BYE "), "{}", bye.0);
    assert_eq!(
        bye.header("Reason"),
        Some("SIP;cause=503;text=\"shutting down\""),
        "{}",
        bye.0
    );
    caller.ok(&bye).await;
    // Calls were cut: the exit status says so (3), unlike a clean drain.
    let status = gw.exited(10).await;
    assert_eq!(status.code(), Some(3), "{status:?}\n{}", gw.log());
    assert_eq!(
        gw.records(),
        vec![(Some("shutdown".to_string()), "+15557654321".to_string())]
    );
}

/// A caller that vanishes without a BYE (a dropped mobile) is ended after
/// `rtp_timeout_secs` of silence, and its room gets BYE; a caller that
/// keeps talking is not.
#[tokio::test]
async fn a_silent_caller_is_ended_after_rtp_timeout_and_its_room_gets_bye() {
    let mut hooks = WebhookReceiver::start(&[]).await;
    let gw = TestGateway::start_with_env(
        &hooks.url(),
        "",
        &[("PINLESS_MEDIA__RTP_TIMEOUT_SECS", "2")],
    )
    .await;
    let target = gw.sip_uri("support", false);
    let mut room = Room::new().await;
    let mut calls = Vec::new();
    for _ in 0..2 {
        let phone = Phone::new().await;
        let (leg, media) = phone.call(&target, &[]).await;
        let id = hooks.next().await.json()["callId"]
            .as_str()
            .unwrap()
            .to_string();
        let (status, _) = gw
            .update(gw.update_body(
                &id,
                serde_json::json!({ "sipUri": room.uri("room", false) }),
            ))
            .await;
        assert_eq!(status, 200);
        let invite = room.next_invite().await;
        let (room_leg, room_side) = room.answer(invite).await;
        calls.push((phone, leg, media, id, room_leg, room_side));
    }
    // Both rooms talk all along; caller 0 talks, caller 1 falls silent.
    let mut talk = Vec::new();
    for (i, (phone, _, media, _, _, room_side)) in calls.iter().enumerate() {
        let n = if i == 0 { 250 } else { 25 };
        talk.push(phone.rtp.send_pattern(media.addr, 0, 0x11, n));
        talk.push(room.rtp.send_pattern(room_side.addr, 0, 0x22, 250));
    }
    let (_, _, _, silent_id, silent_room, _) = &mut calls[1];
    let ended = gw
        .wait_call(silent_id, Duration::from_secs(6), |c| c["state"] == "ended")
        .await;
    assert_eq!(ended["endReason"], "rtp_timeout", "{ended:#}");
    within(
        3,
        "BYE at the silent caller's room",
        silent_room.next_event(),
    )
    .await;
    let (_, _, _, talking_id, _, _) = &calls[0];
    let (_, talking) = gw.get_call(talking_id).await;
    assert_eq!(
        talking["state"], "bridged",
        "the talking caller stays: {talking:#}"
    );
    assert_eq!(
        gw.metric("pinless_calls_ended_total{reason=\"rtp_timeout\"}")
            .await,
        1.0
    );
    for t in talk {
        t.abort();
    }
}
