//! `GET /v1/calls`, `GET /v1/calls/{callId}`, `DELETE /v1/calls/{callId}`.

use super::Api;
use super::reply::{error, json};
use crate::call::CallId;
use crate::call::driver::DriverMsg;
use warp::http::StatusCode;
use warp::hyper::{Body, Response};

pub fn list(api: &Api) -> Response<Body> {
    let calls = api.registry.live_snapshots();
    json(StatusCode::OK, &serde_json::json!({ "calls": calls }))
}

pub fn get(api: &Api, id: &str) -> Response<Body> {
    match api.registry.snapshot(&CallId(id.to_string())) {
        Some(call) => json(StatusCode::OK, &call),
        None => error(StatusCode::NOT_FOUND, "unknown callId"),
    }
}

pub fn hangup(api: &Api, id: &str) -> Response<Body> {
    match api.registry.get(&CallId(id.to_string())) {
        Some(call) if call.tx.send(DriverMsg::Hangup).is_ok() => json(
            StatusCode::OK,
            &serde_json::json!({ "status": "ending", "callId": id }),
        ),
        _ => error(StatusCode::NOT_FOUND, "unknown callId"),
    }
}
