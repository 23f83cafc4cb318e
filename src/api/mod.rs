//! The HTTP API (warp). Routing is done here by hand on the normalised
//! path (repeated slashes collapsed, as clients build URLs by appending to
//! a base that may end in `/`), so that every error has the same JSON
//! shape. Handlers validate and authenticate, then call into `call`.

mod audio;
mod auth;
mod bad_request;
mod calls;
mod cluster_calls;
mod console;
mod error;
mod events;
mod forward;
mod metrics;
mod play;
mod provision;
mod queues;
mod recordings;
mod records;
mod registrations;
mod reply;
mod sip_trace;
mod state;
mod update;

pub use audio::AudioCache;
pub use bad_request::{BadRequest, FieldError, Reason};
pub use error::{ApiError, Internal, MAX_BODY, Unknown};
pub use recordings::retention as recording_retention;
pub use state::Api;

use bytes::{Buf, Bytes};
use futures_util::StreamExt;
use reply::json;
use std::net::SocketAddr;
use std::sync::Arc;
use warp::Filter;
use warp::http::{HeaderMap, Method, StatusCode};
use warp::hyper::{Body, Response};

/// `docs/openapi.json`, the API's OpenAPI 3.1 description, as built in.
const OPENAPI: &str = include_str!("../../docs/openapi.json");

fn openapi() -> Response<Body> {
    Response::builder()
        .header("content-type", "application/json")
        .body(Body::from(OPENAPI))
        .unwrap_or_default()
}

/// Why the API could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen for the API on {addr}: {source}")]
pub struct ServeError {
    pub addr: SocketAddr,
    #[source]
    pub source: warp::Error,
}

/// Binds `addr` and serves until `shutdown` resolves. Returns the bound
/// address and the server future to spawn.
pub fn serve(
    api: Arc<Api>,
    addr: SocketAddr,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(SocketAddr, impl std::future::Future<Output = ()>), ServeError> {
    let routes = warp::method()
        .and(warp::path::full())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(warp::header::headers_cloned())
        .and(warp::body::stream())
        .then(
            move |method: Method,
                  path: warp::path::FullPath,
                  query: String,
                  headers: HeaderMap,
                  body| {
                let api = api.clone();
                async move {
                    let body = match read_body(body).await {
                        Ok(b) => b,
                        Err(e) => return e.into_response(),
                    };
                    let request = Request {
                        method,
                        path: path.as_str(),
                        query: &query,
                        headers: &headers,
                        body,
                    };
                    dispatch(&api, request)
                        .await
                        .unwrap_or_else(ApiError::into_response)
                }
            },
        );
    warp::serve(routes)
        .try_bind_with_graceful_shutdown(addr, shutdown)
        .map_err(|source| ServeError { addr, source })
}

/// Reads a body up to `MAX_BODY`; a larger one gets 413 at once.
async fn read_body<S, B>(mut stream: S) -> Result<Bytes, ApiError>
where
    S: futures_util::Stream<Item = Result<B, warp::Error>> + Unpin,
    B: Buf,
{
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        let mut chunk = chunk.map_err(ApiError::BodyUnreadable)?;
        if out.len() + chunk.remaining() > MAX_BODY {
            return Err(ApiError::BodyTooLarge);
        }
        while chunk.has_remaining() {
            let part = chunk.chunk();
            out.extend_from_slice(part);
            let n = part.len();
            chunk.advance(n);
        }
    }
    Ok(Bytes::from(out))
}

/// One HTTP request, as the handlers see it.
struct Request<'a> {
    method: Method,
    path: &'a str,
    query: &'a str,
    headers: &'a HeaderMap,
    body: Bytes,
}

