//! The call state machine, without I/O. Inputs (facts and the API's
//! requests) and the time go in through `handle`, actions come out (an
//! API request's answer first, as `Action::Reply`), and every step is
//! written to the call's timeline (which the events webhook and
//! `GET /v1/calls/{id}` both read). The machine keeps every deadline of
//! the call itself — hold timeout, early-media limit, ring timeout,
//! transfer backoff, REFER, announcement — on the monotonic clock:
//! `poll_timeout` says when it next wants to be woken, `handle_timeout`
//! wakes it (as quinn-proto and str0m do). So a call's whole state is
//! this value: it serializes, and a test drives it on a fake clock.
//!
//! ```text
//!            ┌──────── update ────────┐           update (another room)
//!            ▼                        │          ┌─────────────┐
//!   Held ──update──▶ Transferring ──room 2xx──▶ Bridged ◀──────┘
//!    ▲  ▲               │ every target failed,     │
//!    │  └───────────────┘ or deadline (back to     │ POST …/hold, or the room
//!    │                    where the caller was)    │ hangs up and the entry
//!    └─────────────────────────────────────────────┘ says "hold"
//!  Held ──hold timeout──▶ Announcing ──▶ Ended   (or a transfer to
//!                                                  timeout_sip_uri)
//!  any state ──hang-up (caller, room, API)──▶ Ended
//! ```
//! A transfer from Bridged is make-before-break: the caller keeps the old
//! room until the new one answers, and keeps it if the new one fails.
//! Transfers are in `transfer.rs`, the caller's key presses in `dtmf.rs`.

use crate::call::machine::plan::{Mode, Plan, TransferRequest};
use crate::call::machine::view::CallView;
use crate::clock::Instant;
use crate::codec::AudioCodec;
use crate::config::OnRoomHangup;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::time::Duration;

pub use crate::call::machine::steps::{
    Accepted, Action, Connect, EndReason, Event, EventKind, HoldTimeout, Input, KeyTo, KeyVia,
    PlayThen, Policy, PromptEnd, Reply, Silent, State, Transfer, UpdateRefused,
};

/// Idempotency keys remembered per call.
const KEYS_KEPT: usize = 32;

/// One call's whole state: who, where it is, its timeline and deadlines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    parties: Parties,
    policy: Policy,
    /// When the call was answered, on the monotonic clock and as Unix ms.
    /// Shown times are `created_at` plus monotonic time since `born`, so a
    /// wall-clock step during the call never reorders its timeline.
    born: Instant,
    created_at: u64,
    state: State,
    bridged_at: Option<u64>,
    ended_at: Option<u64>,
    /// The room of the transfer under way, or the one the caller is with.
    target: Option<String>,
    end_reason: Option<EndReason>,
    transfer_attempts: u32,
    /// Time spent on hold music and bridged, so far.
    hold_ms: u64,
    talk_ms: u64,
    timeline: Vec<Event>,
    plan: Option<Plan>,
    /// The REFER under way, if the current attempt is one.
    refer: Option<Referring>,
    /// True while the transfer under way is the hold-timeout one.
    timeout_transfer: bool,
    /// The room the caller is bridged to.
    room: Option<String>,
    /// Since when the caller hears music (None when bridged or timed out).
    held_since: Option<Instant>,
    bridged_since: Option<Instant>,
    /// When the hold-timeout announcement is over.
    announce_until: Option<Instant>,
    /// When the caller's position was last announced (see `announce`).
    #[serde(default)]
    last_position_announced: Option<Instant>,
    keys: Vec<(String, TransferRequest)>,
    /// False while the caller is in early media (183, no 200 yet); a call
    /// saved before early media existed was answered.
    #[serde(default = "early_media::answered_by_default")]
    answered: bool,
    /// In early media: when the caller is answered anyway (`early.rs`).
    #[serde(default)]
    early_until: Option<Instant>,
    /// Key presses taken (`dtmf.rs`).
    #[serde(default)]
    presses: u32,
    /// The request that brought the caller to its room: the same one
    /// again is a duplicate, not a move (`sipUris` name several rooms).
    #[serde(default)]
    room_request: Option<TransferRequest>,
    /// The early-media caller's 200 OK went out (not only asked for): an
    /// in-dialog request to it may be sent. A call saved before this
    /// existed was saved answered.
    #[serde(default = "early_media::answered_by_default")]
    ok_sent: bool,
    /// The recording under way (`record.rs`).
    #[serde(default)]
    recording: Option<recording::Recording>,
    /// Recordings this call has started (each span's id counts them).
    #[serde(default)]
    recordings: u32,
    /// The caller has heard the recording announcement (once a call).
    #[serde(default)]
    consented: bool,
    /// What waits for the announcement playing now.
    #[serde(default)]
    consent: Option<recording::ConsentFor>,
    /// A REFER decided while the caller's 200 OK was still to go out:
    /// sent once it has (`Input::CallerAnswered`).
    #[serde(default)]
    refer_due: Option<Transfer>,
    /// Position announcements handed to the media and not over yet. Not
    /// saved: a prompt playing at a stop is not carried over (the next
    /// start would wait for its end for ever).
    #[serde(skip)]
    announcing: u32,
    /// The codecs a room is offered, in order (`room::offer_codecs`).
    #[serde(default = "room::saved_default")]
    room_codecs: Vec<AudioCodec>,
    /// The caller's codec (None in a call saved before it was kept).
    #[serde(default)]
    caller_codec: Option<AudioCodec>,
    /// The codec of the room the caller is bridged to (None with a bot or
    /// no room).
    #[serde(default)]
    room_codec: Option<AudioCodec>,
    /// The codec a room's usable answer agreed, until the bridge to it is
    /// made (not saved: an attempt does not outlive a stop).
    #[serde(skip)]
    answering_codec: Option<AudioCodec>,
    /// The room INVITE or bot stream under way gives up then (its ring
    /// timeout, bounded by the transfer's deadline), and how long it had.
    #[serde(default)]
    attempt_until: Option<(Instant, Duration)>,
    /// A stop waits for the early caller's 200 OK until then (`suspend.rs`).
    /// Not saved: the call is saved only once it has been answered.
    #[serde(skip)]
    suspend_until: Option<Instant>,
}

