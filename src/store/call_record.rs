//! A finished call as the store keeps it. Its own type, owned by the
//! store: the call machine is converted into it, and the API renders it,
//! so renaming an API field or reshaping the machine never changes what
//! is on disk (see `record_form` for the stored JSON).

use std::collections::BTreeMap;

/// A finished call as stored. Its own type: renaming an API field never
/// changes the stored form.
#[derive(Debug, Clone, PartialEq)]
pub struct CallRecord {
    pub call_id: String,
    pub call_domain: String,
    pub entry: String,
    pub from: String,
    pub to: String,
    /// The final state as the API spells it ("ended").
    pub state: String,
    /// Unix ms.
    pub created_at: u64,
    pub bridged_at: Option<u64>,
    pub ended_at: u64,
    pub end_reason: Option<String>,
    pub target: Option<String>,
    pub transfer_attempts: u32,
    pub hold_ms: u64,
    pub talk_ms: u64,
    /// The caller's custom headers as the webhook showed them (name → value).
    pub sip_headers: BTreeMap<String, String>,
    pub timeline: Vec<RecordEvent>,
}

/// One line of a stored call's timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordEvent {
    /// Unix ms.
    pub at: u64,
    pub event: String,
    /// Null when none.
    pub detail: serde_json::Value,
}
