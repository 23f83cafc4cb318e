//! Where a transfer goes, read from JSON: the `sipUri` / `sipUris`,
//! `headers`, `mode`, `mediaEncryption` and `record` fields that both
//! `pinlessCallUpdate` and the incoming-call webhook's answer carry, or a
//! voice bot's `streamUrl` with its `streamParameters` and
//! `streamHeaders`. One reader for both, so that a route the API accepts
//! is a route the webhook answer accepts, with the same error texts.

use crate::call::machine::plan::{Mode, StreamTarget, TransferRequest};
use crate::config::MediaEncryption;
use crate::sip::headers::{self, HeaderError};
use crate::stream::{self, StreamUrl};
use serde_json::{Map, Value};
use std::borrow::Cow;

/// Longest `sipUris` list accepted.
pub const MAX_TARGETS: usize = 10;
/// The fields of a route to a voice bot.
pub const STREAM_FIELDS: [&str; 3] = ["streamUrl", "streamParameters", "streamHeaders"];
/// Most `streamParameters` (and `streamHeaders`) accepted, and the longest
/// name or value of one, in bytes: they travel in every `start` message.
pub const MAX_STREAM_FIELDS: usize = 32;
pub const MAX_STREAM_FIELD_BYTES: usize = 1024;

/// One route field that is wrong, and why: `{field}: {reason}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct RouteError {
    /// The field as the client spells it: `sipUris[1]`, `headers.X-A`.
    pub field: String,
    pub reason: RouteReason,
}

/// What is wrong with a route field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteReason {
    /// A rule the value breaks, in words.
    #[error("{0}")]
    Rule(Cow<'static, str>),
    /// A header the app asked for cannot be sent.
    #[error(transparent)]
    Header(HeaderError),
    /// The stream URL is not one pinless can open.
    #[error(transparent)]
    StreamUrl(stream::UrlError),
    /// A `streamHeaders` entry cannot go on the WebSocket handshake.
    #[error(transparent)]
    StreamHeader(stream::HeaderError),
}

impl RouteError {
    fn rule(field: impl Into<String>, reason: impl Into<Cow<'static, str>>) -> Self {
        RouteError {
            field: field.into(),
            reason: RouteReason::Rule(reason.into()),
        }
    }
}

/// A non-empty string field, trimmed. Shared with the API's own fields
/// (`callId`, `callDomain`) so they read alike.
pub fn string(name: &str, v: Option<&Value>) -> Result<String, RouteError> {
    match v {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.trim().to_string()),
        Some(Value::String(_)) => Err(RouteError::rule(name, "must not be empty")),
        Some(_) => Err(RouteError::rule(name, "must be a string")),
        None => Err(RouteError::rule(name, "required")),
    }
}

/// Whether `obj` names a target at all (`sipUri`, `sipUris` or `streamUrl`).
pub fn has_target(obj: &Map<String, Value>) -> bool {
    obj.contains_key("sipUri") || obj.contains_key("sipUris") || obj.contains_key("streamUrl")
}

/// The transfer `obj` asks for; the error names the field.
pub fn transfer(obj: &Map<String, Value>) -> Result<TransferRequest, RouteError> {
    let record = match obj.get("record") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => return Err(RouteError::rule("record", "must be true or false")),
    };
    let mut request = targets(obj)?;
    request.record = record;
    Ok(request)
}

