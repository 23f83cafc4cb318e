//! Where a transfer goes, read from JSON: the `sipUri` / `sipUris`,
//! `headers`, `mode` and `mediaEncryption` fields that both `pinlessCallUpdate` and the
//! incoming-call webhook's answer carry. One reader for both, so that a
//! route the API accepts is a route the webhook answer accepts, with the
//! same error texts.

use super::plan::{Mode, TransferRequest};
use crate::config::MediaEncryption;
use crate::sip::headers::{self, HeaderError};
use serde_json::{Map, Value};
use std::borrow::Cow;

/// Longest `sipUris` list accepted.
pub const MAX_TARGETS: usize = 10;

/// One route field that is wrong, and why: `{field}: {reason}`.
#[derive(Debug, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct RouteError {
    /// The field as the client spells it: `sipUris[1]`, `headers.X-A`.
    pub field: String,
    pub reason: RouteReason,
}

/// What is wrong with a route field.
#[derive(Debug, thiserror::Error)]
pub enum RouteReason {
    /// A rule the value breaks, in words.
    #[error("{0}")]
    Rule(Cow<'static, str>),
    /// A header the app asked for cannot be sent.
    #[error(transparent)]
    Header(HeaderError),
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

/// Whether `obj` names a target at all (`sipUri` or `sipUris`).
pub fn has_target(obj: &Map<String, Value>) -> bool {
    obj.contains_key("sipUri") || obj.contains_key("sipUris")
}

/// The transfer `obj` asks for; the error names the field.
pub fn transfer(obj: &Map<String, Value>) -> Result<TransferRequest, RouteError> {
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
    Ok(TransferRequest {
        targets,
        headers: extra,
        mode,
        media_encryption,
    })
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
