//! The product's one path, end to end over real SIP, RTP and HTTP on
//! loopback: call in, hold music, signed webhook, update, transfer, bridge,
//! hang-up — and the ways it must fail gracefully.

use crate::support;

use pinless::media::Law;
use pinless::sip::{DialOutcome, LegEvent};
use serde_json::json;
use std::time::Duration;
use support::*;

fn verify_signatures(hook: &Hook) {
    // Standard Webhooks (checked by the reference library) and the
    // pinless/Daily style (recomputed), with the entry's secret.
    assert!(
        hook.standard_verifies(SECRET),
        "Standard Webhooks signature"
    );
    assert!(
        hook.pinless_verifies("X-Pinless-Signature", SECRET),
        "X-Pinless-Signature"
    );
    let ts_ms: u64 = hook
        .header("X-Pinless-Timestamp")
        .and_then(|t| t.parse().ok())
        .expect("timestamp is Unix ms");
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert!(
        now_ms.abs_diff(ts_ms) < 60_000,
        "timestamp is in milliseconds and current"
    );
}

/// Checks a second of hold music: 50±2 packets, one SSRC, consecutive
/// sequence numbers, timestamps stepping by 160, and not silence.
fn assert_hold_music(packets: &[support::peers::Packet], law: Law) {
    assert!(
        (48..=52).contains(&packets.len()),
        "{} packets in one second",
        packets.len()
    );
    let ssrc = packets[0].header.ssrc;
    for w in packets.windows(2) {
        assert_eq!(w[1].header.ssrc, ssrc);
        assert_eq!(w[1].header.sequence, w[0].header.sequence.wrapping_add(1));
        assert_eq!(
            w[1].header.timestamp,
            w[0].header.timestamp.wrapping_add(160)
        );
    }
    let samples: Vec<i32> = packets
        .iter()
        .flat_map(|p| p.payload.iter().map(|b| law.decode(*b) as i32))
        .collect();
    let rms = (samples.iter().map(|s| (s * s) as f64).sum::<f64>() / samples.len() as f64).sqrt();
    assert!(rms > 500.0, "hold music is audible (rms {rms:.0})");
    assert!(packets.iter().all(|p| p.payload.len() == 160));
}

