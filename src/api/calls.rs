//! `GET /v1/calls`, `GET /v1/calls/{callId}`, `DELETE /v1/calls/{callId}`,
//! `POST /v1/calls/{callId}/hold`, and `live`, the one way handlers reach
//! a live call.

use super::Api;
use super::reply::{error, json};
use crate::call::{CallError, CallHandle, CallId, NotLive};
use warp::http::StatusCode;
use warp::hyper::{Body, Response};

/// A live call's handle: 404 for a call never seen, 409 for one that has
/// ended.
pub(super) fn live(api: &Api, id: &str) -> Result<CallHandle, Response<Body>> {
    api.registry
        .get(&CallId(id.to_string()))
        .map_err(|e| match e {
            NotLive::Unknown => error(StatusCode::NOT_FOUND, &e.to_string()),
            NotLive::Ended(_) => error(StatusCode::CONFLICT, &e.to_string()),
        })
}

/// A request the call could not carry out: 409 either way.
pub(super) fn refused(e: CallError) -> Response<Body> {
    error(StatusCode::CONFLICT, &e.to_string())
}

pub async fn hold(api: &Api, id: &str) -> Response<Body> {
    let call = match live(api, id) {
        Ok(c) => c,
        Err(response) => return response,
    };
    match call.hold().await {
        Ok(()) => json(
            StatusCode::OK,
            &serde_json::json!({ "status": "held", "callId": id }),
        ),
        Err(e) => refused(e),
    }
}

pub fn list(api: &Api) -> Response<Body> {
    let calls = api.registry.live_snapshots();
    let calls: Vec<&crate::call::CallView> = calls.iter().map(|c| &**c).collect();
    json(StatusCode::OK, &serde_json::json!({ "calls": calls }))
}

pub fn get(api: &Api, id: &str) -> Response<Body> {
    match api.registry.snapshot(&CallId(id.to_string())) {
        Some(call) => json(StatusCode::OK, &*call),
        None => error(StatusCode::NOT_FOUND, "unknown callId"),
    }
}

pub fn hangup(api: &Api, id: &str) -> Response<Body> {
    match api.registry.get(&CallId(id.to_string())) {
        Ok(call) if call.hangup() => json(
            StatusCode::OK,
            &serde_json::json!({ "status": "ending", "callId": id }),
        ),
        _ => error(StatusCode::NOT_FOUND, "unknown callId"),
    }
}
