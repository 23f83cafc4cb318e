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
        m.ok_sent = false;
        m.early_until = Some(now + max);
        m
    }

    /// Whether the caller got its 200 OK (false while in early media).
    pub fn is_answered(&self) -> bool {
        self.answered
    }

    /// When the early-media limit answers the caller, if it is pending.
    /// Not when the hold timeout comes first or at the same time (an
    /// entry may set both alike), nor during the hold-timeout announcement: that
    /// call is ending, and a 200 OK then would bill a call only to BYE it
    /// at once. It is refused instead (480), never answered.
    pub(super) fn early_deadline(&self) -> Option<Instant> {
        if self.answered || matches!(self.state, State::Ended | State::Announcing) {
            return None;
        }
        let at = self.early_until?;
        match self.hold_deadline() {
            Some(hold) if hold <= at => None,
            _ => Some(at),
        }
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
}

#[cfg(test)]
mod tests {
    use super::super::tests::{parties, t, to_one as to};
    use super::super::{Input, Mode};
    use super::*;

    /// A call in early media since t(1 s), answered at the latest at 11 s.
    fn early_call(max_hold: Duration) -> Machine {
        let policy = Policy {
            max_hold,
            ..crate::call::machine::tests::policy()
        };
        Machine::early(parties(), policy, t(1_000), 1_000, Duration::from_secs(10))
    }

