//! Calls that survive a restart of the real binary: held callers and
//! bridged calls are saved at each state change, and after `kill -9` (or
//! SIGTERM in resume mode) the next start takes them over: the same RTP
//! port and SSRC with the sequence moving on, relaying both ways, in-dialog
//! requests answered, the timeline and updates carrying on.

use crate::support;

use pinless::sip::Leg;
use std::net::SocketAddr;
use std::time::Duration;
use support::binary::Binary;
use support::*;

/// What a held caller heard before the stop: the gateway's RTP source,
/// SSRC and last sequence number.
struct Heard {
    from: SocketAddr,
    ssrc: u32,
    seq: u16,
}

async fn last_heard(phone: &Phone) -> Heard {
    phone.rtp.drain();
    let packets = phone.rtp.collect(Duration::from_millis(300)).await;
    let last = packets.last().expect("music before the stop");
    Heard {
        from: last.from,
        ssrc: last.header.ssrc,
        seq: last.header.sequence,
    }
}

/// True when `later` comes after `earlier` in RTP sequence space.
fn after(later: u16, earlier: u16) -> bool {
    let d = later.wrapping_sub(earlier);
    d != 0 && d < 0x8000
}

struct Scene {
    gw: Binary,
    hooks: WebhookReceiver,
    room: Room,
    held: Vec<(Phone, Leg, String)>,
    /// Phone, caller leg, room leg, callId, the gateway's RTP address for
    /// the caller (from its answer).
    bridged: Vec<(Phone, Leg, Leg, String, SocketAddr)>,
    domain: String,
}

async fn update(gw: &Binary, domain: &str, call_id: &str, uri: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("{}/v1/dialin/pinlessCallUpdate", gw.api))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({ "callId": call_id, "callDomain": domain, "sipUri": uri }))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// A gateway in resume mode with `held` callers on hold and `bridged`
/// callers bridged to the room.
async fn scene(held: usize, bridged: usize) -> Scene {
    let mut hooks = WebhookReceiver::start(&[]).await;
    let mut gw = Binary::new("", &hooks.url(), "", "");
    gw.start().await;
    let target = format!("sip:support@{}", gw.sip);
    let mut room = Room::new().await;
    let mut calls = Vec::new();
    for _ in 0..held + bridged {
        let phone = Phone::new().await;
        let (leg, media) = phone.call(&target, &[]).await;
        let id = hooks.next().await.json()["callId"]
            .as_str()
            .unwrap()
            .to_string();
        calls.push((phone, leg, id, media.addr));
    }
    let conn = rusqlite::Connection::open(gw.db()).unwrap();
    let domain: String = conn
        .query_row(
            "SELECT value FROM node WHERE key = 'call_domain'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let mut bridged_calls = Vec::new();
    for (phone, leg, id, gw_rtp) in calls.split_off(held) {
        assert_eq!(
            update(&gw, &domain, &id, &room.uri("room", false)).await,
            200
        );
        let invite = room.next_invite().await;
        let (room_leg, _) = room.answer(invite).await;
        bridged_calls.push((phone, leg, room_leg, id, gw_rtp));
    }
    let calls = calls
        .into_iter()
        .map(|(phone, leg, id, _)| (phone, leg, id))
        .collect();
    // Bridged for real: the saved state is the bridged one.
    tokio::time::sleep(Duration::from_millis(300)).await;
    Scene {
        gw,
        hooks,
        room,
        held: calls,
        bridged: bridged_calls,
        domain,
    }
}

/// Stops the gateway with `signal`, starts it again, and checks that every
/// call is taken over.
async fn survives(signal: &str) {
    let Scene {
        mut gw,
        hooks: _hooks,
        mut room,
        held,
        mut bridged,
        domain,
    } = scene(4, 5).await;
    let mut before = Vec::new();
    for (phone, _, _) in &held {
        before.push(last_heard(phone).await);
    }

    gw.signal(signal);
    let status = gw.exited(5).await;
    if signal == "TERM" {
        assert!(status.success(), "{status:?}\n{}", gw.log());
    }
    gw.start().await;
    let ready = std::time::Instant::now();
    assert!(
        gw.log().contains("resumed=9"),
        "every call taken over:\n{}",
        gw.log()
    );

    // Held callers hear music again: same port, same SSRC, sequence on.
    for ((phone, _, _), was) in held.iter().zip(&before) {
        phone.rtp.drain();
        let again = within(2, "music after the restart", async {
            loop {
                let p = phone.rtp.collect(Duration::from_millis(40)).await;
                if let Some(p) = p.into_iter().find(|p| p.header.ssrc == was.ssrc) {
                    return p;
                }
            }
        })
        .await;
        assert!(
            ready.elapsed() < Duration::from_secs(1),
            "music again within 1 s of the API answering"
        );
        assert_eq!(again.from, was.from, "same RTP port");
        assert!(
            after(again.header.sequence, was.seq),
            "sequence moved on: {} after {}",
            again.header.sequence,
            was.seq
        );
    }

    // Bridged calls relay both ways again.
    for (i, (phone, _, _, _, gw_rtp)) in bridged.iter().enumerate() {
        let byte = 0x30 + i as u8;
        // The room learns where the gateway sends from by what it hears.
        let gw_room_side = within(3, "relay towards the room", async {
            loop {
                drop(phone.rtp.send_pattern(*gw_rtp, 0, byte, 5)); // runs on
                for p in room.rtp.collect(Duration::from_millis(100)).await {
                    if p.payload.iter().all(|b| *b == byte) {
                        return p.from;
                    }
                }
            }
        })
        .await;
        let back = 0xA0 + i as u8;
        drop(room.rtp.send_pattern(gw_room_side, 0, back, 10)); // runs on
        phone.rtp.hears(back).await;
    }

    // An update to a resumed held call bridges it.
    let (_, _, id) = &held[0];
    assert_eq!(
        update(&gw, &domain, id, &room.uri("room", false)).await,
        200
    );
    let invite = room.next_invite().await;
    let (mut new_room_leg, _) = room.answer(invite).await;

    // One timeline across the restart.
    let view: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/v1/calls/{id}", gw.api))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let events: Vec<&str> = view["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["event"].as_str())
        .collect();
    assert_eq!(events.first(), Some(&"call.held"), "{view:#}");
    assert!(events.contains(&"call.transfer_started"), "{view:#}");

    // Callers' BYEs are answered 200 and the rooms get BYE.
    let mut held = held;
    let (_, caller, _) = held.remove(0);
    let answer = caller.hangup_answered();
    assert_eq!(
        within(5, "BYE answered", answer).await.ok().flatten(),
        Some(200)
    );
    within(5, "BYE at the new room", new_room_leg.next_event()).await;
    for (_, caller, _) in held {
        let answer = caller.hangup_answered();
        assert_eq!(
            within(5, "BYE answered", answer).await.ok().flatten(),
            Some(200)
        );
    }
    for (_, caller, mut room_leg, _, _) in bridged.drain(..) {
        let answer = caller.hangup_answered();
        assert_eq!(
            within(5, "BYE answered", answer).await.ok().flatten(),
            Some(200)
        );
        within(5, "BYE at the room", room_leg.next_event()).await;
    }
}

#[tokio::test]
async fn calls_survive_kill_9() {
    survives("KILL").await;
}

#[tokio::test]
async fn calls_survive_sigterm_in_resume_mode() {
    survives("TERM").await;
}