/// A REFER sent to the caller's side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Referring {
    /// The REFER itself was accepted (2xx); now its final NOTIFY is awaited.
    accepted: bool,
    /// No final NOTIFY by then: the REFER failed.
    deadline: Instant,
}

/// Who the call is from and to, as the webhook shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parties {
    pub call_id: String,
    pub call_domain: String,
    pub from: String,
    pub to: String,
    pub entry: String,
    /// The caller's custom headers, as the entry's policy passed them.
    pub caller_headers: Vec<(String, String)>,
    /// The registration (`[[registration]]` name) whose binding the call
    /// came through, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration: Option<String>,
}

impl Machine {
    /// A call just answered and put on hold at `now`, which the wall clock
    /// shows as `unix_ms`.
    pub fn answered(parties: Parties, policy: Policy, now: Instant, unix_ms: u64) -> Self {
        let mut m = Machine {
            parties,
            policy,
            born: now,
            created_at: unix_ms,
            state: State::Held,
            bridged_at: None,
            ended_at: None,
            target: None,
            end_reason: None,
            transfer_attempts: 0,
            hold_ms: 0,
            talk_ms: 0,
            timeline: Vec::new(),
            plan: None,
            refer: None,
            timeout_transfer: false,
            room: None,
            held_since: Some(now),
            bridged_since: None,
            announce_until: None,
            last_position_announced: None,
            keys: Vec::new(),
            answered: true,
            early_until: None,
            presses: 0,
            room_request: None,
            ok_sent: true,
            recording: None,
            recordings: 0,
            consented: false,
            consent: None,
            refer_due: None,
            announcing: 0,
            room_codecs: room::saved_default(),
            caller_codec: None,
            room_codec: None,
            answering_codec: None,
            attempt_until: None,
            suspend_until: None,
        };
        m.log(now, EventKind::Held, Value::Null);
        m
    }

