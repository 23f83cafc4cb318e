//! What the API shows of a call (`GET /v1/calls/{id}`): a plain copy the
//! call's driver publishes after every step, so readers never lock the
//! machine. Its JSON is the API's; the machine's own (stored) form and the
//! call record's are separate types, so renaming a field here changes
//! nothing stored.

use crate::call::machine::steps::{EndReason, Event, State};
use crate::codec::AudioCodec;
use crate::store::{CallRecord, RecordEvent};
use crate::webhook::messages;
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
    /// The registration the call came through, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registration: Option<String>,
    pub timeline: Vec<Event>,
    /// False while the caller is held in early media (183, no 200 OK).
    pub answered: bool,
    /// The legs' codecs, by their SDP names.
    #[serde(skip_serializing_if = "Codecs::is_empty")]
    pub codecs: Codecs,
}

/// The codec of each leg: the caller's, and the room's while bridged to
/// one (a bot speaks μ-law over its WebSocket, not a leg's codec). They
/// differ when the call is transcoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Codecs {
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "sdp_name")]
    pub caller: Option<AudioCodec>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "sdp_name")]
    pub room: Option<AudioCodec>,
}

impl Codecs {
    fn is_empty(&self) -> bool {
        self.caller.is_none() && self.room.is_none()
    }
}

fn sdp_name<S: Serializer>(c: &Option<AudioCodec>, s: S) -> Result<S::Ok, S::Error> {
    c.map(|c| c.encoding_name()).serialize(s)
}

fn headers_object<S: Serializer>(h: &[(String, String)], s: S) -> Result<S::Ok, S::Error> {
    messages::sip_headers(h).serialize(s)
}

impl CallView {
    /// The store's record of the call, once it has ended.
    pub fn record(&self) -> CallRecord {
        let sip_headers = messages::sip_headers(&self.sip_headers)
            .into_iter()
            .filter_map(|(name, value)| Some((name, value.as_str()?.to_string())))
            .collect();
        CallRecord {
            call_id: self.call_id.clone(),
            call_domain: self.call_domain.clone(),
            entry: self.entry.clone(),
            from: self.from.clone(),
            to: self.to.clone(),
            state: self.state.name().to_string(),
            created_at: self.created_at,
            bridged_at: self.bridged_at,
            ended_at: self.ended_at.unwrap_or(self.created_at),
            end_reason: self.end_reason.map(|r| r.name().to_string()),
            target: self.target.clone(),
            transfer_attempts: self.transfer_attempts,
            hold_ms: self.hold_ms,
            talk_ms: self.talk_ms,
            sip_headers,
            timeline: self
                .timeline
                .iter()
                .map(|e| RecordEvent {
                    at: e.at,
                    event: e.event.name().to_string(),
                    detail: e.detail.clone(),
                })
                .collect(),
        }
    }
}
