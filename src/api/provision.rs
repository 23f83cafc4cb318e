//! The provisioning API, in the shape of Daily's `domain-dialin-config`:
//! create, list, read, replace and delete dial-in entries at runtime, and
//! rotate an entry's secret with a grace period. This file reads the
//! requests (errors name the field) and renders the answers (secrets
//! masked); what they do is `provisioning::Provisioning`'s.

use super::bad_request::{BadRequest, FieldError, Reason};
use super::error::{ApiError, Internal, Unknown};
use super::reply::json;
use crate::config::{ConfigError, DialinEntry, validate_entry};
use crate::provisioning::{Found, ProvisionError, Provisioning, Verification};
use crate::store::StoredEntry;
use serde_json::{Value, json};
use warp::http::StatusCode;
use warp::hyper::{Body, Response};

const MASK: &str = "********";
const TYPE: &str = "pinless_dialin";
/// How long a rotated-out secret still signs, unless the request says.
const DEFAULT_GRACE_SECS: u64 = 3600;

type Reply = Result<Response<Body>, ApiError>;

impl From<ProvisionError> for ApiError {
    fn from(e: ProvisionError) -> Self {
        match e {
            ProvisionError::Clash(clash) => ApiError::EntryClash(clash),
            ProvisionError::Confined { field, reason } => FieldError::rule(field, reason).into(),
            ProvisionError::BadEntry(e) => ApiError::BadEntry(e),
            ProvisionError::Unknown => ApiError::Unknown(Unknown::Entry),
            ProvisionError::ConfigFileEntry => ApiError::ConfigFileEntry,
            ProvisionError::Store(e) => ApiError::Storage(Internal::Store(e)),
            ProvisionError::Task(e) => ApiError::Storage(Internal::Task(e)),
            ProvisionError::Cluster(e) => ApiError::Cluster(e),
        }
    }
}

/// Parses a body `{"type":"pinless_dialin","config":{…}}` (or the fields
/// flat beside `type`) into an entry; errors name the field. With it, the
/// prefix the body's fields are named with (`config.` or none), for
/// errors found later.
fn parse_entry(body: &[u8]) -> Result<(DialinEntry, &'static str), BadRequest> {
    let mut obj = BadRequest::object(body)?;
    match obj.remove("type") {
        Some(Value::String(t)) if t == TYPE => {}
        Some(_) => return Err(FieldError::rule("type", format!("must be \"{TYPE}\"")).into()),
        None => return Err(FieldError::rule("type", format!("required, \"{TYPE}\"")).into()),
    }
    let (prefix, mut fields) = match obj.remove("config") {
        Some(Value::Object(c)) if obj.is_empty() => ("config.", c),
        Some(Value::Object(_)) => {
            let extra = obj.keys().next().cloned().unwrap_or_default();
            return Err(
                FieldError::rule(extra, "give the fields inside config or flat, not both").into(),
            );
        }
        Some(_) => return Err(FieldError::rule("config", "must be an object").into()),
        None => ("", obj),
    };
    fields
        .entry("name_prefix")
        .or_insert_with(|| Value::String("dialin".into()));
    let entry: DialinEntry =
        serde_path_to_error::deserialize(Value::Object(fields)).map_err(|e| FieldError {
            field: format!("{prefix}{}", e.path()),
            reason: Reason::Json(e.into_inner()),
        })?;
    let key = |field: &str| format!("{prefix}{field}");
    validate_entry(&entry, &key).map_err(|e| match e {
        // The API names the field without the config file's backticks.
        ConfigError::Key { key, reason } => BadRequest::Field(FieldError::rule(key, reason)),
        other => BadRequest::Config(other),
    })?;
    Ok((entry, prefix))
}

/// A provisioning error, a field named as the body named it.
fn named(prefix: &str) -> impl Fn(ProvisionError) -> ApiError + '_ {
    move |e| match e {
        ProvisionError::Confined { field, reason } => {
            FieldError::rule(format!("{prefix}{field}"), reason).into()
        }
        other => other.into(),
    }
}

/// An entry as the API shows it; secrets masked unless `show_hmac`.
fn view(
    id: &str,
    source: &str,
    config: &DialinEntry,
    hmac: Option<&str>,
    times: Option<(u64, u64)>,
) -> Value {
    let mut c = serde_json::to_value(config).unwrap_or_else(|_| json!({}));
    if let Some(obj) = c.as_object_mut() {
        obj.retain(|_, v| !v.is_null());
        obj.insert("hmac".into(), Value::String(hmac.unwrap_or(MASK).into()));
        if let Some(Value::Array(creds)) = obj.get_mut("credentials") {
            for cred in creds.iter_mut() {
                cred["password"] = Value::String(MASK.into());
            }
        }
    }
    let mut out = json!({ "id": id, "type": TYPE, "source": source, "config": c });
    if let Some((created, updated)) = times {
        out["createdAt"] = created.into();
        out["updatedAt"] = updated.into();
    }
    out
}

fn stored_view(s: &StoredEntry, hmac: Option<&str>) -> Value {
    view(
        &s.id,
        "api",
        &s.config,
        hmac,
        Some((s.created_at, s.updated_at)),
    )
}

fn verification(v: &Verification) -> Value {
    match &v.error {
        Some(error) => json!({ "status": v.status, "error": error }),
        None => json!({ "status": v.status }),
    }
}

