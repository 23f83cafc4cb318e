//! What goes into the call machine and what comes out: its states and
//! policy, the inputs the driver reports, the actions it asks for, and
//! the timeline's lines. Kept apart from `machine` so that file holds
//! only the transitions.

use crate::call::machine::plan::{StreamTarget, TransferRequest};
use crate::call::machine::recording::{RecordRequest, RecordingEnd, RecordingNow};
use crate::codec::{AudioCodec, DtmfPress};
use crate::config::OnRoomHangup;
use crate::media::record::PauseMode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// What follows a played prompt.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PlayThen {
    /// Hold music again, from where it stopped.
    #[default]
    Hold,
    /// Hang up (reason `api_hangup`: the API asked for it).
    Hangup,
}

impl PlayThen {
    /// The name as the API spells it.
    pub fn name(self) -> &'static str {
        match self {
            PlayThen::Hold => "hold",
            PlayThen::Hangup => "hangup",
        }
    }
}

/// Where a call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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

impl State {
    /// The state as the API spells it.
    pub fn name(self) -> &'static str {
        match self {
            State::Held => "held",
            State::Transferring => "transferring",
            State::Bridged => "bridged",
            State::Announcing => "announcing",
            State::Ended => "ended",
        }
    }
}

/// How a call behaves, from its `[[dialin]]` entry (fixed at answer time:
/// later changes to the entry do not touch calls already held).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    pub transfer_timeout: Duration,
    pub max_hold: Duration,
    pub on_room_hangup: OnRoomHangup,
    pub on_hold_timeout: HoldTimeout,
    /// Longest a room may ring on one attempt (and a REFER may take).
    pub ring_cap: Duration,
    /// A key the held caller presses → the room to transfer to (the
    /// entry's `dtmf_transfer`). Empty for calls saved before it existed.
    #[serde(default)]
    pub dtmf_transfer: BTreeMap<String, String>,
    /// Tell a waiting caller its position this often (none: never).
    #[serde(default)]
    pub announce_every: Option<Duration>,
    /// When the call is recorded on its own (the entry's `record`).
    #[serde(default)]
    pub record: crate::config::RecordMode,
    /// The length of the entry's `record_announcement`, played to the
    /// caller before any recording starts (None: no announcement).
    #[serde(default)]
    pub consent: Option<Duration>,
}

/// What a hold timeout does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HoldTimeout {
    /// Hang up, after the announcement if there is one (its length).
    Hangup { announcement: Option<Duration> },
    /// Transfer to this URI.
    Transfer(String),
}

/// One room INVITE (or REFER) to send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transfer {
    pub target: String,
    /// The caller's custom headers (after the entry's policy), then the
    /// update's, which replace the caller's of the same name.
    pub headers: Vec<(String, String)>,
    /// How long the room may ring (the machine gives the attempt up then
    /// itself; a REFER has its own deadline).
    pub ring_timeout: Duration,
    /// The room leg is SRTP (see `secure::room_wants_srtp`); only ever
    /// for a target reached over TLS (see `room::srtp_refused`).
    pub srtp: bool,
    /// The codecs to offer, in order (see `room::offer_codecs`).
    #[serde(default = "crate::call::machine::room::saved_default")]
    pub codecs: Vec<AudioCodec>,
}

/// One voice bot's stream to open (in place of a room INVITE).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect {
    pub stream: StreamTarget,
    /// The `start` message's `customParameters`: `callId`, `From`, `To`,
    /// the caller's custom headers, then the update's `streamParameters`
    /// (which win over ours of the same name).
    pub parameters: Vec<(String, String)>,
    /// How long this attempt may take, up to `start` sent (the machine
    /// gives it up then itself; shown for the log).
    pub timeout: Duration,
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

