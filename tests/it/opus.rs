//! Opus end to end over real SIP and RTP on loopback, judged by libopus
//! itself (the `opus` crate, decoding at 48 kHz as a browser or a
//! softphone does): an Opus caller hears Opus hold music on a 48 kHz
//! clock; bridged to a PCMU room, tones and key presses cross both ways
//! on each side's clock; bridged to an Opus room, packets cross
//! untouched; where Opus is not configured, an Opus-only caller gets 488.
//! A peer that asks for narrowband (`maxplaybackrate`) or longer packets
//! (`a=ptime`) gets them, from the music and from a room alike.

use crate::support;

use pinless::codec::{AudioCodec, LegCodec};
use pinless::media::Law;
use pinless::sip::sdp::{self, PeerMedia};
use pinless::sip::{DialOutcome, Leg};
use std::time::Duration;
use support::peers::Packet;
use support::signal::{
    assert_tone, decoded, g722_tone, mulaw_tone, opus_peer_decoder, opus_peer_encoded, rms,
    send_payloads, tone,
};
use support::*;

const OPUS_FIRST: &str = r#"["opus", "PCMU", "PCMA"]"#;

async fn opus_gateway(hooks: &WebhookReceiver) -> TestGateway {
    TestGateway::start_with_env(&hooks.url(), "", &[("PINLESS_MEDIA__CODECS", OPUS_FIRST)]).await
}

/// Calls the gateway offering `codecs` (with telephone-events at the
/// clocks they use); the leg and the gateway's answer.
async fn call_offering(gw: &TestGateway, phone: &Phone, codecs: &[AudioCodec]) -> (Leg, PeerMedia) {
    let offer = sdp::offer_of(phone.rtp.addr.ip(), phone.rtp.addr.port(), codecs);
    call_with(gw, phone, offer).await
}

/// Calls the gateway with `offer`; the leg and the gateway's answer.
async fn call_with(gw: &TestGateway, phone: &Phone, offer: String) -> (Leg, PeerMedia) {
    let mut dialing = phone.dial_sdp(&gw.sip_uri("support", false), &[], offer);
    match within(10, "the gateway to answer", dialing.outcome()).await {
        DialOutcome::Answered { leg, sdp: body } => (leg, sdp::parse(&body).expect("answer SDP")),
        other => panic!("call not answered: {other:?}"),
    }
}

async fn call_id(hooks: &mut WebhookReceiver) -> String {
    hooks.next().await.json()["callId"]
        .as_str()
        .expect("callId")
        .to_string()
}

async fn transfer(gw: &TestGateway, room: &Room, call_id: &str) {
    let (status, _) = gw
        .update(gw.update_body(
            call_id,
            serde_json::json!({"sipUri": room.uri("room", false)}),
        ))
        .await;
    assert_eq!(status, 200);
}

/// One stream on a 48 kHz clock: same SSRC, sequence +1, timestamp +960.
fn assert_one_48k_stream(packets: &[Packet]) {
    support::audio::assert_one_stream_at(packets, 960);
}

#[tokio::test]
async fn an_opus_caller_hears_the_music_in_opus_on_a_48_khz_clock() {
    let mut hooks = WebhookReceiver::start(&[]).await;
    let gw = opus_gateway(&hooks).await;
    let phone = Phone::new().await;
    let (_leg, answer) = call_offering(&gw, &phone, &[AudioCodec::Opus, AudioCodec::Pcmu]).await;
    assert_eq!(answer.codecs, vec![(111, AudioCodec::Opus)]);
    assert_eq!(answer.wide_event_payload_type, Some(110));
    assert_eq!(answer.event_payload_type, None);
    hooks.next().await;

    let held = phone.rtp.collect(Duration::from_millis(1000)).await;
    assert!((45..=55).contains(&held.len()), "{} packets", held.len());
    assert_one_48k_stream(&held);
    assert!(held.iter().all(|p| p.header.payload_type == 111));
    // Opus, not 160-byte frames relabelled: a 32 kbit/s stream.
    let bytes: usize = held.iter().map(|p| p.payload.len()).sum();
    assert!(
        bytes < held.len() * 130,
        "{} bytes a packet",
        bytes / held.len()
    );
    let mut decode = opus_peer_decoder();
    let audio: Vec<i16> = held.iter().flat_map(|p| decode(&p.payload)).collect();
    assert_eq!(audio.len(), held.len() * 960, "20 ms a packet");
    assert!(
        rms(&audio[9600..]) > 500.0,
        "music, not silence: rms {:.0}",
        rms(&audio[9600..])
    );
    // Frame for frame the music's Opus loop, made as the gateway makes it.
    support::audio::assert_plays_the_loop(
        &support::audio::bundled_music(),
        AudioCodec::Opus,
        &held,
    );
}

