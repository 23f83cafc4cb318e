//! Forwarding an API request to the node that owns the call: the same
//! method, path, body and `Authorization` (nodes of a cluster share their
//! bearer tokens), marked with `FORWARDED_BY` so the owner never forwards
//! it again. The owner's status and body come back as they are.

use super::client::Cluster;
use super::error::ClusterError;
use super::keys::{FORWARDED_BY, NodeRecord};
use bytes::Bytes;
use std::sync::atomic::Ordering;

/// A request to pass on.
#[derive(Debug, Clone)]
pub struct Forward<'a> {
    pub method: &'a str,
    /// Path and query as received (`/v1/calls/x?y=1`).
    pub path_and_query: &'a str,
    pub authorization: Option<&'a str>,
    /// Other headers that change the meaning of the request
    /// (`Idempotency-Key`, `Content-Type`).
    pub headers: Vec<(&'a str, &'a str)>,
    pub body: Bytes,
}

/// The owner's answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Bytes,
}

impl Cluster {
    /// Sends `request` to `to` and returns its answer, whatever its status.
    pub async fn forward(
        &self,
        to: &NodeRecord,
        request: Forward<'_>,
    ) -> Result<Answer, ClusterError> {
        let result = self.send(to, request).await;
        let counter = match &result {
            Ok(_) => &self.stats.forwards_ok,
            Err(_) => &self.stats.forwards_failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        result
    }

    async fn send(&self, to: &NodeRecord, request: Forward<'_>) -> Result<Answer, ClusterError> {
        let unreachable = |reason: String| ClusterError::OwnerUnreachable {
            node: to.call_domain.clone(),
            reason,
        };
        let method = reqwest::Method::from_bytes(request.method.as_bytes())
            .map_err(|e| unreachable(format!("method: {e}")))?;
        let mut builder = self
            .http
            .request(method, to.url(request.path_and_query))
            .header(FORWARDED_BY, &self.me.call_domain)
            .body(request.body);
        if let Some(auth) = request.authorization {
            builder = builder.header("authorization", auth);
        }
        for (name, value) in request.headers {
            builder = builder.header(name, value);
        }
        let response = builder
            .send()
            .await
            .map_err(|e| unreachable(describe(&e)))?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        let body = response
            .bytes()
            .await
            .map_err(|e| unreachable(describe(&e)))?;
        Ok(Answer {
            status,
            content_type,
            body,
        })
    }

    /// The owner of `call_id` when another live node owns it: None when no
    /// node does (or this one does, and the call is no longer here). When
    /// Redis has no owner key, `named_node` (the update's callDomain) is
    /// taken if it is another live node: the app may send its update
    /// through any node as soon as the webhook arrives, before the owner's
    /// key is written. A failure here is a failed forward (counted as
    /// such).
    pub async fn owner(
        &self,
        call_id: &str,
        named_node: Option<&str>,
    ) -> Result<Option<NodeRecord>, ClusterError> {
        let result = self.look_up(call_id, named_node).await;
        if result.is_err() {
            self.stats.forwards_failed.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    async fn look_up(
        &self,
        call_id: &str,
        named_node: Option<&str>,
    ) -> Result<Option<NodeRecord>, ClusterError> {
        let Some(owner) = self.owner_of(call_id).await? else {
            return match named_node.filter(|n| *n != self.me.call_domain) {
                // A name that is no live node: the call is unknown (404).
                Some(named) => self.node(named).await,
                None => Ok(None),
            };
        };
        if owner == self.me.call_domain {
            return Ok(None);
        }
        match self.node(&owner).await? {
            Some(record) => Ok(Some(record)),
            None => Err(ClusterError::OwnerGone { node: owner }),
        }
    }
}

/// reqwest's error with its causes ("error sending request" alone says
/// nothing of the refused connection underneath).
fn describe(e: &reqwest::Error) -> String {
    let mut text = if e.is_timeout() {
        "no answer in time".to_string()
    } else {
        e.to_string()
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
