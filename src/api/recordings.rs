//! Call recordings over HTTP:
//!
//! - `POST /v1/calls/{callId}/recording` `{"action": "start" | "stop" |
//!   "pause" | "resume", "pause": "silence" | "skip"}`: the live call's
//!   recording (the machine decides; see `call::machine::record`).
//! - `GET /v1/calls/{callId}/recording`: the call's latest recording's
//!   file, live or ended (`Range` requests answered, so an audio element
//!   can seek).
//! - `GET /v1/recordings?since=&limit=`: the index, oldest first;
//!   `GET /v1/recordings/{id}`: one entry.
//! - `DELETE /v1/recordings/{id}`: the file and its entry (not while it is
//!   being recorded).

use super::bad_request::{BadRequest, FieldError};
use super::calls::live;
use super::error::{ApiError, Internal, Unknown};
use super::reply::json;
use super::state::Api;
use crate::call::CallId;
use crate::call::machine::recording::RecordRequest;
use crate::media::record::PauseMode;
use crate::store::{RecordingRow, RecordingState, Store, StoreError};
use serde_json::{Value, json};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use warp::http::{HeaderMap, StatusCode};
use warp::hyper::{Body, Response};

/// Bytes read from the file per chunk of the answer.
const CHUNK: usize = 64 * 1024;

/// The body of `POST …/recording`, checked.
pub fn parse(body: &[u8]) -> Result<RecordRequest, BadRequest> {
    let obj = BadRequest::object(body)?;
    if let Some(unknown) = obj.keys().find(|k| *k != "action" && *k != "pause") {
        return Err(FieldError::rule(unknown.as_str(), "unknown field").into());
    }
    let pause = match obj.get("pause") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s == "silence" => Some(PauseMode::Silence),
        Some(Value::String(s)) if s == "skip" => Some(PauseMode::Skip),
        Some(_) => return Err(FieldError::rule("pause", "must be \"silence\" or \"skip\"").into()),
    };
    let action = match obj.get("action") {
        None | Some(Value::Null) => return Err(FieldError::rule("action", "required").into()),
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err(FieldError::rule("action", "must be a string").into()),
    };
    if pause.is_some() && action != "pause" {
        return Err(FieldError::rule("pause", "goes only with action \"pause\"").into());
    }
    Ok(match action {
        "start" => RecordRequest::Start,
        "stop" => RecordRequest::Stop,
        "pause" => RecordRequest::Pause(pause.unwrap_or(PauseMode::Silence)),
        "resume" => RecordRequest::Resume,
        _ => {
            return Err(FieldError::rule(
                "action",
                "must be \"start\", \"stop\", \"pause\" or \"resume\"",
            )
            .into());
        }
    })
}

/// `POST /v1/calls/{callId}/recording`.
pub async fn control(api: &Api, id: &str, body: &[u8]) -> Result<Response<Body>, ApiError> {
    let request = parse(body)?;
    let now = live(api, id)?.record(request).await?;
    Ok(json(
        StatusCode::OK,
        &json!({ "callId": id, "recordingId": now.recording_id, "state": now.state }),
    ))
}

/// Runs a store read off the async threads.
async fn read<T: Send + 'static>(
    api: &Api,
    f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    let store = api.provisioning.store.clone();
    match tokio::task::spawn_blocking(move || f(&store)).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(ApiError::RecordsUnreadable(Internal::Store(e))),
        Err(e) => Err(ApiError::RecordsUnreadable(Internal::Task(e))),
    }
}

/// A recording as the API shows it.
fn view(r: &RecordingRow) -> Value {
    json!({
        "recordingId": r.id,
        "callId": r.call_id,
        "state": r.state,
        "startedAt": r.started_at,
        "endedAt": r.ended_at,
        "durationMs": r.duration_ms,
        "bytes": r.bytes,
        "sha256": r.sha256,
        "sampleRate": r.sample_rate,
        "channels": r.channels,
        "location": format!("file:{}", r.path),
        "error": r.error,
    })
}

/// `GET /v1/recordings?since=&limit=`.
pub async fn list(api: &Api, query: &str) -> Result<Response<Body>, ApiError> {
    let q = super::records::parse(query)?;
    let rows = read(api, move |s| s.recordings(q.since, q.limit)).await?;
    let views: Vec<Value> = rows.iter().map(view).collect();
    Ok(json(
        StatusCode::OK,
        &json!({ "recordings": views, "count": views.len() }),
    ))
}

async fn row(api: &Api, id: &str) -> Result<RecordingRow, ApiError> {
    let key = id.to_string();
    read(api, move |s| s.recording(&key))
        .await?
        .ok_or(ApiError::Unknown(Unknown::Recording))
}

/// `GET /v1/recordings/{id}`.
pub async fn get(api: &Api, id: &str) -> Result<Response<Body>, ApiError> {
    Ok(json(StatusCode::OK, &view(&row(api, id).await?)))
}

/// `DELETE /v1/recordings/{id}`.
pub async fn delete(api: &Api, id: &str) -> Result<Response<Body>, ApiError> {
    let r = row(api, id).await?;
    // Still marked as recording but its call is not live here: a call
    // whose driver died before the file's end was indexed. Its file is
    // whole (see `media::record::Recording`'s drop), and may go.
    let live = api.registry.get(&CallId(r.call_id.clone())).is_ok();
    if r.state == RecordingState::Recording && live {
        return Err(ApiError::RecordingUnderWay);
    }
    match tokio::fs::remove_file(&r.path).await {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            tracing::warn!(path = %r.path, error = %e, "recording file not deleted");
            return Err(ApiError::RecordingFile(e.to_string()));
        }
    }
    let key = r.id.clone();
    read(api, move |s| s.forget_recording(&key)).await?;
    Ok(json(
        StatusCode::OK,
        &json!({ "id": r.id, "deleted": true }),
    ))
}

