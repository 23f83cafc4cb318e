//! The stored JSON of a call record (the `record` column), and the forms
//! earlier releases wrote.
//!
//! The current form is versioned (`"v": 1`) with snake_case names chosen
//! here, not by the API. Rows written before the version existed hold the
//! API's JSON of the call (camelCase, no `v`); they are read as they are,
//! never rewritten. A form that changes gets the next `v` and its own
//! struct below; the old ones stay readable.

use super::{CallRecord, RecordEvent, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// The form this build writes.
pub const VERSION: u64 = 1;

/// Only the version, read first to pick the form.
#[derive(Deserialize)]
struct Probe {
    v: Option<u64>,
}

/// Form 1.
#[derive(Serialize, Deserialize)]
struct V1 {
    v: u64,
    call_id: String,
    call_domain: String,
    entry: String,
    from: String,
    to: String,
    state: String,
    created_at: u64,
    bridged_at: Option<u64>,
    ended_at: u64,
    end_reason: Option<String>,
    target: Option<String>,
    transfer_attempts: u32,
    hold_ms: u64,
    talk_ms: u64,
    sip_headers: BTreeMap<String, String>,
    timeline: Vec<V1Event>,
}

#[derive(Serialize, Deserialize)]
struct V1Event {
    at: u64,
    event: String,
    #[serde(default)]
    detail: Value,
}

/// Before versions: the API's JSON of the call (`GET /v1/calls/{id}`),
/// optional fields left out when empty.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Unversioned {
    call_id: String,
    call_domain: String,
    state: String,
    from: String,
    to: String,
    entry: String,
    created_at: u64,
    bridged_at: Option<u64>,
    ended_at: Option<u64>,
    target: Option<String>,
    end_reason: Option<String>,
    transfer_attempts: u32,
    hold_ms: u64,
    talk_ms: u64,
    #[serde(default)]
    sip_headers: BTreeMap<String, String>,
    /// Its events have the names form 1 kept.
    #[serde(default)]
    timeline: Vec<V1Event>,
}

/// The text to store for `r`.
pub fn encode(r: &CallRecord) -> Result<String, StoreError> {
    let form = V1 {
        v: VERSION,
        call_id: r.call_id.clone(),
        call_domain: r.call_domain.clone(),
        entry: r.entry.clone(),
        from: r.from.clone(),
        to: r.to.clone(),
        state: r.state.clone(),
        created_at: r.created_at,
        bridged_at: r.bridged_at,
        ended_at: r.ended_at,
        end_reason: r.end_reason.clone(),
        target: r.target.clone(),
        transfer_attempts: r.transfer_attempts,
        hold_ms: r.hold_ms,
        talk_ms: r.talk_ms,
        sip_headers: r.sip_headers.clone(),
        timeline: r
            .timeline
            .iter()
            .map(|e| V1Event {
                at: e.at,
                event: e.event.clone(),
                detail: e.detail.clone(),
            })
            .collect(),
    };
    serde_json::to_string(&form).map_err(|source| StoreError::Json {
        what: format!("call record {} not encodable", r.call_id),
        source,
    })
}

/// Reads a stored record in any known form. `ended_at` is the row's
/// column, for old rows whose JSON lacks it.
pub fn decode(call_id: &str, ended_at: u64, text: &str) -> Result<CallRecord, StoreError> {
    let unreadable = |source| StoreError::Json {
        what: "stored record unreadable".into(),
        source,
    };
    let probe: Probe = serde_json::from_str(text).map_err(unreadable)?;
    match probe.v {
        None => {
            let old: Unversioned = serde_json::from_str(text).map_err(unreadable)?;
            Ok(from_unversioned(old, ended_at))
        }
        Some(VERSION) => {
            let v1: V1 = serde_json::from_str(text).map_err(unreadable)?;
            Ok(from_v1(v1))
        }
        Some(found) => Err(StoreError::NewerRecord {
            call_id: call_id.to_string(),
            found,
            supported: VERSION,
        }),
    }
}

fn from_v1(f: V1) -> CallRecord {
    CallRecord {
        call_id: f.call_id,
        call_domain: f.call_domain,
        entry: f.entry,
        from: f.from,
        to: f.to,
        state: f.state,
        created_at: f.created_at,
        bridged_at: f.bridged_at,
        ended_at: f.ended_at,
        end_reason: f.end_reason,
        target: f.target,
        transfer_attempts: f.transfer_attempts,
        hold_ms: f.hold_ms,
        talk_ms: f.talk_ms,
        sip_headers: f.sip_headers,
        timeline: f
            .timeline
            .into_iter()
            .map(|e| RecordEvent {
                at: e.at,
                event: e.event,
                detail: e.detail,
            })
            .collect(),
    }
}

/// An old row as form 1 (its `ended_at` from the row's column when the
/// JSON lacks it), read as form 1 is.
fn from_unversioned(f: Unversioned, ended_at: u64) -> CallRecord {
    from_v1(V1 {
        v: VERSION,
        call_id: f.call_id,
        call_domain: f.call_domain,
        entry: f.entry,
        from: f.from,
        to: f.to,
        state: f.state,
        created_at: f.created_at,
        bridged_at: f.bridged_at,
        ended_at: f.ended_at.unwrap_or(ended_at),
        end_reason: f.end_reason,
        target: f.target,
        transfer_attempts: f.transfer_attempts,
        hold_ms: f.hold_ms,
        talk_ms: f.talk_ms,
        sip_headers: f.sip_headers,
        timeline: f.timeline,
    })
}
