//! G.722 end to end over real SIP and RTP on loopback: a caller that
//! offers G.722 hears G.722 hold music; bridged to a G.711 room, its audio
//! is transcoded both ways and a tone stays that tone; bridged to a G.722
//! room, payloads cross byte for byte; `[media] codecs` decides what is
//! offered and accepted.

use crate::support;

use pinless::codec::{AudioCodec, LegCodec};
use pinless::media::Law;
use pinless::media::g722::G722Decoder;
use pinless::sip::sdp::{self, PeerMedia};
use pinless::sip::{DialOutcome, Leg};
use std::time::Duration;
use support::peers::Packet;
use support::signal::{assert_tone, decoded, g722_tone, mulaw_tone, rms, send_payloads};
use support::*;

const G722: LegCodec = LegCodec::new(AudioCodec::G722, 9, Some(101));

/// Calls the gateway offering `codecs` (and telephone-event); the leg
/// and the gateway's answer.
async fn call_offering(gw: &TestGateway, phone: &Phone, codecs: &[AudioCodec]) -> (Leg, PeerMedia) {
    let offer = sdp::offer_of(phone.rtp.addr.ip(), phone.rtp.addr.port(), codecs);
    let mut dialing = phone.dial_sdp(&gw.sip_uri("support", false), &[], offer);
    match within(10, "the gateway to answer", dialing.outcome()).await {
        DialOutcome::Answered { leg, sdp: body } => (leg, sdp::parse(&body).expect("answer SDP")),
        other => panic!("call not answered: {other:?}"),
    }
}

#[tokio::test]
async fn a_g722_caller_hears_the_music_in_g722() {
    let mut hooks = WebhookReceiver::start(&[]).await;
    let gw = TestGateway::start(&hooks.url(), "").await;
    let phone = Phone::new().await;
    // G.722 first, PCMU second: the caller's order is followed.
    let (_leg, answer) = call_offering(&gw, &phone, &[AudioCodec::G722, AudioCodec::Pcmu]).await;
    assert_eq!(answer.codecs, vec![(9, AudioCodec::G722)]);
    hooks.next().await;

    let held = phone.rtp.collect(Duration::from_millis(1000)).await;
    assert!((45..=55).contains(&held.len()), "{} packets", held.len());
    support::audio::assert_one_stream(&held);
    assert!(
        held.iter()
            .all(|p| p.header.payload_type == 9 && p.payload.len() == 160)
    );
    // Decoded as G.722 it is music, loud enough to hear.
    let mut decoder = G722Decoder::new();
    let audio: Vec<i16> = held
        .iter()
        .flat_map(|p| decoder.decode(&p.payload))
        .collect();
    assert_eq!(
        audio.len(),
        held.len() * 320,
        "16 kHz: 320 samples a packet"
    );
    assert!(
        rms(&audio[1600..]) > 500.0,
        "rms {:.0}",
        rms(&audio[1600..])
    );
    // Frame for frame the music's G.722 loop (not G.711 relabelled).
    support::audio::assert_plays_the_loop(
        &support::audio::bundled_music(),
        AudioCodec::G722,
        &held,
    );
}

#[tokio::test]
async fn a_g722_caller_and_a_g711_room_hear_each_other_through_transcoding() {
    let mut hooks = WebhookReceiver::start(&[]).await;
    let gw = TestGateway::start(&hooks.url(), "").await;
    let phone = Phone::new().await;
    let mut room = Room::new().await;
    let (_leg, caller_media) = call_offering(&gw, &phone, &[AudioCodec::G722]).await;
    assert_eq!(caller_media.codecs, vec![(9, AudioCodec::G722)]);
    let call_id = hooks.next().await.json()["callId"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, _) = gw
        .update(gw.update_body(
            &call_id,
            serde_json::json!({"sipUri": room.uri("room", false)}),
        ))
        .await;
    assert_eq!(status, 200);
    let invite = room.next_invite().await;
    // The room is offered the caller's G.722 first, then PCMU and PCMA;
    // it speaks G.711 only and takes PCMU.
    let text = String::from_utf8_lossy(&invite.info.sdp).to_string();
    assert!(text.contains(" RTP/AVP 9 0 8 101\r\n"), "{text}");
    assert!(text.contains("a=rtpmap:9 G722/8000\r\n"), "{text}");
    let (_room_leg, gw_room) = room
        .answer_only(invite, &[AudioCodec::Pcmu, AudioCodec::Pcma])
        .await;
    assert_eq!(gw_room.codecs[0], (0, AudioCodec::Pcmu));
    gw.wait_call(&call_id, Duration::from_secs(5), |c| {
        c["state"] == "bridged"
    })
    .await;

    // Room → caller: a 1 kHz tone in PCMU reaches the caller as G.722.
    phone.rtp.drain();
    let mu = mulaw_tone(1000.0, 1.0);
    send_payloads(&room.rtp, gw_room.addr, 0, 160, mu);
    let got = phone.rtp.collect(Duration::from_millis(1100)).await;
    assert!(
        got.iter().all(|p| p.header.payload_type == 9),
        "G.722 to the caller"
    );
    let mut decoder = G722Decoder::new();
    let heard = decoded(&got, 9, |b| decoder.decode(b));
    assert_tone(&heard, 16000.0, 1000.0, "the caller");

    // Caller → room: a 697 Hz tone in G.722 reaches the room as PCMU.
    room.rtp.drain();
    send_payloads(&phone.rtp, caller_media.addr, 9, 160, g722_tone(697.0, 1.0));
    let got = room.rtp.collect(Duration::from_millis(1100)).await;
    assert!(got.len() >= 40, "{} packets at the room", got.len());
    assert!(
        got.iter()
            .all(|p| p.header.payload_type == 0 && p.payload.len() == 160)
    );
    let heard = decoded(&got, 0, |b| b.iter().map(|x| Law::Mu.decode(*x)).collect());
    assert_tone(&heard, 8000.0, 697.0, "the room");
}

