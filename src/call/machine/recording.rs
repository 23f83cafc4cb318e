//! What call recording is to the machine, as data: the recording under
//! way (saved with the call), what the recording API asks, what it is
//! answered, and how a recording's file ended. The transitions are in
//! `record.rs`.

use crate::clock::Instant;
use crate::media::record::PauseMode;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The recording under way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recording {
    pub id: String,
    /// When capture started, as shown (Unix ms).
    pub started_at: u64,
    /// Paused since then, and how.
    pub paused: Option<(Instant, PauseMode)>,
    /// Time left out of the file by pauses that skip, ms.
    pub skipped_ms: u64,
}

/// What waits for the recording announcement to be over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConsentFor {
    /// The recording `id` (asked at the answer, or by the API).
    Record { id: String },
    /// The transfer under way, which records from its bridge: it starts
    /// once the caller has heard the announcement on hold.
    Transfer,
}

/// What the recording API asks (`POST /v1/calls/{id}/recording`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordRequest {
    Start,
    Stop,
    Pause(PauseMode),
    Resume,
}

/// Where a call's recording stands, as the recording API answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingNow {
    pub recording_id: String,
    /// `recording`, `paused` or `stopped`.
    pub state: &'static str,
}

/// A recording's end, as the driver reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordingEnd {
    /// Its file is complete: the detail of `call.recording_ready`.
    Ready(Value),
    /// It could not be written (the error).
    Failed(String),
}
