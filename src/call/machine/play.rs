//! The play API on the machine (`POST /v1/calls/{id}/play`): a prompt is
//! played only to a caller on hold, and when it has played the timeline
//! says so (`call.play_finished`) and, if asked, the call ends.

use super::{Action, EndReason, EventKind, Machine, PlayThen, State, UpdateRefused};
use crate::clock::Instant;
use serde_json::json;

impl Machine {
    /// Whether a prompt may be played now: only to a caller on hold
    /// (state `held`); otherwise refused with the state (409).
    pub(super) fn request_play(&mut self, now: Instant) -> Result<(), UpdateRefused> {
        if self.state == State::Held {
            return Ok(());
        }
        let reason = format!("call is {}", self.state.name());
        Err(self.refuse(now, reason))
    }

    /// A prompt of the play API is over: `played` to its end, or cut short
    /// (the caller was moved to a room, or left). Logged as
    /// `call.play_finished`; a prompt played to its end with `then:
    /// hangup` ends the call.
    pub(super) fn play_finished(
        &mut self,
        audio: &str,
        then: PlayThen,
        played: bool,
        now: Instant,
    ) -> Vec<Action> {
        if self.state == State::Ended {
            return vec![];
        }
        let detail = json!({ "audio": audio, "then": then.name(), "completed": played });
        self.log(now, EventKind::PlayFinished, detail);
        if played && then == PlayThen::Hangup {
            return self.end(now, EndReason::ApiHangup, true);
        }
        vec![]
    }
}

#[cfg(test)]
mod tests {
    use super::super::announce::tests::held;
    use super::super::tests::t;
    use super::*;

    #[test]
    fn a_prompt_plays_to_a_held_caller_then_hold_or_hangup() {
        let mut m = held(None);
        assert_eq!(m.request_play(t(10)), Ok(()));
        assert_eq!(
            m.play_finished("a.wav", PlayThen::Hold, true, t(2_000)),
            vec![]
        );
        assert_eq!(m.state(), State::Held);
        let last = m.timeline().last().unwrap();
        assert_eq!(last.event, EventKind::PlayFinished);
        assert_eq!(
            last.detail,
            json!({ "audio": "a.wav", "then": "hold", "completed": true })
        );
        let actions = m.play_finished("b.wav", PlayThen::Hangup, true, t(4_000));
        assert_eq!(actions, vec![Action::HangupCaller, Action::Finish]);
        assert_eq!(m.end_reason(), Some(EndReason::ApiHangup));
        assert_eq!(
            m.play_finished("c.wav", PlayThen::Hold, true, t(5_000)),
            vec![]
        );
    }

    #[test]
    fn a_cut_short_prompt_does_not_hang_up_and_only_held_calls_play() {
        let mut m = held(None);
        assert_eq!(
            m.play_finished("a.wav", PlayThen::Hangup, false, t(1)),
            vec![]
        );
        assert_eq!(m.state(), State::Held);
        m.handle(crate::call::machine::steps::Input::HangupRequested, t(2));
        let refused = m.request_play(t(3)).unwrap_err();
        assert_eq!(refused.reason, "call is ended");
    }
}
