//! Early-media hold (`answer = "early"`) over real UDP SIP and RTP, with
//! a caller written by hand (no 100rel): 183 with SDP and music, the 200
//! OK only when a room answers or when `early_media_max_secs` pass, and a
//! CANCEL in early media. The sipp caller with 100rel is in
//! `interop_early.rs`.

use crate::support;

use serde_json::json;
use std::time::Duration;
use support::peers::Packet;
use support::raw::{RawResponse, RawSip};
use support::*;

const EARLY: &str = "answer = \"early\"\nearly_media_max_secs = 60";

/// A raw caller that sent an INVITE (audio to `rtp`) and got its 183.
struct EarlyCaller {
    raw: RawSip,
    rtp: RtpPeer,
    invite: String,
    sip_call_id: String,
    progress: RawResponse,
}

async fn call_early(gw: &TestGateway, sip_call_id: &str) -> EarlyCaller {
    let raw = RawSip::new(gw.gw.sip_udp.unwrap()).await;
    let rtp = RtpPeer::new().await;
    let invite = raw.invite_rtp("support", sip_call_id, 1, "", rtp.addr.port());
    raw.send(&invite).await;
    let progress = within(5, "183 Session Progress", async {
        loop {
            let r = raw.response(Duration::from_secs(5), false).await.unwrap();
            if r.code() != 100 {
                return r;
            }
        }
    })
    .await;
    EarlyCaller {
        raw,
        rtp,
        invite,
        sip_call_id: sip_call_id.to_string(),
        progress,
    }
}

/// The `m=audio` line of a message's SDP.
fn audio_line(message: &str) -> Option<&str> {
    message.lines().find(|l| l.starts_with("m=audio"))
}

/// Whether `packets` are one stream: one SSRC, each sequence number one
/// more than the last.
fn one_stream(packets: &[Packet]) -> bool {
    packets.windows(2).all(|w| {
        w[0].header.ssrc == w[1].header.ssrc
            && w[1].header.sequence == w[0].header.sequence.wrapping_add(1)
    })
}

#[tokio::test]
async fn early_caller_hears_music_before_any_200_and_is_answered_when_the_room_answers() {
    let mut hooks = WebhookReceiver::start(&[]).await;
    let gw = TestGateway::start(&hooks.url(), EARLY).await;
    let mut room = Room::new().await;
    let c = call_early(&gw, "early-room").await;

    assert_eq!(c.progress.code(), 183, "{}", c.progress.0);
    assert_eq!(c.progress.header("Content-Type"), Some("application/sdp"));
    assert!(audio_line(&c.progress.0).is_some(), "183 carries our SDP");
    assert_eq!(
        c.progress.header("Require"),
        None,
        "a caller that did not ask for 100rel gets a plain 183"
    );
    let music = c.rtp.collect(Duration::from_millis(600)).await;
    assert!(music.len() >= 20, "music in early media: {}", music.len());

    let hook = hooks.next().await;
    let id = hook.json()["callId"].as_str().unwrap().to_string();
    let (_, call) = gw.get_call(&id).await;
    assert_eq!(
        (call["state"].as_str(), call["answered"].as_bool()),
        (Some("held"), Some(false))
    );

    let (code, _) = gw
        .update(gw.update_body(&id, json!({ "sipUri": room.uri("room", false) })))
        .await;
    assert_eq!(code, 200);
    let invite = room.next_invite().await;
    // The room rings a while: the caller stays unanswered all along.
    let early_final = c.raw.response(Duration::from_millis(1_000), true).await;
    assert!(
        early_final.is_none(),
        "200 before the room answered: {early_final:?}"
    );
    let (_room_leg, gw_media) = room.answer(invite).await;

    let ok = within(5, "200 OK after the room answered", async {
        c.raw.response(Duration::from_secs(5), true).await.unwrap()
    })
    .await;
    assert_eq!(ok.code(), 200, "{}", ok.0);
    assert_eq!(
        audio_line(&ok.0),
        audio_line(&c.progress.0),
        "the 200 repeats the 183's SDP"
    );
    c.raw.ack(&ok, &c.sip_call_id).await;
    let call = gw
        .wait_call(&id, Duration::from_secs(5), |c| c["state"] == "bridged")
        .await;
    assert_eq!(call["answered"], true);
    let names = event_names(&call);
    let answered = names.iter().position(|n| n == "call.answered").unwrap();
    let bridged = names.iter().position(|n| n == "call.bridged").unwrap();
    assert!(answered < bridged, "{names:?}");
    assert_eq!(details(&call, "call.answered")[0]["reason"], "room");

    // Bridged: the room's audio reaches the caller.
    c.rtp.drain();
    room.rtp.send_pattern(gw_media.addr, 0, 0x5A, 50);
    c.rtp.hears(0x5A).await;
}