#[tokio::test]
async fn held_call_is_signed_transferred_bridged_and_hung_up() {
    let mut hooks = WebhookReceiver::start(&[]).await;
    let gw = TestGateway::start(&hooks.url(), "").await;
    let phone = Phone::new().await;
    let mut room = Room::new().await;

    let (caller, media) = phone
        .call(
            &gw.sip_uri("support", false),
            &[
                ("X-Lang", "de"),
                ("X-Lang", "fr"),
                ("User-to-User", "42;encoding=hex"),
            ],
        )
        .await;

    // Webhook: fields, types, custom headers, both signatures.
    let hook = hooks.next().await;
    verify_signatures(&hook);
    assert_eq!(hook.header("content-type"), Some("application/json"));
    let body = hook.json();
    assert_eq!(
        body["To"],
        format!("sip:support@{}", gw.gw.sip_udp.unwrap())
    );
    assert_eq!(body["From"], "+15557654321");
    assert_eq!(body["callDomain"], gw.gw.call_domain.as_str());
    assert_eq!(
        body["sipHeaders"],
        json!({"X-Lang": "de, fr", "User-to-User": "42;encoding=hex"})
    );
    let call_id = body["callId"]
        .as_str()
        .expect("callId is a string")
        .to_string();

    // Hold music: a second of it, from the port in the gateway's SDP.
    let held = phone.rtp.collect(Duration::from_millis(1000)).await;
    assert_hold_music(&held, Law::Mu);
    assert_eq!(
        held[0].from, media.addr,
        "RTP comes from the port in our SDP"
    );
    let hold_ssrc = held[0].header.ssrc;
    let (status, call) = gw.get_call(&call_id).await;
    assert_eq!((status, call["state"].as_str()), (200, Some("held")));

    // Update: answered at once, room INVITE carries both header sets.
    let started = std::time::Instant::now();
    let (status, reply) = gw
        .update(json!({"callId": call_id, "callDomain": gw.gw.call_domain, "sipUri": room.uri("room1", false), "headers": {"X-Customer": "7"}}))
        .await;
    assert_eq!(status, 200, "{reply}");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "update answers without waiting for the room"
    );
    let invite = room.next_invite().await;
    let h = &invite.info.custom_headers;
    for want in [
        ("X-Lang", "de"),
        ("X-Lang", "fr"),
        ("User-to-User", "42;encoding=hex"),
        ("X-Customer", "7"),
    ] {
        assert!(
            h.iter().any(|(n, v)| n == want.0 && v == want.1),
            "room INVITE lacks {want:?}: {h:?}"
        );
    }
    // Before the room answers, the caller still hears music.
    let still = phone.rtp.collect(Duration::from_millis(200)).await;
    assert!(still.len() >= 8 && still.iter().all(|p| p.header.ssrc == hold_ssrc));
    let (mut room_leg, gw_room_media) = room.answer(invite).await;
    gw.wait_call(&call_id, Duration::from_secs(5), |c| {
        c["state"] == "bridged"
    })
    .await;

    // Room → caller: the room's pattern arrives, under the caller's SSRC.
    phone.rtp.drain();
    room.rtp.send_pattern(gw_room_media.addr, 0, 0x2A, 25);
    let got = phone.rtp.collect(Duration::from_millis(700)).await;
    let relayed: Vec<_> = got
        .iter()
        .filter(|p| p.payload.iter().all(|b| *b == 0x2A))
        .collect();
    assert!(
        relayed.len() >= 20,
        "room audio reached the caller: {} of {}",
        relayed.len(),
        got.len()
    );
    assert!(
        relayed.iter().all(|p| p.header.ssrc == hold_ssrc),
        "caller sees one continuous SSRC"
    );
    for w in relayed.windows(2) {
        assert_eq!(w[1].header.sequence, w[0].header.sequence.wrapping_add(1));
    }
    // Caller → room.
    room.rtp.drain();
    phone.rtp.send_pattern(media.addr, 0, 0x55, 25);
    let got = room.rtp.collect(Duration::from_millis(700)).await;
    let relayed = got
        .iter()
        .filter(|p| p.payload.iter().all(|b| *b == 0x55))
        .count();
    assert!(relayed >= 20, "caller audio reached the room: {relayed}");

    // Caller hangs up: the room gets BYE, the call ends, music stops.
    caller.hangup();
    let event = within(5, "BYE at the room", room_leg.next_event()).await;
    assert_eq!(event, LegEvent::Bye);
    let ended = gw
        .wait_call(&call_id, Duration::from_secs(5), |c| c["state"] == "ended")
        .await;
    assert_eq!(ended["endReason"], "caller_hangup");
    let events = event_names(&ended);
    for e in [
        "call.held",
        "webhook.attempt",
        "call.transfer_started",
        "call.bridged",
        "call.ended",
    ] {
        assert!(
            events.iter().any(|x| x == e),
            "timeline lacks {e}: {events:?}"
        );
    }
    assert_eq!(gw.gw.registry.len(), 0, "registry entry released");
}

#[tokio::test]
async fn room_hangup_ends_the_caller_over_tcp() {
    let mut hooks = WebhookReceiver::start(&[]).await;
    let gw = TestGateway::start(&hooks.url(), "").await;
    let phone = Phone::new().await;
    let mut room = Room::new().await;
    let (mut caller, _) = phone.call(&gw.sip_uri("+15551230000", true), &[]).await;
    let call_id = hooks.next().await.json()["callId"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, _) = gw
        .update(json!({"callId": call_id, "callDomain": gw.gw.call_domain, "sipUri": room.uri("room2", true)}))
        .await;
    assert_eq!(status, 200);
    let invite = room.next_invite().await;
    assert_eq!(
        invite.info.transport, "tcp",
        "sipUri ;transport=tcp is honoured"
    );
    let (room_leg, _) = room.answer(invite).await;
    gw.wait_call(&call_id, Duration::from_secs(5), |c| {
        c["state"] == "bridged"
    })
    .await;
    room_leg.hangup();
    assert_eq!(
        within(5, "BYE at the caller", caller.next_event()).await,
        LegEvent::Bye
    );
    let ended = gw
        .wait_call(&call_id, Duration::from_secs(5), |c| c["state"] == "ended")
        .await;
    assert_eq!(ended["endReason"], "room_hangup");
}