    /// Rooms of this call are offered `codecs`, in that order, the
    /// caller's own first (see `room::offer_codecs`).
    pub fn with_room_codecs(mut self, codecs: Vec<AudioCodec>) -> Self {
        self.caller_codec = codecs.first().copied();
        self.room_codecs = codecs;
        self
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// Why the call ended, once it has.
    pub fn end_reason(&self) -> Option<EndReason> {
        self.end_reason
    }

    pub fn parties(&self) -> &Parties {
        &self.parties
    }

    pub fn timeline(&self) -> &[Event] {
        &self.timeline
    }

    /// What the API shows of the call.
    pub fn view(&self) -> CallView {
        CallView {
            call_id: self.parties.call_id.clone(),
            call_domain: self.parties.call_domain.clone(),
            state: self.state,
            from: self.parties.from.clone(),
            to: self.parties.to.clone(),
            entry: self.parties.entry.clone(),
            created_at: self.created_at,
            bridged_at: self.bridged_at,
            ended_at: self.ended_at,
            target: self.target.clone(),
            end_reason: self.end_reason,
            transfer_attempts: self.transfer_attempts,
            hold_ms: self.hold_ms,
            talk_ms: self.talk_ms,
            sip_headers: self.parties.caller_headers.clone(),
            registration: self.parties.registration.clone(),
            timeline: self.timeline.clone(),
            answered: self.answered,
            codecs: view::Codecs {
                caller: self.caller_codec,
                room: self.room_codec.filter(|_| self.state == State::Bridged),
            },
        }
    }

    /// `now` as Unix ms, for what is shown.
    fn shown(&self, now: Instant) -> u64 {
        let since = u64::try_from(now.since(self.born).as_millis()).unwrap_or(u64::MAX);
        self.created_at.saturating_add(since)
    }

    /// Adds a line to the timeline.
    pub fn log(&mut self, now: Instant, event: EventKind, detail: Value) {
        let at = self.shown(now);
        self.timeline.push(Event { at, event, detail });
    }

    /// The earliest deadline the machine is waiting for, if any: the
    /// driver calls `handle_timeout` when it is reached.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.hold_deadline(),
            self.plan.as_ref().and_then(|p| p.retry_at),
            self.refer.as_ref().map(|r| r.deadline),
            self.attempt_until.map(|(at, _)| at),
            self.announce_until,
            self.early_deadline(),
            self.position_deadline(),
            self.suspend_until,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Acts on every deadline reached by `now`.
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<Action> {
        let mut actions = Vec::new();
        if self.state == State::Ended {
            return actions;
        }
        if let Some(ended) = self.suspend_timed_out(now) {
            return ended;
        }
        if self.announce_until.is_some_and(|at| at <= now) {
            self.announce_until = None;
            return self.end(now, EndReason::HoldTimeout, true);
        }
        actions.extend(self.early_timed_out(now));
        // The hold timeout first: it drops any transfer under way, whose
        // own deadlines then no longer matter.
        if self.hold_deadline().is_some_and(|at| at <= now) {
            actions.extend(self.hold_timed_out(now));
        }
        if let Some(r) = self.refer.as_ref().filter(|r| r.deadline <= now) {
            let reason = if r.accepted {
                "no final NOTIFY in time"
            } else {
                "REFER refused or not answered"
            };
            actions.push(Action::CancelTransfer);
            actions.extend(self.refer_failed(None, reason, now));
        }
        actions.extend(self.attempt_timed_out(now));
        if let Some(plan) = self.plan.as_mut()
            && plan.retry_at.is_some_and(|at| at <= now)
        {
            plan.retry_at = None;
            actions.extend(self.attempt(now));
        }
        actions.extend(self.position_due(now));
        actions
    }

    /// Whether the app has the incoming-call webhook: one attempt was
    /// answered 2xx, or delivery gave up (it will not be posted again).
    pub fn webhook_settled(&self) -> bool {
        self.timeline.iter().any(Event::settles_webhook)
    }

    /// When the hold timeout fires, if the caller is on hold.
    fn hold_deadline(&self) -> Option<Instant> {
        let since = self.held_since?;
        if self.timeout_transfer || self.state == State::Announcing {
            return None;
        }
        Some(since + self.policy.max_hold)
    }

    fn refuse(&mut self, now: Instant, reason: String) -> UpdateRefused {
        let detail = json!({ "reason": reason, "state": self.state });
        self.log(now, EventKind::UpdateRefused, detail);
        UpdateRefused {
            state: self.state,
            reason,
        }
    }

    /// `POST /v1/calls/{id}/hold`: back to music from wherever the call is.
    fn request_hold(&mut self, now: Instant) -> Result<Vec<Action>, UpdateRefused> {
        if matches!(self.state, State::Ended | State::Announcing) {
            let reason = format!("call is {}", self.state.name());
            return Err(self.refuse(now, reason));
        }
        let mut actions = self.drop_transfer();
        self.timeout_transfer = false;
        if self.room.is_some() {
            actions.push(Action::HangupRoom);
            actions.push(Action::ResumeHold);
            self.leave_room(now);
        }
        if self.state != State::Held {
            self.back_to_hold(now, "api");
        }
        Ok(actions)
    }

    /// Feeds one input; returns what the driver must do. The one entry
    /// point for facts and requests (deadlines: `handle_timeout`).
    pub fn handle(&mut self, input: Input, now: Instant) -> Vec<Action> {
        // Requests are answered whatever the state (an ended call refuses).
        match input {
            Input::UpdateRequested { request, key } => {
                return match self.request_transfer(request, key, now) {
                    Ok((accepted, mut actions)) => {
                        actions.insert(0, Action::Reply(Reply::Update(Ok(accepted))));
                        actions
                    }
                    Err(e) => vec![Action::Reply(Reply::Update(Err(e)))],
                };
            }
            Input::HoldRequested => {
                return match self.request_hold(now) {
                    Ok(mut actions) => {
                        actions.insert(0, Action::Reply(Reply::Hold(Ok(()))));
                        actions
                    }
                    Err(e) => vec![Action::Reply(Reply::Hold(Err(e)))],
                };
            }
            Input::PlayRequested { .. } => {
                return match self.request_play(now) {
                    Ok(()) => vec![Action::Reply(Reply::Play(Ok(()))), Action::PlayPrompt],
                    Err(e) => vec![Action::Reply(Reply::Play(Err(e)))],
                };
            }
            Input::PromptFinished(PromptEnd::Consent { played }) => {
                return self.consent_over(played, now);
            }
            Input::PromptFinished(PromptEnd::Announcement) => {
                self.announcing = self.announcing.saturating_sub(1);
                return vec![];
            }
            Input::PromptFinished(PromptEnd::Play {
                audio,
                then,
                played,
            }) => return self.play_finished(&audio, then, played, now),
            Input::CallerAnswered => {
                if let Some(save) = self.answered_while_suspending() {
                    return save;
                }
                self.ok_sent = true;
                return self
                    .refer_due
                    .take()
                    .map(Action::Refer)
                    .into_iter()
                    .collect();
            }
            Input::Suspending => return self.suspending(now),
            Input::RecordRequested(request) => {
                return match self.request_record(request, now) {
                    Ok((status, mut actions)) => {
                        actions.insert(0, Action::Reply(Reply::Record(Ok(status))));
                        actions
                    }
                    Err(e) => vec![Action::Reply(Reply::Record(Err(e)))],
                };
            }
            Input::RecordingEnded { id, end } => {
                self.recording_ended(&id, end, now);
                return vec![];
            }
            _ => {}
        }
        if self.state == State::Ended {
            return vec![];
        }
        let transferring = self.plan.as_ref().is_some_and(|p| p.retry_at.is_none());
        match input {
            Input::WebhookAttempt {
                number,
                status,
                error,
            } => {
                let detail = json!({ "attempt": number, "status": status, "error": error });
                self.log(now, EventKind::WebhookAttempt, detail);
                vec![]
            }
            Input::WebhookGaveUp => {
                self.log(now, EventKind::WebhookFailed, Value::Null);
                vec![]
            }
            Input::WebhookRouted(answer) => self.webhook_routed(answer, now),
            Input::RoomAnswer { sdp, offered } if transferring && self.refer.is_none() => {
                self.room_answer(&sdp, offered.as_deref(), now)
            }
            // An answer to an attempt no longer wanted: that room goes.
            Input::RoomAnswer { .. } => vec![Action::HangupAnswered],
            Input::RoomAnswered if transferring && self.refer.is_none() => self.bridged(now),
            Input::RoomFailed { code, reason } if transferring && self.refer.is_none() => {
                self.attempt_failed(code, reason, now)
            }
            Input::ReferAnswered(code) => self.refer_answered(code, now),
            Input::ReferNotified(code) => self.refer_notified(code, now),
            Input::StreamUnusable(reason) if transferring && self.refer.is_none() => {
                self.attempt_unusable(reason, now)
            }
            Input::RoomAnswered | Input::RoomFailed { .. } | Input::StreamUnusable(_) => vec![],
            Input::CallerHungUp => self.end(now, EndReason::CallerHangup, false),
            Input::RoomHungUp if self.room.is_some() => self.room_hung_up(now),
            Input::RoomHungUp => vec![],
            Input::HangupRequested => self.end(now, EndReason::ApiHangup, true),
            Input::Shutdown => self.end(now, EndReason::Shutdown, true),
            // The silent peer is gone: BYE the other leg (and the silent
            // one too, in case it is only its media that died).
            Input::PeerSilent(_) => self.end(now, EndReason::RtpTimeout, true),
            Input::SessionExpired => self.end(now, EndReason::SessionExpired, true),
            Input::Dtmf(press, via) => self.dtmf(press, via, now),
            Input::UpdateRequested { .. }
            | Input::HoldRequested
            | Input::PlayRequested { .. }
            | Input::PromptFinished(_)
            | Input::CallerAnswered
            | Input::Suspending
            | Input::RecordRequested(_)
            | Input::RecordingEnded { .. } => vec![],
        }
    }

    fn room_hung_up(&mut self, now: Instant) -> Vec<Action> {
        if self.policy.on_room_hangup == OnRoomHangup::End {
            return self.end(now, EndReason::RoomHangup, true);
        }
        self.leave_room(now);
        let mut actions = vec![Action::ResumeHold];
        if self.plan.is_none() {
            // Nobody is moving this caller: ask the app again.
            actions.push(Action::PostWebhook);
            self.back_to_hold(now, "room_hangup");
        } else {
            self.held_since = Some(now);
            let detail = json!({ "reason": "room_hangup" });
            self.log(now, EventKind::ReturnedToHold, detail);
        }
        actions
    }

    fn hold_timed_out(&mut self, now: Instant) -> Vec<Action> {
        let after = millis(self.policy.max_hold);
        self.log(now, EventKind::HoldTimeout, json!({ "afterMs": after }));
        let mut actions = self.drop_transfer();
        match self.policy.on_hold_timeout.clone() {
            HoldTimeout::Hangup { announcement: None } => {
                actions.extend(self.end(now, EndReason::HoldTimeout, true));
            }
            HoldTimeout::Hangup {
                announcement: Some(length),
            } => {
                self.state = State::Announcing;
                self.announce_until = Some(now + length);
                actions.push(Action::PlayAnnouncement);
            }
            HoldTimeout::Transfer(uri) => {
                let request = TransferRequest {
                    targets: vec![uri],
                    headers: vec![],
                    mode: Mode::Bridge,
                    stream: None,
                    media_encryption: None,
                    record: None,
                };
                self.plan = Some(Plan::new(request, now, self.policy.transfer_timeout));
                self.timeout_transfer = true;
                self.state = State::Transferring;
                actions.extend(self.attempt(now));
            }
        }
        actions
    }

    /// The caller is no longer with a room: count its talk time.
    fn leave_room(&mut self, now: Instant) {
        self.room = None;
        self.room_request = None;
        if let Some(since) = self.bridged_since.take() {
            self.talk_ms += millis(now.since(since));
        }
    }

    fn back_to_hold(&mut self, now: Instant, reason: &'static str) {
        self.state = State::Held;
        self.held_since.get_or_insert(now);
        let detail = json!({ "reason": reason });
        self.log(now, EventKind::ReturnedToHold, detail);
    }

    fn end(&mut self, now: Instant, reason: EndReason, hangup_caller: bool) -> Vec<Action> {
        let mut actions = self.drop_transfer();
        if self.room.is_some() && reason != EndReason::RoomHangup {
            actions.push(Action::HangupRoom);
        }
        if hangup_caller {
            actions.push(Action::HangupCaller);
        }
        self.consent = None;
        actions.extend(self.end_recording(now));
        actions.push(Action::Finish);
        self.leave_room(now);
        if let Some(since) = self.held_since.take() {
            self.hold_ms += millis(now.since(since));
        }
        self.announce_until = None;
        self.state = State::Ended;
        self.ended_at = Some(self.shown(now));
        self.end_reason = Some(reason);
        self.log(
            now,
            EventKind::Ended,
            json!({ "reason": reason, "by": reason.by(), "holdMs": self.hold_ms, "talkMs": self.talk_ms }),
        );
        actions
    }
}

/// Whole milliseconds of `d`, saturating.
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

mod announce;
mod dtmf;
mod early_media;
pub mod plan;
mod play;
mod record;
pub mod recording;
pub mod ringing;
pub mod room;
pub mod route;
pub mod steps;
mod suspend;
mod transfer;
pub mod view;

#[cfg(test)]
mod bot_tests;
#[cfg(test)]
mod tests;