#[tokio::test]
async fn with_no_room_the_caller_is_answered_after_early_media_max_secs_on_the_same_stream() {
    let mut hooks = WebhookReceiver::start(&[]).await;
    let extra = "answer = \"early\"\nearly_media_max_secs = 2";
    let gw = TestGateway::start(&hooks.url(), extra).await;
    let c = call_early(&gw, "early-timeout").await;
    assert_eq!(c.progress.code(), 183);
    let started = std::time::Instant::now();
    let listen = c.rtp.collect(Duration::from_millis(3_500));
    let answer = async {
        let ok = c.raw.response(Duration::from_secs(4), true).await;
        (ok, started.elapsed())
    };
    let (packets, (ok, after)) = tokio::join!(listen, answer);
    let ok = ok.expect("a 200 after early_media_max_secs");
    assert_eq!(ok.code(), 200);
    assert!(
        after >= Duration::from_millis(1_800),
        "answered after {after:?}, before early_media_max_secs"
    );
    c.raw.ack(&ok, &c.sip_call_id).await;
    let answered_at = started + after;
    let before = packets.iter().filter(|p| p.at < answered_at).count();
    let later = packets.iter().filter(|p| p.at > answered_at).count();
    assert!(
        before >= 50 && later >= 40,
        "music {before} before, {later} after the 200"
    );
    assert!(
        one_stream(&packets),
        "the answer does not restart the music's stream"
    );

    let id = hooks.next().await.json()["callId"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, call) = gw.get_call(&id).await;
    assert_eq!(
        (call["state"].as_str(), call["answered"].as_bool()),
        (Some("held"), Some(true))
    );
    assert_eq!(
        details(&call, "call.answered")[0]["reason"],
        "early_media_max"
    );
}

#[tokio::test]
async fn a_cancel_in_early_media_ends_the_call_and_the_room_invite() {
    let mut hooks = WebhookReceiver::start(&[]).await;
    let gw = TestGateway::start(&hooks.url(), EARLY).await;
    let mut room = Room::new().await;
    let c = call_early(&gw, "early-cancel").await;
    let id = hooks.next().await.json()["callId"]
        .as_str()
        .unwrap()
        .to_string();
    gw.update(gw.update_body(&id, json!({ "sipUri": room.uri("room", false) })))
        .await;
    let mut room_invite = room.next_invite().await;

    c.raw.send(&cancel_of(&c.invite)).await;
    let mut codes = vec![];
    while let Some(r) = c.raw.response(Duration::from_secs(2), true).await {
        codes.push(r.code());
        if r.code() == 487 {
            break;
        }
    }
    assert_eq!(codes, [200, 487], "200 to the CANCEL, 487 to the INVITE");
    within(5, "the room's INVITE cancelled", room_invite.cancelled()).await;
    let call = gw
        .wait_call(&id, Duration::from_secs(5), |c| c["state"] == "ended")
        .await;
    assert_eq!(call["endReason"], "caller_hangup");
    assert_eq!(call["answered"], false);
    assert!(
        c.rtp.collect(Duration::from_millis(300)).await.len() <= 2,
        "music stopped"
    );
}

/// The CANCEL of a raw INVITE: its Via (branch), From, To, Call-ID.
fn cancel_of(invite: &str) -> String {
    let header = |name: &str| {
        invite
            .lines()
            .find(|l| l.starts_with(&format!("{name}:")))
            .unwrap()
            .to_string()
    };
    let uri = invite.lines().next().unwrap().split(' ').nth(1).unwrap();
    format!(
        "CANCEL {uri} SIP/2.0\r\n{}\r\nMax-Forwards: 70\r\n{}\r\n{}\r\n{}\r\nCSeq: 1 CANCEL\r\nContent-Length: 0\r\n\r\n",
        header("Via"),
        header("From"),
        header("To"),
        header("Call-ID"),
    )
}