#[tokio::test]
async fn a_busy_room_leaves_the_caller_on_hold_and_a_retry_succeeds() {
    let call = held_call("", &[]).await;
    let mut room = Room::new().await;
    let status = call
        .update(json!({ "sipUri": room.uri("busy", false) }))
        .await
        .0;
    assert_eq!(status, 200);
    room.next_invite().await.reject(486, None, &[]).await;
    let state = call.wait(|c| c["state"] == "held").await;
    let failed = details(&state, "call.transfer_failed");
    assert_eq!(failed[0]["code"], 486, "{state:#}");
    call.phone.rtp.drain();
    let music = call.phone.rtp.collect(Duration::from_millis(1000)).await;
    assert_hold_music(&music, Law::Mu);

    let status = call
        .update(json!({ "sipUri": room.uri("good", false) }))
        .await
        .0;
    assert_eq!(status, 200);
    let invite = room.next_invite().await;
    let (_room_leg, _) = room.answer(invite).await;
    let state = call.wait(|c| c["state"] == "bridged").await;
    assert_eq!(state["transferAttempts"], 2);
}

#[tokio::test]
async fn caller_hanging_up_mid_transfer_cancels_the_room_invite() {
    let call = held_call("", &[]).await;
    let mut room = Room::new().await;
    call.update(json!({ "sipUri": room.uri("slow", false) }))
        .await;
    let mut invite = room.next_invite().await;
    invite.ring(&room.stack).await;
    call.caller.hangup();
    within(5, "CANCEL at the room", invite.cancelled()).await;
    invite.reject(487, None, &[]).await;
    call.gw
        .wait_call(&call.call_id, Duration::from_secs(5), |c| {
            c["state"] == "ended"
        })
        .await;
    assert_eq!(call.gw.gw.registry.len(), 0);
}

