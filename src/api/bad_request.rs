//! Why a request's body, query or header was refused (400). The Display
//! text is the `"error"` the client reads, so it names what to fix: the
//! field first (`sipUris[1]: …`, `since: …`, `config.phone_number: …`).

use crate::call::machine::route::{RouteError, RouteReason};
use crate::config::ConfigError;
use crate::sip::headers::HeaderError;
use std::borrow::Cow;

/// A malformed request.
#[derive(Debug, thiserror::Error)]
pub enum BadRequest {
    /// The body is not JSON at all.
    #[error("body is not valid JSON: {0}")]
    NotJson(#[source] serde_json::Error),
    /// The body is JSON, but not an object.
    #[error("body must be a JSON object")]
    NotObject,
    /// One field is wrong; the text starts with its name.
    #[error(transparent)]
    Field(#[from] FieldError),
    /// A dial-in entry breaks a rule of the config that names no single
    /// field, in the config's own words.
    #[error(transparent)]
    Config(ConfigError),
}

/// One field that is wrong, and why: `{field}: {reason}`.
#[derive(Debug, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct FieldError {
    /// The field as the client spells it: `sipUris[1]`, `headers.X-A`.
    pub field: String,
    pub reason: Reason,
}

/// What is wrong with a field.
#[derive(Debug, thiserror::Error)]
pub enum Reason {
    /// A rule the value breaks, said in words (`required`, `must be a
    /// string`, …).
    #[error("{0}")]
    Rule(Cow<'static, str>),
    /// The value has the wrong shape, in serde's words.
    #[error(transparent)]
    Json(serde_json::Error),
    /// A header the app asked for cannot be sent.
    #[error(transparent)]
    Header(HeaderError),
}

impl FieldError {
    /// `field` breaks a rule, said in words.
    pub fn rule(field: impl Into<String>, reason: impl Into<Cow<'static, str>>) -> Self {
        FieldError {
            field: field.into(),
            reason: Reason::Rule(reason.into()),
        }
    }
}

impl From<RouteError> for FieldError {
    fn from(e: RouteError) -> Self {
        let reason = match e.reason {
            RouteReason::Rule(words) => Reason::Rule(words),
            RouteReason::Header(h) => Reason::Header(h),
            RouteReason::StreamUrl(e) => Reason::Rule(e.to_string().into()),
            RouteReason::StreamHeader(e) => Reason::Rule(e.to_string().into()),
        };
        FieldError {
            field: e.field,
            reason,
        }
    }
}

impl BadRequest {
    /// The body parsed as JSON, or why not.
    pub fn json(body: &[u8]) -> Result<serde_json::Value, BadRequest> {
        serde_json::from_slice(body).map_err(BadRequest::NotJson)
    }

    /// The body parsed as a JSON object, or why not.
    pub fn object(body: &[u8]) -> Result<serde_json::Map<String, serde_json::Value>, BadRequest> {
        match BadRequest::json(body)? {
            serde_json::Value::Object(obj) => Ok(obj),
            _ => Err(BadRequest::NotObject),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_the_ones_clients_read() {
        assert_eq!(
            FieldError::rule("since", "must be Unix time in milliseconds").to_string(),
            "since: must be Unix time in milliseconds"
        );
        let header = FieldError {
            field: "headers.Via".into(),
            reason: Reason::Header(HeaderError::NotCustom),
        };
        assert_eq!(
            header.to_string(),
            "headers.Via: only X- headers and User-to-User may be set"
        );
        assert_eq!(
            BadRequest::object(b"[]").unwrap_err().to_string(),
            "body must be a JSON object"
        );
        assert!(
            BadRequest::object(b"{")
                .unwrap_err()
                .to_string()
                .starts_with("body is not valid JSON: ")
        );
    }
}
