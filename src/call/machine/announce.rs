//! Position announcements: while the caller waits on hold, every
//! `announce_every` the machine asks the driver to tell it its place in
//! the queue (`Action::AnnouncePosition`). The first comes one period
//! after the caller starts waiting (after the answer, or after it came
//! back to hold), then one per period; a caller who is transferring,
//! bridged or announced to at hold timeout hears none.

use super::{Action, Machine, State};
use crate::clock::Instant;

impl Machine {
    /// True while the caller waits for a room: on hold music and not with
    /// one (`held`, or `transferring` from hold), not moved by the hold
    /// timeout. The driver keeps the call in its entry's queue meanwhile.
    pub fn waiting(&self) -> bool {
        matches!(self.state, State::Held | State::Transferring)
            && self.room.is_none()
            && self.held_since.is_some()
            && !self.timeout_transfer
    }

    /// When the next position announcement is due.
    pub(super) fn position_deadline(&self) -> Option<Instant> {
        let every = self.policy.announce_every?;
        if self.state != State::Held || !self.waiting() {
            return None;
        }
        let since = self.held_since?;
        let from = self
            .last_position_announced
            .map_or(since, |last| last.max(since));
        Some(from + every)
    }

    /// The announcement, if it is due at `now`.
    pub(super) fn position_due(&mut self, now: Instant) -> Option<Action> {
        if self.position_deadline()? > now {
            return None;
        }
        self.last_position_announced = Some(now);
        // One still to be heard (a period shorter than the announcement,
        // or a long prompt before it): skip this one rather than queue
        // them up behind each other.
        if self.announcing > 0 {
            return None;
        }
        self.announcing += 1;
        Some(Action::AnnouncePosition)
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::tests::{parties, t};
    use super::super::{Input, Policy, PromptEnd, State};
    use super::*;
    use crate::call::machine::plan::{Mode, TransferRequest};
    use crate::config::OnRoomHangup;
    use std::time::Duration;

    pub(in crate::call::machine) fn held(announce_every: Option<Duration>) -> Machine {
        let policy = Policy {
            on_room_hangup: OnRoomHangup::Hold,
            announce_every,
            ..crate::call::machine::tests::policy()
        };
        Machine::answered(parties(), policy, t(0), 1_000)
    }

    fn transfer() -> TransferRequest {
        TransferRequest {
            targets: vec!["sip:room@example.com".into()],
            headers: vec![],
            mode: Mode::Bridge,
            stream: None,
            media_encryption: None,
            record: None,
        }
    }

    #[test]
    fn a_waiting_caller_hears_its_position_every_period() {
        let mut m = held(Some(Duration::from_secs(30)));
        assert!(m.waiting());
        assert_eq!(m.poll_timeout(), Some(t(30_000)));
        assert_eq!(m.handle_timeout(t(29_999)), vec![]);
        assert_eq!(m.handle_timeout(t(30_000)), vec![Action::AnnouncePosition]);
        assert_eq!(m.poll_timeout(), Some(t(60_000)));
        m.handle(Input::PromptFinished(PromptEnd::Announcement), t(35_000));
        // Transferring: still waiting (in the queue), but no announcement.
        let (_, actions) = m.request_transfer(transfer(), None, t(40_000)).unwrap();
        assert!(matches!(actions[..], [Action::Dial(_)]), "{actions:?}");
        assert!(m.waiting());
        assert_eq!(m.handle_timeout(t(60_000)), vec![]);
        // Bridged: out of the queue, no announcement.
        m.handle(Input::RoomAnswered, t(41_000));
        assert_eq!(m.state(), State::Bridged);
        assert!(!m.waiting());
        assert_eq!(m.handle_timeout(t(90_000)), vec![]);
        // Back on hold: one period after it came back.
        m.handle(Input::RoomHungUp, t(100_000));
        assert!(m.waiting());
        assert_eq!(m.poll_timeout(), Some(t(130_000)));
        assert_eq!(m.handle_timeout(t(130_000)), vec![Action::AnnouncePosition]);
    }

    #[test]
    fn an_announcement_still_playing_skips_the_next_one() {
        let mut m = held(Some(Duration::from_secs(10)));
        assert_eq!(m.handle_timeout(t(10_000)), vec![Action::AnnouncePosition]);
        // Not over by the next period (a long prompt before it): skipped,
        // and the period runs on from there.
        assert_eq!(m.handle_timeout(t(20_000)), vec![]);
        assert_eq!(m.poll_timeout(), Some(t(30_000)));
        m.handle(Input::PromptFinished(PromptEnd::Announcement), t(25_000));
        assert_eq!(m.handle_timeout(t(30_000)), vec![Action::AnnouncePosition]);
        // A play-API prompt's end does not count as the announcement's.
        let play = PromptEnd::Play {
            audio: "a.wav".into(),
            then: super::super::PlayThen::Hold,
            played: true,
        };
        m.handle(Input::PromptFinished(play), t(35_000));
        assert_eq!(m.handle_timeout(t(40_000)), vec![]);
        // A call saved with one playing is resumed with none (the prompt
        // did not survive the restart): the next one is heard.
        let saved = serde_json::to_string(&m).unwrap();
        let mut resumed: Machine = serde_json::from_str(&saved).unwrap();
        assert_eq!(
            resumed.handle_timeout(t(50_000)),
            vec![Action::AnnouncePosition]
        );
    }

    #[test]
    fn without_a_period_nothing_is_announced() {
        let mut m = held(None);
        assert_eq!(m.poll_timeout(), Some(t(600_000)), "only the hold timeout");
        assert_eq!(m.handle_timeout(t(300_000)), vec![]);
    }
}