#[tokio::test]
async fn unmatched_calls_bad_codecs_and_api_errors() {
    let hooks = WebhookReceiver::start(&[]).await;
    let gw = TestGateway::start(&hooks.url(), "").await;
    let phone = Phone::new().await;

    let mut d = phone.dial(&gw.sip_uri("nobody", false), &[]);
    assert!(matches!(
        within(5, "404", d.outcome()).await,
        DialOutcome::Rejected { code: 404, .. }
    ));

    // A codec pinless does not speak (G.729; this was G.722 until G.722
    // was added, see tests/g722.rs).
    let g729 = format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {} RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\n",
        phone.rtp.addr.port()
    );
    let mut d = phone.dial_sdp(&gw.sip_uri("support", false), &[], g729);
    assert!(matches!(
        within(5, "488", d.outcome()).await,
        DialOutcome::Rejected { code: 488, .. }
    ));

    let url = gw.url("/v1/dialin/pinlessCallUpdate");
    let body =
        json!({"callId": "nope", "callDomain": gw.gw.call_domain, "sipUri": "sip:r@127.0.0.1"});
    let r = gw
        .http
        .post(&url)
        .bearer_auth("wrong")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = gw.http.post(&url).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let (status, err) = gw.update(body.clone()).await;
    assert_eq!(
        (status, err["error"].as_str()),
        (404, Some("unknown callId"))
    );
    let (status, err) = gw
        .update(json!({"callId": "x", "callDomain": gw.gw.call_domain}))
        .await;
    assert_eq!(status, 400);
    assert!(
        err["error"].as_str().unwrap().starts_with("sipUri"),
        "{err}"
    );
    let r = gw
        .http
        .post(&url)
        .bearer_auth(TOKEN)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // Repeated slashes are collapsed; health needs no token.
    let r = gw
        .http
        .post(gw.url("/v1//dialin/pinlessCallUpdate"))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(
        gw.http
            .get(gw.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let (status, _) = gw.get_call("nope").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn webhook_failures_are_retried_while_the_caller_hears_music() {
    let mut hooks = WebhookReceiver::start(&[503, 500]).await;
    let gw = TestGateway::start(&hooks.url(), "").await;
    let phone = Phone::new().await;
    let (_caller, _) = phone.call(&gw.sip_uri("support", false), &[]).await;
    let first = hooks.next().await;
    let second = hooks.next().await;
    let third = hooks.next().await;
    assert_eq!(
        (
            first.status_returned,
            second.status_returned,
            third.status_returned
        ),
        (503, 500, 200)
    );
    assert_eq!(
        first.header("webhook-id"),
        third.header("webhook-id"),
        "same id across retries"
    );
    verify_signatures(&third);
    let call_id = third.json()["callId"].as_str().unwrap().to_string();
    let music = phone.rtp.collect(Duration::from_millis(1000)).await;
    assert!(music.len() >= 48, "music throughout");
    let call = gw.get_call(&call_id).await.1;
    assert_eq!(details(&call, "webhook.attempt").len(), 3);
}

#[tokio::test]
async fn music_stops_within_40ms_of_a_hangup_from_either_side() {
    let mut hooks = WebhookReceiver::start(&[]).await;
    let gw = TestGateway::start(&hooks.url(), "").await;

    // The caller hangs up while held.
    let phone = Phone::new().await;
    let (caller, _) = phone.call(&gw.sip_uri("support", false), &[]).await;
    let call_id = hooks.next().await.json()["callId"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(phone.rtp.collect(Duration::from_millis(200)).await.len() >= 8);
    let bye_at = std::time::Instant::now();
    caller.hangup();
    let late = phone.rtp.collect(Duration::from_millis(300)).await;
    if let Some(last) = late.last() {
        assert!(
            last.at - bye_at < Duration::from_millis(40),
            "RTP went on {:?} after BYE",
            last.at - bye_at
        );
    }
    gw.wait_call(&call_id, Duration::from_secs(5), |c| c["state"] == "ended")
        .await;

    // The app hangs up (DELETE): the caller gets BYE and the music stops.
    let phone = Phone::new().await;
    let (mut caller, _) = phone.call(&gw.sip_uri("support", false), &[]).await;
    let call_id = hooks.next().await.json()["callId"]
        .as_str()
        .unwrap()
        .to_string();
    let r = gw
        .http
        .delete(gw.url(&format!("/v1/calls/{call_id}")))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        within(5, "BYE at the caller", caller.next_event()).await,
        LegEvent::Bye
    );
    let bye_seen = std::time::Instant::now();
    let late = phone.rtp.collect(Duration::from_millis(300)).await;
    if let Some(last) = late.last() {
        assert!(
            last.at - bye_seen < Duration::from_millis(40),
            "RTP went on after BYE"
        );
    }
    let ended = gw
        .wait_call(&call_id, Duration::from_secs(5), |c| c["state"] == "ended")
        .await;
    assert_eq!(ended["endReason"], "api_hangup");
    assert_eq!(gw.gw.registry.len(), 0);
}

/// OPTIONS answered 200, and every final response carries a To-tag.
#[tokio::test]
async fn options_is_answered_with_a_to_tag() {
    let hooks = WebhookReceiver::start(&[]).await;
    let gw = TestGateway::start(&hooks.url(), "").await;
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let me = sock.local_addr().unwrap();
    let target = gw.gw.sip_udp.unwrap();
    let msg = format!(
        "OPTIONS sip:support@{target} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKopt1;rport\r\n\
From: <sip:probe@{me}>;tag=p1\r\nTo: <sip:support@{target}>\r\nCall-ID: opt-1@test\r\n\
CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    );
    sock.send_to(msg.as_bytes(), target).await.unwrap();
    let mut buf = [0u8; 4096];
    let (n, _) = within(5, "OPTIONS response", sock.recv_from(&mut buf))
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(text.starts_with("SIP/2.0 200"), "{text}");
    let to = text
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("to:"))
        .unwrap();
    assert!(to.contains(";tag="), "To-tag on the 200: {to}");
    assert!(
        text.contains("INVITE") && text.to_ascii_lowercase().contains("allow"),
        "Allow lists INVITE: {text}"
    );
}