async fn dispatch(api: &Api, r: Request<'_>) -> Result<Response<warp::hyper::Body>, ApiError> {
    let Request {
        method,
        path,
        query,
        headers,
        body,
    } = r;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    // Health, metrics, the API's description and the console's own files
    // answer without a token (the console holds no data; its calls to the
    // API carry one).
    match (&method, segments.as_slice()) {
        (&Method::GET, ["healthz"]) => {
            return Ok(json(StatusCode::OK, &serde_json::json!({ "status": "ok" })));
        }
        // A stopping node is alive (healthz) but not ready for new calls.
        (&Method::GET, ["readyz"]) if api.node.draining() => {
            let body = serde_json::json!({ "status": "draining" });
            return Ok(json(StatusCode::SERVICE_UNAVAILABLE, &body));
        }
        (&Method::GET, ["readyz"]) => {
            return Ok(json(StatusCode::OK, &serde_json::json!({ "status": "ok" })));
        }
        (&Method::GET, ["metrics"]) => return Ok(metrics::render(api)),
        (&Method::GET, ["v1", "openapi.json"]) => return Ok(openapi()),
        (&Method::GET, ["console"]) => return Ok(console::page()),
        (&Method::GET, ["console", name]) => {
            return console::asset(name).ok_or(ApiError::NoSuchEndpoint);
        }
        _ => {}
    }
    let known = matches!(
        segments.as_slice(),
        ["v1", "dialin", "pinlessCallUpdate"]
            | ["v1", "calls"]
            | ["v1", "calls", _]
            | ["v1", "calls", _, "hold"]
            | ["v1", "calls", _, "play"]
            | ["v1", "calls", _, "recording"]
            | ["v1", "recordings"]
            | ["v1", "recordings", _]
            | ["v1", "queues"]
            | ["v1", "registrations"]
            | ["v1", "calls", _, "sip"]
            | ["v1", "domain-dialin-config"]
            | ["v1", "domain-dialin-config", _]
            | ["v1", "domain-dialin-config", _, "rotate-hmac"]
            | ["v1", "call-records"]
            | ["v1", "events"]
    );
    if !known {
        return Err(ApiError::NoSuchEndpoint);
    }
    if !auth::authorized(&api.tokens, header("authorization")) {
        return Err(ApiError::Unauthorized);
    }
    // A call another node of the cluster owns: its owner answers.
    // An update names the node that sent its webhook (`callDomain`): the
    // owner when Redis has no owner key yet (it is written just after).
    // A lone node skips this (and parses an update's body once).
    let (call_id, named_node) = match (&api.cluster, &method, segments.as_slice()) {
        (None, ..) => (None, None),
        (Some(_), &Method::POST, ["v1", "dialin", "pinlessCallUpdate"]) => {
            match update::parse(&body) {
                Ok(u) => (Some(u.call_id), Some(u.call_domain)),
                Err(_) => (None, None),
            }
        }
        (Some(_), &Method::GET | &Method::DELETE, ["v1", "calls", id])
        | (Some(_), &Method::POST, ["v1", "calls", id, "hold" | "play" | "recording"])
        | (Some(_), &Method::GET, ["v1", "calls", id, "recording"])
        | (Some(_), &Method::GET, ["v1", "calls", id, "sip"]) => (Some(id.to_string()), None),
        _ => (None, None),
    };
    if let Some(id) = &call_id
        && let Some(cluster) = forward::candidate(api.cluster.as_ref(), &api.registry, headers, id)
    {
        let received = forward::Received {
            method: &method,
            path,
            query,
            headers,
            body: &body,
        };
        if let Some(answer) =
            forward::to_owner(cluster, id, named_node.as_deref(), received).await?
        {
            return Ok(answer);
        }
    }
    match (method, segments.as_slice()) {
        (Method::POST, ["v1", "dialin", "pinlessCallUpdate"]) => {
            update::handle(api, &body, header("idempotency-key")).await
        }
        (Method::GET, ["v1", "calls"]) => calls::list(api, query, headers).await,
        (Method::GET, ["v1", "calls", id]) => calls::get(api, id),
        (Method::DELETE, ["v1", "calls", id]) => calls::hangup(api, id),
        (Method::POST, ["v1", "calls", id, "hold"]) => calls::hold(api, id).await,
        (Method::POST, ["v1", "calls", id, "play"]) => play::handle(api, id, &body).await,
        (Method::POST, ["v1", "calls", id, "recording"]) => {
            recordings::control(api, id, &body).await
        }
        (Method::GET, ["v1", "calls", id, "recording"]) => recordings::file(api, id, headers).await,
        (Method::GET, ["v1", "recordings"]) => recordings::list(api, query).await,
        (Method::GET, ["v1", "recordings", id]) => recordings::get(api, id).await,
        (Method::DELETE, ["v1", "recordings", id]) => recordings::delete(api, id).await,
        (Method::GET, ["v1", "queues"]) => Ok(queues::list(api)),
        (Method::GET, ["v1", "registrations"]) => Ok(registrations::list(api)),
        (Method::GET, ["v1", "calls", id, "sip"]) => sip_trace::get(api, id),
        (Method::POST, ["v1", "domain-dialin-config"]) => {
            provision::create(&api.provisioning, &body).await
        }
        (Method::GET, ["v1", "domain-dialin-config"]) => provision::list(&api.provisioning).await,
        (Method::GET, ["v1", "domain-dialin-config", id]) => {
            provision::get(&api.provisioning, id).await
        }
        (Method::PUT, ["v1", "domain-dialin-config", id]) => {
            provision::replace(&api.provisioning, id, &body).await
        }
        (Method::DELETE, ["v1", "domain-dialin-config", id]) => {
            provision::delete(&api.provisioning, id).await
        }
        (Method::POST, ["v1", "domain-dialin-config", id, "rotate-hmac"]) => {
            provision::rotate(&api.provisioning, id, &body).await
        }
        (Method::GET, ["v1", "call-records"]) => records::list(api, query).await,
        (Method::GET, ["v1", "events"]) => events::stream(api, query, headers),
        _ => Err(ApiError::MethodNotAllowed),
    }
}
