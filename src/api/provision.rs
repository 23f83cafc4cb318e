//! The provisioning API, in the shape of Daily's `domain-dialin-config`:
//! create, list, read, replace and delete dial-in entries at runtime, and
//! rotate an entry's secret with a grace period. Entries are stored before
//! the answer is sent and apply to the next INVITE; calls already held
//! keep the entry they were matched with.
//!
//! In a cluster, an entry is written to Redis first (a Redis outage is a
//! 503 and changes nothing), then to this node's copy; `provisioning::sync` brings
//! it to the other nodes.

use super::bad_request::{BadRequest, FieldError, Reason};
use super::error::{ApiError, Internal, Unknown};
use super::reply::json;
use crate::call::{Entry, EntryBook};
use crate::clock::unix_ms;
use crate::cluster::Cluster;
use crate::config::{ConfigError, DialinEntry, validate_entry};
use crate::provisioning::WRITES;
use crate::provisioning::record::to_record;
use crate::store::{Store, StoreError, StoredEntry, StoredKeys};
use crate::webhook::{self, AttemptOutcome, Delivery, messages};
use base64::Engine;
use rand::RngCore;
use serde_json::{Value, json};
use std::sync::Arc;
use warp::http::StatusCode;
use warp::hyper::{Body, Response};

/// What the provisioning endpoints share.
pub struct Provisioning {
    pub store: Arc<Store>,
    pub entries: EntryBook,
    /// The config file's entries: listed, never changed through the API.
    pub config_entries: Vec<DialinEntry>,
    /// Posts the `{"Test":"test"}` verification (one attempt).
    pub verifier: webhook::Sender,
    /// Host (and port) of static SIP URIs handed out.
    pub sip_host: String,
    /// Where entries are shared with the other nodes, in a cluster.
    pub cluster: Option<Arc<Cluster>>,
}

const MASK: &str = "********";
const TYPE: &str = "pinless_dialin";
/// How long a rotated-out secret still signs, unless the request says.
const DEFAULT_GRACE_SECS: u64 = 3600;

type Reply = Result<Response<Body>, ApiError>;

/// Runs a store call off the async runtime.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(ApiError::Storage(Internal::Store(e))),
        Err(e) => Err(ApiError::Storage(Internal::Task(e))),
    }
}

fn new_secret() -> String {
    let mut key = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut key);
    base64::engine::general_purpose::STANDARD.encode(key)
}