#[tokio::test]
async fn a_reliable_183_is_retransmitted_until_prack_and_the_200_waits_for_the_prack() {
    let hooks = WebhookReceiver::start(&[]).await;
    // The early limit passes while the 183 is still unacknowledged.
    let extra = "answer = \"early\"\nearly_media_max_secs = 1";
    let gw = TestGateway::start(&hooks.url(), extra).await;
    let raw = RawSip::new(gw.gw.sip_udp.unwrap()).await;
    let rtp = RtpPeer::new().await;
    let invite = raw.invite_rtp(
        "support",
        "early-prack",
        1,
        "Supported: 100rel\r\nRequire: 100rel\r\n",
        rtp.addr.port(),
    );
    raw.send(&invite).await;
    // No PRACK for two seconds: the 183 comes again (T1, 2·T1…), the
    // same each time, and no 200 goes out before its PRACK.
    let mut progress = vec![];
    let deadline = tokio::time::Instant::now() + Duration::from_millis(2_000);
    while let Some(r) = raw
        .response(deadline - tokio::time::Instant::now(), false)
        .await
    {
        assert_ne!(r.code(), 200, "200 before the reliable 183 was PRACKed");
        if r.code() == 183 {
            progress.push(r);
        }
    }
    assert!(
        progress.len() >= 3,
        "183 sent {} times in 2 s",
        progress.len()
    );
    let rseq = progress[0].header("RSeq").expect("RSeq").to_string();
    assert_eq!(progress[0].header("Require"), Some("100rel"));
    assert!(progress.iter().all(|p| p.header("RSeq") == Some(&rseq)));

    let p = &progress[0];
    let contact = p.header("Contact").unwrap();
    let uri = contact.trim_start_matches('<').split('>').next().unwrap();
    let prack = format!(
        "PRACK {uri} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch=z9hG4bK{branch}\r\n\
         Max-Forwards: 70\r\nFrom: {from}\r\nTo: {to}\r\nCall-ID: early-prack\r\n\
         CSeq: 2 PRACK\r\nRAck: {rseq} 1 INVITE\r\nContent-Length: 0\r\n\r\n",
        local = raw.local,
        branch = uuid::Uuid::new_v4().simple(),
        from = p.header("From").unwrap(),
        to = p.header("To").unwrap(),
    );
    raw.send(&prack).await;
    let mut finals = vec![];
    while let Some(r) = raw.response(Duration::from_secs(2), true).await {
        let cseq = r.header("CSeq").unwrap_or_default().to_string();
        finals.push((r.code(), cseq.clone()));
        if cseq.ends_with("INVITE") {
            raw.ack(&r, "early-prack").await;
            break;
        }
    }
    assert_eq!(
        finals,
        [(200, "2 PRACK".to_string()), (200, "1 INVITE".to_string())],
        "the PRACK's 200, then the INVITE's"
    );
    // The same PRACK again (its 200 lost): the same 200, from its
    // transaction. A new PRACK for the acknowledged 183: 481 (RFC 3262 §3),
    // as in the early dialog, not "method not allowed".
    raw.send(&prack).await;
    let again = raw.response(Duration::from_secs(2), true).await.unwrap();
    assert_eq!((again.code(), again.header("CSeq")), (200, Some("2 PRACK")));
    let branch = |text: &str| {
        text.split(";branch=")
            .nth(1)
            .unwrap()
            .split("\r\n")
            .next()
            .unwrap()
            .to_string()
    };
    let late = prack
        .replace(
            &branch(&prack),
            &format!("z9hG4bK{}", uuid::Uuid::new_v4().simple()),
        )
        .replace("CSeq: 2 PRACK", "CSeq: 3 PRACK");
    raw.send(&late).await;
    let late = raw.response(Duration::from_secs(2), true).await.unwrap();
    assert_eq!((late.code(), late.header("CSeq")), (481, Some("3 PRACK")));
}

