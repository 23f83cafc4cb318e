//! A stop in resume mode (`Input::Suspending`): the call is saved as it
//! stands and left up for the next start to take over (`Action::Suspend`).
//! A caller still in early media must get its 200 OK first (a 183 cannot
//! be taken over by another process), so the machine asks for the answer
//! and waits for it (`Input::CallerAnswered`) a short while: a caller
//! that cannot be answered by then (no PRACK) is refused and not saved.
//! A room INVITE or bot stream under way is given up: the saved plan
//! starts it again after the restart, so the caller never loses a leg.

use super::{Action, EndReason, Machine, State};
use crate::clock::Instant;
use std::time::Duration;

/// How long a stop waits for an early-media caller's 200 OK to go out
/// (its PRACK) before it refuses the call instead of saving it.
pub const ANSWER_WAIT: Duration = Duration::from_secs(1);

impl Machine {
    /// `Input::Suspending`: save now, or answer first and save then.
    pub(super) fn suspending(&mut self, now: Instant) -> Vec<Action> {
        if self.state == State::Ended {
            return vec![Action::Finish];
        }
        let mut actions = Vec::new();
        if self.attempt_until.is_some() {
            actions.push(Action::CancelTransfer);
        }
        if self.ok_sent {
            actions.push(Action::Suspend);
            return actions;
        }
        self.suspend_until = Some(now + ANSWER_WAIT);
        actions.extend(self.answer(now, "shutdown"));
        actions
    }

    /// The early caller's 200 OK went out during a stop: save now. A
    /// REFER held back for it stays due: the next start sends it (or its
    /// deadline fails it over), never a process on its way out.
    pub(super) fn answered_while_suspending(&mut self) -> Option<Vec<Action>> {
        self.suspend_until.take()?;
        self.ok_sent = true;
        Some(vec![Action::Suspend])
    }

    /// No 200 OK in time: the caller is refused (503) and the call ends.
    pub(super) fn suspend_timed_out(&mut self, now: Instant) -> Option<Vec<Action>> {
        self.suspend_until.filter(|at| *at <= now)?;
        self.suspend_until = None;
        Some(self.end(now, EndReason::Shutdown, true))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{parties, policy, t, to_one};
    use super::super::{Input, Mode, Policy};
    use super::*;

    fn early_call() -> Machine {
        let policy = Policy {
            max_hold: Duration::from_secs(600),
            ..policy()
        };
        Machine::early(parties(), policy, t(1_000), 1_000, Duration::from_secs(300))
    }

    #[test]
    fn an_answered_call_is_saved_at_once() {
        let mut m = Machine::answered(parties(), policy(), t(1_000), 1_000);
        assert_eq!(m.handle(Input::Suspending, t(2_000)), vec![Action::Suspend]);
    }

    #[test]
    fn a_room_invite_under_way_is_given_up_and_the_call_saved() {
        let mut m = Machine::answered(parties(), policy(), t(1_000), 1_000);
        m.handle(
            Input::UpdateRequested {
                request: to_one("sip:room@r", Mode::Bridge),
                key: None,
            },
            t(1_500),
        );
        assert_eq!(
            m.handle(Input::Suspending, t(2_000)),
            vec![Action::CancelTransfer, Action::Suspend]
        );
    }

    #[test]
    fn an_early_caller_is_answered_then_saved() {
        let mut m = early_call();
        assert_eq!(
            m.handle(Input::Suspending, t(2_000)),
            vec![Action::AnswerCaller]
        );
        assert_eq!(m.poll_timeout(), Some(t(2_000) + ANSWER_WAIT));
        assert_eq!(
            m.handle(Input::CallerAnswered, t(2_300)),
            vec![Action::Suspend]
        );
        assert_eq!(
            m.poll_timeout(),
            Some(t(601_000)),
            "only the hold timeout is left"
        );
        assert_eq!(m.timeline()[1].detail["reason"], "shutdown");
    }

    #[test]
    fn an_early_caller_already_being_answered_is_waited_for() {
        let mut m = early_call();
        assert_eq!(m.handle_timeout(t(301_000)), vec![Action::AnswerCaller]);
        assert_eq!(m.handle(Input::Suspending, t(301_100)), vec![]);
        assert_eq!(
            m.handle(Input::CallerAnswered, t(301_200)),
            vec![Action::Suspend]
        );
    }

    #[test]
    fn an_early_caller_not_answered_in_time_is_refused_not_saved() {
        let mut m = early_call();
        m.handle(Input::Suspending, t(2_000));
        assert!(m.handle_timeout(t(2_999)).is_empty());
        let a = m.handle_timeout(t(3_000));
        assert_eq!(a, vec![Action::HangupCaller, Action::Finish]);
        assert_eq!(m.end_reason(), Some(EndReason::Shutdown));
    }

    #[test]
    fn a_refer_held_for_the_answer_is_left_to_the_next_start() {
        let mut m = early_call();
        let a = m.handle(
            Input::UpdateRequested {
                request: to_one("sip:room@r", Mode::Refer),
                key: None,
            },
            t(2_000),
        );
        assert!(a.contains(&Action::AnswerCaller), "{a:?}");
        m.handle(Input::Suspending, t(2_100));
        assert_eq!(
            m.handle(Input::CallerAnswered, t(2_200)),
            vec![Action::Suspend]
        );
    }

    #[test]
    fn an_ended_call_is_not_saved() {
        let mut m = early_call();
        m.handle(Input::CallerHungUp, t(2_000));
        assert_eq!(m.handle(Input::Suspending, t(2_100)), vec![Action::Finish]);
    }
}