/// Parses a body `{"type":"pinless_dialin","config":{…}}` (or the fields
/// flat beside `type`) into an entry; errors name the field.
pub fn parse_entry(body: &[u8]) -> Result<DialinEntry, BadRequest> {
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
    Ok(entry)
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

impl Provisioning {
    fn config_entry(&self, id: &str) -> Option<&DialinEntry> {
        let name = id.strip_prefix("config:")?;
        self.config_entries.iter().find(|c| c.name_prefix == name)
    }

    /// Makes `stored` ready (announcement, secrets) and checks it against
    /// every other entry: a 400 or 409 to send back, or nothing.
    fn check(&self, stored: &StoredEntry) -> Result<(), ApiError> {
        let snapshot = self.entries.snapshot();
        if let Some(clash) = snapshot.conflict(&stored.config, Some(&stored.id)) {
            return Err(ApiError::EntryClash(clash));
        }
        Entry::from_stored(stored, self.entries.max_hold())
            .map(|_| ())
            .map_err(ApiError::BadEntry)
    }

    /// In a cluster, stores `s` in Redis for every node (before this
    /// node's copy: if Redis is down, nothing changes anywhere).
    async fn share(&self, s: &StoredEntry) -> Result<(), ApiError> {
        if let Some(cluster) = &self.cluster {
            cluster.put_entry(&to_record(s)).await?;
        }
        Ok(())
    }

    /// Runs a store write that reports whether the entry existed, then
    /// puts the stored entries in force: 404 if it did not exist.
    async fn write(
        &self,
        op: impl FnOnce(&Store) -> Result<bool, StoreError> + Send + 'static,
    ) -> Result<(), ApiError> {
        let store = self.store.clone();
        if !blocking(move || op(&store)).await? {
            return Err(ApiError::Unknown(Unknown::Entry));
        }
        self.apply().await
    }

    /// Re-reads the stored entries into the set in force.
    async fn apply(&self) -> Result<(), ApiError> {
        let store = self.store.clone();
        let stored = blocking(move || store.entries()).await?;
        // `check` refused this change if it could not apply; another
        // entry that cannot (logged by the book) does not undo it.
        self.entries.rebuild(&stored);
        Ok(())
    }

    /// Posts `{"Test":"test"}` signed to the entry's webhook; its outcome
    /// goes in the answer and never undoes the save.
    async fn verify(&self, s: &StoredEntry) -> Value {
        // Only the secrets: resolving the whole entry would decode its
        // audio files again.
        let keys = match crate::call::door::entries::stored_keys(s) {
            Ok(k) => k,
            Err(e) => return json!({ "status": null, "error": e.to_string() }),
        };
        let id = messages::message_id();
        let body = messages::verification();
        let url = &s.config.room_creation_api;
        match self.verifier.deliver(url, &keys, &id, &body, |_| {}).await {
            Delivery::Delivered { .. } => json!({ "status": 200 }),
            Delivery::Failed {
                last: AttemptOutcome::Status(code),
                ..
            } => json!({ "status": code }),
            Delivery::Failed {
                last: AttemptOutcome::Error(e),
                ..
            } => json!({ "status": null, "error": e.to_string() }),
        }
    }

    pub async fn create(&self, body: &[u8]) -> Reply {
        let mut config = parse_entry(body)?;
        let generated = config.hmac.is_none();
        let hmac = config.hmac.take().unwrap_or_else(new_secret);
        let id = uuid::Uuid::new_v4().to_string();
        if config.sip_uri.is_none() {
            let tag = &id[..8];
            config.sip_uri = Some(format!(
                "sip:{}-{tag}@{}",
                config.name_prefix, self.sip_host
            ));
        }
        let now = unix_ms();
        let stored = StoredEntry {
            id,
            config,
            keys: StoredKeys {
                hmac: hmac.clone(),
                previous: None,
            },
            created_at: now,
            updated_at: now,
        };
        let _write = WRITES.lock().await;
        self.check(&stored)?;
        self.share(&stored).await?;
        let (store, row) = (self.store.clone(), stored.clone());
        blocking(move || store.insert_entry(&row)).await?;
        self.apply().await?;
        drop(_write);
        tracing::info!(entry = %stored.id, name = %stored.config.name_prefix, "dial-in entry created");
        let mut out = stored_view(&stored, generated.then_some(hmac.as_str()));
        out["verification"] = self.verify(&stored).await;
        Ok(json(StatusCode::OK, &out))
    }

    pub async fn list(&self) -> Reply {
        let store = self.store.clone();
        let stored = blocking(move || store.entries()).await?;
        let mut out: Vec<Value> = self
            .config_entries
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

    async fn stored(&self, id: &str) -> Result<StoredEntry, ApiError> {
        let (store, key) = (self.store.clone(), id.to_string());
        blocking(move || store.entry(&key))
            .await?
            .ok_or(ApiError::Unknown(Unknown::Entry))
    }

    pub async fn get(&self, id: &str) -> Reply {
        if let Some(c) = self.config_entry(id) {
            return Ok(json(StatusCode::OK, &view(id, "config", c, None, None)));
        }
        let s = self.stored(id).await?;
        Ok(json(StatusCode::OK, &stored_view(&s, None)))
    }

    /// Entries of the config file are read-only through the API.
    fn refuse_file_entry(&self, id: &str) -> Result<(), ApiError> {
        match self.config_entry(id) {
            Some(_) => Err(ApiError::ConfigFileEntry),
            None => Ok(()),
        }
    }

    pub async fn replace(&self, id: &str, body: &[u8]) -> Reply {
        self.refuse_file_entry(id)?;
        let mut config = parse_entry(body)?;
        let _write = WRITES.lock().await;
        let mut stored = self.stored(id).await?;
        // A secret changes only when one is given, and then at once.
        let new_hmac = config.hmac.take().filter(|h| *h != stored.keys.hmac);
        if config.sip_uri.is_none() {
            config.sip_uri = stored.config.sip_uri.clone();
        }
        let now = unix_ms();
        stored.config = config;
        stored.updated_at = now;
        if let Some(h) = &new_hmac {
            stored.keys = StoredKeys {
                hmac: h.clone(),
                previous: None,
            };
        }
        self.check(&stored)?;
        self.share(&stored).await?;
        let (row, key) = (stored.clone(), new_hmac.clone());
        self.write(move |store| {
            let found = store.update_entry(&row.id, &row.config, now)?;
            if let Some(h) = key {
                store.rotate_entry(&row.id, &h, now, now)?;
            }
            Ok(found)
        })
        .await?;
        drop(_write);
        let mut out = stored_view(&stored, None);
        out["verification"] = self.verify(&stored).await;
        Ok(json(StatusCode::OK, &out))
    }

    pub async fn delete(&self, id: &str) -> Reply {
        self.refuse_file_entry(id)?;
        let _write = WRITES.lock().await;
        if let Some(cluster) = &self.cluster {
            self.stored(id).await?;
            cluster.delete_entry(id).await?;
        }
        let key = id.to_string();
        self.write(move |store| store.delete_entry(&key)).await?;
        Ok(json(StatusCode::OK, &json!({ "id": id, "deleted": true })))
    }

    /// `POST …/{id}/rotate-hmac`, body `{"grace_secs": N}` (optional): a
    /// new secret, returned once; the old one keeps signing for the grace.
    pub async fn rotate(&self, id: &str, body: &[u8]) -> Reply {
        self.refuse_file_entry(id)?;
        let grace = parse_grace(body)?;
        let _write = WRITES.lock().await;
        let hmac = new_secret();
        let now = unix_ms();
        let until = now + grace * 1000;
        if self.cluster.is_some() {
            let mut s = self.stored(id).await?;
            let old = std::mem::replace(&mut s.keys.hmac, hmac.clone());
            s.keys.previous = Some((old, until));
            s.updated_at = now;
            self.share(&s).await?;
        }
        let (key, secret) = (id.to_string(), hmac.clone());
        self.write(move |store| store.rotate_entry(&key, &secret, until, now))
            .await?;
        drop(_write);
        tracing::info!(entry = %id, grace_secs = grace, "webhook secret rotated");
        let s = self.stored(id).await?;
        let mut out = stored_view(&s, Some(&hmac));
        out["previousValidUntil"] = until.into();
        Ok(json(StatusCode::OK, &out))
    }
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
        let e = parse_entry(nested).unwrap();
        assert_eq!(e.phone_number.as_deref(), Some("+15550001111"));
        assert_eq!(e.name_prefix, "dialin");
        let flat = br#"{"type":"pinless_dialin","sip_uri":"sip:a@h","room_creation_api":"http://h/x","name_prefix":"a","allowed_cidrs":["10.0.0.0/8"]}"#;
        assert_eq!(parse_entry(flat).unwrap().name_prefix, "a");
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