/// The transfer's targets and how they are reached (a room or a bot).
fn targets(obj: &Map<String, Value>) -> Result<TransferRequest, RouteError> {
    if obj.contains_key("streamUrl") {
        return stream_transfer(obj);
    }
    for field in ["streamParameters", "streamHeaders"] {
        if obj.contains_key(field) {
            return Err(RouteError::rule(field, "only goes with streamUrl"));
        }
    }
    let targets = match (obj.get("sipUri"), obj.get("sipUris")) {
        (Some(_), Some(_)) => {
            return Err(RouteError::rule(
                "sipUris",
                "give sipUri or sipUris, not both",
            ));
        }
        (None, None) => {
            return Err(RouteError::rule("sipUri", "required (or sipUris, a list)"));
        }
        (Some(one), None) => vec![string("sipUri", Some(one))?],
        (None, Some(Value::Array(list))) if !list.is_empty() && list.len() <= MAX_TARGETS => list
            .iter()
            .enumerate()
            .map(|(i, v)| string(&format!("sipUris[{i}]"), Some(v)))
            .collect::<Result<Vec<_>, _>>()?,
        (None, Some(_)) => {
            return Err(RouteError::rule(
                "sipUris",
                format!("must be a list of 1 to {MAX_TARGETS} SIP URIs"),
            ));
        }
    };
    for (i, uri) in targets.iter().enumerate() {
        if !crate::config::syntax::dialable(uri) {
            let field = if obj.contains_key("sipUri") {
                "sipUri".to_string()
            } else {
                format!("sipUris[{i}]")
            };
            return Err(RouteError::rule(
                field,
                "must be a sip: or sips: URI with a user part, like sip:room@host",
            ));
        }
    }
    let mode = match obj.get("mode") {
        None | Some(Value::Null) => Mode::Bridge,
        Some(Value::String(m)) if m == "bridge" => Mode::Bridge,
        Some(Value::String(m)) if m == "refer" => Mode::Refer,
        Some(_) => return Err(RouteError::rule("mode", "must be \"bridge\" or \"refer\"")),
    };
    let mut extra = Vec::new();
    match obj.get("headers") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (name, value) in map {
                let field = || format!("headers.{name}");
                let Value::String(value) = value else {
                    return Err(RouteError::rule(field(), "must be a string"));
                };
                headers::check(name, value).map_err(|e| RouteError {
                    field: field(),
                    reason: RouteReason::Header(e),
                })?;
                extra.push((name.clone(), value.clone()));
            }
        }
        Some(_) => return Err(RouteError::rule("headers", "must be an object of strings")),
    }
    let media_encryption = media_encryption(obj.get("mediaEncryption"), &targets)?;
    // REFER hands the caller to the room: the media is theirs, not ours
    // to encrypt, so "require" could only be silently ignored.
    if mode == Mode::Refer && media_encryption == Some(MediaEncryption::Require) {
        return Err(RouteError::rule(
            "mediaEncryption",
            "\"require\" needs mode \"bridge\" (after a REFER the media is not ours)",
        ));
    }
    Ok(TransferRequest {
        targets,
        headers: extra,
        mode,
        stream: None,
        media_encryption,
        record: None,
    })
}

/// A transfer to a voice bot: `streamUrl`, with optional
/// `streamParameters` and `streamHeaders`.
fn stream_transfer(obj: &Map<String, Value>) -> Result<TransferRequest, RouteError> {
    if obj.contains_key("sipUri") || obj.contains_key("sipUris") {
        return Err(RouteError::rule(
            "streamUrl",
            "give sipUri, sipUris or streamUrl, not several",
        ));
    }
    let text = string("streamUrl", obj.get("streamUrl"))?;
    let url = StreamUrl::parse(&text).map_err(|e| RouteError {
        field: "streamUrl".into(),
        reason: RouteReason::StreamUrl(e),
    })?;
    match obj.get("mode") {
        None | Some(Value::Null) => {}
        Some(Value::String(m)) if m == "bridge" => {}
        Some(_) => {
            return Err(RouteError::rule(
                "mode",
                "only \"bridge\" goes with streamUrl",
            ));
        }
    }
    if obj.get("headers").is_some_and(|h| !h.is_null()) {
        return Err(RouteError::rule(
            "headers",
            "SIP headers do not go to a stream: use streamHeaders (handshake) or streamParameters",
        ));
    }
    let parameters = string_map(obj, "streamParameters", |_, _| Ok(()))?;
    let stream_headers = string_map(obj, "streamHeaders", |name, value| {
        stream::check_header(name, value).map_err(RouteReason::StreamHeader)
    })?;
    Ok(TransferRequest {
        targets: vec![url.shown()],
        headers: vec![],
        mode: Mode::Bridge,
        stream: Some(Box::new(StreamTarget {
            url: url.as_str().to_string(),
            parameters,
            headers: stream_headers,
            restored: false,
        })),
        media_encryption: None,
        record: None,
    })
}

