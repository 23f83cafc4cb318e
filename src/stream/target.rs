//! What a stream target may be: a `ws://` or `wss://` URL with a host,
//! and handshake headers HTTP can carry that do not fight the WebSocket
//! handshake itself. Checked when an update or a webhook answer names
//! the stream, so that the app hears of a bad one in its 400.

use url::Url;

/// Why a stream URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// Not a URL at all.
    #[error("not a URL: {0}")]
    Unparsable(String),
    /// Another scheme than ws or wss.
    #[error("must be a ws:// or wss:// URL")]
    Scheme,
    /// No host to connect to.
    #[error("has no host")]
    NoHost,
    /// A fragment is never sent, so it is most likely a mistake.
    #[error("must not have a #fragment")]
    Fragment,
}

/// Why a handshake header is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// The name is not an HTTP token.
    #[error("not a valid HTTP header name")]
    Name,
    /// The value holds a control character (CR and LF included) or
    /// anything beyond ASCII, which HTTP/1.1 headers cannot carry as is.
    #[error("value must be visible text (no control characters)")]
    Value,
    /// A header the WebSocket handshake sets itself.
    #[error("set by the WebSocket handshake itself")]
    Reserved,
}

/// A checked stream URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamUrl(Url);

impl StreamUrl {
    pub fn parse(text: &str) -> Result<StreamUrl, UrlError> {
        let url = Url::parse(text).map_err(|e| UrlError::Unparsable(e.to_string()))?;
        if !matches!(url.scheme(), "ws" | "wss") {
            return Err(UrlError::Scheme);
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(UrlError::NoHost);
        }
        if url.fragment().is_some() {
            return Err(UrlError::Fragment);
        }
        Ok(StreamUrl(url))
    }

    /// The URL as given (query included: it may carry the bot's token).
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    pub fn is_tls(&self) -> bool {
        self.0.scheme() == "wss"
    }

    /// The host to connect to and to check the certificate for: an IPv6
    /// address without the brackets it has in the URL (`[::1]` is no
    /// name to resolve).
    pub fn host(&self) -> String {
        match self.0.host() {
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Domain(name)) => name.to_string(),
            None => String::new(),
        }
    }

    pub fn port(&self) -> u16 {
        self.0
            .port_or_known_default()
            .unwrap_or(if self.is_tls() { 443 } else { 80 })
    }

    /// How events, the timeline and logs name the stream: without its
    /// query or user info, which may hold credentials.
    pub fn shown(&self) -> String {
        let mut url = self.0.clone();
        url.set_query(None);
        let _ = url.set_username("");
        let _ = url.set_password(None);
        url.to_string()
    }
}

/// Headers the handshake writes itself.
const RESERVED: &[&str] = &[
    "host",
    "connection",
    "upgrade",
    "content-length",
    "transfer-encoding",
];

/// Every `Sec-WebSocket-*` header belongs to the handshake (key, version,
/// extensions, protocol): a bot's subprotocol is not negotiated here.
const RESERVED_PREFIX: &str = "sec-websocket-";

/// Whether `name: value` can go on the handshake.
pub fn check_header(name: &str, value: &str) -> Result<(), HeaderError> {
    let token = |c: u8| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c);
    if name.is_empty() || !name.bytes().all(token) {
        return Err(HeaderError::Name);
    }
    // What the handshake's `HeaderValue` takes: visible ASCII, space, tab.
    if !value
        .bytes()
        .all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
    {
        return Err(HeaderError::Value);
    }
    let lower = name.to_ascii_lowercase();
    if RESERVED.contains(&lower.as_str()) || lower.starts_with(RESERVED_PREFIX) {
        return Err(HeaderError::Reserved);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ws_urls_with_a_host() {
        let u = StreamUrl::parse("wss://u:p@bot.example.com/media?token=s3cret").unwrap();
        assert!(u.is_tls());
        assert_eq!(u.port(), 443);
        assert_eq!(u.shown(), "wss://bot.example.com/media");
        assert_eq!(
            StreamUrl::parse("ws://127.0.0.1:8765/ws").unwrap().port(),
            8765
        );
        assert_eq!(
            StreamUrl::parse("https://bot/ws").unwrap_err(),
            UrlError::Scheme
        );
        assert_eq!(
            StreamUrl::parse("wss://bot/ws#x").unwrap_err(),
            UrlError::Fragment
        );
        let v6 = StreamUrl::parse("ws://[::1]:8765/ws").unwrap();
        assert_eq!(v6.host(), "::1");
        assert!(v6.host().parse::<std::net::IpAddr>().is_ok());
        assert_eq!(v6.port(), 8765);
        assert_eq!(
            StreamUrl::parse("wss://Bot.Example/").unwrap().host(),
            "bot.example"
        );
        assert!(matches!(
            StreamUrl::parse("bot"),
            Err(UrlError::Unparsable(_))
        ));
    }

    #[test]
    fn handshake_headers() {
        assert_eq!(check_header("Authorization", "Bearer x"), Ok(()));
        assert_eq!(check_header("X A", "1"), Err(HeaderError::Name));
        assert_eq!(check_header("X-A", "1\r\nY: 2"), Err(HeaderError::Value));
        assert_eq!(check_header("upgrade", "h2"), Err(HeaderError::Reserved));
        assert_eq!(check_header("X-Name", "Zoë"), Err(HeaderError::Value));
        assert_eq!(check_header("X-A", "a\u{7f}"), Err(HeaderError::Value));
        assert_eq!(check_header("X-A", "a\tb ~"), Ok(()));
        for name in [
            "Sec-WebSocket-Protocol",
            "sec-websocket-key",
            "SEC-WEBSOCKET-X",
        ] {
            assert_eq!(
                check_header(name, "v"),
                Err(HeaderError::Reserved),
                "{name}"
            );
        }
        // Whatever passes here, the handshake can send.
        for value in ["Bearer x", "a\tb", " !~"] {
            assert!(tokio_tungstenite::tungstenite::http::HeaderValue::from_str(value).is_ok());
        }
    }
}
