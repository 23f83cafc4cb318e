//! Early-media hold with sipp as the caller, requiring 100rel (RFC 3262):
//! 183 with SDP and RSeq, PRACK answered, music in early media, and the
//! INVITE's 200 only when a room answers — or after
//! `early_media_max_secs`, with the music going on in the same stream.
//! Run with `cargo test --features interop`.

use crate::support;

use serde_json::json;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use support::peers::Packet;
use support::sipp::*;
use support::*;

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// When sipp got the INVITE's 200 (Unix ms), once it has.
fn answered_at(file: &Path) -> Option<u64> {
    std::fs::read_to_string(file).ok()?.trim().parse().ok()
}

/// sipp calling the `support` entry with `early_100rel.xml`, its audio
/// on `rtp`'s port; the time of the 200 goes to `answered`.
fn sipp_early_caller(gw: &TestGateway, rtp: &RtpPeer, answered: &Path) -> std::process::Child {
    let gw_addr = gw.gw.sip_udp.unwrap().to_string();
    let rtp_port = rtp.addr.port().to_string();
    let answered = answered.display().to_string();
    sipp_call(
        &gw_addr,
        "early_100rel.xml",
        &[
            "-key",
            "rtp_port",
            &rtp_port,
            "-key",
            "answered_file",
            &answered,
        ],
    )
}

#[tokio::test]
async fn sipp_with_100rel_hears_music_in_early_media_and_is_answered_when_the_room_answers() {
    let mut hooks = WebhookReceiver::start(&[]).await;
    let extra = "answer = \"early\"\nearly_media_max_secs = 60";
    let gw = TestGateway::start(&hooks.url(), extra).await;
    let mut room = Room::new().await;
    let rtp = RtpPeer::new().await;
    let answered = temp("answered");
    let caller = sipp_early_caller(&gw, &rtp, &answered);

    let id = hooks.next().await.json()["callId"]
        .as_str()
        .unwrap()
        .to_string();
    let music = rtp.collect(Duration::from_millis(600)).await;
    assert!(
        music.len() >= 20,
        "music in early media: {} packets",
        music.len()
    );
    let (_, call) = gw.get_call(&id).await;
    assert_eq!(call["answered"], false);

    let (code, _) = gw
        .update(gw.update_body(&id, json!({ "sipUri": room.uri("room", false) })))
        .await;
    assert_eq!(code, 200);
    let invite = room.next_invite().await;
    // The room rings for a second: sipp gets no 200 meanwhile, and
    // still hears music.
    let ringing = rtp.collect(Duration::from_millis(1_000)).await;
    assert!(ringing.len() >= 30, "music while the room rings");
    assert_eq!(answered_at(&answered), None, "200 before the room answered");
    let room_answered = unix_ms();
    let (_room_leg, _) = room.answer(invite).await;

    assert!(
        finished(caller, "sipp caller", 20).await,
        "sipp's scenario passed"
    );
    let at = answered_at(&answered).expect("sipp got the INVITE's 200");
    assert!(
        at + 50 >= room_answered,
        "200 at {at}, room answered at {room_answered}"
    );
    let call = gw
        .wait_call(&id, Duration::from_secs(5), |c| c["state"] == "ended")
        .await;
    let names = event_names(&call);
    let position = |n: &str| names.iter().position(|e| e == n);
    assert!(
        position("call.answered") < position("call.bridged"),
        "{names:?}"
    );
    assert!(position("call.bridged").is_some(), "{names:?}");
    assert_eq!(call["endReason"], "caller_hangup");
    assert_eq!(call["answered"], true);
    let _ = std::fs::remove_file(&answered);
}

#[tokio::test]
async fn sipp_with_no_route_is_answered_after_early_media_max_secs_and_the_music_goes_on() {
    let mut hooks = WebhookReceiver::start(&[]).await;
    let extra = "answer = \"early\"\nearly_media_max_secs = 2";
    let gw = TestGateway::start(&hooks.url(), extra).await;
    let rtp = RtpPeer::new().await;
    let answered = temp("answered");
    let started_ms = unix_ms();
    let started = std::time::Instant::now();
    let caller = sipp_early_caller(&gw, &rtp, &answered);
    let id = hooks.next().await.json()["callId"]
        .as_str()
        .unwrap()
        .to_string();

    let packets: Vec<Packet> = rtp.collect(Duration::from_millis(3_500)).await;
    let at = answered_at(&answered).expect("a 200 after early_media_max_secs");
    let after = at - started_ms;
    assert!(
        (1_800..3_300).contains(&after),
        "200 {after} ms after the INVITE, early_media_max_secs = 2"
    );
    let answered_instant = started + Duration::from_millis(after);
    let before = packets.iter().filter(|p| p.at < answered_instant).count();
    let later = packets.iter().filter(|p| p.at > answered_instant).count();
    assert!(
        before >= 50 && later >= 25,
        "{before} packets before the 200, {later} after"
    );
    let one_stream = packets.windows(2).all(|w| {
        w[0].header.ssrc == w[1].header.ssrc
            && w[1].header.sequence == w[0].header.sequence.wrapping_add(1)
    });
    assert!(
        one_stream,
        "one SSRC, consecutive sequence numbers across the answer"
    );

    assert!(
        finished(caller, "sipp caller", 15).await,
        "sipp's scenario passed"
    );
    let call = gw
        .wait_call(&id, Duration::from_secs(5), |c| c["state"] == "ended")
        .await;
    assert_eq!(
        details(&call, "call.answered")[0]["reason"],
        "early_media_max"
    );
    assert!(!event_names(&call).contains(&"call.bridged".to_string()));
    let _ = std::fs::remove_file(&answered);
}
