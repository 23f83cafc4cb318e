//! `GET /v1/queues`: every entry's hold queue on this node (see
//! `call::registry::queue`), and the `position` that `GET /v1/calls/{callId}`
//! shows for a call that waits.

use super::reply::json;
use super::state::Api;
use crate::call::{CallId, CallView};
use warp::http::StatusCode;
use warp::hyper::{Body, Response};

pub fn list(api: &Api) -> Response<Body> {
    let queues = api.registry.queue_views();
    json(StatusCode::OK, &serde_json::json!({ "queues": queues }))
}

/// `view` as the API shows it, with `position` added while the call
/// waits in its entry's queue.
pub fn with_position(api: &Api, view: &CallView) -> serde_json::Value {
    let position = api.registry.position(&CallId(view.call_id.clone()));
    shown(view, position)
}

/// Every live call as the API shows it, positions found in one pass.
pub fn all_with_positions(api: &Api) -> Vec<serde_json::Value> {
    let positions = api.registry.positions();
    let calls = api.registry.live_snapshots();
    calls
        .iter()
        .map(|c| shown(c, positions.get(&CallId(c.call_id.clone())).copied()))
        .collect()
}

fn shown(view: &CallView, position: Option<u64>) -> serde_json::Value {
    let mut v = serde_json::to_value(view).unwrap_or_default();
    if let (Some(position), Some(obj)) = (position, v.as_object_mut()) {
        obj.insert("position".into(), position.into());
    }
    v
}
