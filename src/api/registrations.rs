//! `GET /v1/registrations`: this node's bindings at registrars
//! (`[[registration]]`): state, time left, the last answer and Contact.

use super::reply::json;
use super::state::Api;
use warp::http::StatusCode;
use warp::hyper::{Body, Response};

pub fn list(api: &Api) -> Response<Body> {
    let registrations = api.registrations.views();
    json(
        StatusCode::OK,
        &serde_json::json!({ "registrations": registrations }),
    )
}
