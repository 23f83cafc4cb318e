//! A voice bot for tests: a WebSocket server on 127.0.0.1 that speaks
//! Twilio Media Streams as a bot does (reads `connected`, `start`,
//! `media`…; sends `media`, `mark`, `clear`), over plain TCP or TLS.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};

/// A byte stream a test bot's socket runs on.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A listening test bot.
pub struct TestBot {
    listener: TcpListener,
    pub addr: SocketAddr,
    tls: Option<tokio_rustls::TlsAcceptor>,
}

/// One stream the gateway opened to a test bot.
pub struct BotConn {
    pub ws: WebSocketStream<Box<dyn Io>>,
    /// The request's path and query.
    pub path: String,
    /// The handshake's headers, names lower-case.
    pub headers: Vec<(String, String)>,
}

impl TestBot {
    pub async fn new() -> TestBot {
        Self::on("127.0.0.1:0".parse().unwrap(), None).await
    }

    /// A bot speaking TLS with `cert` (see `peers::TestCert`).
    pub async fn tls(cert: &super::peers::TestCert) -> TestBot {
        let acceptor = pinless::sip::tls::acceptor(&cert.cert, &cert.key).expect("test acceptor");
        Self::on("127.0.0.1:0".parse().unwrap(), Some(acceptor)).await
    }

    /// A bot on `addr` (a port a refused attempt went to, say).
    pub async fn on(addr: SocketAddr, tls: Option<tokio_rustls::TlsAcceptor>) -> TestBot {
        let listener = TcpListener::bind(addr).await.expect("bot listens");
        let addr = listener.local_addr().unwrap();
        TestBot {
            listener,
            addr,
            tls,
        }
    }

    /// The bot's URL with `path` (and query) appended.
    pub fn url(&self, path: &str) -> String {
        let scheme = if self.tls.is_some() { "wss" } else { "ws" };
        format!("{scheme}://{}{path}", self.addr)
    }

    async fn io(&self) -> Box<dyn Io> {
        let (tcp, _) = super::within(10, "the gateway to connect", self.listener.accept())
            .await
            .expect("accept");
        match &self.tls {
            Some(acceptor) => Box::new(acceptor.accept(tcp).await.expect("TLS handshake")),
            None => Box::new(tcp),
        }
    }

    /// Takes the next stream, answering its handshake 101.
    #[allow(clippy::result_large_err)] // tungstenite's callback type
    pub async fn accept(&self) -> BotConn {
        let io = self.io().await;
        let mut seen = (String::new(), Vec::new());
        let ws = tokio_tungstenite::accept_hdr_async(io, |req: &Request, resp: Response| {
            seen.0 = req
                .uri()
                .path_and_query()
                .map(|p| p.to_string())
                .unwrap_or_default();
            seen.1 = req
                .headers()
                .iter()
                .map(|(n, v)| (n.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
                .collect();
            Ok(resp)
        })
        .await
        .expect("WebSocket handshake");
        BotConn {
            ws,
            path: seen.0,
            headers: seen.1,
        }
    }

    /// Takes the next connection and answers its handshake `status`.
    #[allow(clippy::result_large_err)] // tungstenite's callback type
    pub async fn refuse(&self, status: u16) {
        let io = self.io().await;
        let refused = tokio_tungstenite::accept_hdr_async(io, |_: &Request, _: Response| {
            let mut e = ErrorResponse::new(Some("no".into()));
            *e.status_mut() = tokio_tungstenite::tungstenite::http::StatusCode::from_u16(status)
                .expect("a status");
            Err(e)
        })
        .await;
        assert!(refused.is_err());
    }
}

impl BotConn {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The next message from the gateway (5 s at most); None when the
    /// socket closed.
    pub async fn next(&mut self) -> Option<Value> {
        super::within(5, "a message from the gateway", async {
            loop {
                match self.ws.next().await {
                    Some(Ok(Message::Text(t))) => {
                        return Some(serde_json::from_str(&t).expect("JSON from the gateway"));
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
                    Some(Ok(_)) => {}
                }
            }
        })
        .await
    }

    /// The next message whose `event` is `name`, skipping others.
    pub async fn next_event(&mut self, name: &str) -> Value {
        loop {
            let m = self
                .next()
                .await
                .unwrap_or_else(|| panic!("socket closed before a {name}"));
            if m["event"] == name {
                return m;
            }
        }
    }

    /// Reads `connected` and `start`; returns `start`.
    pub async fn started(&mut self) -> Value {
        let first = self.next().await.expect("connected");
        assert_eq!(first["event"], "connected", "{first}");
        let start = self.next().await.expect("start");
        assert_eq!(start["event"], "start", "{start}");
        start
    }

    /// Every message until the socket closes (5 s at most).
    pub async fn until_closed(&mut self) -> Vec<Value> {
        let mut seen = Vec::new();
        while let Some(m) = self.next().await {
            seen.push(m);
        }
        seen
    }

    async fn send(&mut self, v: Value) {
        self.ws
            .send(Message::Text(v.to_string()))
            .await
            .expect("bot sends");
    }

    /// Audio for the caller, μ-law, sent as one `media` message.
    pub async fn media(&mut self, mulaw: &[u8]) {
        let payload = B64.encode(mulaw);
        self.send(json!({"event": "media", "streamSid": "MZ", "media": {"payload": payload}}))
            .await;
    }

    pub async fn mark(&mut self, name: &str) {
        self.send(json!({"event": "mark", "streamSid": "MZ", "mark": {"name": name}}))
            .await;
    }

    pub async fn clear(&mut self) {
        self.send(json!({"event": "clear", "streamSid": "MZ"}))
            .await;
    }

    /// Closes the socket from the bot's side.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while let Some(Ok(_)) = self.ws.next().await {}
        })
        .await;
    }
}

/// The audio bytes of a `media` message.
pub fn payload(m: &Value) -> Vec<u8> {
    B64.decode(m["media"]["payload"].as_str().expect("a payload"))
        .expect("base64")
}
