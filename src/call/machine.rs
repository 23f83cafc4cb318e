//! The call state machine, without I/O: inputs and the time go in,
//! actions come out, and every step is written to the call's timeline.
//!
//! ```text
//!  Held ──update──▶ Transferring ──room 2xx──▶ Bridged
//!   ▲                  │ room error/timeout
//!   └──────────────────┘
//!  any state ──hang-up (either side, API, hold timeout)──▶ Ended
//! ```

use serde::Serialize;
use serde_json::{Value, json};

/// Where a call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Answered, hearing hold music, waiting for an update.
    Held,
    /// A room INVITE is under way; the caller still hears music.
    Transferring,
    /// Audio flows between caller and room.
    Bridged,
    /// Over; both legs released.
    Ended,
}

/// A transfer the app asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    pub target: String,
    /// Headers for the room INVITE: the caller's custom headers, then the
    /// update's.
    pub headers: Vec<(String, String)>,
}

/// Why an update was refused (409).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("call is {0:?}; only a held call can be transferred")]
pub struct UpdateRefused(pub State);

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
    CallerHungUp,
    RoomHungUp,
    /// `DELETE /v1/calls/{id}`.
    HangupRequested,
    HoldTimeout,
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    StartTransfer(Transfer),
    /// Stop the room INVITE under way (CANCEL).
    CancelTransfer,
    HangupCaller,
    HangupRoom,
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
    /// The room URI of the transfer under way or done.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_reason: Option<&'static str>,
    pub transfer_attempts: u32,
    pub timeline: Vec<Event>,
    #[serde(skip)]
    caller_headers: Vec<(String, String)>,
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
    pub fn answered(p: Parties, now: u64) -> Self {
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
            timeline: Vec::new(),
            caller_headers: p.caller_headers,
        };
        m.log(now, "call.held", Value::Null);
        m
    }

    fn log(&mut self, at: u64, event: &'static str, detail: Value) {
        self.timeline.push(Event { at, event, detail });
    }

    /// The app asks to transfer the call to `target` with `extra` headers.
    pub fn request_transfer(
        &mut self,
        target: String,
        extra: Vec<(String, String)>,
        now: u64,
    ) -> Result<Vec<Action>, UpdateRefused> {
        if self.state != State::Held {
            self.log(
                now,
                "update.refused",
                json!({ "sipUri": target, "state": self.state }),
            );
            return Err(UpdateRefused(self.state));
        }
        self.state = State::Transferring;
        self.transfer_attempts += 1;
        self.target = Some(target.clone());
        self.log(
            now,
            "call.transfer_started",
            json!({ "sipUri": target, "attempt": self.transfer_attempts }),
        );
        let mut headers = self.caller_headers.clone();
        headers.extend(extra);
        Ok(vec![Action::StartTransfer(Transfer { target, headers })])
    }

    /// Feeds one input; returns what the driver must do.
    pub fn handle(&mut self, input: Input, now: u64) -> Vec<Action> {
        if self.state == State::Ended {
            return vec![];
        }
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
            Input::RoomAnswered if self.state == State::Transferring => {
                self.state = State::Bridged;
                self.bridged_at = Some(now);
                self.log(now, "call.bridged", json!({ "sipUri": self.target }));
                vec![]
            }
            Input::RoomFailed { code, reason } if self.state == State::Transferring => {
                self.state = State::Held;
                self.log(
                    now,
                    "call.transfer_failed",
                    json!({ "sipUri": self.target, "code": code, "reason": reason, "attempt": self.transfer_attempts }),
                );
                self.log(now, "call.returned_to_hold", Value::Null);
                vec![]
            }
            Input::RoomAnswered | Input::RoomFailed { .. } => vec![],
            Input::CallerHungUp => self.end(now, "caller_hangup", false),
            Input::RoomHungUp if self.state == State::Bridged => self.end(now, "room_hangup", true),
            Input::RoomHungUp => vec![],
            Input::HangupRequested => self.end(now, "api_hangup", true),
            Input::HoldTimeout if matches!(self.state, State::Held | State::Transferring) => {
                self.log(now, "call.hold_timeout", Value::Null);
                self.end(now, "hold_timeout", true)
            }
            Input::HoldTimeout => vec![],
        }
    }

    fn end(&mut self, now: u64, reason: &'static str, hangup_caller: bool) -> Vec<Action> {
        let mut actions = Vec::new();
        match self.state {
            State::Transferring => actions.push(Action::CancelTransfer),
            State::Bridged if reason != "room_hangup" => actions.push(Action::HangupRoom),
            _ => {}
        }
        if hangup_caller {
            actions.push(Action::HangupCaller);
        }
        actions.push(Action::Finish);
        self.state = State::Ended;
        self.ended_at = Some(now);
        self.end_reason = Some(reason);
        self.log(now, "call.ended", json!({ "reason": reason }));
        actions
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held() -> Machine {
        Machine::answered(
            Parties {
                call_id: "c1".into(),
                call_domain: "d".into(),
                from: "+15550001".into(),
                to: "sip:support@gw".into(),
                entry: "support".into(),
                caller_headers: vec![("X-Lang".into(), "de".into())],
            },
            1_000,
        )
    }

    #[test]
    fn transfer_then_bridge_then_caller_hangs_up() {
        let mut m = held();
        let a = m
            .request_transfer(
                "sip:room@r".into(),
                vec![("X-Id".into(), "7".into())],
                2_000,
            )
            .unwrap();
        assert_eq!(
            a,
            vec![Action::StartTransfer(Transfer {
                target: "sip:room@r".into(),
                headers: vec![("X-Lang".into(), "de".into()), ("X-Id".into(), "7".into())],
            })]
        );
        assert_eq!(m.state, State::Transferring);
        assert_eq!(
            m.request_transfer("sip:x@y".into(), vec![], 2_100),
            Err(UpdateRefused(State::Transferring))
        );
        assert!(m.handle(Input::RoomAnswered, 3_000).is_empty());
        assert_eq!((m.state, m.bridged_at), (State::Bridged, Some(3_000)));
        let a = m.handle(Input::CallerHungUp, 9_000);
        assert_eq!(a, vec![Action::HangupRoom, Action::Finish]);
        assert_eq!(
            (m.state, m.ended_at, m.end_reason),
            (State::Ended, Some(9_000), Some("caller_hangup"))
        );
        assert!(
            m.handle(Input::RoomHungUp, 9_001).is_empty(),
            "nothing after the end"
        );
    }

    #[test]
    fn failed_room_returns_to_hold_and_retry_works() {
        let mut m = held();
        m.request_transfer("sip:busy@r".into(), vec![], 2_000)
            .unwrap();
        m.handle(
            Input::RoomFailed {
                code: Some(486),
                reason: "Busy Here".into(),
            },
            2_500,
        );
        assert_eq!(m.state, State::Held);
        let failed = m
            .timeline
            .iter()
            .find(|e| e.event == "call.transfer_failed")
            .unwrap();
        assert_eq!(failed.detail["code"], 486);
        assert_eq!(failed.at, 2_500);
        assert!(m.request_transfer("sip:ok@r".into(), vec![], 3_000).is_ok());
        assert_eq!(m.transfer_attempts, 2);
    }

    #[test]
    fn hangups_while_transferring_cancel_the_room() {
        let mut m = held();
        m.request_transfer("sip:room@r".into(), vec![], 2_000)
            .unwrap();
        assert_eq!(
            m.handle(Input::CallerHungUp, 2_100),
            vec![Action::CancelTransfer, Action::Finish]
        );

        let mut m = held();
        m.request_transfer("sip:room@r".into(), vec![], 2_000)
            .unwrap();
        assert_eq!(
            m.handle(Input::HoldTimeout, 600_000),
            vec![Action::CancelTransfer, Action::HangupCaller, Action::Finish]
        );
    }

    #[test]
    fn room_hangup_ends_a_bridged_call_and_api_hangup_ends_any() {
        let mut m = held();
        m.request_transfer("sip:room@r".into(), vec![], 2_000)
            .unwrap();
        m.handle(Input::RoomAnswered, 2_100);
        assert_eq!(
            m.handle(Input::RoomHungUp, 5_000),
            vec![Action::HangupCaller, Action::Finish]
        );
        let mut m = held();
        assert_eq!(
            m.handle(Input::HangupRequested, 5_000),
            vec![Action::HangupCaller, Action::Finish]
        );
        assert!(m.timeline.iter().any(|e| e.event == "call.ended"));
    }
}
