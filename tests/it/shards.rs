//! Media shards (`[media] threads`, issue 12), over real SIP, RTP and HTTP
//! on loopback: calls spread over the shards carry audio both ways, and
//! when every shard is full new calls are refused while the calls already
//! up keep clean audio.

use crate::support;

use serde_json::json;
use std::time::Duration;
use support::peers::Packet;
use support::*;

/// A call's two ends: the caller and the room it was bridged to.
struct Bridged {
    phone: Phone,
    _caller: pinless::sip::Leg,
    caller_media: pinless::sip::sdp::PeerMedia,
    room: Room,
    _room_leg: pinless::sip::Leg,
    room_media: pinless::sip::sdp::PeerMedia,
}

/// Calls `gw` from a fresh phone and waits for the call's webhook.
async fn call_in(
    gw: &TestGateway,
    hooks: &mut WebhookReceiver,
) -> (
    Phone,
    pinless::sip::Leg,
    pinless::sip::sdp::PeerMedia,
    String,
) {
    let phone = Phone::new().await;
    let (leg, media) = phone.call(&gw.sip_uri("support", false), &[]).await;
    let hook = hooks.next().await;
    let call_id = hook.json()["callId"].as_str().expect("callId").to_string();
    (phone, leg, media, call_id)
}

/// A call placed, held, then transferred to a room of its own.
async fn bridged_call(gw: &TestGateway, hooks: &mut WebhookReceiver, n: usize) -> Bridged {
    let (phone, caller, caller_media, call_id) = call_in(gw, hooks).await;
    let mut room = Room::new().await;
    let body = gw.update_body(
        &call_id,
        json!({ "sipUri": room.uri(&format!("room{n}"), false) }),
    );
    assert_eq!(gw.update(body).await.0, 200);
    let invite = room.next_invite().await;
    let (room_leg, room_media) = room.answer(invite).await;
    gw.wait_call(&call_id, Duration::from_secs(5), |c| {
        c["state"] == "bridged"
    })
    .await;
    Bridged {
        phone,
        _caller: caller,
        caller_media,
        room,
        _room_leg: room_leg,
        room_media,
    }
}

/// The largest gap between consecutive packets, and whether they form one
/// stream: one SSRC, sequence numbers without a hole.
fn continuity(packets: &[Packet]) -> (Duration, bool) {
    let mut gap = Duration::ZERO;
    let mut one_stream = true;
    for w in packets.windows(2) {
        gap = gap.max(w[1].at.duration_since(w[0].at));
        one_stream &= w[1].header.sequence == w[0].header.sequence.wrapping_add(1)
            && w[1].header.ssrc == w[0].header.ssrc;
    }
    (gap, one_stream)
}

fn shard_metric(family: &str, shard: usize) -> String {
    format!("{family}{{shard=\"{shard}\"}}")
}

#[tokio::test]
async fn bridged_calls_spread_over_two_shards_carry_audio_both_ways() {
    let mut hooks = WebhookReceiver::start(&[]).await;
    let gw = TestGateway::start(&hooks.url(), "\n[media]\nthreads = 2").await;
    let mut calls = Vec::new();
    for n in 0..4 {
        calls.push(bridged_call(&gw, &mut hooks, n).await);
    }
    // Audio both ways on every call, each with a pattern of its own.
    let mut sending = Vec::new();
    for (n, c) in calls.iter().enumerate() {
        let n = n as u8;
        sending.push(c.room.rtp.send_pattern(c.room_media.addr, 0, 0x10 + n, 150));
        sending.push(
            c.phone
                .rtp
                .send_pattern(c.caller_media.addr, 0, 0x40 + n, 150),
        );
    }
    for (n, c) in calls.iter().enumerate() {
        let n = n as u8;
        c.phone.rtp.hears(0x10 + n).await;
        c.room.rtp.hears(0x40 + n).await;
    }
    // Both shards carry calls: two bridged calls each, two streams apiece
    // (least-loaded placement alternates as the calls come in).
    for shard in 0..2 {
        let streams = gw
            .metric(&shard_metric("pinless_shard_streams", shard))
            .await;
        assert_eq!(streams, 4.0, "shard {shard}");
        let relayed = gw
            .metric(&shard_metric("pinless_shard_relayed_packets_total", shard))
            .await;
        assert!(relayed > 0.0, "shard {shard} relayed {relayed}");
    }
    // The node's total is the shards' sum.
    let total = gw.metric("pinless_relay_packets_total").await;
    assert!(total > 0.0);
    for s in sending {
        s.abort();
    }
}

