//! The call state machine, without I/O: inputs and the time go in,
//! actions come out, and every step is written to the call's timeline
//! (which the events webhook and `GET /v1/calls/{id}` both read).
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

use super::plan::{Mode, Next, Plan, TransferRequest};
use crate::config::OnRoomHangup;
use serde::Serialize;
use serde_json::{Value, json};

pub use super::steps::{
    Accepted, Action, Event, HoldTimeout, Input, Policy, State, Transfer, UpdateRefused,
};

/// Idempotency keys remembered per call.
const KEYS_KEPT: usize = 32;

/// The machine and everything `GET /v1/calls/{id}` shows.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Machine {
    pub call_id: String,
    pub call_domain: String,
    pub state: State,
    pub from: String,
    pub to: String,
    pub entry: String,
    pub created_at: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bridged_at: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<u64>,
    /// The room of the transfer under way, or the one the caller is with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_reason: Option<&'static str>,
    pub transfer_attempts: u32,
    /// Time spent on hold music and bridged, so far (ms).
    pub hold_ms: u64,
    pub talk_ms: u64,
    /// The caller's custom headers, as the entry's policy passed them.
    pub sip_headers: Value,
    pub timeline: Vec<Event>,
    #[serde(skip)]
    caller_headers: Vec<(String, String)>,
    #[serde(skip)]
    policy: Policy,
    #[serde(skip)]
    plan: Option<Plan>,
    /// True while the transfer under way is the hold-timeout one.
    #[serde(skip)]
    timeout_transfer: bool,
    /// The room the caller is bridged to.
    #[serde(skip)]
    room: Option<String>,
    /// Since when the caller hears music (None when bridged or timed out).
    #[serde(skip)]
    held_since: Option<u64>,
    #[serde(skip)]
    bridged_since: Option<u64>,
    #[serde(skip)]
    keys: Vec<(String, TransferRequest)>,
}

/// Who the call is from and to, as the webhook shows them.
#[derive(Debug, Clone)]
pub struct Parties {
    pub call_id: String,
    pub call_domain: String,
    pub from: String,
    pub to: String,
    pub entry: String,
    pub caller_headers: Vec<(String, String)>,
}

impl Machine {
    /// A call just answered and put on hold at `now` (Unix ms).
    pub fn answered(p: Parties, policy: Policy, now: u64) -> Self {
        let mut m = Machine {
            call_id: p.call_id,
            call_domain: p.call_domain,
            state: State::Held,
            from: p.from,
            to: p.to,
            entry: p.entry,
            created_at: now,
            bridged_at: None,
            ended_at: None,
            target: None,
            end_reason: None,
            transfer_attempts: 0,
            hold_ms: 0,
            talk_ms: 0,
            sip_headers: Value::Object(crate::sip::headers::to_json_map(&p.caller_headers)),
            timeline: Vec::new(),
            caller_headers: p.caller_headers,
            policy,
            plan: None,
            timeout_transfer: false,
            room: None,
            held_since: Some(now),
            bridged_since: None,
            keys: Vec::new(),
        };
        m.log(now, "call.held", Value::Null);
        m
    }

    pub(crate) fn log(&mut self, at: u64, event: &'static str, detail: Value) {
        self.timeline.push(Event { at, event, detail });
    }

    /// When the hold timeout fires (Unix ms), if the caller is on hold.
    pub fn hold_deadline(&self) -> Option<u64> {
        let since = self.held_since?;
        if self.timeout_transfer || self.state == State::Announcing {
            return None;
        }
        Some(since + self.policy.max_hold.as_millis() as u64)
    }

    fn refuse(&mut self, now: u64, reason: String) -> UpdateRefused {
        self.log(
            now,
            "update.refused",
            json!({ "reason": reason, "state": self.state }),
        );
        UpdateRefused {
            state: self.state,
            reason,
        }
    }

    /// The app asks to move the call (`pinlessCallUpdate`).
    pub fn request_transfer(
        &mut self,
        request: TransferRequest,
        key: Option<String>,
        now: u64,
    ) -> Result<(Accepted, Vec<Action>), UpdateRefused> {
        if matches!(self.state, State::Ended | State::Announcing) {
            let reason = format!("call is {}", state_name(self.state));
            return Err(self.refuse(now, reason));
        }
        let earlier = key
            .as_ref()
            .and_then(|k| self.keys.iter().find(|(seen, _)| seen == k));
        if let Some((_, earlier)) = earlier {
            if *earlier == request {
                return Ok((Accepted::Duplicate, vec![]));
            }
            let reason = "Idempotency-Key already used for a different update".to_string();
            return Err(self.refuse(now, reason));
        }
        let duplicate = match &self.plan {
            Some(plan) => {
                let same =
                    plan.request.targets == request.targets && plan.request.mode == request.mode;
                if !same {
                    let reason = format!("a transfer to {} is under way", plan.current());
                    return Err(self.refuse(now, reason));
                }
                true
            }
            None => request.targets.len() == 1 && self.room.as_ref() == request.targets.first(),
        };
        if let Some(k) = key {
            if self.keys.len() >= KEYS_KEPT {
                self.keys.remove(0);
            }
            self.keys.push((k, request.clone()));
        }
        if duplicate {
            return Ok((Accepted::Duplicate, vec![]));
        }
        self.plan = Some(Plan::new(request, now, self.policy.transfer_timeout));
        self.timeout_transfer = false;
        self.state = State::Transferring;
        Ok((Accepted::Started, self.attempt(now)))
    }

