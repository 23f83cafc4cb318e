//! `GET /v1/calls`, `GET /v1/calls/{callId}`, `DELETE /v1/calls/{callId}`,
//! `POST /v1/calls/{callId}/hold`, and `ask`, the one way handlers talk
//! to a live call's driver.

use super::Api;
use super::error::{ApiError, Unknown};
use super::reply::json;
use crate::call::CallId;
use crate::call::driver::DriverMsg;
use crate::call::machine::state_name;
use std::time::Duration;
use tokio::sync::oneshot;
use warp::http::StatusCode;
use warp::hyper::{Body, Response};

/// Sends a request to call `id`'s driver and waits for its answer: 404
/// for a call never seen, 409 for one that has ended.
pub(super) async fn ask<T>(
    api: &Api,
    id: &str,
    make: impl FnOnce(oneshot::Sender<T>) -> DriverMsg,
) -> Result<T, ApiError> {
    let id = CallId(id.to_string());
    let ended = ApiError::CallIs("ended");
    let Some(call) = api.registry.get(&id) else {
        return Err(match api.registry.snapshot(&id) {
            Some(m) => ApiError::CallIs(state_name(m.state)),
            None => ApiError::Unknown(Unknown::CallId),
        });
    };
    let (reply, answer) = oneshot::channel();
    if call.tx.send(make(reply)).is_err() {
        return Err(ended);
    }
    // The driver answers at once; a timeout means it is ending.
    match tokio::time::timeout(Duration::from_secs(2), answer).await {
        Ok(Ok(v)) => Ok(v),
        _ => Err(ended),
    }
}

pub async fn hold(api: &Api, id: &str) -> Result<Response<Body>, ApiError> {
    ask(api, id, |reply| DriverMsg::Hold { reply }).await??;
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "status": "held", "callId": id }),
    ))
}

pub fn list(api: &Api) -> Response<Body> {
    let calls = api.registry.live_snapshots();
    json(StatusCode::OK, &serde_json::json!({ "calls": calls }))
}

pub fn get(api: &Api, id: &str) -> Result<Response<Body>, ApiError> {
    match api.registry.snapshot(&CallId(id.to_string())) {
        Some(call) => Ok(json(StatusCode::OK, &call)),
        None => Err(ApiError::Unknown(Unknown::CallId)),
    }
}

pub fn hangup(api: &Api, id: &str) -> Result<Response<Body>, ApiError> {
    match api.registry.get(&CallId(id.to_string())) {
        Some(call) if call.tx.send(DriverMsg::Hangup).is_ok() => Ok(json(
            StatusCode::OK,
            &serde_json::json!({ "status": "ending", "callId": id }),
        )),
        _ => Err(ApiError::Unknown(Unknown::CallId)),
    }
}
