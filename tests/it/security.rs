//! Who may call, over real SIP on loopback: IP allow lists (403), digest
//! credentials (407, then success; wrong password 403; replays refused),
//! the per-source INVITE rate (503 with Retry-After), and the capacity
//! limits (max_calls, a pacer that cannot keep up: 503).

use crate::support;

use md5::{Digest, Md5};
use pinless::sip::DialOutcome;
use std::time::Duration;
use support::raw::{RawResponse, RawSip};
use support::*;

#[tokio::test]
async fn a_source_outside_the_allow_list_gets_403() {
    let mut hooks = WebhookReceiver::start(&[]).await;
    let gw = TestGateway::start(&hooks.url(), r#"allowed_cidrs = ["203.0.113.0/24"]"#).await;
    let phone = Phone::new().await;
    let mut d = phone.dial(&gw.sip_uri("support", false), &[]);
    assert!(matches!(
        within(5, "403", d.outcome()).await,
        DialOutcome::Rejected { code: 403, .. }
    ));
    assert_eq!(gw.metric("pinless_invites_forbidden_ip_total").await, 1.0);
    assert!(
        tokio::time::timeout(Duration::from_millis(300), hooks.rx.recv())
            .await
            .is_err(),
        "no webhook for a refused call"
    );
    drop(gw);
    let gw = TestGateway::start(&hooks.url(), r#"allowed_cidrs = ["127.0.0.0/8"]"#).await;
    let (_leg, _) = phone.call(&gw.sip_uri("support", false), &[]).await;
    hooks.next().await;
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// `Proxy-Authorization` for a challenge, computed as RFC 7616 says.
fn authorization(
    challenge: &RawResponse,
    uri: &str,
    user: &str,
    password: &str,
    nc: u32,
) -> String {
    let realm = challenge.param("Proxy-Authenticate", "realm").unwrap();
    let nonce = challenge.param("Proxy-Authenticate", "nonce").unwrap();
    let h = |s: String| hex(&Md5::digest(s.as_bytes()));
    let ha1 = h(format!("{user}:{realm}:{password}"));
    let ha2 = h(format!("INVITE:{uri}"));
    let nc = format!("{nc:08x}");
    let response = h(format!("{ha1}:{nonce}:{nc}:c0ffee:auth:{ha2}"));
    format!(
        "Proxy-Authorization: Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", \
         uri=\"{uri}\", response=\"{response}\", algorithm=MD5, qop=auth, nc={nc}, cnonce=\"c0ffee\"\r\n"
    )
}

#[tokio::test]
async fn digest_challenge_then_success_wrong_password_and_replay() {
    let mut hooks = WebhookReceiver::start(&[]).await;
    let gw = TestGateway::start(
        &hooks.url(),
        r#"credentials = [{ username = "joe", password = "s3cret" }]"#,
    )
    .await;
    let sip = RawSip::new(gw.gw.sip_udp.unwrap()).await;
    let wait = Duration::from_secs(5);
    let uri = format!("sip:support@{}", sip.to);

    sip.send(&sip.invite("support", "auth-1", 1, "")).await;
    let challenge = sip.response(wait, true).await.expect("an answer");
    assert_eq!(challenge.code(), 407, "{}", challenge.0);
    let www = challenge.header("Proxy-Authenticate").expect("a challenge");
    assert!(
        www.starts_with("Digest ") && www.contains("qop=\"auth\""),
        "{www}"
    );

    // Wrong password: 403, and it is counted.
    let wrong = authorization(&challenge, &uri, "joe", "guess", 1);
    sip.send(&sip.invite("support", "auth-2", 2, &wrong)).await;
    assert_eq!(sip.response(wait, true).await.unwrap().code(), 403);
    assert_eq!(
        gw.metric("pinless_invites_forbidden_credentials_total")
            .await,
        1.0
    );

    // Right password: answered, and the app hears of the call.
    let right = authorization(&challenge, &uri, "joe", "s3cret", 1);
    sip.send(&sip.invite("support", "auth-3", 3, &right)).await;
    let ok = sip.response(wait, true).await.unwrap();
    assert_eq!(ok.code(), 200, "{}", ok.0);
    hooks.next().await;

    // The same credentials again, on a new call: a replay, challenged anew.
    sip.send(&sip.invite("support", "auth-4", 4, &right)).await;
    let replay = sip.response(wait, true).await.unwrap();
    assert_eq!(replay.code(), 407);
    let fresh = replay.param("Proxy-Authenticate", "nonce").unwrap();
    assert_ne!(Some(fresh), challenge.param("Proxy-Authenticate", "nonce"));
    assert!(gw.metric("pinless_invites_challenged_total").await >= 2.0);
}

#[tokio::test]
async fn invites_beyond_the_per_source_rate_get_503() {
    let hooks = WebhookReceiver::start(&[]).await;
    let gw = TestGateway::start(&hooks.url(), "\n[limits]\ninvites_per_sec_per_ip = 3").await;
    let sip = RawSip::new(gw.gw.sip_udp.unwrap()).await;
    for i in 0..10 {
        sip.send(&sip.invite("nobody", &format!("flood-{i}"), 1, ""))
            .await;
    }
    // One answer per call (not ACKed, so retransmitted: keep the first).
    let mut by_call = std::collections::BTreeMap::new();
    while let Some(r) = sip.response(Duration::from_millis(800), true).await {
        if r.code() == 503 {
            assert_eq!(r.header("Retry-After"), Some("1"), "{}", r.0);
        }
        let call = r.header("Call-ID").unwrap_or_default().to_string();
        by_call.entry(call).or_insert(r.code());
    }
    let codes: Vec<u16> = by_call.into_values().collect();
    let refused = codes.iter().filter(|c| **c == 503).count();
    let passed = codes.iter().filter(|c| **c == 404).count();
    assert_eq!(codes.len(), 10, "{codes:?}");
    assert!(
        (3..=4).contains(&passed),
        "the burst of 3 went on: {codes:?}"
    );
    assert_eq!(refused, 10 - passed);
    assert_eq!(
        gw.metric("pinless_invites_rate_limited_total").await,
        refused as f64
    );
}

#[tokio::test]
async fn hostile_sip_never_stops_the_gateway() {
    let mut hooks = WebhookReceiver::start(&[]).await;
    let gw = TestGateway::start(&hooks.url(), "").await;
    let sip = RawSip::new(gw.gw.sip_udp.unwrap()).await;
    // Each variant is a fresh INVITE (own branch and Call-ID), then broken.
    let fresh = |i: usize| sip.invite("support", &format!("hostile-{i}"), 1, "");
    let without = |text: String, header: &str| -> String {
        text.lines()
            .filter(|l| !l.starts_with(header))
            .map(|l| format!("{l}\r\n"))
            .collect()
    };
    let hostile: Vec<(&str, Vec<u8>)> = vec![
        ("garbage bytes", (0..=255u8).cycle().take(1500).collect()),
        ("truncated", fresh(1).as_bytes()[..200].to_vec()),
        ("no Call-ID", without(fresh(2), "Call-ID").into_bytes()),
        ("no CSeq", without(fresh(3), "CSeq").into_bytes()),
        ("no Via", without(fresh(4), "Via").into_bytes()),
        (
            "Content-Length too big",
            fresh(5)
                .replace("Content-Length: ", "Content-Length: 9999")
                .into_bytes(),
        ),
        (
            "Content-Length negative",
            fresh(6)
                .replace("Content-Length: ", "Content-Length: -")
                .into_bytes(),
        ),
        (
            "bad CSeq",
            fresh(7)
                .replace("CSeq: 1 INVITE", "CSeq: banana")
                .into_bytes(),
        ),
        (
            "bad Via",
            fresh(8)
                .replace("Via: SIP/2.0/UDP", "Via: SIP/9.9/XYZ")
                .into_bytes(),
        ),
        ("blank lines", b"\r\n\r\n".to_vec()),
        ("empty", Vec::new()),
    ];
    for (_, datagram) in &hostile {
        sip.socket.send_to(datagram, sip.to).await.unwrap();
    }
    // A BYE for a dialog that does not exist is answered 481.
    let bye = format!(
        "BYE sip:support@{to} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKbye1\r\n\
         Max-Forwards: 70\r\nFrom: <sip:a@{local}>;tag=x\r\nTo: <sip:support@{to}>;tag=nope\r\n\
         Call-ID: no-such-dialog\r\nCSeq: 7 BYE\r\nContent-Length: 0\r\n\r\n",
        to = sip.to,
        local = sip.local
    );
    sip.send(&bye).await;
    let mut answers = std::collections::BTreeMap::new();
    while let Some(r) = sip.response(Duration::from_millis(700), true).await {
        let call = r.header("Call-ID").unwrap_or_default().to_string();
        answers.entry(call).or_insert(r.code());
    }
    println!("answers to hostile messages: {answers:?}");
    assert_eq!(answers.get("no-such-dialog"), Some(&481), "{answers:?}");
    assert!(
        answers.values().all(|c| *c >= 400),
        "nothing hostile was accepted: {answers:?}"
    );
    // Still taking calls, and nothing half-made lingers.
    let phone = Phone::new().await;
    let (_leg, _) = phone.call(&gw.sip_uri("support", false), &[]).await;
    hooks.next().await;
    assert_eq!(gw.gw.registry.len(), 1, "only the good call is live");
}

#[tokio::test]
async fn oversized_messages_and_too_many_headers_are_refused() {
    let hooks = WebhookReceiver::start(&[]).await;
    let gw = TestGateway::start(&hooks.url(), "").await;
    let sip = RawSip::new(gw.gw.sip_udp.unwrap()).await;
    let huge: String = (0..10)
        .map(|i| format!("X-Big{i}: {}\r\n", "a".repeat(2_000)))
        .collect();
    sip.send(&sip.invite("support", "huge", 1, &huge)).await;
    let many: String = (0..100).map(|i| format!("X-H{i}: {i}\r\n")).collect();
    sip.send(&sip.invite("support", "many", 1, &many)).await;
    let long_line = format!("X-Long: {}\r\n", "b".repeat(5_000));
    sip.send(&sip.invite("support", "long", 1, &long_line))
        .await;
    let mut answers = std::collections::BTreeMap::new();
    while let Some(r) = sip.response(Duration::from_millis(700), true).await {
        let call = r.header("Call-ID").unwrap_or_default().to_string();
        answers.entry(call).or_insert(r.code());
    }
    assert_eq!(answers.get("huge"), Some(&513), "{answers:?}");
    assert_eq!(answers.get("many"), Some(&400), "{answers:?}");
    assert_eq!(answers.get("long"), Some(&400), "{answers:?}");
    assert_eq!(gw.gw.registry.len(), 0);
}

/// A dialog set up by hand: INVITE with `cseq`, 200, ACK. Returns the
/// To header of the 200 (with pinless's tag) for in-dialog requests.
async fn raw_dialog(sip: &RawSip, call_id: &str, cseq: u32) -> String {
    sip.send(&sip.invite("support", call_id, cseq, "")).await;
    let ok = sip
        .response(Duration::from_secs(5), true)
        .await
        .expect("200");
    assert_eq!(ok.code(), 200, "{}", ok.0);
    ok.header("To").expect("To with tag").to_string()
}

fn in_dialog(sip: &RawSip, method: &str, call_id: &str, to: &str, cseq: u32) -> String {
    format!(
        "{method} sip:pinless@{gw} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK{b}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:+15557654321@{local}>;tag=raw{initial}\r\nTo: {to}\r\n\
         Call-ID: {call_id}\r\nCSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n",
        gw = sip.to,
        local = sip.local,
        b = uuid::Uuid::new_v4().simple(),
        initial = 5,
    )
}

#[tokio::test]
async fn out_of_order_cseq_in_a_dialog_is_refused() {
    let mut hooks = WebhookReceiver::start(&[]).await;
    let gw = TestGateway::start(&hooks.url(), "").await;
    let sip = RawSip::new(gw.gw.sip_udp.unwrap()).await;
    let to = raw_dialog(&sip, "cseq-1", 5).await;
    hooks.next().await;
    // An ACK with another CSeq does not confirm the 200: it keeps coming.
    sip.send(&in_dialog(&sip, "ACK", "cseq-1", &to, 4)).await;
    let again = sip.response(Duration::from_secs(2), true).await;
    assert_eq!(again.map(|r| r.code()), Some(200), "200 retransmitted");
    sip.send(&in_dialog(&sip, "ACK", "cseq-1", &to, 5)).await;
    // A BYE whose CSeq is not above the INVITE's is out of order.
    sip.send(&in_dialog(&sip, "BYE", "cseq-1", &to, 3)).await;
    let refused = loop {
        let r = sip
            .response(Duration::from_secs(2), true)
            .await
            .expect("an answer");
        if r.header("CSeq").is_some_and(|c| c.ends_with("BYE")) {
            break r;
        }
    };
    assert_eq!(refused.code(), 500, "{}", refused.0);
    assert_eq!(gw.gw.registry.len(), 1, "the call goes on");
    sip.send(&in_dialog(&sip, "BYE", "cseq-1", &to, 6)).await;
    let bye_ok = loop {
        let r = sip
            .response(Duration::from_secs(2), true)
            .await
            .expect("an answer");
        if r.header("CSeq").is_some_and(|c| c == "6 BYE") {
            break r;
        }
    };
    assert_eq!(bye_ok.code(), 200);
    support::within(5, "the call to end", async {
        while !gw.gw.registry.is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn sdp_without_audio_gets_488() {
    let hooks = WebhookReceiver::start(&[]).await;
    let gw = TestGateway::start(&hooks.url(), "").await;
    let sip = RawSip::new(gw.gw.sip_udp.unwrap()).await;
    let video = sip
        .invite("support", "video-only", 1, "")
        .replace("m=audio", "m=video")
        .replace("a=rtpmap:0 PCMU/8000", "a=rtpmap:0 H261/90000");
    sip.send(&video).await;
    let r = sip
        .response(Duration::from_secs(5), true)
        .await
        .expect("an answer");
    assert_eq!(r.code(), 488, "{}", r.0);
}

#[tokio::test]
async fn rtp_from_anyone_but_the_latched_caller_is_dropped() {
    let call = held_call("", &[]).await;
    let target = call.media.addr;
    // The caller's first packet latches its address.
    let _latch = call.phone.rtp.send_pattern(target, 0, 0x10, 3);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let stranger = RtpPeer::new().await;
    stranger.send_pattern(target, 0, 0x66, 10).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(call.gw.metric("pinless_rtp_foreign_dropped_total").await >= 10.0);
    assert!(
        stranger
            .collect(Duration::from_millis(200))
            .await
            .is_empty(),
        "the stranger is not sent the caller's music"
    );
}

#[tokio::test]
async fn a_pacer_that_cannot_keep_up_refuses_new_calls_not_held_ones() {
    // A limit of 0 % makes the one held call's sends "too much", which is
    // what thousands of calls do to a real pacer. One media shard: with
    // more, the others would still take calls (tests/shards.rs).
    let call = held_call(
        "\n[media]\nthreads = 1\n[limits]\npacer_busy_max_pct = 0",
        &[],
    )
    .await;
    call.gw.refuses_while_overloaded("while-overloaded").await;
    // The held caller still hears an unbroken stream.
    call.phone.rtp.drain();
    let music = call.phone.rtp.collect(Duration::from_millis(500)).await;
    assert!(music.len() >= 22, "{} packets in 500 ms", music.len());
    for w in music.windows(2) {
        assert_eq!(w[1].header.sequence, w[0].header.sequence.wrapping_add(1));
        assert!(w[1].at.duration_since(w[0].at) < Duration::from_millis(40));
    }
}

#[tokio::test]
async fn a_second_caller_beyond_max_calls_gets_503_and_is_counted() {
    let call = held_call("\n[limits]\nmax_calls = 1", &[]).await;
    let sip = RawSip::new(call.gw.gw.sip_udp.unwrap()).await;
    sip.send(&sip.invite("support", "beyond-max", 1, "")).await;
    let refused = sip
        .response(Duration::from_secs(3), true)
        .await
        .expect("an answer");
    assert_eq!(refused.code(), 503, "{}", refused.0);
    assert!(refused.header("Retry-After").is_some());
    assert_eq!(
        call.gw.metric("pinless_invites_at_capacity_total").await,
        1.0
    );
    // With the default pacer limit, a held call is nowhere near overload.
    assert_eq!(call.gw.metric("pinless_pacer_overloaded").await, 0.0);
}

/// `max_calls` counts a call from the moment it is let in, not from its
/// answer: a burst of callers while the entry rings (`answer_delay_ms`)
/// never has more than `max_calls` ringing or answered.
#[tokio::test]
async fn a_burst_while_ringing_never_exceeds_max_calls() {
    let hooks = WebhookReceiver::start(&[]).await;
    let gw = TestGateway::start(
        &hooks.url(),
        "answer_delay_ms = 800\n[limits]\nmax_calls = 3\ninvites_per_sec_per_ip = 1000",
    )
    .await;
    let mut callers = Vec::new();
    for i in 0..10 {
        let sip = RawSip::new(gw.gw.sip_udp.unwrap()).await;
        sip.send(&sip.invite("support", &format!("burst-{i}"), 1, ""))
            .await;
        callers.push(sip);
    }
    let mut answered = 0;
    let mut busy = 0;
    for sip in &callers {
        let r = sip
            .response(Duration::from_secs(5), true)
            .await
            .expect("a final answer");
        match r.code() {
            200 => answered += 1,
            503 => {
                assert!(r.header("Retry-After").is_some(), "{}", r.0);
                busy += 1;
            }
            other => panic!("unexpected {other}: {}", r.0),
        }
    }
    assert_eq!((answered, busy), (3, 7));
    assert_eq!(gw.metric("pinless_invites_at_capacity_total").await, 7.0);
}
