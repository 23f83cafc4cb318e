//! `GET /v1/calls`, `GET /v1/calls/{callId}`, `DELETE /v1/calls/{callId}`,
//! `POST /v1/calls/{callId}/hold`, and `live`, the one way handlers reach
//! a live call.

use super::error::{ApiError, Unknown};
use super::reply::json;
use super::state::Api;
use crate::call::{CallHandle, CallId, CallView};
use warp::http::StatusCode;
use warp::hyper::{Body, Response};

/// A live call's handle: 404 for a call never seen, 409 for one that has
/// ended.
pub(super) fn live(api: &Api, id: &str) -> Result<CallHandle, ApiError> {
    Ok(api.registry.get(&CallId(id.to_string()))?)
}

pub async fn hold(api: &Api, id: &str) -> Result<Response<Body>, ApiError> {
    live(api, id)?.hold().await?;
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({ "status": "held", "callId": id }),
    ))
}

pub fn list(api: &Api) -> Response<Body> {
    let calls = api.registry.live_snapshots();
    let calls: Vec<&CallView> = calls.iter().map(|c| &**c).collect();
    json(StatusCode::OK, &serde_json::json!({ "calls": calls }))
}

pub fn get(api: &Api, id: &str) -> Result<Response<Body>, ApiError> {
    match api.registry.snapshot(&CallId(id.to_string())) {
        Some(call) => Ok(json(StatusCode::OK, &*call)),
        None => Err(ApiError::Unknown(Unknown::CallId)),
    }
}

pub fn hangup(api: &Api, id: &str) -> Result<Response<Body>, ApiError> {
    match api.registry.get(&CallId(id.to_string())) {
        Ok(call) if call.hangup() => Ok(json(
            StatusCode::OK,
            &serde_json::json!({ "status": "ending", "callId": id }),
        )),
        _ => Err(ApiError::Unknown(Unknown::CallId)),
    }
}
