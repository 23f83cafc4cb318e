//! What goes into the call machine and what comes out: its states and
//! policy, the inputs the driver reports, the actions it asks for, and
//! the timeline's lines. Kept apart from `machine` so that file holds
//! only the transitions.

use crate::config::OnRoomHangup;
use serde::Serialize;
use serde_json::Value;
use std::time::Duration;

/// Where a call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Answered, hearing hold music, no transfer under way.
    Held,
    /// A transfer is under way; the caller hears music, or the room it is
    /// being moved away from.
    Transferring,
    /// Audio flows between caller and room.
    Bridged,
    /// Hold timed out; the announcement plays, then the call ends.
    Announcing,
    /// Over; both legs released.
    Ended,
}

/// How a call behaves, from its `[[dialin]]` entry (fixed at answer time:
/// later changes to the entry do not touch calls already held).
#[derive(Debug, Clone)]
pub struct Policy {
    pub transfer_timeout: Duration,
    pub max_hold: Duration,
    pub on_room_hangup: OnRoomHangup,
    pub on_hold_timeout: HoldTimeout,
    /// Longest a room may ring on one attempt.
    pub ring_cap: Duration,
}

/// What a hold timeout does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HoldTimeout {
    /// Hang up, after the announcement if there is one.
    Hangup { announce: bool },
    /// Transfer to this URI.
    Transfer(String),
}

/// One room INVITE (or REFER) to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    pub target: String,
    /// The caller's custom headers (after the entry's policy), then the
    /// update's, which replace the caller's of the same name.
    pub headers: Vec<(String, String)>,
    pub ring_timeout: Duration,
}

/// Why an update or hold request was refused (409).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct UpdateRefused {
    pub state: State,
    pub reason: String,
}

/// How an accepted update was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// A transfer started.
    Started,
    /// The same update was already taken (same Idempotency-Key, or the same
    /// target while its transfer is under way or done): nothing new starts.
    Duplicate,
}

/// What happened, as the driver reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// One webhook attempt ended.
    WebhookAttempt {
        number: u32,
        status: Option<u16>,
        error: Option<String>,
    },
    /// Webhook delivery gave up.
    WebhookGaveUp,
    /// The room answered 2xx and media now flows through the bridge.
    RoomAnswered,
    /// The room INVITE failed: a SIP code, or none for no answer/transport.
    RoomFailed {
        code: Option<u16>,
        reason: String,
    },
    /// The backoff asked for by `Action::RetryIn` is over.
    RetryDue,
    /// The caller's side accepted our REFER and reported the target's 2xx.
    ReferSucceeded,
    /// REFER was refused, or the caller's side reported a failure.
    ReferFailed {
        code: Option<u16>,
        reason: String,
    },
    CallerHungUp,
    RoomHungUp,
    /// `DELETE /v1/calls/{id}`.
    HangupRequested,
    HoldTimeout,
    /// The hold-timeout announcement has played.
    AnnouncementDone,
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// INVITE a room; the caller stays where it is until it answers.
    Dial(Transfer),
    /// Ask the caller's side to call the target itself.
    Refer(Transfer),
    /// Feed `Input::RetryDue` after this long.
    RetryIn(Duration),
    /// Stop the room INVITE, REFER or backoff under way.
    CancelTransfer,
    HangupCaller,
    /// Hang up the room the caller is bridged to.
    HangupRoom,
    /// The room is gone: hold music again, continuing the caller's stream.
    ResumeHold,
    /// Post the incoming-call webhook again (a room hung up on a caller
    /// whose entry says "hold").
    PostWebhook,
    PlayAnnouncement,
    /// Release media, leave the registry: the call is over.
    Finish,
}

/// One line of the timeline.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// Unix time, milliseconds.
    pub at: u64,
    pub event: &'static str,
    #[serde(skip_serializing_if = "Value::is_null")]
    pub detail: Value,
}