/// `POST /v1/domain-dialin-config`.
pub async fn create(p: &Provisioning, body: &[u8]) -> Reply {
    let (entry, prefix) = parse_entry(body)?;
    let created = p.create(entry).await.map_err(named(prefix))?;
    let mut out = stored_view(&created.stored, created.generated_hmac.as_deref());
    out["verification"] = verification(&created.verification);
    Ok(json(StatusCode::OK, &out))
}

/// `GET /v1/domain-dialin-config`.
pub async fn list(p: &Provisioning) -> Reply {
    let (config, stored) = p.list().await?;
    let mut out: Vec<Value> = config
        .iter()
        .map(|c| {
            view(
                &format!("config:{}", c.name_prefix),
                "config",
                c,
                None,
                None,
            )
        })
        .collect();
    out.extend(stored.iter().map(|s| stored_view(s, None)));
    Ok(json(
        StatusCode::OK,
        &json!({ "data": out, "total_count": out.len() }),
    ))
}

/// `GET /v1/domain-dialin-config/{id}`.
pub async fn get(p: &Provisioning, id: &str) -> Reply {
    let shown = match p.get(id).await? {
        Found::Config(c) => view(id, "config", c, None, None),
        Found::Stored(s) => stored_view(&s, None),
    };
    Ok(json(StatusCode::OK, &shown))
}

/// `PUT /v1/domain-dialin-config/{id}`.
pub async fn replace(p: &Provisioning, id: &str, body: &[u8]) -> Reply {
    // A config-file entry is refused whatever the body says.
    p.refuse_file_entry(id)?;
    let (config, prefix) = parse_entry(body)?;
    let (stored, verified) = p.replace(id, config).await.map_err(named(prefix))?;
    let mut out = stored_view(&stored, None);
    out["verification"] = verification(&verified);
    Ok(json(StatusCode::OK, &out))
}

/// `DELETE /v1/domain-dialin-config/{id}`.
pub async fn delete(p: &Provisioning, id: &str) -> Reply {
    p.delete(id).await?;
    Ok(json(StatusCode::OK, &json!({ "id": id, "deleted": true })))
}

/// `POST …/{id}/rotate-hmac`, body `{"grace_secs": N}` (optional): a new
/// secret, returned once; the old one keeps signing for the grace.
pub async fn rotate(p: &Provisioning, id: &str, body: &[u8]) -> Reply {
    p.refuse_file_entry(id)?;
    let grace = parse_grace(body)?;
    let rotated = p.rotate(id, grace).await?;
    let mut out = stored_view(&rotated.stored, Some(&rotated.hmac));
    out["previousValidUntil"] = rotated.previous_until.into();
    Ok(json(StatusCode::OK, &out))
}

fn parse_grace(body: &[u8]) -> Result<u64, BadRequest> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(DEFAULT_GRACE_SECS);
    }
    let obj = BadRequest::object(body)?;
    if let Some(unknown) = obj.keys().find(|k| *k != "grace_secs") {
        return Err(FieldError::rule(unknown.as_str(), "unknown field").into());
    }
    match obj.get("grace_secs") {
        None => Ok(DEFAULT_GRACE_SECS),
        Some(v) => v.as_u64().filter(|g| *g <= 30 * 86_400).ok_or_else(|| {
            FieldError::rule(
                "grace_secs",
                "must be a whole number of seconds, at most 30 days",
            )
            .into()
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_nested_or_flat_and_errors_name_the_field() {
        let nested = br#"{"type":"pinless_dialin","config":{"phone_number":"+15550001111","room_creation_api":"http://h/x","open":true}}"#;
        let (e, _) = parse_entry(nested).unwrap();
        assert_eq!(e.phone_number.as_deref(), Some("+15550001111"));
        assert_eq!(e.name_prefix, "dialin");
        let flat = br#"{"type":"pinless_dialin","sip_uri":"sip:a@h","room_creation_api":"http://h/x","name_prefix":"a","allowed_cidrs":["10.0.0.0/8"]}"#;
        assert_eq!(parse_entry(flat).unwrap().0.name_prefix, "a");
        let err = |b: &str| parse_entry(b.as_bytes()).unwrap_err().to_string();
        assert!(err(r#"{"config":{}}"#).starts_with("type"));
        assert!(err(r#"{"type":"x"}"#).starts_with("type"));
        assert!(
            err(r#"{"type":"pinless_dialin","config":{"phone_number":"555","room_creation_api":"http://h"}}"#)
                .starts_with("config.phone_number"),
        );
        assert!(
            err(r#"{"type":"pinless_dialin","config":{"sip_uri":"sip:a@h","room_creation_api":"http://h","bogus":1}}"#)
                .contains("bogus"),
        );
        assert!(
            err(r#"{"type":"pinless_dialin","sip_uri":"sip:a@h","room_creation_api":7}"#)
                .starts_with("room_creation_api"),
        );
        assert!(
            err(r#"{"type":"pinless_dialin","sip_uri":"sip:a@h","room_creation_api":"http://h"}"#)
                .starts_with("open"),
            "an entry open to anyone must say so"
        );
        assert!(parse_grace(b"").is_ok());
        assert!(parse_grace(br#"{"grace_secs":-1}"#).is_err());
    }
}
