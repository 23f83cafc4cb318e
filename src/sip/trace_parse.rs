//! Reading a captured SIP message for the ladder (`GET /v1/calls/{id}/sip`):
//! raw bytes in, start line + headers + bounded body out, with secrets
//! masked. Sans-IO and done at read time, so the call path only stores
//! bytes. A leaf of `sip`.
//!
//! What is masked, and why:
//! - `Authorization` / `Proxy-Authorization`: only the scheme and the
//!   `username`, `realm`, `uri`, `algorithm` and `qop` parameters are kept;
//!   the response, nonce, cnonce, nc and opaque (what could be replayed or
//!   attacked offline) become `<credentials masked>`. A scheme other than
//!   Digest keeps its name only.
//! - `WWW-Authenticate` / `Proxy-Authenticate` / `Authentication-Info`:
//!   the same rule, so the nonce a challenge handed out never shows.
//! - SDP `a=crypto:` lines (SDES SRTP keys): the `inline:` key material.
//!
//! Header names are shown as they were on the wire (compact forms too);
//! folded header lines (RFC 3261 §7.3.1 continuation lines) are joined.

/// A message as the ladder shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// `INVITE sip:… SIP/2.0` or `SIP/2.0 200 OK`.
    pub start_line: String,
    /// (name, value) in wire order, secrets masked.
    pub headers: Vec<(String, String)>,
    /// The body (lossy UTF-8), at most `max_body` bytes of it.
    pub body: String,
    /// The body was longer than `max_body` (or the message was cut when
    /// it was captured).
    pub body_truncated: bool,
}

/// What replaces credentials in an authorization header.
pub const MASKED: &str = "<credentials masked>";

/// Parameters of a digest header that are safe to show.
const SAFE_PARAMS: &[&str] = &[
    "username",
    "realm",
    "uri",
    "algorithm",
    "qop",
    "stale",
    "domain",
];

/// Splits `raw` into start line, headers and body; `cut` says the capture
/// kept only a prefix of the message.
pub fn parse(raw: &[u8], max_body: usize, cut: bool) -> Parsed {
    let (head, body) = split_head(raw);
    let head = String::from_utf8_lossy(head);
    let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let start_line = lines.next().unwrap_or_default().to_string();
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in lines {
        if line.is_empty() {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            // A continuation of the previous header's value.
            if let Some((_, value)) = headers.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
            continue;
        }
        let (name, value) = match line.split_once(':') {
            Some((n, v)) => (n.trim(), v.trim()),
            None => (line.trim(), ""),
        };
        headers.push((name.to_string(), value.to_string()));
    }
    for (name, value) in &mut headers {
        if is_auth_header(name) {
            *value = mask_auth(value);
        }
    }
    let keep = body.len().min(max_body);
    let mut text = String::from_utf8_lossy(&body[..keep]).into_owned();
    if text.to_ascii_lowercase().contains("a=crypto:") {
        text = mask_crypto(&text);
    }
    Parsed {
        start_line,
        headers,
        body: text,
        body_truncated: body.len() > max_body || (cut && !body.is_empty()),
    }
}

/// Head (start line and headers) and body, split at the first empty line.
/// A message without one (cut short) is all head.
fn split_head(raw: &[u8]) -> (&[u8], &[u8]) {
    if let Some(i) = find(raw, b"\r\n\r\n") {
        return (&raw[..i], &raw[i + 4..]);
    }
    if let Some(i) = find(raw, b"\n\n") {
        return (&raw[..i], &raw[i + 2..]);
    }
    (raw, &[])
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn is_auth_header(name: &str) -> bool {
    [
        "authorization",
        "proxy-authorization",
        "www-authenticate",
        "proxy-authenticate",
        "authentication-info",
        "proxy-authentication-info",
    ]
    .iter()
    .any(|h| name.eq_ignore_ascii_case(h))
}

/// `Digest username="joe", realm="r", response="…", nonce="…"` →
/// `Digest username="joe", realm="r", <credentials masked>`.
pub fn mask_auth(value: &str) -> String {
    let value = value.trim();
    // Authentication-Info has no scheme: it starts with a parameter.
    let (scheme, params) = match value.split_once([' ', '\t']) {
        Some((s, rest)) if !s.contains('=') => (Some(s), rest),
        _ if !value.contains('=') => (Some(value), ""),
        _ => (None, value),
    };
    let digest = scheme.is_none_or(|s| s.eq_ignore_ascii_case("digest"));
    let mut kept = Vec::new();
    let mut masked = false;
    if digest {
        for param in split_params(params) {
            let name = param.split('=').next().unwrap_or_default().trim();
            if SAFE_PARAMS.iter().any(|s| name.eq_ignore_ascii_case(s)) {
                kept.push(param.trim());
            } else if !param.trim().is_empty() {
                masked = true;
            }
        }
    } else {
        masked = !params.trim().is_empty();
    }
    if masked {
        kept.push(MASKED);
    }
    let params = kept.join(", ");
    match (scheme, params.is_empty()) {
        (Some(s), true) => s.to_string(),
        (Some(s), false) => format!("{s} {params}"),
        (None, _) => params,
    }
}

/// Comma-separated parameters, commas inside quoted strings kept.
fn split_params(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&text[start..]);
    out
}