#[tokio::test]
async fn an_opus_caller_and_a_pcmu_room_hear_each_other_with_tones_and_keys_intact() {
    let mut hooks = WebhookReceiver::start(&[]).await;
    let gw = opus_gateway(&hooks).await;
    let phone = Phone::new().await;
    let mut room = Room::new().await;
    let (_leg, caller_media) = call_offering(&gw, &phone, &[AudioCodec::Opus]).await;
    let call_id = call_id(&mut hooks).await;
    transfer(&gw, &room, &call_id).await;
    let invite = room.next_invite().await;
    // The room is offered the caller's Opus first, with events at both
    // clocks; it speaks PCMU only.
    let text = String::from_utf8_lossy(&invite.info.sdp).to_string();
    assert!(text.contains(" RTP/AVP 111 0 8 101 110\r\n"), "{text}");
    let (_room_leg, gw_room) = room.answer_only(invite, &[AudioCodec::Pcmu]).await;
    assert_eq!(gw_room.codecs[0], (0, AudioCodec::Pcmu));
    let view = gw
        .wait_call(&call_id, Duration::from_secs(5), |c| {
            c["state"] == "bridged"
        })
        .await;
    // The call shows it is transcoded.
    assert_eq!(
        view["codecs"],
        serde_json::json!({"caller": "opus", "room": "PCMU"}),
        "{view}"
    );

    // Room → caller: a 1 kHz PCMU tone reaches the caller as Opus, on the
    // caller's 48 kHz clock.
    phone.rtp.drain();
    let mu = mulaw_tone(1000.0, 1.0);
    send_payloads(&room.rtp, gw_room.addr, 0, 160, mu);
    let got = phone.rtp.collect(Duration::from_millis(1100)).await;
    let relayed: Vec<Packet> = got
        .into_iter()
        .filter(|p| p.header.payload_type == 111)
        .collect();
    assert!(relayed.len() >= 40, "{} Opus packets", relayed.len());
    let steps: Vec<u32> = relayed
        .windows(2)
        .map(|w| w[1].header.timestamp.wrapping_sub(w[0].header.timestamp))
        .collect();
    assert!(
        steps.iter().skip(1).all(|s| *s == 960),
        "48 kHz steps: {steps:?}"
    );
    let heard = decoded(&relayed, 111, opus_peer_decoder());
    assert_tone(&heard, 48000.0, 1000.0, "the caller");

    // Caller → room: a 697 Hz Opus tone reaches the room as PCMU, stamped
    // on the room's 8 kHz clock.
    room.rtp.drain();
    send_payloads(
        &phone.rtp,
        caller_media.addr,
        111,
        960,
        opus_peer_encoded(&tone(697.0, 48000.0, 1.0)),
    );
    let got = room.rtp.collect(Duration::from_millis(1100)).await;
    assert!(got.len() >= 40, "{} packets at the room", got.len());
    assert!(
        got.iter()
            .all(|p| p.header.payload_type == 0 && p.payload.len() == 160)
    );
    assert!(
        got.windows(2)
            .all(|w| w[1].header.timestamp.wrapping_sub(w[0].header.timestamp) == 160),
        "8 kHz steps"
    );
    let heard = decoded(&got, 0, |b| b.iter().map(|x| Law::Mu.decode(*x)).collect());
    assert_tone(&heard, 8000.0, 697.0, "the room");

    // A key press at 48 kHz (key 5, 100 ms = 4800 ticks) reaches the room
    // as the room's telephone-event at 8 kHz (800 ticks).
    room.rtp.drain();
    let press = vec![5u8, 0x80 | 10, (4800u16 >> 8) as u8, (4800u16 & 0xFF) as u8];
    send_payloads(&phone.rtp, caller_media.addr, 110, 0, vec![press; 3]);
    let got = room.rtp.collect(Duration::from_millis(300)).await;
    let events: Vec<&Packet> = got
        .iter()
        .filter(|p| p.header.payload_type == 101)
        .collect();
    assert!(!events.is_empty(), "the key press reached the room");
    for e in events {
        assert_eq!(e.payload[0], 5);
        assert_eq!(u16::from_be_bytes([e.payload[2], e.payload[3]]), 800);
    }
}

