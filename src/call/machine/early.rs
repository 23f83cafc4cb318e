//! Early-media hold (`answer = "early"`): the caller got 183 Session
//! Progress and hears music, but no 200 OK, so nobody is billed for a
//! call that is never routed. The caller is answered (`Action::
//! AnswerCaller`) when a room answers, when a REFER must go out (it
//! needs a confirmed dialog), or when `early_media_max_secs` pass; then
//! it is held as usual. Each answer is logged as `call.answered` with why.

use super::{Action, EventKind, Machine, Parties, Policy, State};
use crate::clock::Instant;
use serde_json::json;
use std::time::Duration;

/// Calls saved before early media existed were all answered.
pub(super) fn answered_by_default() -> bool {
    true
}

impl Machine {
    /// A call put on hold in early media at `now` (183 sent, music
    /// playing), answered at the latest `max` later.
    pub fn early(
        parties: Parties,
        policy: Policy,
        now: Instant,
        unix_ms: u64,
        max: Duration,
    ) -> Self {
        let mut m = Machine::answered(parties, policy, now, unix_ms);
        m.answered = false;
        m.early_until = Some(now + max);
        m
    }

    /// Whether the caller got its 200 OK (false while in early media).
    pub fn is_answered(&self) -> bool {
        self.answered
    }

    /// When the early-media limit answers the caller, if it is pending.
    pub(super) fn early_deadline(&self) -> Option<Instant> {
        if self.answered || self.state == State::Ended {
            return None;
        }
        self.early_until
    }

    /// Answers the caller now if it is still in early media: the action,
    /// and a `call.answered` line saying `why`.
    pub(super) fn answer(&mut self, now: Instant, why: &'static str) -> Option<Action> {
        if self.answered {
            return None;
        }
        self.answered = true;
        self.early_until = None;
        self.log(now, EventKind::Answered, json!({ "reason": why }));
        Some(Action::AnswerCaller)
    }

    /// `early_media_max_secs` passed with no room: answer, and hold on.
    pub(super) fn early_timed_out(&mut self, now: Instant) -> Option<Action> {
        if self.early_deadline().is_some_and(|at| at <= now) {
            return self.answer(now, "early_media_max");
        }
        None
    }

    /// The node is stopping in resume mode: an early call is answered so
    /// that it can be saved and taken over by the next start (an INVITE
    /// left unanswered cannot be). Nothing for an answered call.
    pub fn answer_before_save(&mut self, now: Instant) -> Option<Action> {
        if self.state == State::Ended {
            return None;
        }
        self.answer(now, "shutdown")
    }
}
