//! What the API shows of a call (`GET /v1/calls/{id}`): a plain copy the
//! call's driver publishes after every step, so readers never lock the
//! machine. Its JSON is the API's; the machine's own (stored) form and the
//! call record's are separate types, so renaming a field here changes
//! nothing stored.

use super::steps::{EndReason, Event, State};
use serde::{Serialize, Serializer};

/// A call as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallView {
    pub call_id: String,
    pub call_domain: String,
    pub state: State,
    pub from: String,
    pub to: String,
    pub entry: String,
    /// Unix ms.
    pub created_at: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bridged_at: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<u64>,
    /// The room of the transfer under way, or the one the caller is with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_reason: Option<EndReason>,
    pub transfer_attempts: u32,
    /// Time spent on hold music and bridged, counted at each change (ms).
    pub hold_ms: u64,
    pub talk_ms: u64,
    /// The caller's custom headers, as the entry's policy passed them;
    /// shown as the webhook's `sipHeaders` object.
    #[serde(serialize_with = "headers_object")]
    pub sip_headers: Vec<(String, String)>,
    pub timeline: Vec<Event>,
}

fn headers_object<S: Serializer>(h: &[(String, String)], s: S) -> Result<S::Ok, S::Error> {
    crate::sip::headers::to_json_map(h).serialize(s)
}