#[tokio::test]
async fn an_opus_caller_and_an_opus_room_get_each_other_s_packets_untouched() {
    let mut hooks = WebhookReceiver::start(&[]).await;
    let gw = opus_gateway(&hooks).await;
    let phone = Phone::new().await;
    let mut room = Room::new().await;
    let (_leg, caller_media) = call_offering(&gw, &phone, &[AudioCodec::Opus]).await;
    let call_id = call_id(&mut hooks).await;
    transfer(&gw, &room, &call_id).await;
    let invite = room.next_invite().await;
    let offer = sdp::parse(&invite.info.sdp).unwrap();
    // The room answers Opus at a payload type of its own choosing.
    let mine = LegCodec::new(AudioCodec::Opus, 100, offer.wide_event_payload_type);
    let _room_leg = room.answer_as(invite, mine).await;
    gw.wait_call(&call_id, Duration::from_secs(5), |c| {
        c["state"] == "bridged"
    })
    .await;
    for (from, from_name, to, to_addr, pt_in, pt_out, hz) in [
        (&room.rtp, "room", &phone.rtp, offer.addr, 100, 111, 440.0),
        (
            &phone.rtp,
            "caller",
            &room.rtp,
            caller_media.addr,
            111,
            100,
            1633.0,
        ),
    ] {
        to.drain();
        let sent = opus_peer_encoded(&tone(hz, 48000.0, 0.6));
        send_payloads(from, to_addr, pt_in, 960, sent.clone());
        let got = to.collect(Duration::from_millis(800)).await;
        let got: Vec<&Packet> = got.iter().filter(|p| sent.contains(&p.payload)).collect();
        assert!(
            got.len() >= 27,
            "{from_name}'s packets arrived untouched: {}",
            got.len()
        );
        assert!(got.iter().all(|p| p.header.payload_type == pt_out));
    }
}

#[tokio::test]
async fn an_opus_only_caller_gets_488_where_opus_is_not_configured() {
    let hooks = WebhookReceiver::start(&[]).await;
    // The default codecs: PCMU, PCMA, G722.
    let gw = TestGateway::start(&hooks.url(), "").await;
    let phone = Phone::new().await;
    let offer = sdp::offer_of(
        phone.rtp.addr.ip(),
        phone.rtp.addr.port(),
        &[AudioCodec::Opus],
    );
    let mut dialing = phone.dial_sdp(&gw.sip_uri("support", false), &[], offer);
    match within(10, "the refusal", dialing.outcome()).await {
        DialOutcome::Rejected { code: 488, .. } => {}
        other => panic!("expected 488: {other:?}"),
    }
    // A caller offering Opus and PCMU is answered PCMU there.
    let (_leg, answer) = call_offering(&gw, &phone, &[AudioCodec::Opus, AudioCodec::Pcmu]).await;
    assert_eq!(answer.codecs, vec![(0, AudioCodec::Pcmu)]);
}

