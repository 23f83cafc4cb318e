//! The syntax of values that config keys share with the layers that use
//! them: the user part of a SIP URI, the names of custom SIP headers,
//! base64 webhook secrets, CIDR ranges. One implementation each, here at the bottom of
//! the layer order, so that validation needs no other layer and `sip` and
//! `webhook` re-export these rather than keep copies of their own.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// The user part of a `sip:` / `sips:` URI string (`support` in
/// `sip:support@host`), or `None` if it has none.
pub fn uri_user(uri: &str) -> Option<&str> {
    let rest = uri
        .strip_prefix("sip:")
        .or_else(|| uri.strip_prefix("sips:"))?;
    let (user, host) = rest.split_once('@')?;
    let user = user.split(';').next().unwrap_or(user);
    if user.is_empty() || host.is_empty() {
        None
    } else {
        Some(user)
    }
}

/// True for a URI pinless can dial: `sip:`/`sips:` with a user part, and
/// one the SIP stack parses (the one check for the update API, the
/// webhook's answer, `timeout_sip_uri` and `dtmf_transfer`).
pub fn dialable(uri: &str) -> bool {
    uri_user(uri).is_some() && uri.parse::<ezk_sip_types::uri::SipUri>().is_ok()
}

/// True for headers that pinless carries: `X-…` and `User-to-User`.
pub fn is_custom_header(name: &str) -> bool {
    // Bytes, not a str slice: a name may start with a multi-byte character
    // (found by the fuzz target: slicing it at 2 panicked).
    let b = name.as_bytes();
    b.len() > 2 && b[..2].eq_ignore_ascii_case(b"x-") || name.eq_ignore_ascii_case("user-to-user")
}

/// Why an app-supplied header cannot be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// Neither `X-…` nor `User-to-User`.
    #[error("only X- headers and User-to-User may be set")]
    NotCustom,
    /// The name has characters a SIP token may not have.
    #[error("the name must be a SIP token")]
    BadName,
    /// Too long, or not one line of printable text (header injection).
    #[error("the value must be one line of printable text, at most 1024 bytes")]
    BadValue,
}

/// Checks a header an app (or a `header_policy.rename` target) asks us to
/// add to an INVITE.
pub fn check_custom_header(name: &str, value: &str) -> Result<(), HeaderError> {
    if !is_custom_header(name) {
        return Err(HeaderError::NotCustom);
    }
    let token = |c: char| c.is_ascii_alphanumeric() || "-.!%*_+`'~".contains(c);
    if !name.chars().all(token) {
        return Err(HeaderError::BadName);
    }
    if value.len() > 1024 || value.chars().any(|c| c.is_control() && c != '\t') {
        return Err(HeaderError::BadValue);
    }
    Ok(())
}

/// Why a secret's text is not a usable key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadSecret {
    /// Not standard base64.
    #[error("not valid base64 ({0})")]
    NotBase64(#[source] base64::DecodeError),
    /// Too short to sign with.
    #[error("decodes to {len} bytes; at least {MIN_SECRET_BYTES} are needed")]
    TooShort { len: usize },
}

/// The shortest key accepted, in bytes.
pub const MIN_SECRET_BYTES: usize = 16;

/// Decodes a base64 secret (standard alphabet; a `whsec_` prefix, as
/// Standard Webhooks libraries print it, is accepted). Needs ≥ 16 bytes.
pub fn parse_secret(text: &str) -> Result<Vec<u8>, BadSecret> {
    let text = text.trim();
    let text = text.strip_prefix("whsec_").unwrap_or(text);
    let key = STANDARD.decode(text).map_err(BadSecret::NotBase64)?;
    if key.len() < MIN_SECRET_BYTES {
        return Err(BadSecret::TooShort { len: key.len() });
    }
    Ok(key)
}

/// `parse_secret` with its reason as text, for messages that name a key.
pub fn decode_secret(text: &str) -> Result<Vec<u8>, String> {
    parse_secret(text).map_err(|e| e.to_string())
}

/// Parses `203.0.113.0/24` (or a bare address, as a single host) into a
/// network address and prefix length. Enforced by the security issue; parsed
/// now so that a typo fails at start-up.
pub fn parse_cidr(text: &str) -> Option<(std::net::IpAddr, u8)> {
    let (addr, len) = match text.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (text, None),
    };
    let addr: std::net::IpAddr = addr.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let len = match len {
        Some(l) => l.parse::<u8>().ok().filter(|l| *l <= max)?,
        None => max,
    };
    Some((addr, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_user_parts() {
        assert_eq!(uri_user("sip:support@127.0.0.1"), Some("support"));
        assert_eq!(uri_user("sips:+1555@h;transport=tls"), Some("+1555"));
        assert_eq!(uri_user("sip:127.0.0.1"), None);
        assert_eq!(uri_user("tel:+1555"), None);
    }
}