/// What happened, as the driver reports it: raw facts and the API's
/// requests, no decisions. Timers are not inputs: the machine keeps its
/// deadlines itself (`poll_timeout`, `handle_timeout`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// `pinlessCallUpdate`, with its `Idempotency-Key` if any. Answered
    /// by `Action::Reply(Reply::Update(..))`.
    UpdateRequested {
        request: TransferRequest,
        key: Option<String>,
    },
    /// `POST /v1/calls/{id}/hold`. Answered by `Reply::Hold`.
    HoldRequested,
    /// `POST /v1/calls/{id}/play` (the driver keeps the decoded prompt).
    /// Answered by `Reply::Play`, then `Action::PlayPrompt` when taken.
    PlayRequested {
        audio: String,
        then: PlayThen,
    },
    /// A prompt handed to the caller's media is over.
    PromptFinished(PromptEnd),
    /// The early-media caller's 200 OK went out (its leg is confirmed:
    /// in-dialog requests such as a REFER may now be sent).
    CallerAnswered,
    /// The node stops in resume mode and saves the call: an early caller
    /// must be answered first (a 183 cannot be taken over); see
    /// `suspend.rs`.
    Suspending,
    /// One webhook attempt ended.
    WebhookAttempt {
        number: u32,
        status: Option<u16>,
        error: Option<String>,
    },
    /// Webhook delivery gave up.
    WebhookGaveUp,
    /// The webhook's 2xx answer names a room: the transfer it asks for,
    /// or why it cannot be used (the field and the reason).
    WebhookRouted(Result<TransferRequest, crate::call::machine::route::RouteError>),
    /// A room answered our INVITE 2xx with this SDP, to the offer made
    /// with our SRTP keys `offered` (None: plain): not yet used; the
    /// machine decides (`Action::BridgeRoom` or `HangupAnswered`).
    RoomAnswer {
        sdp: bytes::Bytes,
        offered: Option<Vec<(u32, crate::sdes::MasterKey)>>,
    },
    /// The room (or bot) is connected and media now flows through the
    /// bridge.
    RoomAnswered,
    /// The room INVITE failed: a SIP code, or none for no answer/transport.
    /// For a stream: the HTTP status of a refused handshake, or none.
    RoomFailed {
        code: Option<u16>,
        reason: String,
    },
    /// A stream attempt that no retry can mend (its URL or a handshake
    /// header cannot be used at all): the target is dropped, not retried.
    StreamUnusable(String),
    /// The final answer to our REFER (`None`: no answer, or it could not be
    /// sent).
    ReferAnswered(Option<u16>),
    /// A NOTIFY of our REFER's progress: the status code of its sipfrag.
    ReferNotified(u16),
    CallerHungUp,
    /// The room hung up, or the bot closed its stream.
    RoomHungUp,
    /// `DELETE /v1/calls/{id}`.
    HangupRequested,
    /// The node is stopping and hangs up the calls still up (drain mode,
    /// when `drain_secs` have passed or a second signal came).
    Shutdown,
    /// A leg that should send RTP sent nothing (RTP nor RTCP) for
    /// `rtp_timeout_secs`: its peer is gone without a BYE.
    PeerSilent(Silent),
    /// The caller's session timer (RFC 4028) ran out without a refresh.
    SessionExpired,
    /// The caller pressed a key, reported once per press, and how it came.
    Dtmf(DtmfPress, KeyVia),
    /// `POST /v1/calls/{id}/recording`. Answered by `Reply::Record`.
    RecordRequested(RecordRequest),
    /// A recording's file is complete or failed (possibly after the call
    /// ended).
    RecordingEnded {
        id: String,
        end: RecordingEnd,
    },
}

/// How a caller's key press reached us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyVia {
    /// RFC 4733 telephone-events in its RTP (the relay carries them on to
    /// a room by itself).
    Rtp,
    /// A SIP INFO (a room would get nothing unless it is sent on).
    Info,
}

/// A prompt that is over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PromptEnd {
    /// A position announcement (or one that had nothing to say).
    Announcement,
    /// A play-API prompt: its `audio` and `then`, and whether it played
    /// to its end (else refused or cut short).
    Play {
        audio: String,
        then: PlayThen,
        played: bool,
    },
    /// The recording announcement, and whether it played to its end.
    Consent { played: bool },
}

/// The machine's answer to an API request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Update(Result<Accepted, UpdateRefused>),
    Hold(Result<(), UpdateRefused>),
    Play(Result<(), UpdateRefused>),
    Record(Result<RecordingNow, UpdateRefused>),
}

/// Where a caller's key press goes on to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyTo {
    /// The room, as a SIP INFO (`application/dtmf-relay`).
    RoomInfo,
    /// The voice bot, as a `dtmf` message on its stream.
    Bot,
}

