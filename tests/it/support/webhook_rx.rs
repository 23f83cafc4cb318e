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

    /// Whether the pinless-style signature in `header` (`X-Pinless-Signature`
    /// or `X-Pinless-Signature-Previous`) verifies with base64 `secret`.
    pub fn pinless_verifies(&self, header: &str, secret: &str) -> bool {
        use base64::Engine;
        use hmac::Mac;
        let (Some(ts), Some(sig)) = (self.header("X-Pinless-Timestamp"), self.header(header))
        else {
            return false;
        };
        let key = base64::engine::general_purpose::STANDARD
            .decode(secret)
            .expect("secret is base64");
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
        mac.update(ts.as_bytes());
        mac.update(b".");
        mac.update(&self.body);
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()) == sig
    }

    /// Whether the Standard Webhooks signature verifies with `secret`,
    /// checked by the standard's own library.
    pub fn standard_verifies(&self, secret: &str) -> bool {
        let mut headers = http::HeaderMap::new();
        for (n, v) in &self.headers {
            if let (Ok(n), Ok(v)) = (
                http::HeaderName::from_bytes(n.as_bytes()),
                http::HeaderValue::from_str(v),
            ) {
                headers.insert(n, v);
            }
        }
        standardwebhooks::Webhook::new(secret)
            .map(|w| w.verify(&self.body, &headers).is_ok())
            .unwrap_or(false)
    }
}

pub struct WebhookReceiver {
    pub addr: SocketAddr,
    pub rx: mpsc::UnboundedReceiver<Hook>,
    /// Bodies to answer with, in order; empty once none is left.
    pub bodies: Arc<Mutex<VecDeque<String>>>,
}

impl WebhookReceiver {
    pub async fn start(script: &[u16]) -> WebhookReceiver {
        let (tx, rx) = mpsc::unbounded_channel();
        let script = Arc::new(Mutex::new(
            script.iter().copied().collect::<VecDeque<u16>>(),
        ));
        let s = script;
        let bodies = Arc::new(Mutex::new(VecDeque::<String>::new()));
        let b = bodies.clone();
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
                let body = b.lock().unwrap().pop_front().unwrap_or_default();
                warp::reply::with_status(body, warp::http::StatusCode::from_u16(status).unwrap())
            });
        let (addr, server) = warp::serve(route).bind_ephemeral(([127, 0, 0, 1], 0));
        tokio::spawn(server);
        WebhookReceiver { addr, rx, bodies }
    }

    /// The next webhook gets `body` as its answer (after any queued before).
    pub fn answer_with(&self, body: &str) {
        self.bodies.lock().unwrap().push_back(body.to_string());
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