#[tokio::test]
async fn a_stop_in_resume_mode_answers_an_early_call_and_the_next_start_holds_it() {
    use support::binary::Binary;
    let mut hooks = WebhookReceiver::start(&[]).await;
    let mut gw = Binary::new("", &hooks.url(), EARLY, "");
    gw.start().await;
    let raw = RawSip::new(gw.sip).await;
    let rtp = RtpPeer::new().await;
    raw.send(&raw.invite_rtp("support", "early-stop", 1, "", rtp.addr.port()))
        .await;
    let id = hooks.next().await.json()["callId"]
        .as_str()
        .unwrap()
        .to_string();
    let ssrc = rtp.collect(Duration::from_millis(300)).await[0].header.ssrc;

    gw.signal("TERM");
    // Saved only once answered: the stop answers the caller first.
    let ok = raw
        .response(Duration::from_secs(5), true)
        .await
        .expect("a 200 at the stop");
    assert_eq!(ok.code(), 200, "{}", ok.0);
    raw.ack(&ok, "early-stop").await;
    assert!(gw.exited(5).await.success(), "{}", gw.log());

    gw.start().await;
    assert!(gw.log().contains("resumed=1"), "{}", gw.log());
    rtp.drain();
    let again = within(3, "music after the restart", async {
        loop {
            let p = rtp.collect(Duration::from_millis(40)).await;
            if let Some(p) = p.into_iter().find(|p| p.header.ssrc == ssrc) {
                return p;
            }
        }
    })
    .await;
    assert_eq!(again.header.ssrc, ssrc);
    let view: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/v1/calls/{id}", gw.api))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (view["state"].as_str(), view["answered"].as_bool()),
        (Some("held"), Some(true))
    );
    assert_eq!(details(&view, "call.answered")[0]["reason"], "shutdown");
}

#[tokio::test]
async fn a_hold_timeout_in_early_media_refuses_the_invite_instead_of_a_bye() {
    let mut hooks = WebhookReceiver::start(&[]).await;
    let extra = "answer = \"early\"\nearly_media_max_secs = 60\nmax_hold_secs = 1";
    let gw = TestGateway::start(&hooks.url(), extra).await;
    let c = call_early(&gw, "early-hold-timeout").await;
    assert_eq!(c.progress.code(), 183);
    let id = hooks.next().await.json()["callId"]
        .as_str()
        .unwrap()
        .to_string();
    let last = c
        .raw
        .response(Duration::from_secs(4), true)
        .await
        .expect("a final answer");
    assert_eq!(last.code(), 480, "{}", last.0);
    let call = gw
        .wait_call(&id, Duration::from_secs(5), |c| c["state"] == "ended")
        .await;
    assert_eq!(
        (call["endReason"].as_str(), call["answered"].as_bool()),
        (Some("hold_timeout"), Some(false))
    );
}

/// A request from the raw caller in the early (or confirmed) dialog that
/// `dialog` (a 183 or 200 of ours) set up: to its Contact, with its
/// From, To (our tag) and Call-ID; `extra` header lines end in CRLF.
fn in_dialog(
    raw: &RawSip,
    dialog: &RawResponse,
    method: &str,
    cseq: u32,
    extra: &str,
    body: &str,
) -> String {
    let contact = dialog.header("Contact").expect("Contact");
    let uri = contact.trim_start_matches('<').split('>').next().unwrap();
    format!(
        "{method} {uri} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch=z9hG4bK{branch}\r\n\
         Max-Forwards: 70\r\nFrom: {from}\r\nTo: {to}\r\nCall-ID: {call_id}\r\n\
         CSeq: {cseq} {method}\r\n{extra}Content-Length: {len}\r\n\r\n{body}",
        local = raw.local,
        branch = uuid::Uuid::new_v4().simple(),
        from = dialog.header("From").unwrap(),
        to = dialog.header("To").unwrap(),
        call_id = dialog.header("Call-ID").unwrap(),
        len = body.len(),
    )
}

/// The answer to the request of CSeq `cseq` (other messages skipped).
async fn answer_to(raw: &RawSip, cseq: &str) -> RawResponse {
    within(3, "an answer in the early dialog", async {
        loop {
            let r = raw.response(Duration::from_secs(3), false).await.unwrap();
            if r.header("CSeq") == Some(cseq) {
                return r;
            }
        }
    })
    .await
}

#[tokio::test]
async fn a_plain_183_is_sent_again_so_a_lost_one_does_not_leave_the_caller_without_our_sdp() {
    let hooks = WebhookReceiver::start(&[]).await;
    let gw = TestGateway::start(&hooks.url(), EARLY).await;
    let c = call_early(&gw, "early-resend").await;
    let again = within(3, "the 183 sent again", async {
        loop {
            let r = c.raw.response(Duration::from_secs(3), false).await.unwrap();
            if r.code() == 183 {
                return r;
            }
        }
    })
    .await;
    assert_eq!(
        again.header("To"),
        c.progress.header("To"),
        "same early dialog"
    );
    assert_eq!(audio_line(&again.0), audio_line(&c.progress.0), "same SDP");
    assert_eq!(again.header("RSeq"), None, "still a plain 183");
}

