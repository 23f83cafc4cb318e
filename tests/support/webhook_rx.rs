//! A real HTTP server that receives webhooks and records them.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use warp::Filter;

/// One received webhook.
#[derive(Debug, Clone)]
pub struct Hook {
    pub headers: Vec<(String, String)>,
    pub body: bytes::Bytes,
    pub status_returned: u16,
}

impl Hook {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("webhook body is JSON")
    }
}

pub struct WebhookReceiver {
    pub addr: SocketAddr,
    pub rx: mpsc::UnboundedReceiver<Hook>,
    /// Statuses to answer with, in order; 200 once empty.
    pub script: Arc<Mutex<VecDeque<u16>>>,
}

impl WebhookReceiver {
    pub async fn start(script: &[u16]) -> WebhookReceiver {
        let (tx, rx) = mpsc::unbounded_channel();
        let script = Arc::new(Mutex::new(
            script.iter().copied().collect::<VecDeque<u16>>(),
        ));
        let s = script.clone();
        let route = warp::post()
            .and(warp::header::headers_cloned())
            .and(warp::body::bytes())
            .map(move |headers: warp::http::HeaderMap, body: bytes::Bytes| {
                let status = s.lock().unwrap().pop_front().unwrap_or(200);
                let headers = headers
                    .iter()
                    .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or("").to_string()))
                    .collect();
                let _ = tx.send(Hook {
                    headers,
                    body,
                    status_returned: status,
                });
                warp::reply::with_status("", warp::http::StatusCode::from_u16(status).unwrap())
            });
        let (addr, server) = warp::serve(route).bind_ephemeral(([127, 0, 0, 1], 0));
        tokio::spawn(server);
        WebhookReceiver { addr, rx, script }
    }

    pub fn url(&self) -> String {
        format!("http://{}/dialin", self.addr)
    }

    pub async fn next(&mut self) -> Hook {
        super::within(15, "a webhook", self.rx.recv())
            .await
            .expect("receiver open")
    }
}