#[tokio::test]
async fn an_opus_caller_s_keys_count_at_48_khz_and_a_voice_bot_speaks_with_it_in_mulaw() {
    use support::bot::{TestBot, payload};
    let mut hooks = WebhookReceiver::start(&[]).await;
    let gw = opus_gateway(&hooks).await;
    let phone = Phone::new().await;
    let (_leg, caller_media) = call_offering(&gw, &phone, &[AudioCodec::Opus]).await;
    let call_id = call_id(&mut hooks).await;

    // Key 5 held 100 ms, as an Opus phone sends it: 4800 ticks at 48 kHz.
    let event = |ticks: u16, end: bool| {
        let flags = if end { 0x80 | 10 } else { 10 };
        vec![5u8, flags, (ticks >> 8) as u8, (ticks & 0xFF) as u8]
    };
    let packets = vec![
        event(1600, false),
        event(3200, false),
        event(4800, true),
        event(4800, true),
        event(4800, true),
    ];
    send_payloads(&phone.rtp, caller_media.addr, 110, 0, packets)
        .await
        .unwrap();
    let view = gw
        .wait_call(&call_id, Duration::from_secs(5), |c| {
            !details(c, "call.dtmf").is_empty()
        })
        .await;
    assert_eq!(
        details(&view, "call.dtmf"),
        [serde_json::json!({"digit": "5", "durationMs": 100})],
        "{view}"
    );

    // To a voice bot: it hears the caller's Opus as μ-law.
    let bot = TestBot::new().await;
    let (status, _) = gw
        .update(gw.update_body(&call_id, serde_json::json!({ "streamUrl": bot.url("/") })))
        .await;
    assert_eq!(status, 200);
    let mut conn = bot.accept().await;
    conn.started().await;
    let view = gw
        .wait_call(&call_id, Duration::from_secs(5), |c| {
            c["state"] == "bridged"
        })
        .await;
    assert_eq!(
        view["codecs"],
        serde_json::json!({"caller": "opus"}),
        "{view}"
    );
    send_payloads(
        &phone.rtp,
        caller_media.addr,
        111,
        960,
        opus_peer_encoded(&tone(697.0, 48000.0, 1.0)),
    );
    let mut heard_by_bot = Vec::new();
    while heard_by_bot.len() < 8000 * 3 / 4 {
        let m = conn.next_event("media").await;
        heard_by_bot.extend(payload(&m).iter().map(|b| Law::Mu.decode(*b)));
    }
    // Past the silence before the caller's first packet and the codec's
    // start.
    let start = heard_by_bot
        .iter()
        .position(|s| s.unsigned_abs() > 2000)
        .expect("the caller's tone reached the bot");
    assert_tone(&heard_by_bot[start + 800..], 8000.0, 697.0, "the bot");

    // And the caller hears the bot's μ-law as Opus on its one stream.
    phone.rtp.drain();
    let mulaw: Vec<u8> = tone(1000.0, 8000.0, 1.0)
        .iter()
        .map(|s| Law::Mu.encode(*s))
        .collect();
    conn.media(&mulaw).await;
    let got = phone.rtp.collect(Duration::from_millis(1000)).await;
    assert!(got.iter().all(|p| p.header.payload_type == 111));
    assert_one_48k_stream(&got);
    let heard = decoded(&got, 111, opus_peer_decoder());
    let start = heard
        .iter()
        .position(|s| s.unsigned_abs() > 2000)
        .expect("the bot's tone reached the caller");
    assert_tone(
        &heard[start + 4800..start + 4800 + 24000],
        48000.0,
        1000.0,
        "the caller",
    );
}