/// An optional object of strings, in the order given; `check` vets each
/// entry. The error names the entry (`streamHeaders.Authorization`).
fn string_map(
    obj: &Map<String, Value>,
    field: &str,
    check: impl Fn(&str, &str) -> Result<(), RouteReason>,
) -> Result<Vec<(String, String)>, RouteError> {
    let map = match obj.get(field) {
        None | Some(Value::Null) => return Ok(vec![]),
        Some(Value::Object(map)) if map.len() <= MAX_STREAM_FIELDS => map,
        Some(Value::Object(_)) => {
            return Err(RouteError::rule(
                field,
                format!("at most {MAX_STREAM_FIELDS} entries"),
            ));
        }
        Some(_) => return Err(RouteError::rule(field, "must be an object of strings")),
    };
    let mut out = Vec::with_capacity(map.len());
    for (name, value) in map {
        let entry = || format!("{field}.{name}");
        let Value::String(value) = value else {
            return Err(RouteError::rule(entry(), "must be a string"));
        };
        if name.is_empty() || name.len() > MAX_STREAM_FIELD_BYTES {
            return Err(RouteError::rule(
                entry(),
                format!("name must be 1 to {MAX_STREAM_FIELD_BYTES} bytes"),
            ));
        }
        if value.len() > MAX_STREAM_FIELD_BYTES {
            return Err(RouteError::rule(
                entry(),
                format!("longer than {MAX_STREAM_FIELD_BYTES} bytes"),
            ));
        }
        check(name, value).map_err(|reason| RouteError {
            field: entry(),
            reason,
        })?;
        out.push((name.clone(), value.clone()));
    }
    Ok(out)
}

/// The `mediaEncryption` field: `"require"` (SRTP on the room leg, so
/// every target must be reached over TLS: a `sips:` URI or
/// `;transport=tls`, as SDES keys travel in the SDP) or `"disable"` (the
/// default: SRTP for `sips:` URIs only).
fn media_encryption(
    v: Option<&Value>,
    targets: &[String],
) -> Result<Option<MediaEncryption>, RouteError> {
    const FIELD: &str = "mediaEncryption";
    let wanted = match v {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) if s == "require" => MediaEncryption::Require,
        Some(Value::String(s)) if s == "disable" => MediaEncryption::Disable,
        Some(_) => {
            return Err(RouteError::rule(
                FIELD,
                "must be \"require\" or \"disable\"",
            ));
        }
    };
    if wanted == MediaEncryption::Require
        && !targets
            .iter()
            .all(|t| crate::config::syntax::dialable(t) && over_tls(t))
    {
        return Err(RouteError::rule(
            FIELD,
            "\"require\" needs sips: URIs or ;transport=tls (SRTP keys travel only over TLS)",
        ));
    }
    Ok(Some(wanted))
}

/// Whether a target is reached over TLS.
fn over_tls(uri: &str) -> bool {
    let lower = uri.to_ascii_lowercase();
    lower.starts_with("sips:") || lower.contains(";transport=tls")
}

/// What the incoming-call webhook's 2xx answer says about the call.
#[derive(Debug)]
pub enum WebhookAnswer {
    /// No route in it (no body, `{}`, not JSON, `{"status":"OK"}`…): the
    /// caller stays on hold until an update comes, as with Daily.
    Hold,
    /// Transfer the caller now, as `pinlessCallUpdate` would.
    Route(TransferRequest),
    /// It names a target, but a field is wrong: the caller stays on hold
    /// and the timeline says why.
    Unusable(RouteError),
}