    fn events(m: &Machine) -> Vec<&'static str> {
        m.timeline().iter().map(|e| e.event.name()).collect()
    }

    #[test]
    fn with_no_room_the_early_limit_answers_and_the_call_stays_held() {
        let mut m = early_call(Duration::from_secs(600));
        assert!(!m.is_answered() && !m.view().answered);
        assert_eq!(m.poll_timeout(), Some(t(11_000)));
        assert!(m.handle_timeout(t(10_999)).is_empty(), "not before");
        assert_eq!(m.handle_timeout(t(11_000)), vec![Action::AnswerCaller]);
        assert!(m.is_answered() && m.view().answered);
        assert_eq!(m.state(), State::Held);
        let answered = &m.timeline()[1];
        assert_eq!(answered.event, EventKind::Answered);
        assert_eq!(answered.detail["reason"], "early_media_max");
        assert_eq!(answered.at, 11_000);
        // Once: the next deadline is the hold timeout's, from the start.
        assert_eq!(m.poll_timeout(), Some(t(601_000)));
        assert!(m.handle_timeout(t(12_000)).is_empty());
    }

    #[test]
    fn a_room_answering_answers_the_caller_once() {
        let mut m = early_call(Duration::from_secs(600));
        let (_, a) = m
            .request_transfer(to("sip:room@r", Mode::Bridge), None, t(2_000))
            .unwrap();
        assert!(matches!(a[..], [Action::Dial(_)]), "{a:?}");
        assert!(!m.is_answered(), "ringing a room answers nobody");
        let a = m.handle(Input::RoomAnswered, t(3_000));
        assert_eq!(a, vec![Action::AnswerCaller]);
        assert_eq!(m.state(), State::Bridged);
        assert_eq!(
            events(&m),
            [
                "call.held",
                "call.transfer_started",
                "call.answered",
                "call.bridged"
            ]
        );
        assert_eq!(m.timeline()[2].detail["reason"], "room");
        // No early deadline once answered.
        assert_eq!(m.poll_timeout(), None);
        assert!(m.handle_timeout(t(20_000)).is_empty());
    }

    #[test]
    fn a_failed_transfer_leaves_the_caller_in_early_media() {
        let mut m = early_call(Duration::from_secs(600));
        m.request_transfer(to("sip:room@r", Mode::Bridge), None, t(2_000))
            .unwrap();
        let failed = Input::RoomFailed {
            code: Some(486),
            reason: "busy".into(),
        };
        assert!(m.handle(failed, t(2_500)).is_empty());
        assert_eq!(m.state(), State::Held);
        assert!(!m.is_answered());
        assert_eq!(m.poll_timeout(), Some(t(11_000)), "the early limit runs on");
    }

    #[test]
    fn a_refer_answers_first_and_goes_out_once_the_200_has() {
        let mut m = early_call(Duration::from_secs(600));
        let (_, a) = m
            .request_transfer(to("sip:room@r", Mode::Refer), None, t(2_000))
            .unwrap();
        // The 200 OK is asked for; the REFER waits for it to go out (a
        // reliable 183 must be PRACKed first).
        assert_eq!(a, vec![Action::AnswerCaller]);
        assert!(m.is_answered());
        assert_eq!(m.handle_timeout(t(2_500)), vec![]);
        let a = m.handle(Input::CallerAnswered, t(3_000));
        assert!(
            matches!(&a[..], [Action::Refer(r)] if r.target == "sip:room@r"),
            "{a:?}"
        );
        // Once only.
        assert_eq!(m.handle(Input::CallerAnswered, t(3_100)), vec![]);
    }

    #[test]
    fn a_refer_given_up_before_the_200_is_never_sent() {
        let mut m = early_call(Duration::from_secs(600));
        m.request_transfer(to("sip:room@r", Mode::Refer), None, t(2_000))
            .unwrap();
        let a = m.handle(Input::HoldRequested, t(2_500));
        assert!(a.contains(&Action::CancelTransfer), "{a:?}");
        assert_eq!(m.handle(Input::CallerAnswered, t(3_000)), vec![]);
    }

    #[test]
    fn an_answered_caller_is_referred_at_once() {
        let mut m = early_call(Duration::from_secs(600));
        assert_eq!(m.handle_timeout(t(11_000)), vec![Action::AnswerCaller]);
        m.handle(Input::CallerAnswered, t(11_100));
        let (_, a) = m
            .request_transfer(to("sip:room@r", Mode::Refer), None, t(12_000))
            .unwrap();
        assert!(matches!(a[..], [Action::Refer(_)]), "{a:?}");
    }

    #[test]
    fn a_stop_in_resume_mode_answers_an_early_caller_once() {
        let mut m = early_call(Duration::from_secs(600));
        assert_eq!(
            m.handle(Input::Suspending, t(1_000)),
            vec![Action::AnswerCaller]
        );
        assert_eq!(m.handle(Input::Suspending, t(1_100)), vec![]);
    }

    #[test]
    fn a_hold_timeout_in_early_media_hangs_up_without_an_answer() {
        let mut m = early_call(Duration::from_secs(5));
        assert_eq!(m.poll_timeout(), Some(t(6_000)));
        let a = m.handle_timeout(t(6_000));
        assert_eq!(a, vec![Action::HangupCaller, Action::Finish]);
        assert!(!m.is_answered());
        assert_eq!(m.poll_timeout(), None);
    }

    #[test]
    fn a_hold_timeout_at_the_early_limit_refuses_instead_of_answering_then_hanging_up() {
        // Both limits at 11 s (an entry may set them alike).
        let mut m = early_call(Duration::from_secs(10));
        assert_eq!(m.poll_timeout(), Some(t(11_000)));
        let a = m.handle_timeout(t(11_000));
        assert_eq!(a, vec![Action::HangupCaller, Action::Finish]);
        assert!(!m.is_answered(), "no 200 OK for a call that ends now");
        assert!(!events(&m).contains(&"call.answered"), "{:?}", events(&m));
        // The hold timeout before the early limit: the same.
        let mut m = early_call(Duration::from_secs(9));
        assert_eq!(m.poll_timeout(), Some(t(10_000)));
        let a = m.handle_timeout(t(10_000));
        assert_eq!(a, vec![Action::HangupCaller, Action::Finish]);
        assert!(!m.is_answered());
    }

    #[test]
    fn the_early_limit_does_not_answer_during_the_hold_timeout_announcement() {
        let parties = early_call(Duration::from_secs(600)).parties().clone();
        let policy = Policy {
            max_hold: Duration::from_secs(8),
            on_hold_timeout: super::super::HoldTimeout::Hangup {
                announcement: Some(Duration::from_secs(5)),
            },
            ..crate::call::machine::tests::policy()
        };
        let mut m = Machine::early(parties, policy, t(1_000), 1_000, Duration::from_secs(10));
        assert_eq!(m.handle_timeout(t(9_000)), vec![Action::PlayAnnouncement]);
        assert_eq!(m.state(), State::Announcing);
        // The early limit (11 s) passes during the announcement (to 14 s).
        assert_eq!(m.poll_timeout(), Some(t(14_000)));
        assert!(m.handle_timeout(t(11_000)).is_empty());
        assert!(!m.is_answered());
        let a = m.handle_timeout(t(14_000));
        assert_eq!(a, vec![Action::HangupCaller, Action::Finish]);
        assert!(!m.is_answered());
        assert_eq!(m.end_reason(), Some(super::super::EndReason::HoldTimeout));
    }

    #[test]
    fn a_cancel_ends_the_call_as_a_caller_hang_up() {
        let mut m = early_call(Duration::from_secs(600));
        m.request_transfer(to("sip:room@r", Mode::Bridge), None, t(2_000))
            .unwrap();
        let a = m.handle(Input::CallerHungUp, t(2_500));
        assert_eq!(a, vec![Action::CancelTransfer, Action::Finish]);
        assert_eq!(m.end_reason(), Some(super::super::EndReason::CallerHangup));
    }

    #[test]
    fn a_call_saved_before_early_media_existed_reads_back_answered() {
        let m = early_call(Duration::from_secs(600));
        let mut json = serde_json::to_value(&m).unwrap();
        let obj = json.as_object_mut().unwrap();
        obj.remove("answered");
        obj.remove("early_until");
        let back: Machine = serde_json::from_value(json).unwrap();
        assert!(back.is_answered());
        assert_eq!(back.poll_timeout(), Some(t(601_000)));
    }
}