    /// `POST /v1/calls/{id}/hold`: back to music from wherever the call is.
    pub fn request_hold(&mut self, now: u64) -> Result<Vec<Action>, UpdateRefused> {
        if matches!(self.state, State::Ended | State::Announcing) {
            let reason = format!("call is {}", state_name(self.state));
            return Err(self.refuse(now, reason));
        }
        let mut actions = Vec::new();
        if self.plan.take().is_some() {
            actions.push(Action::CancelTransfer);
        }
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

    /// Starts the next attempt of the plan.
    fn attempt(&mut self, now: u64) -> Vec<Action> {
        let Some(plan) = self.plan.as_mut() else {
            return vec![];
        };
        plan.attempts += 1;
        plan.waiting = false;
        let target = plan.current().to_string();
        let refer = !plan.refer_done;
        // The app's headers win over the caller's of the same name, so a
        // value re-set at every hop does not pile up.
        let app = &plan.request.headers;
        let mut headers: Vec<(String, String)> = self
            .caller_headers
            .iter()
            .filter(|(n, _)| !app.iter().any(|(a, _)| a.eq_ignore_ascii_case(n)))
            .cloned()
            .collect();
        headers.extend(app.iter().cloned());
        let transfer = Transfer {
            target: target.clone(),
            headers,
            ring_timeout: plan.ring_timeout(now, self.policy.ring_cap),
        };
        let attempt = plan.attempts;
        self.transfer_attempts += 1;
        self.target = Some(target.clone());
        let mode = if refer { Mode::Refer } else { Mode::Bridge };
        self.log(
            now,
            "call.transfer_started",
            json!({ "sipUri": target, "attempt": attempt, "mode": mode }),
        );
        if refer {
            vec![Action::Refer(transfer)]
        } else {
            vec![Action::Dial(transfer)]
        }
    }

    /// Feeds one input; returns what the driver must do.
    pub fn handle(&mut self, input: Input, now: u64) -> Vec<Action> {
        if self.state == State::Ended {
            return vec![];
        }
        let transferring = self.plan.as_ref().is_some_and(|p| !p.waiting);
        match input {
            Input::WebhookAttempt {
                number,
                status,
                error,
            } => {
                self.log(
                    now,
                    "webhook.attempt",
                    json!({ "attempt": number, "status": status, "error": error }),
                );
                vec![]
            }
            Input::WebhookGaveUp => {
                self.log(now, "webhook.failed", Value::Null);
                vec![]
            }
            Input::RoomAnswered if transferring => self.bridged(now),
            Input::RoomFailed { code, reason } if transferring => {
                self.attempt_failed(code, reason, now)
            }
            Input::RetryDue if self.plan.as_ref().is_some_and(|p| p.waiting) => self.attempt(now),
            Input::ReferSucceeded if transferring => {
                // The caller's side is with the target now: nothing to cancel.
                self.plan = None;
                self.log(now, "call.referred", json!({ "sipUri": self.target }));
                self.end(now, "referred", true)
            }
            Input::ReferFailed { code, reason } if transferring => {
                let attempt = self.plan.as_ref().map(|p| p.attempts);
                self.log(
                    now,
                    "call.refer_failed",
                    json!({ "sipUri": self.target, "code": code, "reason": reason, "attempt": attempt }),
                );
                if let Some(p) = self.plan.as_mut() {
                    p.refer_done = true;
                }
                self.attempt(now)
            }
            Input::RoomAnswered
            | Input::RoomFailed { .. }
            | Input::RetryDue
            | Input::ReferSucceeded
            | Input::ReferFailed { .. } => vec![],
            Input::CallerHungUp => self.end(now, "caller_hangup", false),
            Input::RoomHungUp if self.room.is_some() => self.room_hung_up(now),
            Input::RoomHungUp => vec![],
            Input::HangupRequested => self.end(now, "api_hangup", true),
            Input::HoldTimeout if self.hold_deadline().is_some() => self.hold_timed_out(now),
            Input::HoldTimeout => vec![],
            Input::AnnouncementDone if self.state == State::Announcing => {
                self.end(now, "hold_timeout", true)
            }
            Input::AnnouncementDone => vec![],
        }
    }

    fn bridged(&mut self, now: u64) -> Vec<Action> {
        let plan = self.plan.take();
        let target = plan.as_ref().map(|p| p.current().to_string());
        let replaced = self.room.take();
        if let Some(since) = self.held_since.take() {
            self.hold_ms += now.saturating_sub(since);
        }
        self.bridged_since.get_or_insert(now);
        self.timeout_transfer = false;
        self.state = State::Bridged;
        self.bridged_at = Some(now);
        self.room = target.clone();
        self.target = target.clone();
        self.log(
            now,
            "call.bridged",
            json!({ "sipUri": target, "attempt": plan.map(|p| p.attempts), "replaced": replaced }),
        );
        vec![]
    }

    fn attempt_failed(&mut self, code: Option<u16>, reason: String, now: u64) -> Vec<Action> {
        let Some(plan) = self.plan.as_mut() else {
            return vec![];
        };
        let target = plan.current().to_string();
        let attempt = plan.attempts;
        let next = plan.failed(code, now);
        let detail = |last: bool| json!({ "sipUri": target, "code": code, "reason": reason, "attempt": attempt, "final": last });
        match next {
            Next::Try(_) => {
                self.log(now, "call.transfer_failed", detail(false));
                self.attempt(now)
            }
            Next::Wait(after) => {
                self.log(now, "call.transfer_failed", detail(false));
                vec![Action::RetryIn(after)]
            }
            Next::GiveUp(why) => {
                let mut d = detail(true);
                d["gaveUp"] = why.into();
                self.log(now, "call.transfer_failed", d);
                self.plan = None;
                if self.timeout_transfer {
                    return self.end(now, "hold_timeout", true);
                }
                if self.room.is_some() {
                    // Make before break: the caller never left its room.
                    self.state = State::Bridged;
                    self.target = self.room.clone();
                } else {
                    self.back_to_hold(now, "transfer_failed");
                }
                vec![]
            }
        }
    }

    fn room_hung_up(&mut self, now: u64) -> Vec<Action> {
        if self.policy.on_room_hangup == OnRoomHangup::End {
            return self.end(now, "room_hangup", true);
        }
        self.leave_room(now);
        let mut actions = vec![Action::ResumeHold];
        if self.plan.is_none() {
            // Nobody is moving this caller: ask the app again.
            actions.push(Action::PostWebhook);
            self.back_to_hold(now, "room_hangup");
        } else {
            self.held_since = Some(now);
            self.log(
                now,
                "call.returned_to_hold",
                json!({ "reason": "room_hangup" }),
            );
        }
        actions
    }

    fn hold_timed_out(&mut self, now: u64) -> Vec<Action> {
        self.log(
            now,
            "call.hold_timeout",
            json!({ "afterMs": self.policy.max_hold.as_millis() as u64 }),
        );
        let mut actions = Vec::new();
        if self.plan.take().is_some() {
            actions.push(Action::CancelTransfer);
        }
        match self.policy.on_hold_timeout.clone() {
            HoldTimeout::Hangup { announce: false } => {
                actions.extend(self.end(now, "hold_timeout", true));
            }
            HoldTimeout::Hangup { announce: true } => {
                self.state = State::Announcing;
                actions.push(Action::PlayAnnouncement);
            }
            HoldTimeout::Transfer(uri) => {
                let request = TransferRequest {
                    targets: vec![uri],
                    headers: vec![],
                    mode: Mode::Bridge,
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
    fn leave_room(&mut self, now: u64) {
        self.room = None;
        if let Some(since) = self.bridged_since.take() {
            self.talk_ms += now.saturating_sub(since);
        }
    }

    fn back_to_hold(&mut self, now: u64, reason: &'static str) {
        self.state = State::Held;
        self.held_since.get_or_insert(now);
        self.log(now, "call.returned_to_hold", json!({ "reason": reason }));
    }

    fn end(&mut self, now: u64, reason: &'static str, hangup_caller: bool) -> Vec<Action> {
        let mut actions = Vec::new();
        if self.plan.take().is_some() {
            actions.push(Action::CancelTransfer);
        }
        if self.room.is_some() && reason != "room_hangup" {
            actions.push(Action::HangupRoom);
        }
        if hangup_caller {
            actions.push(Action::HangupCaller);
        }
        actions.push(Action::Finish);
        self.leave_room(now);
        if let Some(since) = self.held_since.take() {
            self.hold_ms += now.saturating_sub(since);
        }
        self.state = State::Ended;
        self.ended_at = Some(now);
        self.end_reason = Some(reason);
        let by = match reason {
            "caller_hangup" | "referred" => "caller",
            "room_hangup" => "room",
            "api_hangup" => "api",
            _ => "gateway",
        };
        self.log(
            now,
            "call.ended",
            json!({ "reason": reason, "by": by, "holdMs": self.hold_ms, "talkMs": self.talk_ms }),
        );
        actions
    }
}

/// The state as the API spells it.
pub fn state_name(s: State) -> &'static str {
    match s {
        State::Held => "held",
        State::Transferring => "transferring",
        State::Bridged => "bridged",
        State::Announcing => "announcing",
        State::Ended => "ended",
    }
}

#[cfg(test)]
#[path = "machine_tests.rs"]
mod tests;
