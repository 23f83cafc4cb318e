//! `GET /v1/calls`, `GET /v1/calls/{callId}` (with `position` while the
//! call waits, see `queues`), `DELETE /v1/calls/{callId}`,
//! `POST /v1/calls/{callId}/hold`, and `live`, the one way handlers reach
//! a live call.

use super::bad_request::FieldError;
use super::error::{ApiError, Unknown};
use super::reply::json;
use super::state::Api;
use crate::call::{CallHandle, CallId};
use warp::http::{HeaderMap, StatusCode};
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

/// `GET /v1/calls`: this node's live calls; with `?scope=cluster`, those
/// of every live node of the cluster (see `cluster_list`).
pub async fn list(api: &Api, query: &str, headers: &HeaderMap) -> Result<Response<Body>, ApiError> {
    let scope = query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == "scope")
        .map(|(_, v)| v);
    match scope {
        None | Some("node") => {}
        Some("cluster") => return super::cluster_calls::list(api, headers).await,
        Some(_) => {
            return Err(FieldError::rule("scope", "must be \"node\" or \"cluster\"").into());
        }
    }
    let calls = super::queues::all_with_positions(api);
    Ok(json(StatusCode::OK, &serde_json::json!({ "calls": calls })))
}

pub fn get(api: &Api, id: &str) -> Result<Response<Body>, ApiError> {
    match api.registry.snapshot(&CallId(id.to_string())) {
        Some(call) => Ok(json(
            StatusCode::OK,
            &super::queues::with_position(api, &call),
        )),
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
