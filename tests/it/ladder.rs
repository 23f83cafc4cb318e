//! `GET /v1/calls/{callId}/sip`, the call's SIP ladder, over real SIP on
//! loopback: both legs' messages in order with their directions, peers and
//! transports, readable after the call ended; failed room attempts and
//! CANCELs; digest credentials masked; 404 and 401.

use crate::support;

use md5::{Digest, Md5};
use pinless::sip::LegEvent;
use serde_json::{Value, json};
use std::time::Duration;
use support::raw::{RawResponse, RawSip};
use support::*;

async fn ladder(gw: &TestGateway, id: &str) -> (u16, Value) {
    gw.api(reqwest::Method::GET, &format!("/v1/calls/{id}/sip"), None)
        .await
}

/// `(leg, direction, method or status code)` of each message, e.g.
/// `("caller", "in", "INVITE")`, `("room", "in", "200")`.
fn steps(ladder: &Value) -> Vec<(String, String, String)> {
    ladder["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| {
            let line = m["startLine"].as_str().unwrap_or_default();
            let what = match line.strip_prefix("SIP/2.0 ") {
                Some(status) => status.split(' ').next().unwrap_or_default(),
                None => line.split(' ').next().unwrap_or_default(),
            };
            (
                m["leg"].as_str().unwrap_or_default().to_string(),
                m["direction"].as_str().unwrap_or_default().to_string(),
                what.to_string(),
            )
        })
        .collect()
}

fn step(leg: &str, dir: &str, what: &str) -> (String, String, String) {
    (leg.into(), dir.into(), what.into())
}

fn header<'a>(message: &'a Value, name: &str) -> Option<&'a str> {
    message["headers"].as_array()?.iter().find_map(|h| {
        let pair = h.as_array()?;
        (pair.first()?.as_str()?.eq_ignore_ascii_case(name)).then(|| pair.get(1)?.as_str())?
    })
}