#[tokio::test]
async fn a_bye_while_the_answer_waits_for_a_prack_gets_487_and_the_call_still_takes_requests() {
    let mut hooks = WebhookReceiver::start(&[]).await;
    // The early limit asks for the 200 at 1 s; the caller never PRACKs.
    let extra = "answer = \"early\"\nearly_media_max_secs = 1";
    let gw = TestGateway::start(&hooks.url(), extra).await;
    let raw = RawSip::new(gw.gw.sip_udp.unwrap()).await;
    let rtp = RtpPeer::new().await;
    let call_id = "early-no-prack";
    let invite = raw.invite_rtp(
        "support",
        call_id,
        1,
        "Supported: 100rel\r\nRequire: 100rel\r\n",
        rtp.addr.port(),
    );
    raw.send(&invite).await;
    let progress = within(3, "a reliable 183", async {
        loop {
            let r = raw.response(Duration::from_secs(3), false).await.unwrap();
            if r.code() == 183 {
                return r;
            }
        }
    })
    .await;
    let id = hooks.next().await.json()["callId"]
        .as_str()
        .unwrap()
        .to_string();
    gw.wait_call(&id, Duration::from_secs(3), |c| c["answered"] == true)
        .await;

    // The 200 waits for the PRACK, but the call is not stuck meanwhile.
    let asked = std::time::Instant::now();
    let (code, _) = gw.post(&format!("/v1/calls/{id}/hold")).await;
    assert_eq!(code, 200);
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "the hold request waited {:?}",
        asked.elapsed()
    );

    // The caller hangs up in the early dialog: no 200 to it after that.
    raw.send(&in_dialog(&raw, &progress, "BYE", 2, "", ""))
        .await;
    let mut finals = vec![];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while let Some(r) = raw
        .response(deadline - tokio::time::Instant::now(), true)
        .await
    {
        let cseq = r.header("CSeq").unwrap_or_default().to_string();
        finals.push((r.code(), cseq.clone()));
        if cseq.ends_with("INVITE") {
            break;
        }
    }
    assert_eq!(
        finals,
        [(200, "2 BYE".to_string()), (487, "1 INVITE".to_string())],
        "the BYE's 200, then 487 to the INVITE"
    );
    let call = gw
        .wait_call(&id, Duration::from_secs(3), |c| c["state"] == "ended")
        .await;
    assert_eq!(call["endReason"], "caller_hangup");
}

#[tokio::test]
async fn info_dtmf_in_early_media_is_a_call_dtmf_and_its_dtmf_transfer_key_routes() {
    let hooks = WebhookReceiver::start(&[]).await;
    let mut events = WebhookReceiver::start(&[]).await;
    let mut room = Room::new().await;
    let extra = format!(
        "{EARLY}\nevents_url = \"http://{}/events\"\ndtmf_transfer = {{ \"0\" = \"{}\" }}",
        events.addr,
        room.uri("operator", false)
    );
    let gw = TestGateway::start(&hooks.url(), &extra).await;
    let c = call_early(&gw, "early-info").await;
    let relay = "Content-Type: application/dtmf-relay\r\n";
    let info = in_dialog(
        &c.raw,
        &c.progress,
        "INFO",
        2,
        relay,
        "Signal=5\r\nDuration=160\r\n",
    );
    c.raw.send(&info).await;
    assert_eq!(answer_to(&c.raw, "2 INFO").await.code(), 200);
    let press = within(5, "a call.dtmf event", async {
        loop {
            let e = events.next().await.json();
            if e["type"] == "call.dtmf" {
                return e["data"].clone();
            }
        }
    })
    .await;
    assert_eq!(press, json!({ "digit": "5", "durationMs": 160 }));
    // The mapped key moves the caller, still unanswered, to its room.
    let info = in_dialog(
        &c.raw,
        &c.progress,
        "INFO",
        3,
        relay,
        "Signal=0\r\nDuration=100\r\n",
    );
    c.raw.send(&info).await;
    assert_eq!(answer_to(&c.raw, "3 INFO").await.code(), 200);
    let invite = within(5, "the operator's INVITE", room.next_invite()).await;
    assert_eq!(invite.info.request_user.as_deref(), Some("operator"));
}