/// `GET /v1/calls/{callId}/recording`: the call's latest recording's file.
pub async fn file(
    api: &Api,
    call_id: &str,
    headers: &HeaderMap,
) -> Result<Response<Body>, ApiError> {
    let key = call_id.to_string();
    let r = read(api, move |s| s.latest_recording(&key))
        .await?
        .ok_or(ApiError::Unknown(Unknown::CallRecording))?;
    let mut f = tokio::fs::File::open(&r.path)
        .await
        .map_err(|_| ApiError::Unknown(Unknown::CallRecording))?;
    let len = f
        .metadata()
        .await
        .map_err(|e| ApiError::RecordingFile(e.to_string()))?
        .len();
    let range = headers.get("range").and_then(|v| v.to_str().ok());
    let (status, start, end) = match range.map(|r| byte_range(r, len)) {
        None => (StatusCode::OK, 0, len),
        Some(Some((a, b))) => (StatusCode::PARTIAL_CONTENT, a, b),
        Some(None) => return Err(ApiError::RangeNotSatisfiable(len)),
    };
    f.seek(std::io::SeekFrom::Start(start))
        .await
        .map_err(|e| ApiError::RecordingFile(e.to_string()))?;
    let (mut tx, body) = Body::channel();
    tokio::spawn(async move {
        let mut left = end - start;
        let mut buf = vec![0u8; CHUNK];
        while left > 0 {
            let want = (left as usize).min(CHUNK);
            let n = match f.read(&mut buf[..want]).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if tx
                .send_data(bytes::Bytes::copy_from_slice(&buf[..n]))
                .await
                .is_err()
            {
                break;
            }
            left -= n as u64;
        }
    });
    let mut answer = Response::builder()
        .status(status)
        .header("content-type", "audio/wav")
        .header("accept-ranges", "bytes")
        .header("content-length", end - start)
        .header("x-recording-id", r.id.as_str());
    if status == StatusCode::PARTIAL_CONTENT {
        answer = answer.header("content-range", format!("bytes {start}-{}/{len}", end - 1));
    }
    answer
        .body(body)
        .map_err(|e| ApiError::RecordingFile(e.to_string()))
}

/// The byte range a `Range` header asks of a file of `len` bytes, as
/// `[start, end)`; None when it cannot be served (416). One range only:
/// `bytes=a-b`, `bytes=a-` or `bytes=-n` (RFC 9110 §14.1.2).
fn byte_range(header: &str, len: u64) -> Option<(u64, u64)> {
    let spec = header.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    let (start, end) = if a.is_empty() {
        let n: u64 = b.parse().ok()?;
        (len.saturating_sub(n), len)
    } else {
        let start: u64 = a.parse().ok()?;
        let end = match b {
            "" => len,
            b => b.parse::<u64>().ok()?.saturating_add(1).min(len),
        };
        (start, end)
    };
    (start < end).then_some((start, end))
}

/// Deletes finished recordings older than `days` days, every hour, for as
/// long as the node runs (`[recording] retention_days`).
pub async fn retention(store: Arc<Store>, days: u32) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        every.tick().await;
        let cutoff = crate::clock::unix_ms().saturating_sub(u64::from(days) * 86_400_000);
        let s = store.clone();
        let old = match tokio::task::spawn_blocking(move || s.recordings_before(cutoff)).await {
            Ok(Ok(rows)) => rows,
            _ => continue,
        };
        for r in old {
            if let Err(e) = tokio::fs::remove_file(&r.path).await
                && e.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(path = %r.path, error = %e, "old recording not deleted");
                continue;
            }
            let s = store.clone();
            let _ = tokio::task::spawn_blocking(move || s.forget_recording(&r.id)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_name_the_field() {
        assert_eq!(
            parse(br#"{"action":"start"}"#).unwrap(),
            RecordRequest::Start
        );
        assert_eq!(
            parse(br#"{"action":"pause","pause":"skip"}"#).unwrap(),
            RecordRequest::Pause(PauseMode::Skip)
        );
        assert_eq!(
            parse(br#"{"action":"pause"}"#).unwrap(),
            RecordRequest::Pause(PauseMode::Silence)
        );
        let err = |b: &[u8]| parse(b).unwrap_err().to_string();
        assert_eq!(err(b"{}"), "action: required");
        assert_eq!(
            err(br#"{"action":"rewind"}"#),
            "action: must be \"start\", \"stop\", \"pause\" or \"resume\""
        );
        assert_eq!(
            err(br#"{"action":"pause","pause":"mute"}"#),
            "pause: must be \"silence\" or \"skip\""
        );
        assert_eq!(
            err(br#"{"action":"stop","pause":"skip"}"#),
            "pause: goes only with action \"pause\""
        );
        assert_eq!(err(br#"{"action":"stop","x":1}"#), "x: unknown field");
    }

    #[test]
    fn ranges_as_rfc_9110_reads_them() {
        assert_eq!(byte_range("bytes=0-99", 1000), Some((0, 100)));
        assert_eq!(byte_range("bytes=900-", 1000), Some((900, 1000)));
        assert_eq!(byte_range("bytes=-100", 1000), Some((900, 1000)));
        assert_eq!(byte_range("bytes=990-5000", 1000), Some((990, 1000)));
        assert_eq!(byte_range("bytes=1000-", 1000), None);
        assert_eq!(byte_range("bytes=5-1", 1000), None);
        assert_eq!(byte_range("bytes=0-1,5-6", 1000), None);
        assert_eq!(byte_range("items=0-1", 1000), None);
    }
}