/// Polls the ladder until `pred` holds on its steps (5 s at most).
async fn wait_ladder(
    gw: &TestGateway,
    id: &str,
    pred: impl Fn(&[(String, String, String)]) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (status, body) = ladder(gw, id).await;
        assert_eq!(status, 200, "{body}");
        if pred(&steps(&body)) {
            return body;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("ladder never got there: {:#?}", steps(&body));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_bridged_call_s_ladder_has_both_legs_in_order_after_the_end() {
    let call = held_call("", &[]).await;
    let phone = call.phone.stack.udp_addr().unwrap().to_string();
    let mut room = Room::new().await;
    let status = call
        .update(json!({ "sipUri": room.uri("room1", true) }))
        .await
        .0;
    assert_eq!(status, 200);
    let invite = room.next_invite().await;
    let (mut room_leg, _) = room.answer(invite).await;
    call.wait(|c| c["state"] == "bridged").await;
    call.caller.hangup();
    assert_eq!(
        within(5, "BYE at the room", room_leg.next_event()).await,
        LegEvent::Bye
    );
    call.gw
        .wait_call(&call.call_id, Duration::from_secs(5), |c| {
            c["state"] == "ended"
        })
        .await;
    // The room's 200 to our BYE may still be on its way.
    let body = wait_ladder(&call.gw, &call.call_id, |s| {
        s.last() == Some(&step("room", "in", "200"))
    })
    .await;

    assert_eq!(body["callId"], call.call_id.as_str());
    assert_eq!(body["truncated"], false);
    let mut s = steps(&body);
    // Our 200 resent over UDP before the ACK came (a loaded machine) is
    // one step.
    s.dedup();
    assert_eq!(
        s,
        vec![
            step("caller", "in", "INVITE"),
            step("caller", "out", "100"),
            step("caller", "out", "200"),
            step("caller", "in", "ACK"),
            step("room", "out", "INVITE"),
            step("room", "in", "100"),
            step("room", "in", "200"),
            step("room", "out", "ACK"),
            step("caller", "in", "BYE"),
            step("caller", "out", "200"),
            step("room", "out", "BYE"),
            step("room", "in", "200"),
        ],
        "{body:#}"
    );
    let messages = body["messages"].as_array().unwrap();
    let room_addr = room.stack.tcp_addr().unwrap().to_string();
    for m in messages {
        let (peer, transport) = match m["leg"].as_str() {
            Some("caller") => (&phone, "udp"),
            _ => (&room_addr, "tcp"),
        };
        assert_eq!(m["peer"], peer.as_str(), "{m:#}");
        assert_eq!(m["transport"], transport, "{m:#}");
        assert_eq!(m["bodyTruncated"], false);
    }
    // Times are Unix ms, in order.
    let at: Vec<u64> = messages.iter().map(|m| m["at"].as_u64().unwrap()).collect();
    assert!(at.windows(2).all(|w| w[0] <= w[1]), "{at:?}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert!(now - at[0] < 60_000);
    // The caller's INVITE as sent: its start line, headers and SDP.
    let invite = &messages[0];
    assert_eq!(
        invite["startLine"],
        format!("INVITE {} SIP/2.0", call.gw.sip_uri("support", false))
    );
    assert!(header(invite, "Via").is_some_and(|v| v.starts_with("SIP/2.0/UDP")));
    assert!(invite["body"].as_str().unwrap().starts_with("v=0"));
    // Each leg has its own dialog.
    let call_ids = |leg: &str| {
        messages
            .iter()
            .filter(|m| m["leg"] == leg)
            .map(|m| header(m, "Call-ID").unwrap().to_string())
            .collect::<std::collections::BTreeSet<_>>()
    };
    assert_eq!(call_ids("caller").len(), 1);
    assert_eq!(call_ids("room").len(), 1);
    assert_ne!(call_ids("caller"), call_ids("room"));
    // And the room's INVITE carries our SDP offer.
    assert!(messages[4]["body"].as_str().unwrap().contains("m=audio"));
}

#[tokio::test]
async fn failed_room_attempts_and_a_cancel_are_in_the_ladder() {
    let call = held_call("", &[]).await;
    let mut room = Room::new().await;
    call.update(json!({ "sipUri": room.uri("busy", false) }))
        .await;
    room.next_invite().await.reject(486, None, &[]).await;
    wait_ladder(&call.gw, &call.call_id, |s| {
        s.contains(&step("room", "in", "486"))
    })
    .await;
    call.wait(|c| c["state"] == "held").await;

    call.update(json!({ "sipUri": room.uri("slow", false) }))
        .await;
    let mut invite = room.next_invite().await;
    invite.ring(&room.stack).await;
    wait_ladder(&call.gw, &call.call_id, |s| {
        s.contains(&step("room", "in", "180"))
    })
    .await;
    call.caller.hangup();
    within(5, "CANCEL at the room", invite.cancelled()).await;
    invite.reject(487, None, &[]).await;
    let body = wait_ladder(&call.gw, &call.call_id, |s| {
        s.contains(&step("room", "in", "487"))
    })
    .await;
    let s = steps(&body);
    let room_steps: Vec<_> = s.iter().filter(|x| x.0 == "room").cloned().collect();
    assert_eq!(
        room_steps,
        vec![
            step("room", "out", "INVITE"),
            step("room", "in", "100"),
            step("room", "in", "486"),
            step("room", "out", "INVITE"),
            step("room", "in", "100"),
            step("room", "in", "180"),
            step("room", "out", "CANCEL"),
            step("room", "in", "487"),
        ],
        "{body:#}"
    );
    // The caller's BYE came before our CANCEL went.
    let bye = s.iter().position(|x| *x == step("caller", "in", "BYE"));
    let cancel = s.iter().position(|x| *x == step("room", "out", "CANCEL"));
    assert!(bye.is_some() && bye < cancel, "{s:#?}");
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[tokio::test]
async fn digest_credentials_are_masked_and_the_challenge_is_listed() {
    let mut hooks = WebhookReceiver::start(&[]).await;
    let gw = TestGateway::start(
        &hooks.url(),
        r#"credentials = [{ username = "joe", password = "s3cret" }]"#,
    )
    .await;
    let sip = RawSip::new(gw.gw.sip_udp.unwrap()).await;
    let wait = Duration::from_secs(5);
    let uri = format!("sip:support@{}", sip.to);
    let sip_call_id = format!("ladder-{}", uuid::Uuid::new_v4());

    sip.send(&sip.invite("support", &sip_call_id, 1, "")).await;
    let challenge = sip.response(wait, true).await.expect("an answer");
    assert_eq!(challenge.code(), 407, "{}", challenge.0);
    // The retry carries the same Call-ID (RFC 3261 §22.2).
    let nonce = challenge.param("Proxy-Authenticate", "nonce").unwrap();
    let realm = challenge.param("Proxy-Authenticate", "realm").unwrap();
    let h = |s: String| hex(&Md5::digest(s.as_bytes()));
    let ha1 = h(format!("joe:{realm}:s3cret"));
    let ha2 = h(format!("INVITE:{uri}"));
    let cnonce = "5eb1c9e2a7";
    let response = h(format!("{ha1}:{nonce}:00000001:{cnonce}:auth:{ha2}"));
    let auth = format!(
        "Proxy-Authorization: Digest username=\"joe\", realm=\"{realm}\", nonce=\"{nonce}\", \
         uri=\"{uri}\", response=\"{response}\", algorithm=MD5, qop=auth, nc=00000001, cnonce=\"{cnonce}\"\r\n"
    );
    sip.send(&sip.invite("support", &sip_call_id, 2, &auth))
        .await;
    let ok = sip.response(wait, true).await.unwrap();
    assert_eq!(ok.code(), 200, "{}", ok.0);
    ack(&sip, &ok, &sip_call_id, 2).await;
    let call_id = hooks.next().await.json()["callId"]
        .as_str()
        .unwrap()
        .to_string();

    let body = wait_ladder(&gw, &call_id, |s| s.contains(&step("caller", "in", "ACK"))).await;
    assert_eq!(
        steps(&body),
        vec![
            step("caller", "in", "INVITE"),
            step("caller", "out", "100"),
            step("caller", "out", "407"),
            step("caller", "in", "INVITE"),
            step("caller", "out", "100"),
            step("caller", "out", "200"),
            step("caller", "in", "ACK"),
        ],
        "{body:#}"
    );
    let messages = body["messages"].as_array().unwrap();
    let shown = header(&messages[3], "Proxy-Authorization").expect("the header is listed");
    assert!(
        shown.starts_with("Digest username=\"joe\"") && shown.contains("<credentials masked>"),
        "{shown}"
    );
    let text = body.to_string();
    for secret in [nonce.as_str(), response.as_str(), cnonce, "s3cret"] {
        assert!(!text.contains(secret), "{secret} shown in {body:#}");
    }
    assert!(
        header(&messages[2], "Proxy-Authenticate").is_some_and(|c| c.contains("realm=")),
        "the challenge is shown, without its nonce"
    );
}

/// ACKs our INVITE's 2xx with its CSeq.
async fn ack(sip: &RawSip, ok: &RawResponse, call_id: &str, cseq: u32) {
    let ack = format!(
        "ACK sip:support@{to} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch=z9hG4bK{branch}\r\n\
         Max-Forwards: 70\r\n\
         From: {from}\r\nTo: {to_h}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} ACK\r\n\
         Content-Length: 0\r\n\r\n",
        to = sip.to,
        local = sip.local,
        branch = uuid::Uuid::new_v4().simple(),
        from = ok.header("From").unwrap(),
        to_h = ok.header("To").unwrap(),
    );
    sip.send(&ack).await;
}

#[tokio::test]
async fn unknown_calls_get_404_and_the_token_is_required() {
    let call = held_call("", &[]).await;
    let (status, body) = ladder(&call.gw, "no-such-call").await;
    assert_eq!(status, 404, "{body}");
    let (status, _) = ladder(&call.gw, &call.call_id).await;
    assert_eq!(status, 200);
    let url = call.gw.url(&format!("/v1/calls/{}/sip", call.call_id));
    let r = call.gw.http.get(&url).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = call
        .gw
        .http
        .get(&url)
        .bearer_auth("wrong-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
}

#[tokio::test]
async fn early_media_with_100rel_shows_183_prack_and_the_final_answer() {
    let mut hooks = WebhookReceiver::start(&[]).await;
    let gw = TestGateway::start(
        &hooks.url(),
        "answer = \"early\"\nearly_media_max_secs = 60",
    )
    .await;
    let sip = RawSip::new(gw.gw.sip_udp.unwrap()).await;
    let sip_call_id = format!("ladder-early-{}", uuid::Uuid::new_v4());
    sip.send(&sip.invite("support", &sip_call_id, 1, "Require: 100rel\r\n"))
        .await;
    let progress = within(5, "183", async {
        loop {
            let r = sip.response(Duration::from_secs(5), false).await.unwrap();
            if r.code() != 100 {
                return r;
            }
        }
    })
    .await;
    assert_eq!(progress.code(), 183, "{}", progress.0);
    let rseq = progress.header("RSeq").expect("a reliable 183");
    let prack = format!(
        "PRACK sip:support@{to} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch=z9hG4bK{branch}\r\n\
         Max-Forwards: 70\r\n\
         From: {from}\r\nTo: {to_h}\r\nCall-ID: {sip_call_id}\r\nCSeq: 2 PRACK\r\n\
         RAck: {rseq} 1 INVITE\r\n\
         Content-Length: 0\r\n\r\n",
        to = sip.to,
        local = sip.local,
        branch = uuid::Uuid::new_v4().simple(),
        from = progress.header("From").unwrap(),
        to_h = progress.header("To").unwrap(),
    );
    sip.send(&prack).await;
    let call_id = hooks.next().await.json()["callId"]
        .as_str()
        .unwrap()
        .to_string();
    wait_ladder(&gw, &call_id, |s| s.contains(&step("caller", "out", "200"))).await;
    let (status, _) = gw
        .api(
            reqwest::Method::DELETE,
            &format!("/v1/calls/{call_id}"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let body = wait_ladder(&gw, &call_id, |s| {
        s.iter().any(|x| x.1 == "out" && x.2.starts_with('4'))
    })
    .await;
    let mut s = steps(&body);
    // A 183 resent before the PRACK came (a loaded machine) is one step.
    s.dedup();
    assert_eq!(
        s,
        vec![
            step("caller", "in", "INVITE"),
            step("caller", "out", "100"),
            step("caller", "out", "183"),
            step("caller", "in", "PRACK"),
            step("caller", "out", "200"),
            step("caller", "out", "480"),
        ],
        "{body:#}"
    );
    let messages = body["messages"].as_array().unwrap();
    assert_eq!(header(&messages[2], "RSeq"), Some(rseq));
    assert!(messages[2]["body"].as_str().unwrap().contains("m=audio"));
}