/// Which leg went silent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Silent {
    Caller,
    Room,
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// INVITE a room; the caller stays where it is until it answers.
    Dial(Transfer),
    /// Ask the caller's side to call the target itself.
    Refer(Transfer),
    /// Open a voice bot's stream; the caller stays where it is until
    /// `start` is sent (then `RoomAnswered`, or `RoomFailed`).
    Connect(Connect),
    /// Stop the room INVITE or REFER under way.
    CancelTransfer,
    /// Bridge the caller to the room that just answered (its media as the
    /// machine accepted it), then report `RoomAnswered`, or `RoomFailed`
    /// when the relay cannot be set up. Make before break: only then does
    /// an earlier room or bot go.
    BridgeRoom(Box<crate::call::machine::room::Usable>),
    /// BYE the room that just answered: its answer cannot be used.
    HangupAnswered,
    HangupCaller,
    /// Hang up the room the caller is bridged to.
    HangupRoom,
    /// The room is gone: hold music again, continuing the caller's stream.
    ResumeHold,
    /// Post the incoming-call webhook again (a room hung up on a caller
    /// whose entry says "hold").
    PostWebhook,
    /// Answer the caller (200 OK with the SDP of its 183): it was in early
    /// media. Its music or room goes on as it is.
    AnswerCaller,
    /// Play the hold-timeout announcement (the machine knows its length and
    /// ends the call when it is over).
    PlayAnnouncement,
    /// Tell the waiting caller its place in the queue and the estimated
    /// wait (the driver asks the queue: the machine knows no other call).
    AnnouncePosition,
    /// Answer the API request being handled.
    Reply(Reply),
    /// Play the play-API prompt just accepted (the driver holds it).
    PlayPrompt,
    /// Send the caller's key press on (see `KeyTo`).
    SendDtmf {
        press: DtmfPress,
        to: KeyTo,
    },
    /// Record the call into recording `id`: a new file, or (`resume_at`:
    /// the recording's clock now, in ms) the file of a call resumed after
    /// a restart, gone on with.
    StartRecording {
        id: String,
        resume_at: Option<u64>,
    },
    PauseRecording(PauseMode),
    /// Play the entry's recording announcement to the held caller (the
    /// machine starts the recording, or the transfer, once it is over).
    PlayConsent,
    ResumeRecording,
    /// End the recording under way (its file is finished apart; its end
    /// comes back as `Input::RecordingEnded`).
    StopRecording,
    /// Save the call as it stands and leave it up, untouched, for the
    /// next start (a stop in resume mode): the driver's last action.
    Suspend,
    /// Release media, leave the registry: the call is over.
    Finish,
}

/// What a timeline line says happened. Serialized to the names the API,
/// the events webhook and the records have always used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    #[serde(rename = "call.held")]
    Held,
    #[serde(rename = "headers.dropped")]
    HeadersDropped,
    #[serde(rename = "webhook.attempt")]
    WebhookAttempt,
    #[serde(rename = "webhook.failed")]
    WebhookFailed,
    #[serde(rename = "webhook.routed")]
    WebhookRouted,
    #[serde(rename = "update.refused")]
    UpdateRefused,
    #[serde(rename = "call.transfer_started")]
    TransferStarted,
    #[serde(rename = "call.transfer_failed")]
    TransferFailed,
    #[serde(rename = "call.bridged")]
    Bridged,
    #[serde(rename = "call.returned_to_hold")]
    ReturnedToHold,
    #[serde(rename = "call.hold_timeout")]
    HoldTimeout,
    #[serde(rename = "call.referred")]
    Referred,
    #[serde(rename = "call.refer_failed")]
    ReferFailed,
    #[serde(rename = "call.ended")]
    Ended,
    #[serde(rename = "call.dtmf")]
    Dtmf,
    /// A caller held in early media was answered (200 OK).
    #[serde(rename = "call.answered")]
    Answered,
    #[serde(rename = "call.play_finished")]
    PlayFinished,
    #[serde(rename = "call.recording_started")]
    RecordingStarted,
    #[serde(rename = "call.recording_paused")]
    RecordingPaused,
    #[serde(rename = "call.recording_resumed")]
    RecordingResumed,
    #[serde(rename = "call.recording_stopped")]
    RecordingStopped,
    #[serde(rename = "call.recording_ready")]
    RecordingReady,
    #[serde(rename = "call.recording_failed")]
    RecordingFailed,
}

impl EventKind {
    /// The name as serialized (`call.held`, …).
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Held => "call.held",
            EventKind::HeadersDropped => "headers.dropped",
            EventKind::WebhookAttempt => "webhook.attempt",
            EventKind::WebhookFailed => "webhook.failed",
            EventKind::WebhookRouted => "webhook.routed",
            EventKind::UpdateRefused => "update.refused",
            EventKind::TransferStarted => "call.transfer_started",
            EventKind::TransferFailed => "call.transfer_failed",
            EventKind::Bridged => "call.bridged",
            EventKind::ReturnedToHold => "call.returned_to_hold",
            EventKind::HoldTimeout => "call.hold_timeout",
            EventKind::Referred => "call.referred",
            EventKind::ReferFailed => "call.refer_failed",
            EventKind::Ended => "call.ended",
            EventKind::Dtmf => "call.dtmf",
            EventKind::Answered => "call.answered",
            EventKind::PlayFinished => "call.play_finished",
            EventKind::RecordingStarted => "call.recording_started",
            EventKind::RecordingPaused => "call.recording_paused",
            EventKind::RecordingResumed => "call.recording_resumed",
            EventKind::RecordingStopped => "call.recording_stopped",
            EventKind::RecordingReady => "call.recording_ready",
            EventKind::RecordingFailed => "call.recording_failed",
        }
    }

    /// Posted to the entry's events webhook; the rest (webhook attempts,
    /// refused updates, dropped headers) stay in `GET /v1/calls/{id}`.
    pub fn published(self) -> bool {
        !matches!(
            self,
            EventKind::HeadersDropped
                | EventKind::WebhookAttempt
                | EventKind::WebhookFailed
                | EventKind::WebhookRouted
                | EventKind::UpdateRefused
        )
    }
}

