//! `GET /v1/events`: the node's call events as Server-Sent Events, one per
//! event, each the events webhook's JSON with its feed id. A client that
//! reconnects with `Last-Event-ID` gets what it missed from the feed's
//! window; when that id is too old (or of an earlier run of the node) the
//! stream opens with an `event: gap` so the client knows, then replays the
//! whole window. `?callId=` narrows the stream to one call.

use super::bad_request::FieldError;
use super::error::ApiError;
use super::state::Api;
use crate::call::registry::feed::FeedEvent;
use futures_util::stream::{self, StreamExt};
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use warp::http::HeaderMap;
use warp::hyper::{Body, Response};

/// A comment line this often keeps proxies from cutting an idle stream.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// What the browser's EventSource waits before reconnecting.
const RETRY_MS: u64 = 2000;

/// One SSE frame for `e`. The JSON holds no newline (serde_json writes it
/// compact), so it fits one `data:` line.
fn frame(e: &FeedEvent) -> String {
    format!("id: {}\ndata: {}\n\n", e.id, e.json)
}

pub fn stream(api: &Api, query: &str, headers: &HeaderMap) -> Result<Response<Body>, ApiError> {
    let mut call = None;
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match &*k {
            "callId" if !v.is_empty() => call = Some(v.into_owned()),
            "callId" => return Err(FieldError::rule("callId", "must not be empty").into()),
            _ => {}
        }
    }
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.trim().is_empty());
    let sub = api.feed.subscribe(last);
    let wanted = move |e: &FeedEvent| call.as_deref().is_none_or(|c| c == e.call_id);
    let mut head = format!("retry: {RETRY_MS}\n\n");
    if sub.gap {
        let detail = serde_json::json!({
            "lastEventId": last,
            "reason": "not in the window of recent events (too old, or from before a restart); the window follows",
        });
        head.push_str(&format!("event: gap\ndata: {detail}\n\n"));
    }
    for e in sub.backlog.iter().filter(|e| wanted(e)) {
        head.push_str(&frame(e));
    }
    let quiet_until = tokio::time::Instant::now() + KEEP_ALIVE;
    let live = stream::unfold(
        (sub.live, sub.closed, wanted, quiet_until),
        |(mut live, mut closed, wanted, mut quiet_until)| async move {
            loop {
                // Measured from the last frame sent: events filtered out
                // (`?callId=`) do not put the keep-alive off.
                let next = tokio::select! {
                    _ = closed.wait_for(|c| *c) => return None,
                    got = live.recv() => Some(got),
                    _ = tokio::time::sleep_until(quiet_until) => None,
                };
                let text = match next {
                    None => ": keep-alive\n\n".to_string(),
                    Some(Ok(e)) if wanted(&e) => frame(&e),
                    Some(Ok(_)) => continue,
                    // Too slow to keep up: end the stream; the client
                    // reconnects with its last id and catches up from the
                    // window, without a hole.
                    Some(Err(RecvError::Lagged(_) | RecvError::Closed)) => return None,
                };
                quiet_until = tokio::time::Instant::now() + KEEP_ALIVE;
                return Some((text, (live, closed, wanted, quiet_until)));
            }
        },
    );
    let body = stream::once(async move { head })
        .chain(live)
        .map(Ok::<String, Infallible>);
    Ok(Response::builder()
        .header("content-type", "text/event-stream")
        .header("cache-control", "no-cache")
        // Proxies such as nginx buffer responses unless told not to.
        .header("x-accel-buffering", "no")
        .body(Body::wrap_stream(body))
        .unwrap_or_default())
}