/// `a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:KEY|2^20|1:32` → the key
/// material (everything after `inline:` up to the next space) masked.
fn mask_crypto(body: &str) -> String {
    let mut out = String::with_capacity(body.len());
    for line in body.split_inclusive('\n') {
        // Peers may write `INLINE:` (the key method is matched without
        // regard to case), so is it found here; ASCII lowercasing keeps
        // every byte where it was.
        let lower = line.to_ascii_lowercase();
        if !lower.trim_start().starts_with("a=crypto:") {
            out.push_str(line);
            continue;
        }
        let mut at = 0;
        while let Some(i) = lower[at..].find("inline:") {
            let key_at = at + i + "inline:".len();
            out.push_str(&line[at..key_at]);
            out.push_str("<masked>");
            let after = &line[key_at..];
            at = key_at + after.find([' ', '\r', '\n', ';']).unwrap_or(after.len());
        }
        out.push_str(&line[at..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_line_headers_and_body() {
        let raw = b"INVITE sip:support@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK1\r\nSubject: a\r\n long\r\n\tline\r\ni: abc\r\nContent-Length: 4\r\n\r\nv=0\n";
        let p = parse(raw, 4096, false);
        assert_eq!(p.start_line, "INVITE sip:support@127.0.0.1 SIP/2.0");
        assert_eq!(
            p.headers,
            vec![
                (
                    "Via".into(),
                    "SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK1".into()
                ),
                ("Subject".into(), "a long line".into()),
                ("i".into(), "abc".into()),
                ("Content-Length".into(), "4".into()),
            ]
        );
        assert_eq!(p.body, "v=0\n");
        assert!(!p.body_truncated);
    }

    #[test]
    fn body_is_bounded() {
        let mut raw = b"SIP/2.0 200 OK\r\nCSeq: 1 INVITE\r\n\r\n".to_vec();
        raw.extend(std::iter::repeat_n(b'x', 5000));
        let p = parse(&raw, 4096, false);
        assert_eq!(p.start_line, "SIP/2.0 200 OK");
        assert_eq!(p.body.len(), 4096);
        assert!(p.body_truncated);
        // Cut at capture: flagged even when what is left fits.
        let p = parse(b"SIP/2.0 200 OK\r\n\r\nabc", 4096, true);
        assert!(p.body_truncated);
        // A message cut inside its head is all head.
        let p = parse(b"SIP/2.0 200 OK\r\nVia: x", 4096, true);
        assert_eq!(p.headers, vec![("Via".into(), "x".into())]);
        assert!(!p.body_truncated);
    }

    #[test]
    fn digest_credentials_are_masked() {
        let raw = b"INVITE sip:a@b SIP/2.0\r\nProxy-Authorization: Digest username=\"joe\", realm=\"pin,less\", nonce=\"N0NCE\", uri=\"sip:a@b\", response=\"RESP\", algorithm=MD5, cnonce=\"CN\", qop=auth, nc=00000001\r\nauthorization: Basic am9lOnNlY3JldA==\r\n\r\n";
        let p = parse(raw, 4096, false);
        assert_eq!(
            p.headers[0].1,
            "Digest username=\"joe\", realm=\"pin,less\", uri=\"sip:a@b\", algorithm=MD5, qop=auth, <credentials masked>"
        );
        assert_eq!(p.headers[1].1, "Basic <credentials masked>");
        let all = format!("{p:?}");
        for secret in ["N0NCE", "RESP", "CN", "am9lOnNlY3JldA"] {
            assert!(!all.contains(secret), "{secret} shown: {all}");
        }
    }

    #[test]
    fn challenges_hide_their_nonce() {
        assert_eq!(
            mask_auth("Digest realm=\"pinless\", nonce=\"abc\", algorithm=MD5, qop=\"auth\""),
            "Digest realm=\"pinless\", algorithm=MD5, qop=\"auth\", <credentials masked>"
        );
        assert_eq!(
            mask_auth("nextnonce=\"x\", qop=auth, rspauth=\"y\""),
            "qop=auth, <credentials masked>"
        );
        assert_eq!(mask_auth("Digest"), "Digest");
    }

    #[test]
    fn srtp_keys_are_masked() {
        let raw = b"SIP/2.0 200 OK\r\n\r\nv=0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:32\r\na=sendrecv\r\n";
        let p = parse(raw, 4096, false);
        assert_eq!(
            p.body,
            "v=0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:<masked>\r\na=sendrecv\r\n"
        );
        let raw = b"SIP/2.0 200 OK\r\n\r\nA=CRYPTO:1 AES_CM_128_HMAC_SHA1_80 INLINE:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz;Inline:c2Vjb25k\r\n";
        let p = parse(raw, 4096, false);
        assert_eq!(
            p.body,
            "A=CRYPTO:1 AES_CM_128_HMAC_SHA1_80 INLINE:<masked>;Inline:<masked>\r\n"
        );
    }
}