#[tokio::test]
async fn a_g722_caller_and_a_g722_room_get_each_other_s_bytes_untouched() {
    let mut hooks = WebhookReceiver::start(&[]).await;
    let gw = TestGateway::start(&hooks.url(), "").await;
    let phone = Phone::new().await;
    let mut room = Room::new().await;
    let (_leg, caller_media) = call_offering(&gw, &phone, &[AudioCodec::G722]).await;
    let call_id = hooks.next().await.json()["callId"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, _) = gw
        .update(gw.update_body(
            &call_id,
            serde_json::json!({"sipUri": room.uri("room", false)}),
        ))
        .await;
    assert_eq!(status, 200);
    let invite = room.next_invite().await;
    // The room answers G.722.
    let offer = sdp::parse(&invite.info.sdp).unwrap();
    assert!(offer.codecs.contains(&(9, AudioCodec::G722)));
    let _room_leg = room.answer_as(invite, G722).await;
    gw.wait_call(&call_id, Duration::from_secs(5), |c| {
        c["state"] == "bridged"
    })
    .await;

    // Bytes no codec would make, different in every packet: any decoding
    // and re-encoding on the way would change them.
    let payloads = |seed: u8| -> Vec<Vec<u8>> {
        (0..25u8)
            .map(|i| {
                (0..160u8)
                    .map(|j| j.wrapping_mul(seed).wrapping_add(i))
                    .collect()
            })
            .collect()
    };
    for (from, from_name, to, to_addr, seed) in [
        (&room.rtp, "room", &phone.rtp, offer.addr, 31u8),
        (&phone.rtp, "caller", &room.rtp, caller_media.addr, 57u8),
    ] {
        to.drain();
        let sent = payloads(seed);
        send_payloads(from, to_addr, 9, 160, sent.clone());
        let got = to.collect(Duration::from_millis(800)).await;
        let got: Vec<&Packet> = got.iter().filter(|p| sent.contains(&p.payload)).collect();
        assert!(
            got.len() >= 23,
            "{from_name}'s payloads arrived: {}",
            got.len()
        );
        assert!(got.iter().all(|p| p.header.payload_type == 9));
        // In order and unchanged.
        let index = |p: &Packet| sent.iter().position(|s| *s == p.payload).unwrap();
        assert!(got.windows(2).all(|w| index(w[0]) < index(w[1])));
    }
}

#[tokio::test]
async fn the_codecs_key_sets_the_offer_and_what_callers_may_use() {
    // G.711 only: a G.722-only caller is refused 488, naming the codecs.
    let hooks = WebhookReceiver::start(&[]).await;
    let gw = TestGateway::start_with_env(
        &hooks.url(),
        "",
        &[("PINLESS_MEDIA__CODECS", r#"["PCMU", "PCMA"]"#)],
    )
    .await;
    let phone = Phone::new().await;
    let offer = sdp::offer_of(
        phone.rtp.addr.ip(),
        phone.rtp.addr.port(),
        &[AudioCodec::G722],
    );
    let mut dialing = phone.dial_sdp(&gw.sip_uri("support", false), &[], offer);
    match within(10, "the refusal", dialing.outcome()).await {
        DialOutcome::Rejected { code: 488, .. } => {}
        other => panic!("expected 488: {other:?}"),
    }
    // G.722 first: rooms are offered it first, and a caller offering
    // PCMU then G.722 still gets PCMU (its own preference).
    let mut hooks = WebhookReceiver::start(&[]).await;
    let gw = TestGateway::start_with_env(
        &hooks.url(),
        "",
        &[("PINLESS_MEDIA__CODECS", r#"["G722", "PCMU"]"#)],
    )
    .await;
    let mut room = Room::new().await;
    let (_leg, answer) = call_offering(&gw, &phone, &[AudioCodec::Pcmu, AudioCodec::G722]).await;
    assert_eq!(answer.codecs, vec![(0, AudioCodec::Pcmu)]);
    let call_id = hooks.next().await.json()["callId"]
        .as_str()
        .unwrap()
        .to_string();
    gw.update(gw.update_body(
        &call_id,
        serde_json::json!({"sipUri": room.uri("room", false)}),
    ))
    .await;
    let invite = room.next_invite().await;
    let text = String::from_utf8_lossy(&invite.info.sdp).to_string();
    // The caller's codec first (a room that speaks it too is then relayed
    // untouched), then the configured order; PCMA is not configured.
    assert!(text.contains(" RTP/AVP 0 9 101\r\n"), "{text}");
    assert!(!text.contains("PCMA"), "{text}");
}

#[tokio::test]
async fn a_g722_caller_s_room_is_offered_g722_first() {
    let mut hooks = WebhookReceiver::start(&[]).await;
    let gw = TestGateway::start(&hooks.url(), "").await;
    let phone = Phone::new().await;
    let mut room = Room::new().await;
    let (_leg, answer) = call_offering(&gw, &phone, &[AudioCodec::G722]).await;
    assert_eq!(answer.codecs, vec![(9, AudioCodec::G722)]);
    let call_id = hooks.next().await.json()["callId"]
        .as_str()
        .unwrap()
        .to_string();
    gw.update(gw.update_body(
        &call_id,
        serde_json::json!({"sipUri": room.uri("room", false)}),
    ))
    .await;
    let invite = room.next_invite().await;
    let text = String::from_utf8_lossy(&invite.info.sdp).to_string();
    assert!(text.contains(" RTP/AVP 9 0 8 101\r\n"), "{text}");
}