/// Why a call ended. Serialized to the names the API has always used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    CallerHangup,
    RoomHangup,
    ApiHangup,
    HoldTimeout,
    Referred,
    /// The call's driver stopped without ending the call (a bug); the
    /// gateway released what it held.
    GatewayError,
    /// The node was stopping (drain mode) and the call was still up.
    Shutdown,
    /// A leg sent no RTP for `rtp_timeout_secs` (a peer gone without BYE).
    RtpTimeout,
    /// The caller's session timer ran out without a refresh (RFC 4028).
    SessionExpired,
}

impl EndReason {
    /// Every reason, for metrics that count each.
    pub const ALL: [EndReason; 9] = [
        EndReason::CallerHangup,
        EndReason::RoomHangup,
        EndReason::ApiHangup,
        EndReason::HoldTimeout,
        EndReason::Referred,
        EndReason::GatewayError,
        EndReason::Shutdown,
        EndReason::RtpTimeout,
        EndReason::SessionExpired,
    ];

    /// The name as serialized (`caller_hangup`, …).
    pub fn name(self) -> &'static str {
        match self {
            EndReason::CallerHangup => "caller_hangup",
            EndReason::RoomHangup => "room_hangup",
            EndReason::ApiHangup => "api_hangup",
            EndReason::HoldTimeout => "hold_timeout",
            EndReason::Referred => "referred",
            EndReason::GatewayError => "gateway_error",
            EndReason::Shutdown => "shutdown",
            EndReason::RtpTimeout => "rtp_timeout",
            EndReason::SessionExpired => "session_expired",
        }
    }

    /// Who ended the call, as `call.ended`'s `by` says it.
    pub fn by(self) -> &'static str {
        match self {
            EndReason::CallerHangup | EndReason::Referred => "caller",
            EndReason::RoomHangup => "room",
            EndReason::ApiHangup => "api",
            EndReason::HoldTimeout
            | EndReason::GatewayError
            | EndReason::Shutdown
            | EndReason::RtpTimeout
            | EndReason::SessionExpired => "gateway",
        }
    }
}

/// One line of the timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Unix time, milliseconds.
    pub at: u64,
    pub event: EventKind,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub detail: Value,
}

impl Event {
    /// This line settles the incoming-call webhook: an attempt answered
    /// 2xx, or delivery given up (it is not posted again either way).
    pub fn settles_webhook(&self) -> bool {
        match self.event {
            EventKind::WebhookAttempt => self.detail["status"]
                .as_u64()
                .is_some_and(|s| (200..300).contains(&s)),
            EventKind::WebhookFailed => true,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_what_serde_writes() {
        use EventKind::*;
        for k in [
            Held,
            HeadersDropped,
            WebhookAttempt,
            WebhookFailed,
            UpdateRefused,
            TransferStarted,
            TransferFailed,
            Bridged,
            ReturnedToHold,
            HoldTimeout,
            Referred,
            ReferFailed,
            Ended,
            Dtmf,
            Answered,
            PlayFinished,
            RecordingStarted,
            RecordingPaused,
            RecordingResumed,
            RecordingStopped,
            RecordingReady,
            RecordingFailed,
        ] {
            assert_eq!(serde_json::to_value(k).unwrap(), k.name());
        }
        use EndReason as R;
        for r in [
            R::CallerHangup,
            R::RoomHangup,
            R::ApiHangup,
            R::HoldTimeout,
            R::Referred,
            R::GatewayError,
            R::Shutdown,
            R::RtpTimeout,
            R::SessionExpired,
        ] {
            assert_eq!(serde_json::to_value(r).unwrap(), r.name());
        }
        for s in [
            State::Held,
            State::Transferring,
            State::Bridged,
            State::Announcing,
            State::Ended,
        ] {
            assert_eq!(serde_json::to_value(s).unwrap(), s.name());
        }
    }
}
