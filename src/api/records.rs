//! `GET /v1/call-records?since=<Unix ms>&limit=<n>`: finished calls from
//! the database, oldest first. Page on with `since` = the last `endedAt`
//! (records that ended in that same millisecond come again; skip by id).
//!
//! The store keeps its own `CallRecord`; this file alone decides how a
//! record looks in the API: as `GET /v1/calls/{id}` showed the call.

use super::bad_request::FieldError;
use super::error::{ApiError, Internal};
use super::reply::json;
use super::state::Api;
use crate::store::{CallRecord, RecordEvent, RecordQuery};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use warp::http::StatusCode;
use warp::hyper::{Body, Response};

const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 1000;

/// Parses the query string (`since`, `limit`; the recordings' list reads
/// the same); the error names the parameter.
pub(super) fn parse(query: &str) -> Result<RecordQuery, FieldError> {
    let mut q = RecordQuery {
        since: 0,
        limit: DEFAULT_LIMIT,
    };
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        match name {
            "since" => {
                q.since = value
                    .parse()
                    .map_err(|_| FieldError::rule("since", "must be Unix time in milliseconds"))?
            }
            "limit" => {
                q.limit = value
                    .parse()
                    .ok()
                    .filter(|l| (1..=MAX_LIMIT).contains(l))
                    .ok_or_else(|| FieldError::rule("limit", format!("must be 1 to {MAX_LIMIT}")))?
            }
            other => return Err(FieldError::rule(other, "unknown parameter")),
        }
    }
    Ok(q)
}

/// A record as the API shows it (the call's `GET /v1/calls/{id}` shape).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RecordView<'a> {
    call_id: &'a str,
    call_domain: &'a str,
    state: &'a str,
    from: &'a str,
    to: &'a str,
    entry: &'a str,
    created_at: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    bridged_at: Option<u64>,
    ended_at: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    end_reason: Option<&'a str>,
    transfer_attempts: u32,
    hold_ms: u64,
    talk_ms: u64,
    sip_headers: &'a BTreeMap<String, String>,
    timeline: Vec<EventView<'a>>,
}

#[derive(Serialize)]
struct EventView<'a> {
    at: u64,
    event: &'a str,
    #[serde(skip_serializing_if = "Value::is_null")]
    detail: &'a Value,
}

impl<'a> From<&'a CallRecord> for RecordView<'a> {
    fn from(r: &'a CallRecord) -> Self {
        RecordView {
            call_id: &r.call_id,
            call_domain: &r.call_domain,
            state: &r.state,
            from: &r.from,
            to: &r.to,
            entry: &r.entry,
            created_at: r.created_at,
            bridged_at: r.bridged_at,
            ended_at: r.ended_at,
            target: r.target.as_deref(),
            end_reason: r.end_reason.as_deref(),
            transfer_attempts: r.transfer_attempts,
            hold_ms: r.hold_ms,
            talk_ms: r.talk_ms,
            sip_headers: &r.sip_headers,
            timeline: r.timeline.iter().map(EventView::from).collect(),
        }
    }
}

impl<'a> From<&'a RecordEvent> for EventView<'a> {
    fn from(e: &'a RecordEvent) -> Self {
        EventView {
            at: e.at,
            event: &e.event,
            detail: &e.detail,
        }
    }
}

/// The answer's body for `records`.
fn page(records: &[CallRecord]) -> Value {
    let views: Vec<RecordView> = records.iter().map(RecordView::from).collect();
    serde_json::json!({ "records": views, "count": records.len() })
}

pub async fn list(api: &Api, query: &str) -> Result<Response<Body>, ApiError> {
    let q = parse(query)?;
    let store = api.provisioning.store.clone();
    let records = match tokio::task::spawn_blocking(move || store.records(q)).await {
        Ok(Ok(records)) => records,
        Ok(Err(e)) => return Err(ApiError::RecordsUnreadable(Internal::Store(e))),
        Err(e) => return Err(ApiError::RecordsUnreadable(Internal::Task(e))),
    };
    Ok(json(StatusCode::OK, &page(&records)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameters_are_checked() {
        let q = parse("since=1700000000000&limit=5").unwrap();
        assert_eq!((q.since, q.limit), (1_700_000_000_000, 5));
        assert_eq!(parse("").unwrap().limit, 100);
        let e = |q: &str| parse(q).unwrap_err().to_string();
        assert_eq!(
            e("since=yesterday"),
            "since: must be Unix time in milliseconds"
        );
        assert_eq!(e("limit=0"), "limit: must be 1 to 1000");
        assert_eq!(e("order=desc"), "order: unknown parameter");
    }

    /// The answer is JSON-equal to the call's JSON the previous release
    /// stored and answered with.
    #[test]
    fn a_record_renders_as_the_call_did() {
        let before = serde_json::json!({
            "callId": "c-1", "callDomain": "d", "state": "ended",
            "from": "sip:alice@example.com", "to": "+15550001111", "entry": "sales",
            "createdAt": 1000, "bridgedAt": 2000, "endedAt": 2500,
            "target": "sip:room@h", "endReason": "caller_hangup",
            "transferAttempts": 1, "holdMs": 1000, "talkMs": 500,
            "sipHeaders": { "X-Ref": "7" },
            "timeline": [
                { "at": 1000, "event": "call.held" },
                { "at": 1500, "event": "call.transfer_started",
                  "detail": { "sipUri": "sip:room@h", "attempt": 1 } }
            ]
        });
        let record = CallRecord {
            call_id: "c-1".into(),
            call_domain: "d".into(),
            entry: "sales".into(),
            from: "sip:alice@example.com".into(),
            to: "+15550001111".into(),
            state: "ended".into(),
            created_at: 1000,
            bridged_at: Some(2000),
            ended_at: 2500,
            end_reason: Some("caller_hangup".into()),
            target: Some("sip:room@h".into()),
            transfer_attempts: 1,
            hold_ms: 1000,
            talk_ms: 500,
            sip_headers: [("X-Ref".to_string(), "7".to_string())].into(),
            timeline: vec![
                RecordEvent {
                    at: 1000,
                    event: "call.held".into(),
                    detail: Value::Null,
                },
                RecordEvent {
                    at: 1500,
                    event: "call.transfer_started".into(),
                    detail: serde_json::json!({ "sipUri": "sip:room@h", "attempt": 1 }),
                },
            ],
        };
        let answer = page(std::slice::from_ref(&record));
        assert_eq!(
            answer,
            serde_json::json!({ "records": [before], "count": 1 })
        );
        let text = serde_json::to_string(&answer).unwrap();
        assert!(
            text.starts_with(r#"{"count":1,"records":[{"bridgedAt":2000,"callDomain""#),
            "{text}"
        );

        // Optional fields are left out, as before.
        let bare = CallRecord {
            bridged_at: None,
            target: None,
            end_reason: None,
            ..record
        };
        let v = &page(&[bare])["records"][0];
        for absent in ["bridgedAt", "target", "endReason"] {
            assert!(v.get(absent).is_none(), "{absent}: {v}");
        }
    }
}