#[tokio::test]
async fn an_update_with_an_offer_in_early_media_gets_488_and_one_without_gets_200() {
    let hooks = WebhookReceiver::start(&[]).await;
    let gw = TestGateway::start(&hooks.url(), EARLY).await;
    let c = call_early(&gw, "early-update").await;
    let sdp_offer = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n";
    let sdp = "Content-Type: application/sdp\r\n";
    let update = in_dialog(&c.raw, &c.progress, "UPDATE", 2, sdp, sdp_offer);
    c.raw.send(&update).await;
    assert_eq!(answer_to(&c.raw, "2 UPDATE").await.code(), 488);
    let update = in_dialog(&c.raw, &c.progress, "UPDATE", 3, "", "");
    c.raw.send(&update).await;
    assert_eq!(answer_to(&c.raw, "3 UPDATE").await.code(), 200);
}

#[tokio::test]
async fn an_update_with_an_offer_on_an_answered_call_gets_our_sdp_as_its_answer() {
    let hooks = WebhookReceiver::start(&[]).await;
    let gw = TestGateway::start(&hooks.url(), "").await;
    let raw = RawSip::new(gw.gw.sip_udp.unwrap()).await;
    let rtp = RtpPeer::new().await;
    raw.send(&raw.invite_rtp("support", "answered-update", 1, "", rtp.addr.port()))
        .await;
    let ok = within(5, "200 OK", async {
        loop {
            let r = raw.response(Duration::from_secs(5), true).await.unwrap();
            if r.code() == 200 {
                return r;
            }
        }
    })
    .await;
    raw.ack(&ok, "answered-update").await;
    let ours = ok.0.split("\r\n\r\n").nth(1).unwrap().to_string();
    assert!(ours.contains("m=audio "), "{ours}");
    let offer = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n";
    let sdp = "Content-Type: application/sdp\r\n";
    raw.send(&in_dialog(&raw, &ok, "UPDATE", 2, sdp, offer))
        .await;
    let answer = answer_to(&raw, "2 UPDATE").await;
    assert_eq!(answer.code(), 200);
    assert_eq!(answer.header("Content-Type"), Some("application/sdp"));
    let body = answer.0.split("\r\n\r\n").nth(1).unwrap();
    assert_eq!(body, ours, "the SDP the call already has");
    // Without an offer, a plain 200 (a session refresh).
    raw.send(&in_dialog(&raw, &ok, "UPDATE", 3, "", "")).await;
    let refresh = answer_to(&raw, "3 UPDATE").await;
    assert_eq!(refresh.code(), 200);
    assert_eq!(refresh.header("Content-Type"), None);
}

#[tokio::test]
async fn a_refer_from_early_media_waits_for_the_callers_ack_of_the_200() {
    let mut hooks = WebhookReceiver::start(&[]).await;
    let gw = TestGateway::start(&hooks.url(), EARLY).await;
    let room = Room::new().await;
    let c = call_early(&gw, "early-refer").await;
    let id = hooks.next().await.json()["callId"]
        .as_str()
        .unwrap()
        .to_string();
    let body = json!({ "sipUri": room.uri("room", false), "mode": "refer" });
    let (code, _) = gw.update(gw.update_body(&id, body)).await;
    assert_eq!(code, 200);
    let ok = within(3, "the 200 OK before the REFER", async {
        c.raw.response(Duration::from_secs(3), true).await.unwrap()
    })
    .await;
    assert_eq!(ok.code(), 200, "{}", ok.0);
    // No ACK yet: the 200 is retransmitted, and no REFER comes.
    let early = c.raw.request(Duration::from_millis(1_200)).await;
    assert!(early.is_none(), "a request before our ACK: {early:?}");
    c.raw.ack(&ok, &c.sip_call_id).await;
    let refer = within(3, "the REFER after the ACK", async {
        loop {
            let r = c.raw.request(Duration::from_secs(3)).await.unwrap();
            if r.0.starts_with("REFER ") {
                return r;
            }
        }
    })
    .await;
    assert!(
        refer
            .header("Refer-To")
            .is_some_and(|t| t.contains("room@")),
        "{}",
        refer.0
    );
}
