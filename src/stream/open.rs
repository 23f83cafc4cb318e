//! Opening a stream: the URL's addresses checked against the URL policy
//! (`confine`; the connection goes to the checked ones), TCP, TLS for `wss` (web PKI roots plus `sip.tls_ca`,
//! the same trust as TLS room legs), the WebSocket handshake with the
//! app's headers, then `connected` and `start`. The caller hears music
//! all the while (make before break): only an `Opened` stream is worth
//! switching the caller's audio to.

use super::proto::{Outbox, StartInfo};
use super::target::{StreamUrl, UrlError};
use crate::confine::{UrlPolicy, UrlRefused};
use futures_util::SinkExt;
use rustls_pki_types::ServerName;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};

/// A byte stream a WebSocket runs on: plain TCP, or TLS over it.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

pub(super) type Socket = WebSocketStream<Box<dyn Io>>;

/// Why a stream could not be opened. `status` gives the HTTP status when
/// the bot's server answered the handshake with one.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The URL is not a stream URL (checked earlier; kept for safety).
    #[error("stream URL: {0}")]
    Url(#[from] UrlError),
    /// A handshake header cannot be written.
    #[error("streamHeaders.{0}: cannot be sent")]
    Header(String),
    /// The URL reaches an address API clients may not reach.
    #[error("streamUrl: {0}")]
    Refused(UrlRefused),
    /// Nothing was done in the time the attempt had.
    #[error("no answer from the bot in {0:?}")]
    Timeout(Duration),
    /// TCP connection refused, unreachable, reset.
    #[error("connect: {0}")]
    Connect(std::io::Error),
    /// The TLS handshake failed (certificate not trusted, name mismatch…).
    #[error("TLS: {0}")]
    Tls(std::io::Error),
    /// The server answered the WebSocket handshake with an HTTP status.
    #[error("handshake answered HTTP {0}")]
    Status(u16),
    /// The WebSocket handshake failed otherwise, or `connected`/`start`
    /// could not be sent.
    #[error("WebSocket: {0}")]
    WebSocket(#[from] tungstenite::Error),
}

impl OpenError {
    /// Whether another attempt may work: not with a URL or a header that
    /// cannot be sent at all, nor to an address that is refused (a name
    /// that did not resolve may resolve next time).
    pub fn retryable(&self) -> bool {
        match self {
            OpenError::Url(_) | OpenError::Header(_) => false,
            OpenError::Refused(r) => matches!(r, UrlRefused::Unresolved { .. }),
            _ => true,
        }
    }

    /// The HTTP status of a refused handshake.
    pub fn status(&self) -> Option<u16> {
        match self {
            OpenError::Status(code) => Some(*code),
            _ => None,
        }
    }
}

/// One stream to open.
pub struct OpenRequest {
    /// `ws://` or `wss://`, query included.
    pub url: String,
    /// Sent on the handshake (`Authorization`, …).
    pub headers: Vec<(String, String)>,
    pub start: StartInfo,
    pub tls: TlsConnector,
    /// Which addresses the URL may reach.
    pub urls: UrlPolicy,
    /// For everything up to `start` sent. None: the owner times it (a
    /// call's machine does) and gives up by dropping the future.
    pub timeout: Option<Duration>,
}

/// A stream open and started: `connected` and `start` are sent.
pub struct Opened {
    pub(super) ws: Socket,
    pub(super) outbox: Outbox,
    /// When `start` went: `media` timestamps count from here.
    pub(super) started: Instant,
}

impl std::fmt::Debug for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opened")
            .field("stream_sid", &self.outbox.stream_sid())
            .finish()
    }
}

/// Largest message (and frame) taken from a bot: 256 KiB, some 24 s of
/// audio in one `media`. Bots send chunks of tens of milliseconds; the
/// library's defaults (64 MiB) would let one message cost that much.
pub const MAX_MESSAGE: usize = 256 * 1024;

fn limits() -> WebSocketConfig {
    WebSocketConfig {
        max_message_size: Some(MAX_MESSAGE),
        max_frame_size: Some(MAX_MESSAGE),
        ..WebSocketConfig::default()
    }
}

/// Opens the stream, within `request.timeout` if it has one.
pub async fn open(request: OpenRequest) -> Result<Opened, OpenError> {
    let Some(timeout) = request.timeout else {
        return open_now(request).await;
    };
    match tokio::time::timeout(timeout, open_now(request)).await {
        Ok(result) => result,
        Err(_) => Err(OpenError::Timeout(timeout)),
    }
}

async fn open_now(request: OpenRequest) -> Result<Opened, OpenError> {
    let url = StreamUrl::parse(&request.url)?;
    let host = url.host();
    let addrs = request
        .urls
        .resolve(&host, url.port())
        .await
        .map_err(OpenError::Refused)?;
    let tcp = TcpStream::connect(&addrs[..])
        .await
        .map_err(OpenError::Connect)?;
    // Audio frames are small and paced: Nagle would only delay them.
    let _ = tcp.set_nodelay(true);
    let io: Box<dyn Io> = if url.is_tls() {
        let name = ServerName::try_from(host).map_err(|e| {
            OpenError::Tls(std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
        })?;
        let tls = request
            .tls
            .connect(name, tcp)
            .await
            .map_err(OpenError::Tls)?;
        Box::new(tls)
    } else {
        Box::new(tcp)
    };
    let mut handshake = url.as_str().into_client_request()?;
    for (name, value) in &request.headers {
        let header = HeaderName::from_bytes(name.as_bytes()).ok();
        let value = HeaderValue::from_str(value).ok();
        let (Some(header), Some(value)) = (header, value) else {
            return Err(OpenError::Header(name.clone()));
        };
        handshake.headers_mut().append(header, value);
    }
    let (mut ws, _) =
        match tokio_tungstenite::client_async_with_config(handshake, io, Some(limits())).await {
            Ok(done) => done,
            Err(tungstenite::Error::Http(response)) => {
                return Err(OpenError::Status(response.status().as_u16()));
            }
            Err(e) => return Err(e.into()),
        };
    let stream_sid = format!("MZ{}", uuid::Uuid::new_v4().simple());
    let mut outbox = Outbox::new(stream_sid, request.start.call_sid.clone());
    ws.send(Message::Text(outbox.connected())).await?;
    ws.send(Message::Text(outbox.start(&request.start))).await?;
    Ok(Opened {
        ws,
        outbox,
        started: Instant::now(),
    })
}
