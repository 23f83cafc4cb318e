//! `GET /v1/events`: the node's call events as Server-Sent Events, read
//! over real HTTP while real SIP calls run on loopback.

use crate::support;

use serde_json::{Value, json};
use std::time::Duration;
use support::*;

/// One SSE frame as a client parses it.
#[derive(Debug, Clone)]
struct Frame {
    id: Option<String>,
    event: Option<String>,
    data: Value,
}

/// Reads an event stream frame by frame.
struct Sse {
    response: reqwest::Response,
    buf: String,
}

impl Sse {
    async fn open(gw: &TestGateway, last_id: Option<&str>) -> Sse {
        Self::open_path(gw, "/v1/events", last_id).await
    }

    async fn open_path(gw: &TestGateway, path: &str, last_id: Option<&str>) -> Sse {
        let mut request = gw.http.get(gw.url(path)).bearer_auth(TOKEN);
        if let Some(id) = last_id {
            request = request.header("Last-Event-ID", id);
        }
        let response = request.send().await.expect("stream opens");
        assert_eq!(response.status(), 200);
        let kind = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_string();
        assert_eq!(kind, "text/event-stream");
        Sse {
            response,
            buf: String::new(),
        }
    }

    /// The next frame with data (comments and `retry:` skipped).
    async fn next(&mut self) -> Frame {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let raw: String = self.buf.drain(..end + 2).collect();
                let mut frame = Frame {
                    id: None,
                    event: None,
                    data: Value::Null,
                };
                for line in raw.lines() {
                    if let Some(v) = line.strip_prefix("id: ") {
                        frame.id = Some(v.to_string());
                    } else if let Some(v) = line.strip_prefix("event: ") {
                        frame.event = Some(v.to_string());
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        frame.data = serde_json::from_str(v).expect("data is JSON");
                    }
                }
                if !frame.data.is_null() {
                    return frame;
                }
                continue;
            }
            let chunk = within(10, "an event on the stream", self.response.chunk())
                .await
                .expect("stream readable")
                .expect("stream still open");
            self.buf
                .push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
        }
    }

    /// Frames until one of type `kind` (inclusive).
    async fn until(&mut self, kind: &str) -> Vec<Frame> {
        let mut seen = vec![];
        loop {
            let f = self.next().await;
            let done = f.data["type"] == kind;
            seen.push(f);
            if done {
                return seen;
            }
        }
    }
}

fn types(frames: &[Frame]) -> Vec<String> {
    frames
        .iter()
        .map(|f| f.data["type"].as_str().unwrap_or("?").to_string())
        .collect()
}

#[tokio::test]
async fn a_stream_for_one_call_id_percent_encoded_as_a_browser_may_gets_that_call_only() {
    let mut hooks = WebhookReceiver::start(&[]).await;
    let gw = TestGateway::start(&hooks.url(), "").await;
    let phone = Phone::new().await;
    let (first, _m1) = phone.call(&gw.sip_uri("support", false), &[]).await;
    let first_id = hooks.next().await.json()["callId"]
        .as_str()
        .unwrap()
        .to_string();
    let (second, _m2) = phone.call(&gw.sip_uri("support", false), &[]).await;
    let second_id = hooks.next().await.json()["callId"]
        .as_str()
        .unwrap()
        .to_string();
    let encoded = second_id.replace('-', "%2D");
    let mut sse = Sse::open_path(&gw, &format!("/v1/events?callId={encoded}"), None).await;
    first.hangup();
    gw.wait_call(&first_id, Duration::from_secs(5), |c| c["state"] == "ended")
        .await;
    second.hangup();
    let frames = sse.until("call.ended").await;
    assert!(
        frames
            .iter()
            .all(|f| f.data["callId"] == second_id.as_str()),
        "{:?}",
        types(&frames)
    );
}

#[tokio::test]
async fn a_call_s_events_arrive_in_order_and_a_reconnect_gets_what_it_missed() {
    let mut hooks = WebhookReceiver::start(&[]).await;
    let gw = TestGateway::start(&hooks.url(), "").await;
    let mut sse = Sse::open(&gw, None).await;
    let phone = Phone::new().await;
    let (caller, _media) = phone.call(&gw.sip_uri("support", false), &[]).await;
    let id = hooks.next().await.json()["callId"]
        .as_str()
        .unwrap()
        .to_string();
    let mut room = Room::new().await;
    let (status, _) = gw
        .update(gw.update_body(&id, json!({ "sipUri": room.uri("r", false) })))
        .await;
    assert_eq!(status, 200);
    let invite = room.next_invite().await;
    let (_room_leg, _) = room.answer(invite).await;
    let held = sse.until("call.bridged").await;
    assert_eq!(
        types(&held),
        ["call.held", "call.transfer_started", "call.bridged"]
    );
    for f in &held {
        assert_eq!(f.data["callId"], id.as_str());
        assert_eq!(f.data["callDomain"], gw.gw.call_domain.as_str());
        assert!(f.id.is_some(), "every event has an id");
    }
    // The client drops; the call goes on and ends meanwhile.
    drop(sse);
    caller.hangup();
    gw.wait_call(&id, Duration::from_secs(5), |c| c["state"] == "ended")
        .await;
    let first_id = held[0].id.clone().unwrap();
    let mut again = Sse::open(&gw, Some(&first_id)).await;
    let missed = again.until("call.ended").await;
    assert_eq!(
        types(&missed),
        ["call.transfer_started", "call.bridged", "call.ended"],
        "what came after the last id seen, and only that"
    );
    assert_eq!(missed[2].data["data"]["reason"], "caller_hangup");
    // An id the node never gave: the client is told it missed events.
    let mut stale = Sse::open(&gw, Some("1-1")).await;
    let gap = stale.next().await;
    assert_eq!(gap.event.as_deref(), Some("gap"));
    assert_eq!(gap.data["lastEventId"], "1-1");
    assert_eq!(stale.next().await.data["type"], "call.held");
}

#[tokio::test]
async fn the_stream_needs_a_token() {
    let hooks = WebhookReceiver::start(&[]).await;
    let gw = TestGateway::start(&hooks.url(), "").await;
    let no = gw.http.get(gw.url("/v1/events")).send().await.unwrap();
    assert_eq!(no.status(), 401);
    let wrong = gw
        .http
        .get(gw.url("/v1/events"))
        .bearer_auth("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
}
