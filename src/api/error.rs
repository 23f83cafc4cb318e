//! The API's one error type. Every handler returns
//! `Result<Response, ApiError>`; `ApiError::into_response` is the one place
//! an error becomes an answer: its status, and `{"error": "<Display>"}`.
//! The Display texts are part of the contract: clients and tests read them.

use super::bad_request::{BadRequest, FieldError};
use super::reply::json;
use crate::call::{CallError, EntryError, NotLive, UpdateRefused};
use crate::cluster::ClusterError;
use crate::store::StoreError;
use warp::http::StatusCode;
use warp::hyper::{Body, Response};

/// Largest request body accepted, in bytes (beyond it: `BodyTooLarge`).
pub const MAX_BODY: usize = 64 * 1024;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the body, query or a header is malformed; the text names what.
    #[error(transparent)]
    BadRequest(#[from] BadRequest),
    /// 400: the body could not be read off the connection.
    #[error("body could not be read")]
    BodyUnreadable(#[source] warp::Error),
    /// 413: the body is larger than `MAX_BODY`.
    #[error("body larger than {MAX_BODY} bytes")]
    BodyTooLarge,
    /// 401: no bearer token, or not one of ours.
    #[error("missing or invalid bearer token")]
    Unauthorized,
    /// 404: the path is no endpoint of ours.
    #[error("no such endpoint")]
    NoSuchEndpoint,
    /// 405: the endpoint exists, not with this method.
    #[error("method not allowed here")]
    MethodNotAllowed,
    /// 404: what the request names does not exist here.
    #[error("unknown {0}")]
    Unknown(Unknown),
    /// 422: the play API's audio was fetched or read but is no audio
    /// symphonia decodes; the text names it.
    #[error(transparent)]
    Undecodable(FieldError),
    /// 409: the call cannot take requests in this state (`ended`, …).
    #[error("call is {0}")]
    CallIs(&'static str),
    /// 409: the call refused the request (a transfer under way, an
    /// Idempotency-Key reused for another update, …).
    #[error(transparent)]
    Refused(#[from] UpdateRefused),
    /// 409: the entry clashes with another one (a number or URI taken);
    /// the text says which.
    #[error("{0}")]
    EntryClash(String),
    /// 409: the entry comes from the config file, which the API never
    /// changes.
    #[error("entry is defined in the config file; change it there")]
    ConfigFileEntry,
    /// 400: the entry cannot be put in force (its announcement, its secret).
    #[error(transparent)]
    BadEntry(EntryError),
    /// 500: a provisioning write or read failed; nothing was changed.
    #[error("storage failed; nothing was changed")]
    Storage(#[source] Internal),
    /// 500: the call records could not be read.
    #[error("call records unreadable")]
    RecordsUnreadable(#[source] Internal),
    /// 409: a recording being made cannot be deleted.
    #[error("recording is under way; stop it first")]
    RecordingUnderWay,
    /// 500: a recording's file could not be read or deleted.
    #[error("recording file: {0}")]
    RecordingFile(String),
    /// 416: the `Range` asked lies outside the file (its length).
    #[error("range not satisfiable: the file has {0} bytes")]
    RangeNotSatisfiable(u64),
    /// 503: the cluster could not serve the request — Redis is down, or the
    /// node owning the call cannot be reached; the text says which. Nothing
    /// was changed.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
}

/// What a 404 did not find, as the answer spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Unknown {
    #[error("callId")]
    CallId,
    #[error("callDomain")]
    CallDomain,
    #[error("dial-in entry id")]
    Entry,
    #[error("recordingId")]
    Recording,
    /// The call has no recording (or its file is gone).
    #[error("recording: the call has none")]
    CallRecording,
}

/// The cause of a 500: logged with the answer, never shown to the client.
#[derive(Debug, thiserror::Error)]
pub enum Internal {
    /// The database refused.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The blocking task running the store call panicked or was cancelled.
    #[error("store task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// The stored entries could not be put in force.
    #[error(transparent)]
    Entries(#[from] EntryError),
}

impl From<NotLive> for ApiError {
    fn from(e: NotLive) -> Self {
        match e {
            NotLive::Unknown => ApiError::Unknown(Unknown::CallId),
            NotLive::Ended(state) => ApiError::CallIs(state.name()),
        }
    }
}

impl From<CallError> for ApiError {
    fn from(e: CallError) -> Self {
        match e {
            CallError::Gone => ApiError::CallIs("ended"),
            CallError::Refused(r) => ApiError::Refused(r),
        }
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        ApiError::BadRequest(e.into())
    }
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) | ApiError::BodyUnreadable(_) | ApiError::BadEntry(_) => {
                StatusCode::BAD_REQUEST
            }
            ApiError::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Undecodable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::NoSuchEndpoint | ApiError::Unknown(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::CallIs(_)
            | ApiError::Refused(_)
            | ApiError::EntryClash(_)
            | ApiError::ConfigFileEntry
            | ApiError::RecordingUnderWay => StatusCode::CONFLICT,
            ApiError::RangeNotSatisfiable(_) => StatusCode::RANGE_NOT_SATISFIABLE,
            ApiError::Storage(_) | ApiError::RecordsUnreadable(_) | ApiError::RecordingFile(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            ApiError::Cluster(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The answer: the status, and `{"error": "…"}`. A 500's cause is
    /// logged here, as the client only reads that something failed.
    pub fn into_response(self) -> Response<Body> {
        match &self {
            ApiError::Storage(cause) => tracing::error!(error = %cause, "provisioning failed"),
            ApiError::RecordsUnreadable(cause) => {
                tracing::error!(error = %cause, "call records unreadable")
            }
            ApiError::Cluster(cause) => tracing::info!(error = %cause, "answered 503"),
            _ => {}
        }
        json(
            self.status(),
            &serde_json::json!({ "error": self.to_string() }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_texts() {
        let cases: [(ApiError, u16, &str); 10] = [
            (ApiError::BodyTooLarge, 413, "body larger than 65536 bytes"),
            (
                ApiError::Unauthorized,
                401,
                "missing or invalid bearer token",
            ),
            (ApiError::NoSuchEndpoint, 404, "no such endpoint"),
            (ApiError::MethodNotAllowed, 405, "method not allowed here"),
            (ApiError::Unknown(Unknown::CallId), 404, "unknown callId"),
            (
                ApiError::Unknown(Unknown::CallDomain),
                404,
                "unknown callDomain",
            ),
            (
                ApiError::Unknown(Unknown::Entry),
                404,
                "unknown dial-in entry id",
            ),
            (ApiError::CallIs("ended"), 409, "call is ended"),
            (
                ClusterError::Redis("Connection refused".into()).into(),
                503,
                "cluster unavailable: redis: Connection refused",
            ),
            (
                FieldError::rule("limit", "must be 1 to 1000").into(),
                400,
                "limit: must be 1 to 1000",
            ),
        ];
        for (e, status, text) in cases {
            assert_eq!((e.status().as_u16(), e.to_string()), (status, text.into()));
        }
    }

    #[tokio::test]
    async fn the_answer_is_json_with_the_status() {
        let r = ApiError::ConfigFileEntry.into_response();
        assert_eq!(r.status(), StatusCode::CONFLICT);
        let body = warp::hyper::body::to_bytes(r.into_body()).await.unwrap();
        assert_eq!(
            &body[..],
            br#"{"error":"entry is defined in the config file; change it there"}"#
        );
    }
}
