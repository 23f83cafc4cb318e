//! `GET /v1/calls/{callId}/sip`: the call's SIP ladder, live or after its
//! end (for as long as `GET /v1/calls/{callId}` knows the call). What is
//! captured, the bounds and the masking are `sip::Trace`'s.

use super::error::{ApiError, Unknown};
use super::reply::json;
use super::state::Api;
use crate::call::CallId;
use crate::sip::Ladder;
use serde::Serialize;
use warp::http::StatusCode;
use warp::hyper::{Body, Response};

/// The answer: the ladder under the call's id.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CallLadder<'a> {
    call_id: &'a str,
    #[serde(flatten)]
    ladder: Ladder,
}

pub fn get(api: &Api, id: &str) -> Result<Response<Body>, ApiError> {
    let call = CallId(id.to_string());
    // Known as long as the call's view is (the same 404 otherwise).
    if api.registry.snapshot(&call).is_none() {
        return Err(ApiError::Unknown(Unknown::CallId));
    }
    let ladder = match api.registry.trace(&call) {
        Some(trace) => trace.ladder(),
        None => Ladder {
            truncated: false,
            dropped_messages: 0,
            messages: vec![],
        },
    };
    Ok(json(
        StatusCode::OK,
        &CallLadder {
            call_id: id,
            ladder,
        },
    ))
}