/// Reads the body of the incoming-call webhook's 2xx answer. Fields other
/// than the route's are ignored: apps answer with all sorts of things.
pub fn webhook_answer(body: &[u8]) -> WebhookAnswer {
    let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(body) else {
        return WebhookAnswer::Hold;
    };
    if !has_target(&obj) {
        return WebhookAnswer::Hold;
    }
    match transfer(&obj) {
        Ok(request) => WebhookAnswer::Route(request),
        Err(e) => WebhookAnswer::Unusable(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_named_target_routes() {
        for body in [
            &b""[..],
            b"{}",
            b"not json",
            br#"{"status":"OK"}"#,
            b"[1]",
            b"null",
        ] {
            assert!(
                matches!(webhook_answer(body), WebhookAnswer::Hold),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        let WebhookAnswer::Route(r) = webhook_answer(
            br#"{"status":"OK","sipUris":["sip:a@h","sip:b@h"],"headers":{"X-A":"1"},"mode":"refer"}"#,
        ) else {
            panic!("no route");
        };
        assert_eq!(r.targets, ["sip:a@h", "sip:b@h"]);
        assert_eq!(r.headers, vec![("X-A".to_string(), "1".to_string())]);
        assert_eq!(r.mode, Mode::Refer);
        let WebhookAnswer::Unusable(e) = webhook_answer(br#"{"sipUri":"http://x"}"#) else {
            panic!("accepted a bad URI");
        };
        assert!(e.to_string().starts_with("sipUri: must be a sip:"), "{e}");
        let WebhookAnswer::Route(r) =
            webhook_answer(br#"{"streamUrl":"wss://bot/ws?t=1","streamParameters":{"a":"b"}}"#)
        else {
            panic!("no stream route");
        };
        assert_eq!(r.targets, ["wss://bot/ws"]);
        assert_eq!(r.stream.unwrap().url, "wss://bot/ws?t=1");
    }

    fn err(body: serde_json::Value) -> String {
        let Value::Object(obj) = body else {
            panic!("not an object")
        };
        transfer(&obj).unwrap_err().to_string()
    }

    #[test]
    fn stream_fields_are_checked_and_named() {
        use serde_json::json;
        let Value::Object(ok) = json!({
            "streamUrl": "ws://127.0.0.1:9/bot",
            "streamParameters": {"lang": "de"},
            "streamHeaders": {"Authorization": "Bearer t"},
        }) else {
            unreachable!()
        };
        let r = transfer(&ok).unwrap();
        let s = r.stream.unwrap();
        assert_eq!(s.parameters, [("lang".to_string(), "de".to_string())]);
        assert_eq!(s.headers[0].0, "Authorization");
        assert_eq!(
            err(json!({"streamUrl": "http://bot/ws"})),
            "streamUrl: must be a ws:// or wss:// URL"
        );
        assert_eq!(
            err(json!({"streamUrl": "ws://b/", "sipUri": "sip:a@b"})),
            "streamUrl: give sipUri, sipUris or streamUrl, not several"
        );
        assert_eq!(
            err(json!({"streamUrl": "ws://b/", "streamParameters": ["x"]})),
            "streamParameters: must be an object of strings"
        );
        assert_eq!(
            err(json!({"streamUrl": "ws://b/", "streamParameters": {"n": 1}})),
            "streamParameters.n: must be a string"
        );
        assert_eq!(
            err(json!({"streamUrl": "ws://b/", "streamHeaders": {"X-A": "1\r\n2"}})),
            "streamHeaders.X-A: value must be visible text (no control characters)"
        );
        assert_eq!(
            err(json!({"streamUrl": "ws://b/", "streamHeaders": {"Upgrade": "x"}})),
            "streamHeaders.Upgrade: set by the WebSocket handshake itself"
        );
        assert_eq!(
            err(json!({"streamUrl": "ws://b/", "mode": "refer"})),
            "mode: only \"bridge\" goes with streamUrl"
        );
        assert_eq!(
            err(json!({"sipUri": "sip:a@b", "streamHeaders": {}})),
            "streamHeaders: only goes with streamUrl"
        );
    }

    #[test]
    fn media_encryption_require_needs_tls_targets() {
        let route = |body: &str| match webhook_answer(body.as_bytes()) {
            WebhookAnswer::Route(r) => Ok(r.media_encryption),
            WebhookAnswer::Unusable(e) => Err(e.to_string()),
            WebhookAnswer::Hold => Err("hold".into()),
        };
        assert_eq!(route(r#"{"sipUri":"sip:a@h"}"#), Ok(None));
        assert_eq!(
            route(r#"{"sipUri":"sips:a@h","mediaEncryption":"require"}"#),
            Ok(Some(MediaEncryption::Require))
        );
        assert_eq!(
            route(r#"{"sipUri":"sip:a@h;transport=TLS","mediaEncryption":"require"}"#),
            Ok(Some(MediaEncryption::Require))
        );
        assert_eq!(
            route(r#"{"sipUri":"sip:a@h","mediaEncryption":"disable"}"#),
            Ok(Some(MediaEncryption::Disable))
        );
        let refer = route(r#"{"sipUri":"sips:a@h","mode":"refer","mediaEncryption":"require"}"#);
        assert!(
            matches!(&refer, Err(e) if e.to_string().contains("mediaEncryption")),
            "{refer:?}"
        );
        let e = route(r#"{"sipUris":["sips:a@h","sip:b@h"],"mediaEncryption":"require"}"#);
        assert!(
            e.unwrap_err()
                .starts_with("mediaEncryption: \"require\" needs sips:")
        );
        let e = route(r#"{"sipUri":"sip:a@h","mediaEncryption":"allow"}"#);
        assert_eq!(
            e,
            Err("mediaEncryption: must be \"require\" or \"disable\"".into())
        );
    }
}