#[tokio::test]
async fn a_packet_an_opus_caller_lost_reaches_a_pcmu_room_from_the_next_one_s_fec() {
    use pinless::media::rtp::{HEADER_LEN, Header};
    let mut hooks = WebhookReceiver::start(&[]).await;
    let gw = opus_gateway(&hooks).await;
    let phone = Phone::new().await;
    let mut room = Room::new().await;
    let (_leg, caller_media) = call_offering(&gw, &phone, &[AudioCodec::Opus]).await;
    let call_id = call_id(&mut hooks).await;
    transfer(&gw, &room, &call_id).await;
    let invite = room.next_invite().await;
    let (_room_leg, _) = room.answer_only(invite, &[AudioCodec::Pcmu]).await;
    gw.wait_call(&call_id, Duration::from_secs(5), |c| {
        c["state"] == "bridged"
    })
    .await;
    room.rtp.drain();
    // A caller whose encoder expects loss (FEC on), and whose packet 20 of
    // 40 never arrives.
    let mut encoder = opus::Encoder::new(48_000, opus::Channels::Mono, opus::Application::Voip)
        .expect("libopus encoder");
    encoder.set_inband_fec(true).unwrap();
    encoder.set_packet_loss_perc(25).unwrap();
    let pcm = tone(697.0, 48000.0, 0.8);
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    for (i, frame) in pcm.chunks(960).enumerate() {
        tick.tick().await;
        let payload = encoder.encode_vec(frame, 1500).unwrap();
        if i == 20 {
            continue;
        }
        let mut head = [0u8; HEADER_LEN];
        Header {
            marker: i == 0,
            payload_type: 111,
            sequence: 500 + i as u16,
            timestamp: 9_600 + i as u32 * 960,
            ssrc: 77,
        }
        .write(&mut head);
        let packet = [&head[..], &payload[..]].concat();
        phone
            .rtp
            .socket
            .send_to(&packet, caller_media.addr)
            .await
            .unwrap();
    }
    let got = room.rtp.collect(Duration::from_millis(300)).await;
    let audio: Vec<&Packet> = got.iter().filter(|p| p.header.payload_type == 0).collect();
    assert_eq!(audio.len(), 39, "one packet fewer");
    // All 40 × 20 ms reached the room: the packet after the lost one
    // carries both, stamped where the lost one would have been.
    let bytes: usize = audio.iter().map(|p| p.payload.len()).sum();
    assert_eq!(bytes, 40 * 160);
    let double = audio
        .iter()
        .position(|p| p.payload.len() == 320)
        .expect("a packet carrying the lost one's audio");
    let (before, after) = (audio[double - 1], audio[double]);
    assert_eq!(
        after.header.timestamp.wrapping_sub(before.header.timestamp),
        160,
        "no gap on the room's clock"
    );
}

/// `sdp` (ours, saying Opus) as a peer that plays 8 kHz at most and wants
/// `ptime` ms packets says it.
fn asking(sdp: String, narrowband: bool, ptime: u32) -> String {
    let sdp = sdp.replace("a=ptime:20", &format!("a=ptime:{ptime}"));
    match narrowband {
        true => sdp.replace("maxplaybackrate=16000", "maxplaybackrate=8000"),
        false => sdp,
    }
}

/// What a peer hears of `packets`, every one decoded in turn (a decoder
/// started mid-stream, as `decoded`'s is, starts with a glitch that 60 ms
/// packets make too large a share of the audio).
fn heard_from(packets: &[Packet]) -> Vec<i16> {
    let mut decode = opus_peer_decoder();
    packets.iter().flat_map(|p| decode(&p.payload)).collect()
}

/// Each packet is one Opus packet of `frames` 20 ms frames in `band`
/// (past the first few, while libopus settles), and they make one stream.
fn assert_joined(packets: &[Packet], frames: u32, band: opus::Bandwidth) {
    assert!(packets.len() > 5, "{} packets", packets.len());
    support::audio::assert_one_stream_at(packets, 960 * frames);
    for (i, p) in packets.iter().enumerate() {
        let samples = opus::packet::get_nb_samples(&p.payload, 48_000).expect("an Opus packet");
        assert_eq!(samples, 960 * frames as usize, "packet {i}");
        if i >= 3 {
            assert_eq!(
                opus::packet::get_bandwidth(&p.payload).unwrap(),
                band,
                "packet {i}"
            );
        }
    }
}

