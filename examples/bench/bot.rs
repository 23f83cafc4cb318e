//! `stream` mode's voice bot: a WebSocket server on 127.0.0.1 speaking
//! the bot's side of Twilio Media Streams. It sends each caller's audio
//! back in 100 ms chunks, the way a speech synthesizer sends bursts ahead
//! of real time, so what the caller hears is pinless pacing bot audio.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use futures_util::{SinkExt, StreamExt};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;

/// 100 ms of μ-law at 8 kHz: the chunk the bot answers with.
const CHUNK: usize = 800;

/// A running bot; stops with the runtime it was started on.
pub struct EchoBot {
    pub addr: SocketAddr,
    started: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
}

impl EchoBot {
    /// Listens on a free loopback port.
    pub async fn start() -> std::io::Result<EchoBot> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let started = Arc::new(AtomicUsize::new(0));
        let failed = Arc::new(AtomicUsize::new(0));
        tokio::spawn(serve(listener, started.clone(), failed.clone()));
        Ok(EchoBot {
            addr,
            started,
            failed,
        })
    }

    /// Streams whose `start` has arrived.
    pub fn started(&self) -> usize {
        self.started.load(Ordering::Relaxed)
    }

    /// Streams that ended on an error (a bad handshake or message).
    pub fn failed(&self) -> usize {
        self.failed.load(Ordering::Relaxed)
    }
}

async fn serve(listener: TcpListener, started: Arc<AtomicUsize>, failed: Arc<AtomicUsize>) {
    while let Ok((tcp, _)) = listener.accept().await {
        let (started, failed) = (started.clone(), failed.clone());
        tokio::spawn(async move {
            if let Err(e) = call(tcp, &started).await {
                failed.fetch_add(1, Ordering::Relaxed);
                eprintln!("bench bot: {e}");
            }
        });
    }
}

/// One stream, from the handshake to `stop` or the socket closing.
async fn call(tcp: TcpStream, started: &AtomicUsize) -> Result<(), String> {
    let _ = tcp.set_nodelay(true);
    let mut ws = tokio_tungstenite::accept_async(tcp)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let mut stream_sid = String::new();
    let mut pending = Vec::with_capacity(CHUNK);
    while let Some(frame) = ws.next().await {
        let text = match frame.map_err(|e| e.to_string())? {
            Message::Text(text) => text,
            Message::Close(_) => break,
            _ => continue,
        };
        let msg: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
        match msg["event"].as_str() {
            Some("start") => {
                stream_sid = msg["streamSid"].as_str().unwrap_or_default().to_string();
                started.fetch_add(1, Ordering::Relaxed);
            }
            Some("media") => {
                let payload = msg["media"]["payload"].as_str().unwrap_or_default();
                let audio = B64.decode(payload).map_err(|e| e.to_string())?;
                pending.extend_from_slice(&audio);
                if pending.len() >= CHUNK {
                    let reply = serde_json::json!({
                        "event": "media",
                        "streamSid": stream_sid,
                        "media": { "payload": B64.encode(&pending) },
                    });
                    pending.clear();
                    ws.send(Message::Text(reply.to_string()))
                        .await
                        .map_err(|e| e.to_string())?;
                }
            }
            Some("stop") => break,
            _ => {}
        }
    }
    Ok(())
}