#[tokio::test]
async fn when_every_shard_is_full_new_calls_get_503_and_held_calls_keep_clean_audio() {
    // A busy limit of 0 % makes a shard full as soon as it sends anything:
    // what thousands of calls do to a real shard.
    let mut hooks = WebhookReceiver::start(&[]).await;
    let gw = TestGateway::start(
        &hooks.url(),
        "\n[media]\nthreads = 2\n[limits]\npacer_busy_max_pct = 0",
    )
    .await;
    let overloaded = |shard| shard_metric("pinless_shard_overloaded", shard);
    let (first, _first_leg, _, _) = call_in(&gw, &mut hooks).await;
    within(3, "shard 0 to fill up", async {
        while gw.metric(&overloaded(0)).await != 1.0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert_eq!(gw.metric(&overloaded(1)).await, 0.0);
    assert_eq!(gw.metric("pinless_pacer_overloaded").await, 0.0);
    // Shard 0 is full, shard 1 is not: the second call is answered there.
    let (second, _second_leg, _, _) = call_in(&gw, &mut hooks).await;
    for shard in 0..2 {
        let streams = gw
            .metric(&shard_metric("pinless_shard_streams", shard))
            .await;
        assert_eq!(streams, 1.0, "shard {shard}");
    }
    // No shard takes calls: the third is refused.
    gw.refuses_while_overloaded("third-call").await;
    // Both held callers still hear one unbroken stream each.
    first.rtp.drain();
    second.rtp.drain();
    let (a, b) = tokio::join!(
        first.rtp.collect(Duration::from_millis(600)),
        second.rtp.collect(Duration::from_millis(600))
    );
    for (name, music) in [("first", a), ("second", b)] {
        assert!(
            music.len() >= 26,
            "{name}: {} packets in 600 ms",
            music.len()
        );
        let (gap, one_stream) = continuity(&music);
        assert!(gap < Duration::from_millis(40), "{name}: gap of {gap:?}");
        assert!(one_stream, "{name}: one SSRC, no sequence hole");
    }
}

#[tokio::test]
async fn a_full_shard_whose_calls_end_takes_calls_again() {
    let mut hooks = WebhookReceiver::start(&[]).await;
    let gw = TestGateway::start(
        &hooks.url(),
        "\n[media]\nthreads = 1\n[limits]\npacer_busy_max_pct = 0",
    )
    .await;
    let (_phone, caller, _, call_id) = call_in(&gw, &mut hooks).await;
    within(3, "the shard to fill up", async {
        while gw.metric("pinless_pacer_overloaded").await != 1.0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    caller.hangup();
    gw.wait_call(&call_id, Duration::from_secs(5), |c| c["state"] == "ended")
        .await;
    // The emptied shard stops ticking and takes calls again.
    within(3, "the shard to take calls again", async {
        while gw
            .metric(&shard_metric("pinless_shard_overloaded", 0))
            .await
            != 0.0
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert_eq!(
        gw.metric(&shard_metric("pinless_shard_streams", 0)).await,
        0.0
    );
    let (next, _next_leg, _, _) = call_in(&gw, &mut hooks).await;
    let music = next.rtp.collect(Duration::from_millis(300)).await;
    assert!(music.len() >= 10, "{} packets in 300 ms", music.len());
}
