//! `GET /v1/calls?scope=cluster`: the live calls of every node of the
//! cluster, asked of each node in parallel. A node that does not answer
//! is named under `unreachable`, never silently left out.

use super::error::ApiError;
use super::reply::json;
use super::state::Api;
use crate::cluster::{Forward, NodeRecord};
use serde_json::{Value, json};
use warp::http::{HeaderMap, StatusCode};
use warp::hyper::{Body, Response};

pub async fn list(api: &Api, headers: &HeaderMap) -> Result<Response<Body>, ApiError> {
    let ours: Vec<Value> = api
        .registry
        .live_snapshots()
        .iter()
        .filter_map(|c| serde_json::to_value(&**c).ok())
        .collect();
    let Some(cluster) = &api.cluster else {
        // A lone node is a cluster of one.
        let nodes = json!([{ "callDomain": api.call_domain, "calls": ours.len() }]);
        let body = json!({ "calls": ours, "nodes": nodes, "unreachable": [] });
        return Ok(json(StatusCode::OK, &body));
    };
    let others: Vec<NodeRecord> = cluster
        .nodes()
        .await?
        .into_iter()
        .filter(|n| n.call_domain != api.call_domain)
        .collect();
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
    let asks = others.iter().map(|node| async move {
        let request = Forward {
            method: "GET",
            path_and_query: "/v1/calls",
            authorization: auth,
            headers: Vec::new(),
            body: bytes::Bytes::new(),
        };
        let answer = cluster.forward(node, request).await;
        (node, answer)
    });
    let answers = futures_util::future::join_all(asks).await;
    let mut calls = ours;
    let mut nodes = vec![json!({ "callDomain": api.call_domain, "calls": calls.len() })];
    let mut unreachable = Vec::new();
    for (node, answer) in answers {
        let theirs = match answer {
            Ok(a) if a.status == 200 => serde_json::from_slice::<Value>(&a.body)
                .ok()
                .and_then(|v| v.get("calls").and_then(Value::as_array).cloned())
                .ok_or_else(|| "answer is not a call list".to_string()),
            Ok(a) => Err(format!("answered HTTP {}", a.status)),
            Err(e) => Err(e.to_string()),
        };
        match theirs {
            Ok(list) => {
                nodes.push(json!({ "callDomain": node.call_domain, "calls": list.len() }));
                calls.extend(list);
            }
            Err(error) => {
                unreachable.push(json!({ "callDomain": node.call_domain, "error": error }))
            }
        }
    }
    let body = json!({ "calls": calls, "nodes": nodes, "unreachable": unreachable });
    Ok(json(StatusCode::OK, &body))
}
