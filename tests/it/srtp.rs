//! SRTP with SDES keys over real SIP on loopback: a caller over TLS that
//! requires SRTP hears music it can decrypt (and only with the keys of
//! the SDP), is bridged to an SRTP room (`"mediaEncryption": "require"`)
//! and audio crosses both ways intact after decryption; the keys show in
//! neither the API nor the SIP ladder; the entry's `media_encryption`
//! and the transport decide what is refused (488) or answered plain.
//!
//! The test's own SRTP is pinless's `SrtpLeg` (the `rtc-srtp` crate),
//! keyed from the SDP each side really sent.

use crate::support;

use pinless::codec::AudioCodec;
use pinless::media::rtp::{self, HEADER_LEN, Header};
use pinless::media::{LegKeys, SrtpLeg};
use pinless::sdes::{MasterKey, Suite};
use pinless::sip::crypto;
use pinless::sip::{DialOutcome, sdp};
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use support::peers::{RtpPeer, TestCert};
use support::*;

/// A gateway with a TLS listener whose entry has `media_encryption`.
async fn gateway(hooks: &WebhookReceiver, policy: &str, cert: &TestCert) -> TestGateway {
    let (c, k) = (cert.cert.to_str().unwrap(), cert.key.to_str().unwrap());
    TestGateway::start_with_env(
        &hooks.url(),
        &format!("media_encryption = \"{policy}\""),
        &[
            ("PINLESS_SIP__TLS", "127.0.0.1:0"),
            ("PINLESS_SIP__TLS_CERT", c),
            ("PINLESS_SIP__TLS_KEY", k),
            ("PINLESS_SIP__TLS_CA", c),
        ],
    )
    .await
}

/// The phone's offer: PCMU/PCMA with `key` in an `a=crypto` line
/// (`RTP/SAVP` when `savp`, else best-effort `RTP/AVP`).
fn offer(rtp: &RtpPeer, key: Option<&MasterKey>, savp: bool) -> String {
    let plain = sdp::offer(rtp.addr.ip(), rtp.addr.port());
    match key {
        Some(k) => crypto::secure(plain, savp, &[(1, k)]),
        None => plain,
    }
}

/// Dials `target` with `offer`: the answer's SDP, or the refusal's code.
async fn dial(
    phone: &Phone,
    target: &str,
    offer: String,
) -> Result<(pinless::sip::Leg, Vec<u8>), u16> {
    let mut d = phone.dial_sdp(target, &[], offer);
    match within(10, "an answer", d.outcome()).await {
        DialOutcome::Answered { leg, sdp } => Ok((leg, sdp.to_vec())),
        DialOutcome::Rejected { code, .. } => Err(code),
        other => panic!("unexpected outcome {other:?}"),
    }
}

/// Every RTP packet on `peer` for `d`, raw (as on the wire).
async fn raw_packets(peer: &RtpPeer, d: Duration) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + d;
    let mut buf = [0u8; 2048];
    while let Ok(Ok((n, _))) =
        tokio::time::timeout_at(deadline, peer.socket.recv_from(&mut buf)).await
    {
        out.push(buf[..n].to_vec());
    }
    out
}

/// `wire` decrypted by `leg`: header and payload.
fn open(leg: &SrtpLeg, wire: &[u8]) -> Option<(Header, Vec<u8>)> {
    let mut buf = wire.to_vec();
    let n = leg.unprotect(&mut buf, wire.len())?;
    let (h, range) = rtp::parse(&buf[..n])?;
    Some((h, buf[range].to_vec()))
}

/// Waits (5 s) for an SRTP packet on `peer` whose decrypted payload is
/// all `byte`.
async fn hears(peer: &RtpPeer, leg: &SrtpLeg, byte: u8) {
    within(5, &format!("decrypted audio 0x{byte:02X}"), async {
        loop {
            for wire in raw_packets(peer, Duration::from_millis(40)).await {
                if let Some((_, payload)) = open(leg, &wire)
                    && payload.iter().all(|b| *b == byte)
                {
                    return;
                }
            }
        }
    })
    .await
}

