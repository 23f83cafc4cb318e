//! DTMF from a held or bridged caller, over real SIP, RTP and HTTP on
//! loopback: RFC 4733 telephone-events and SIP INFO become one
//! `call.dtmf` event per key press at the entry's `events_url`; a key the
//! entry maps in `dtmf_transfer` moves a held caller to its room; while
//! bridged, the caller's events still reach the room.

use crate::support;

use pinless::codec::LegCodec;
use pinless::media::rtp::{HEADER_LEN, Header};
use pinless::sip::sdp;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::Duration;
use support::*;

/// Sends one key press as a phone does (RFC 4733 §2.5): a start packet
/// (marker set), continuation packets every 20 ms with a growing
/// duration, then the end packet three times, all with the event's
/// timestamp. The press lasts 100 ms (duration 800 at 8 kHz).
async fn press(rtp: &RtpPeer, to: SocketAddr, pt: u8, event: u8, seq: &mut u16, ts: u32) {
    let ssrc = 0x0D7F_0001;
    let mut send = |marker: bool, end: bool, duration: u16| {
        let mut head = [0u8; HEADER_LEN];
        Header {
            marker,
            payload_type: pt,
            sequence: *seq,
            timestamp: ts,
            ssrc,
        }
        .write(&mut head);
        *seq = seq.wrapping_add(1);
        let d = duration.to_be_bytes();
        let flags = if end { 0x80 | 10 } else { 10 };
        [&head[..], &[event, flags, d[0], d[1]]].concat()
    };
    let mut packets = vec![send(true, false, 160)];
    for duration in [320, 480, 640] {
        packets.push(send(false, false, duration));
    }
    for _ in 0..3 {
        packets.push(send(false, true, 800));
    }
    for p in packets {
        rtp.socket.send_to(&p, to).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The events posted to `rx` until `call.ended`, in order.
async fn events_until_ended(rx: &mut WebhookReceiver) -> Vec<Value> {
    let mut got: Vec<Value> = Vec::new();
    while got.last().is_none_or(|e| e["type"] != "call.ended") {
        got.push(within(10, "call events", rx.next()).await.json());
    }
    got
}

/// The `data` of every `call.dtmf` among `events`.
fn presses(events: &[Value]) -> Vec<Value> {
    events
        .iter()
        .filter(|e| e["type"] == "call.dtmf")
        .map(|e| e["data"].clone())
        .collect()
}

/// Waits for the next `call.dtmf` at `rx`, skipping other events.
async fn next_press(rx: &mut WebhookReceiver) -> Value {
    within(5, "a call.dtmf event", async {
        loop {
            let e = rx.next().await.json();
            if e["type"] == "call.dtmf" {
                return e["data"].clone();
            }
        }
    })
    .await
}

fn events_url(rx: &WebhookReceiver) -> String {
    format!("events_url = \"http://{}/events\"\n", rx.addr)
}

#[tokio::test]
async fn rfc4733_presses_are_one_call_dtmf_each() {
    let mut events = WebhookReceiver::start(&[]).await;
    let call = held_call(&events_url(&events), &[]).await;
    let pt = call
        .media
        .event_payload_type
        .expect("telephone-event agreed");
    let mut seq = 1000;
    press(&call.phone.rtp, call.media.addr, pt, 5, &mut seq, 8000).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    press(&call.phone.rtp, call.media.addr, pt, 11, &mut seq, 16000).await;
    // Audio between and after the presses is no press.
    call.phone
        .rtp
        .send_pattern(call.media.addr, 0, 0x55, 10)
        .await
        .unwrap();
    let view = call.wait(|c| details(c, "call.dtmf").len() >= 2).await;
    assert_eq!(
        details(&view, "call.dtmf"),
        [
            json!({"digit": "5", "durationMs": 100}),
            json!({"digit": "#", "durationMs": 100})
        ],
        "{view}"
    );
    assert_eq!(view["state"], "held", "an unmapped key moves nobody");
    call.caller.hangup();
    let got = events_until_ended(&mut events).await;
    assert_eq!(
        presses(&got),
        [
            json!({"digit": "5", "durationMs": 100}),
            json!({"digit": "#", "durationMs": 100})
        ],
        "{got:?}"
    );
}

#[tokio::test]
async fn a_dtmf_transfer_key_moves_the_held_caller_to_its_room() {
    let mut room = Room::new().await;
    let extra = format!(
        "dtmf_transfer = {{ \"0\" = \"{}\" }}",
        room.uri("operator", false)
    );
    let call = held_call(&extra, &[]).await;
    let pt = call
        .media
        .event_payload_type
        .expect("telephone-event agreed");
    let mut seq = 1;
    // A key with no room: still held.
    press(&call.phone.rtp, call.media.addr, pt, 1, &mut seq, 800).await;
    let none = tokio::time::timeout(Duration::from_millis(300), room.next_invite()).await;
    assert!(none.is_err(), "an unmapped key sent an INVITE");
    press(&call.phone.rtp, call.media.addr, pt, 0, &mut seq, 8000).await;
    let invite = room.next_invite().await;
    assert_eq!(invite.info.request_user.as_deref(), Some("operator"));
    let (_leg, offer) = room.answer(invite).await;
    let view = call.wait(|c| c["state"] == "bridged").await;
    assert_eq!(view["target"], room.uri("operator", false));
    let started = details(&view, "call.transfer_started");
    assert_eq!(started.len(), 1, "{view}");
    assert_eq!(started[0]["mode"], "bridge");
    // The room's audio reaches the caller: the call is bridged for real.
    room.rtp.send_pattern(offer.addr, 0, 0x3C, 50);
    call.phone.rtp.hears(0x3C).await;
}

#[tokio::test]
async fn sip_info_dtmf_is_a_call_dtmf_too() {
    let mut events = WebhookReceiver::start(&[]).await;
    let mut call = held_call(&events_url(&events), &[]).await;
    let relay = call
        .caller
        .info("application/dtmf-relay", "Signal=5\r\nDuration=160\r\n");
    assert_eq!(relay.await.unwrap(), Some(200));
    assert_eq!(
        next_press(&mut events).await,
        json!({"digit": "5", "durationMs": 160})
    );
    let plain = call.caller.info("application/dtmf", "7");
    assert_eq!(plain.await.unwrap(), Some(200));
    assert_eq!(
        next_press(&mut events).await,
        json!({"digit": "7", "durationMs": 0})
    );
    // Another body: answered as before, no press.
    let other = call
        .caller
        .info("application/media_control+xml", "<media_control/>");
    assert_eq!(other.await.unwrap(), Some(200));
    // A DTMF body that names no key is refused.
    let bad = call
        .caller
        .info("application/dtmf-relay", "Duration=160\r\n");
    assert_eq!(bad.await.unwrap(), Some(400));
    let (_, view) = call.gw.get_call(&call.call_id).await;
    assert_eq!(details(&view, "call.dtmf").len(), 2, "{view}");
    call.caller.hangup();
    let got = events_until_ended(&mut events).await;
    assert_eq!(presses(&got).len(), 0, "no press after the two: {got:?}");
}

#[tokio::test]
async fn while_bridged_the_callers_events_reach_the_room_mapped() {
    let mut events = WebhookReceiver::start(&[]).await;
    let mut room = Room::new().await;
    let extra = format!(
        "{}dtmf_transfer = {{ \"0\" = \"{}\" }}",
        events_url(&events),
        room.uri("other", false)
    );
    let call = held_call(&extra, &[]).await;
    call.update(json!({ "sipUri": room.uri("room", false) }))
        .await;
    let invite = room.next_invite().await;
    // The room names telephone-event 96, the caller 101: the relay maps.
    let offer = sdp::parse(&invite.info.sdp).unwrap();
    let codec = LegCodec {
        event_payload_type: Some(96),
        ..offer.choose()
    };
    let answer = sdp::answer(room.rtp.addr.ip(), room.rtp.addr.port(), codec);
    let mut room_leg = invite.accept(&room.stack, answer).await.unwrap();
    call.wait(|c| c["state"] == "bridged").await;
    // A key the caller sends as SIP INFO goes on to the room as SIP INFO.
    let mut caller = call.caller;
    let sent = caller.info("application/dtmf-relay", "Signal=#\r\nDuration=120\r\n");
    assert_eq!(sent.await.unwrap(), Some(200));
    let at_room = within(5, "the key at the room", async {
        loop {
            if let pinless::sip::LegEvent::Dtmf(p) = room_leg.next_event().await {
                return p;
            }
        }
    })
    .await;
    assert_eq!((at_room.digit, at_room.duration_ms), ('#', 120));
    assert_eq!(
        next_press(&mut events).await,
        json!({"digit": "#", "durationMs": 120})
    );
    let caller_pt = call.media.event_payload_type.unwrap();
    assert_eq!(caller_pt, 101);
    let mut seq = 1;
    let sending = {
        let rtp = RtpPeer {
            socket: call.phone.rtp.socket.clone(),
            addr: call.phone.rtp.addr,
        };
        let to = call.media.addr;
        tokio::spawn(async move { press(&rtp, to, caller_pt, 0, &mut seq, 8000).await })
    };
    let heard = room.rtp.collect(Duration::from_millis(400)).await;
    sending.await.unwrap();
    let at_room: Vec<_> = heard
        .iter()
        .filter(|p| p.header.payload_type == 96)
        .collect();
    assert_eq!(at_room.len(), 7, "every event packet relayed: {heard:?}");
    assert!(at_room.iter().all(|p| p.payload[0] == 0));
    assert_eq!(at_room.last().unwrap().payload[1] & 0x80, 0x80, "end bit");
    // Reported once, and a mapped key does not move a bridged caller.
    assert_eq!(
        next_press(&mut events).await,
        json!({"digit": "0", "durationMs": 100})
    );
    let more = tokio::time::timeout(Duration::from_millis(300), room.next_invite()).await;
    assert!(more.is_err(), "a key moved a bridged caller");
    let (_, view) = call.gw.get_call(&call.call_id).await;
    assert_eq!(view["state"], "bridged");
    assert_eq!(details(&view, "call.dtmf").len(), 2, "{view}");
    drop(caller);
}