#[tokio::test]
async fn a_caller_asking_for_narrowband_60_ms_packets_gets_them_from_the_music_and_a_g722_room() {
    let mut hooks = WebhookReceiver::start(&[]).await;
    let codecs = [("PINLESS_MEDIA__CODECS", r#"["opus", "G722"]"#)];
    let gw = TestGateway::start_with_env(&hooks.url(), "", &codecs).await;
    let phone = Phone::new().await;
    let mut room = Room::new().await;
    let ours = sdp::offer_of(
        phone.rtp.addr.ip(),
        phone.rtp.addr.port(),
        &[AudioCodec::Opus],
    );
    let (_leg, caller_media) = call_with(&gw, &phone, asking(ours, true, 60)).await;
    assert_eq!(caller_media.codecs, vec![(111, AudioCodec::Opus)]);
    let call_id = call_id(&mut hooks).await;

    // The music: three frames a packet, narrowband, and music still.
    let held = phone.rtp.collect(Duration::from_millis(1200)).await;
    assert!(
        (16..=22).contains(&held.len()),
        "{} packets in 1.2 s",
        held.len()
    );
    assert_joined(&held, 3, opus::Bandwidth::Narrowband);
    let audio = heard_from(&held);
    assert_eq!(audio.len(), held.len() * 2880);
    assert!(
        rms(&audio[9600..]) > 500.0,
        "music: rms {:.0}",
        rms(&audio[9600..])
    );

    // A G.722 room's wideband tone reaches the caller the same way.
    transfer(&gw, &room, &call_id).await;
    let invite = room.next_invite().await;
    let (_room_leg, gw_room) = room.answer_only(invite, &[AudioCodec::G722]).await;
    gw.wait_call(&call_id, Duration::from_secs(5), |c| {
        c["state"] == "bridged"
    })
    .await;
    phone.rtp.drain();
    send_payloads(&room.rtp, gw_room.addr, 9, 160, g722_tone(1000.0, 1.2));
    let got = phone.rtp.collect(Duration::from_millis(1300)).await;
    // Past the switch from the music.
    let relayed = &got[2..];
    assert!(
        (15..=22).contains(&relayed.len()),
        "{} packets",
        relayed.len()
    );
    assert_joined(relayed, 3, opus::Bandwidth::Narrowband);
    assert_tone(&heard_from(relayed)[4800..], 48000.0, 1000.0, "the caller");
}

#[tokio::test]
async fn a_room_asking_for_40_ms_opus_packets_gets_a_pcmu_caller_s_audio_in_them() {
    let mut hooks = WebhookReceiver::start(&[]).await;
    let gw = opus_gateway(&hooks).await;
    let phone = Phone::new().await;
    let mut room = Room::new().await;
    let (_leg, caller_media) = call_offering(&gw, &phone, &[AudioCodec::Pcmu]).await;
    let call_id = call_id(&mut hooks).await;
    transfer(&gw, &room, &call_id).await;
    let invite = room.next_invite().await;
    let offer = sdp::parse(&invite.info.sdp).unwrap();
    assert!(offer.codecs.contains(&(111, AudioCodec::Opus)), "{offer:?}");
    let answer = sdp::answer(
        room.rtp.addr.ip(),
        room.rtp.addr.port(),
        LegCodec::new(AudioCodec::Opus, 111, offer.wide_event_payload_type),
    );
    let _room_leg = invite
        .accept(&room.stack, asking(answer, false, 40))
        .await
        .expect("room answers");
    gw.wait_call(&call_id, Duration::from_secs(5), |c| {
        c["state"] == "bridged"
    })
    .await;
    room.rtp.drain();
    let mu = mulaw_tone(697.0, 1.2);
    send_payloads(&phone.rtp, caller_media.addr, 0, 160, mu);
    let got = room.rtp.collect(Duration::from_millis(1300)).await;
    let audio: Vec<Packet> = got
        .into_iter()
        .filter(|p| p.header.payload_type == 111)
        .collect();
    assert!(
        (25..=31).contains(&audio.len()),
        "{} packets in 1.2 s",
        audio.len()
    );
    assert_joined(&audio, 2, opus::Bandwidth::Narrowband);
    assert_tone(&heard_from(&audio)[4800..], 48000.0, 697.0, "the room");
}