/// Sends `count` SRTP packets of `byte` × 160 (PCMU) every 20 ms.
fn send_srtp(
    peer: &RtpPeer,
    to: SocketAddr,
    leg: Arc<SrtpLeg>,
    byte: u8,
    count: u16,
) -> tokio::task::JoinHandle<()> {
    let socket = peer.socket.clone();
    tokio::spawn(async move {
        let ssrc = rand::random();
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        for i in 0..count {
            tick.tick().await;
            let mut head = [0u8; HEADER_LEN];
            Header {
                marker: i == 0,
                payload_type: 0,
                sequence: 100 + i,
                timestamp: 1000 + u32::from(i) * 160,
                ssrc,
            }
            .write(&mut head);
            let mut packet = head.to_vec();
            packet.extend(std::iter::repeat_n(byte, 160));
            let wire = leg.protect(&packet).expect("encrypts");
            let _ = socket.send_to(&wire, to).await;
        }
    })
}

#[tokio::test]
async fn an_srtp_caller_over_tls_hears_encrypted_music_then_talks_with_an_srtp_room() {
    let cert = TestCert::new();
    let mut hooks = WebhookReceiver::start(&[]).await;
    let gw = gateway(&hooks, "require", &cert).await;
    let tls = gw.gw.sip_tls.expect("a TLS listener");
    let phone = Phone::with(Some(&cert)).await;
    // The node's event stream, open from the start (keys must not reach
    // it either).
    let mut events = gw
        .http
        .get(gw.url("/v1/events"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("event stream opens");
    assert_eq!(events.status(), 200);
    let phone_key = MasterKey::fresh(Suite::AesCm128HmacSha1_80);
    let target = format!("sip:support@{tls};transport=tls");
    let (leg, answer) = dial(&phone, &target, offer(&phone.rtp, Some(&phone_key), true))
        .await
        .expect("an SRTP offer over TLS is answered");

    // The answer: RTP/SAVP, our tag and suite, the gateway's own key.
    let seen = crypto::read(&answer);
    assert!(seen.savp, "{}", String::from_utf8_lossy(&answer));
    assert_eq!(seen.lines.len(), 1);
    assert_eq!(seen.lines[0].tag, 1);
    let gw_key = seen.lines[0].key.clone();
    assert_eq!(gw_key.suite, Suite::AesCm128HmacSha1_80);
    assert_ne!(gw_key, phone_key);
    let caller = Arc::new(
        SrtpLeg::new(LegKeys {
            local: phone_key.clone(),
            remote: gw_key.clone(),
        })
        .unwrap(),
    );
    let gw_media = sdp::parse(&answer).unwrap().addr;

    // Music: encrypted on the wire (80-bit tag, payload unlike the
    // decrypted one), every packet authentic, the audio not silence.
    let packets = raw_packets(&phone.rtp, Duration::from_millis(400)).await;
    assert!(packets.len() >= 10, "{} packets", packets.len());
    let mut ssrcs = std::collections::BTreeSet::new();
    let mut loud = 0;
    for wire in &packets {
        assert_eq!(wire.len(), HEADER_LEN + 160 + 10);
        let (h, payload) = open(&caller, wire).expect("authentic SRTP");
        assert_ne!(
            &wire[HEADER_LEN..HEADER_LEN + 160],
            &payload[..],
            "encrypted"
        );
        ssrcs.insert(h.ssrc);
        // PCMU silence is 0xFF/0x7F; music has other values.
        loud += payload.iter().filter(|b| **b & 0x7F != 0x7F).count();
    }
    assert_eq!(ssrcs.len(), 1);
    assert!(loud > 1000, "music, not silence ({loud} loud samples)");
    // A wrong key reads none of it.
    let stranger = SrtpLeg::new(LegKeys {
        local: phone_key.clone(),
        remote: MasterKey::fresh(Suite::AesCm128HmacSha1_80),
    })
    .unwrap();
    assert!(open(&stranger, &packets[0]).is_none());

    // The app asks for an SRTP room; the room is reached over TLS.
    let hook = hooks.next().await.json();
    let call_id = hook["callId"].as_str().unwrap().to_string();
    let mut room = Room::with(Some(&cert)).await;
    let room_target = format!("sip:agent@{};transport=tls", room.stack.tls_addr().unwrap());
    let (status, body) = gw
        .update(gw.update_body(
            &call_id,
            json!({ "sipUri": room_target, "mediaEncryption": "require" }),
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    let invite = room.next_invite().await;
    assert_eq!(invite.info.transport, "tls");
    let room_offer = crypto::read(&invite.info.sdp);
    assert!(room_offer.savp);
    let suites: Vec<Suite> = room_offer.lines.iter().map(|l| l.key.suite).collect();
    assert_eq!(
        suites,
        [
            Suite::AesCm128HmacSha1_80,
            Suite::AesCm128HmacSha1_32,
            Suite::AeadAes128Gcm
        ]
    );
    // The room takes the _32 suite (tag 2) with its own key.
    let line = &room_offer.lines[1];
    let room_key = MasterKey::fresh(line.key.suite);
    let offered = sdp::parse(&invite.info.sdp).unwrap();
    let answer = crypto::secure(
        sdp::answer(room.rtp.addr.ip(), room.rtp.addr.port(), offered.choose()),
        true,
        &[(line.tag, &room_key)],
    );
    let mut room_leg = invite.accept(&room.stack, answer).await.unwrap();
    let room_srtp = Arc::new(
        SrtpLeg::new(LegKeys {
            local: room_key.clone(),
            remote: line.key.clone(),
        })
        .unwrap(),
    );

    // Audio both ways, decrypted intact at each end.
    let _to_caller = send_srtp(&room.rtp, offered.addr, room_srtp.clone(), 0x5B, 250);
    hears(&phone.rtp, &caller, 0x5B).await;
    let _to_room = send_srtp(&phone.rtp, gw_media, caller.clone(), 0x3C, 250);
    hears(&room.rtp, &room_srtp, 0x3C).await;
    gw.wait_call(&call_id, Duration::from_secs(5), |c| {
        c["state"] == "bridged"
    })
    .await;

    // The room refreshes the session with a re-INVITE: our answer holds
    // the one line it took, not our three-key offer (RFC 4568: one key
    // per answer).
    let code = within(5, "the re-INVITE's answer", room_leg.reinvite()).await;
    assert_eq!(code.ok().flatten(), Some(200));
    let (_, ladder) = gw
        .api(
            reqwest::Method::GET,
            &format!("/v1/calls/{call_id}/sip"),
            None,
        )
        .await;
    let answers: Vec<&serde_json::Value> = ladder["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter(|m| {
            m["leg"] == "room"
                && m["direction"] == "out"
                && m["startLine"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("SIP/2.0 200")
        })
        .collect();
    let reanswer = answers.last().expect("our 200 to the re-INVITE");
    let body = reanswer["body"].as_str().unwrap_or_default();
    assert_eq!(body.matches("a=crypto:").count(), 1, "{body}");
    assert!(body.contains(&format!("a=crypto:{} ", line.tag)), "{body}");

    // No key in the API's call, nor in its SIP ladder.
    let keys = [&phone_key, &gw_key, &room_key, &line.key];
    let (_, call) = gw.get_call(&call_id).await;
    let (status, ladder) = gw
        .api(
            reqwest::Method::GET,
            &format!("/v1/calls/{call_id}/sip"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let text = format!("{call}{ladder}");
    assert!(text.contains("a=crypto:"), "the ladder shows the lines");
    for k in keys {
        assert!(!text.contains(k.inline()), "a key leaked: {text}");
    }

    // Nor in the event stream, nor in the call's record once it ended.
    leg.hangup();
    let record = within(5, "the call's record", async {
        loop {
            let (_, page) = gw
                .api(reqwest::Method::GET, "/v1/call-records?since=0", None)
                .await;
            if page.to_string().contains(&call_id) {
                return page.to_string();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let mut stream = String::new();
    while let Ok(Ok(Some(chunk))) =
        tokio::time::timeout(Duration::from_millis(300), events.chunk()).await
    {
        stream.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(
        stream.contains(&call_id),
        "the stream carried the call: {stream}"
    );
    for k in keys {
        assert!(
            !record.contains(k.inline()),
            "a key in the record: {record}"
        );
        assert!(
            !stream.contains(k.inline()),
            "a key in the events: {stream}"
        );
    }
}

#[tokio::test]
async fn the_entry_and_the_transport_decide_what_is_refused() {
    let cert = TestCert::new();
    let hooks = WebhookReceiver::start(&[]).await;
    let phone = Phone::with(Some(&cert)).await;
    let key = MasterKey::fresh(Suite::AesCm128HmacSha1_32);

    let require = gateway(&hooks, "require", &cert).await;
    let tls = format!("sip:support@{};transport=tls", require.gw.sip_tls.unwrap());
    let udp = require.sip_uri("support", false);
    // A plain offer to a `require` entry: 488, over TLS as over UDP.
    assert_eq!(
        dial(&phone, &tls, offer(&phone.rtp, None, false))
            .await
            .err(),
        Some(488)
    );
    assert_eq!(
        dial(&phone, &udp, offer(&phone.rtp, None, false))
            .await
            .err(),
        Some(488)
    );
    // SDES keys over UDP are refused: they crossed the network in clear.
    let savp = offer(&phone.rtp, Some(&key), true);
    assert_eq!(dial(&phone, &udp, savp.clone()).await.err(), Some(488));
    // The _32 suite over TLS is answered in kind.
    let (_leg, answer) = dial(&phone, &tls, savp.clone()).await.expect("answered");
    assert_eq!(
        crypto::read(&answer).lines[0].key.suite,
        Suite::AesCm128HmacSha1_32
    );

    let allow = gateway(&hooks, "allow", &cert).await;
    let udp = allow.sip_uri("support", false);
    let tls = format!("sip:support@{};transport=tls", allow.gw.sip_tls.unwrap());
    // `allow`: an SRTP-only offer over UDP cannot be answered plain: 488.
    assert_eq!(dial(&phone, &udp, savp.clone()).await.err(), Some(488));
    // A best-effort offer over UDP: answered plain, its key ignored.
    let best = offer(&phone.rtp, Some(&key), false);
    let (_l1, a) = dial(&phone, &udp, best.clone()).await.expect("answered");
    assert_eq!(
        crypto::read(&a).offered,
        0,
        "{}",
        String::from_utf8_lossy(&a)
    );
    // Over TLS it is answered with SRTP (RTP/AVP kept).
    let (_l2, a) = dial(&phone, &tls, best).await.expect("answered");
    let seen = crypto::read(&a);
    assert!(
        !seen.savp && seen.lines.len() == 1,
        "{}",
        String::from_utf8_lossy(&a)
    );
    // A plain offer: plain.
    let (_l3, a) = dial(&phone, &tls, offer(&phone.rtp, None, false))
        .await
        .expect("answered");
    assert_eq!(crypto::read(&a).offered, 0);

    let disable = gateway(&hooks, "disable", &cert).await;
    let tls = format!("sip:support@{};transport=tls", disable.gw.sip_tls.unwrap());
    // `disable` takes no SRTP-only offer.
    assert_eq!(dial(&phone, &tls, savp).await.err(), Some(488));
}

#[tokio::test]
async fn a_room_that_answers_an_srtp_offer_plain_is_a_failed_attempt() {
    let cert = TestCert::new();
    let mut hooks = WebhookReceiver::start(&[]).await;
    let gw = gateway(&hooks, "allow", &cert).await;
    let phone = Phone::with(Some(&cert)).await;
    let (_leg, _) = dial(
        &phone,
        &gw.sip_uri("support", false),
        offer(&phone.rtp, None, false),
    )
    .await
    .expect("answered");
    let hook = hooks.next().await.json();
    let call_id = hook["callId"].as_str().unwrap().to_string();
    let mut room = Room::with(Some(&cert)).await;
    let target = format!("sip:agent@{};transport=tls", room.stack.tls_addr().unwrap());
    let (status, _) = gw
        .update(gw.update_body(
            &call_id,
            json!({ "sipUri": target, "mediaEncryption": "require" }),
        ))
        .await;
    assert_eq!(status, 200);
    let invite = room.next_invite().await;
    assert!(crypto::read(&invite.info.sdp).savp);
    // The support room's answer ignores the keys: plain RTP/AVP.
    let (_room_leg, _) = room.answer(invite).await;
    let call = gw
        .wait_call(&call_id, Duration::from_secs(5), |c| {
            details(c, "call.transfer_failed")
                .iter()
                .any(|d| d["code"] == 488)
        })
        .await;
    assert_ne!(call["state"], "bridged", "{call:#}");
    // A `require` toward a plain sip: URI is refused at once.
    let (status, body) = gw
        .update(gw.update_body(
            &call_id,
            json!({ "sipUri": "sip:agent@127.0.0.1:5999", "mediaEncryption": "require" }),
        ))
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("mediaEncryption"), "{body}");
}

#[tokio::test]
async fn a_bare_sips_room_is_dialled_over_tls_and_keys_never_go_over_udp() {
    let cert = TestCert::new();
    let mut hooks = WebhookReceiver::start(&[]).await;
    let gw = gateway(&hooks, "allow", &cert).await;
    let phone = Phone::with(Some(&cert)).await;
    let (_leg, _) = dial(
        &phone,
        &gw.sip_uri("support", false),
        offer(&phone.rtp, None, false),
    )
    .await
    .expect("answered");
    let hook = hooks.next().await.json();
    let call_id = hook["callId"].as_str().unwrap().to_string();
    let mut room = Room::with(Some(&cert)).await;
    let tls = room.stack.tls_addr().unwrap();

    // `sips:` with no `;transport=`: ezk alone would pick UDP.
    let (status, body) = gw
        .update(gw.update_body(&call_id, json!({ "sipUri": format!("sips:agent@{tls}") })))
        .await;
    assert_eq!(status, 200, "{body}");
    let invite = room.next_invite().await;
    assert_eq!(invite.info.transport, "tls");
    let room_offer = crypto::read(&invite.info.sdp);
    assert!(room_offer.savp && room_offer.lines.len() == 3);
    let line = &room_offer.lines[0];
    let room_key = MasterKey::fresh(line.key.suite);
    let offered = sdp::parse(&invite.info.sdp).unwrap();
    let answer = crypto::secure(
        sdp::answer(room.rtp.addr.ip(), room.rtp.addr.port(), offered.choose()),
        true,
        &[(line.tag, &room_key)],
    );
    let _room_leg = invite.accept(&room.stack, answer).await.unwrap();
    gw.wait_call(&call_id, Duration::from_secs(5), |c| {
        c["state"] == "bridged"
    })
    .await;

    // A `sips:` URI that asks for UDP: the offer (with its keys) is never
    // sent; the attempt fails saying why.
    let udp = format!(
        "sips:agent@{};transport=udp",
        room.stack.udp_addr().unwrap()
    );
    let (status, body) = gw
        .update(gw.update_body(&call_id, json!({ "sipUri": udp })))
        .await;
    assert_eq!(status, 200, "{body}");
    let call = gw
        .wait_call(&call_id, Duration::from_secs(5), |c| {
            details(c, "call.transfer_failed")
                .iter()
                .any(|d| d["sipUri"] == udp.as_str())
        })
        .await;
    let failed = details(&call, "call.transfer_failed");
    let reason = failed.last().unwrap()["reason"].to_string();
    assert!(reason.contains("only sent over TLS"), "{reason}");
    assert!(
        tokio::time::timeout(Duration::from_millis(300), room.next_invite())
            .await
            .is_err(),
        "no INVITE reached the room over UDP"
    );
}

#[tokio::test]
async fn a_room_that_answers_a_plain_offer_with_srtp_is_a_failed_attempt() {
    let cert = TestCert::new();
    let mut hooks = WebhookReceiver::start(&[]).await;
    let gw = gateway(&hooks, "allow", &cert).await;
    let phone = Phone::with(Some(&cert)).await;
    let (_leg, _) = dial(
        &phone,
        &gw.sip_uri("support", false),
        offer(&phone.rtp, None, false),
    )
    .await
    .expect("answered");
    let hook = hooks.next().await.json();
    let call_id = hook["callId"].as_str().unwrap().to_string();
    let mut room = Room::with(Some(&cert)).await;
    let target = format!("sip:agent@{};transport=tls", room.stack.tls_addr().unwrap());
    let (status, _) = gw
        .update(gw.update_body(&call_id, json!({ "sipUri": target })))
        .await;
    assert_eq!(status, 200);
    let invite = room.next_invite().await;
    assert_eq!(crypto::read(&invite.info.sdp).offered, 0, "a plain offer");
    let offered = sdp::parse(&invite.info.sdp).unwrap();
    let key = MasterKey::fresh(Suite::AesCm128HmacSha1_80);
    let answer = crypto::secure(
        sdp::answer(room.rtp.addr.ip(), room.rtp.addr.port(), offered.choose()),
        true,
        &[(1, &key)],
    );
    let _room_leg = invite.accept(&room.stack, answer).await.unwrap();
    let call = gw
        .wait_call(&call_id, Duration::from_secs(5), |c| {
            details(c, "call.transfer_failed")
                .iter()
                .any(|d| d["code"] == 488)
        })
        .await;
    assert_ne!(call["state"], "bridged", "{call:#}");
    let reason = details(&call, "call.transfer_failed")[0]["reason"].to_string();
    assert!(reason.contains("plain offer with SRTP"), "{reason}");
}

#[tokio::test]
async fn an_srtp_caller_speaking_opus_hears_encrypted_opus_music() {
    let cert = TestCert::new();
    let mut hooks = WebhookReceiver::start(&[]).await;
    let (c, k) = (cert.cert.to_str().unwrap(), cert.key.to_str().unwrap());
    let gw = TestGateway::start_with_env(
        &hooks.url(),
        "media_encryption = \"require\"",
        &[
            ("PINLESS_SIP__TLS", "127.0.0.1:0"),
            ("PINLESS_SIP__TLS_CERT", c),
            ("PINLESS_SIP__TLS_KEY", k),
            ("PINLESS_SIP__TLS_CA", c),
            ("PINLESS_MEDIA__CODECS", r#"["opus", "PCMU"]"#),
        ],
    )
    .await;
    let tls = gw.gw.sip_tls.expect("a TLS listener");
    let phone = Phone::with(Some(&cert)).await;
    let phone_key = MasterKey::fresh(Suite::AesCm128HmacSha1_80);
    let plain = sdp::offer_of(
        phone.rtp.addr.ip(),
        phone.rtp.addr.port(),
        &[AudioCodec::Opus],
    );
    let offer = crypto::secure(plain, true, &[(1, &phone_key)]);
    let target = format!("sip:support@{tls};transport=tls");
    let (_leg, answer) = dial(&phone, &target, offer)
        .await
        .expect("an SRTP Opus offer over TLS is answered");
    assert_eq!(
        sdp::parse(&answer).unwrap().codecs,
        vec![(111, AudioCodec::Opus)]
    );
    hooks.next().await;
    let gw_key = crypto::read(&answer).lines[0].key.clone();
    let caller = SrtpLeg::new(LegKeys {
        local: phone_key,
        remote: gw_key,
    })
    .unwrap();
    let packets = raw_packets(&phone.rtp, Duration::from_millis(600)).await;
    assert!(packets.len() >= 20, "{} packets", packets.len());
    let mut decode = support::signal::opus_peer_decoder();
    let mut audio = Vec::new();
    for wire in &packets {
        let (h, payload) = open(&caller, wire).expect("authentic SRTP");
        assert_eq!(h.payload_type, 111);
        // Opus's own length, plus the 80-bit tag.
        assert_eq!(wire.len(), HEADER_LEN + payload.len() + 10);
        audio.extend(decode(&payload));
    }
    assert_eq!(audio.len(), packets.len() * 960);
    let rms = (audio[9600..]
        .iter()
        .map(|s| f64::from(*s).powi(2))
        .sum::<f64>()
        / (audio.len() - 9600) as f64)
        .sqrt();
    assert!(rms > 500.0, "music, not silence: rms {rms:.0}");
}
