//! Requests for a call another node of the cluster owns: looked up in
//! Redis and passed to the owner, whose answer goes back as it is.
//!
//! Only requests naming a call this node does not know are forwarded, and
//! never one that was forwarded already (`FORWARDED_BY`): a stale owner
//! key can cost one extra hop, never a loop.

use super::error::ApiError;
use crate::call::CallId;
use crate::cluster::{Cluster, FORWARDED_BY, Forward};
use bytes::Bytes;
use std::sync::Arc;
use warp::http::{HeaderMap, Method, StatusCode};
use warp::hyper::{Body, Response};

/// The request as received, to be passed on.
pub(super) struct Received<'a> {
    pub method: &'a Method,
    pub path: &'a str,
    pub query: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a Bytes,
}

/// Whether another node sent this request.
pub(super) fn was_forwarded(headers: &HeaderMap) -> bool {
    headers.contains_key(FORWARDED_BY)
}

/// The cluster, when a request for `call_id` should go to its owner: a
/// cluster node, a call unknown here, a request not forwarded already.
pub(super) fn candidate<'a>(
    cluster: Option<&'a Arc<Cluster>>,
    registry: &crate::call::Registry,
    headers: &HeaderMap,
    call_id: &str,
) -> Option<&'a Arc<Cluster>> {
    let cluster = cluster?;
    if was_forwarded(headers) || registry.snapshot(&CallId(call_id.to_string())).is_some() {
        return None;
    }
    Some(cluster)
}

/// Sends the request to the owner of `call_id` (or, when Redis names no
/// owner, to `named_node` if it is another live node of the cluster): its
/// answer, or None when no node owns the call (the caller answers 404 as a
/// lone node would).
pub(super) async fn to_owner(
    cluster: &Cluster,
    call_id: &str,
    named_node: Option<&str>,
    r: Received<'_>,
) -> Result<Option<Response<Body>>, ApiError> {
    let Some(owner) = cluster.owner(call_id, named_node).await? else {
        return Ok(None);
    };
    let header = |name: &str| r.headers.get(name).and_then(|v| v.to_str().ok());
    let path_and_query = if r.query.is_empty() {
        r.path.to_string()
    } else {
        format!("{}?{}", r.path, r.query)
    };
    let mut headers = Vec::new();
    for name in ["content-type", "idempotency-key"] {
        if let Some(v) = header(name) {
            headers.push((name, v));
        }
    }
    let answer = cluster
        .forward(
            &owner,
            Forward {
                method: r.method.as_str(),
                path_and_query: &path_and_query,
                authorization: header("authorization"),
                headers,
                body: r.body.clone(),
            },
        )
        .await?;
    tracing::debug!(call = %call_id, owner = %owner.call_domain, status = answer.status, "request forwarded to the call's owner");
    let mut response = Response::builder()
        .status(StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_GATEWAY));
    if let Some(ct) = &answer.content_type {
        response = response.header("content-type", ct);
    }
    Ok(Some(
        response.body(Body::from(answer.body)).unwrap_or_default(),
    ))
}
