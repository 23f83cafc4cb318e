//! The caller's key presses. Each is a `call.dtmf` line of the timeline
//! (so an event posted to the entry's `events_url`), whatever the call's
//! state. A key the entry maps in `dtmf_transfer`, pressed while the caller
//! is held with no transfer under way, moves the caller there exactly as an
//! update with that `sipUri` would: same events, retries and deadline,
//! bridge mode.

use super::{Action, EventKind, KeyTo, KeyVia, Machine, State};
use crate::call::machine::plan::{Mode, TransferRequest};
use crate::clock::Instant;
use crate::codec::DtmfPress;
use serde_json::json;

/// Presses a call logs at most: each is a timeline line, an event and a
/// store write's worth of data. A caller (or a broken phone) sending
/// events without end would otherwise grow the call without bound.
pub const MAX_PRESSES: u32 = 256;
impl Machine {
    pub(super) fn dtmf(&mut self, press: DtmfPress, via: KeyVia, now: Instant) -> Vec<Action> {
        // On to whoever the caller is with, every press (the cap below is
        // on the timeline only): a bot gets each key on its stream; a
        // room gets a SIP INFO only for keys that came as INFO (RFC 4733
        // keys cross with the relay already).
        let with_bot = self
            .room_request
            .as_ref()
            .is_some_and(|r| r.stream.is_some());
        let to = match (self.room.is_some(), with_bot, via) {
            (true, true, _) => Some(KeyTo::Bot),
            (true, false, KeyVia::Info) => Some(KeyTo::RoomInfo),
            _ => None,
        };
        let mut actions: Vec<Action> = to
            .map(|to| Action::SendDtmf { press, to })
            .into_iter()
            .collect();
        // Past the cap presses are dropped, quietly: a flood's only
        // effect is that it stops being recorded.
        if self.presses >= MAX_PRESSES {
            return actions;
        }
        self.presses += 1;
        let digit = press.digit.to_string();
        let detail = json!({ "digit": digit, "durationMs": press.duration_ms });
        self.log(now, EventKind::Dtmf, detail);
        // Bridged, the key is the room's or the bot's (sent on above); with a
        // transfer under way or backing off, the app already chose a room
        // and a key does not overrule it.
        if self.state != State::Held || self.plan.is_some() {
            return actions;
        }
        let Some(uri) = self.policy.dtmf_transfer.get(&digit).cloned() else {
            return actions;
        };
        let request = TransferRequest {
            targets: vec![uri],
            headers: vec![],
            mode: Mode::Bridge,
            stream: None,
            media_encryption: None,
            record: None,
        };
        // Held with no plan, the transfer is always taken; a refusal would
        // be on the timeline already.
        if let Ok((_, transfer)) = self.request_transfer(request, None, now) {
            actions.extend(transfer);
        }
        actions
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::t;
    use super::super::{Input, Policy};
    use super::*;
    use crate::config::OnRoomHangup;

    fn held() -> Machine {
        let policy = Policy {
            on_room_hangup: OnRoomHangup::Hold,
            dtmf_transfer: [("0".to_string(), "sip:operator@r".to_string())].into(),
            ..crate::call::machine::tests::policy()
        };
        crate::call::machine::tests::held_with(policy)
    }

    fn key(digit: char) -> Input {
        Input::Dtmf(
            DtmfPress {
                digit,
                duration_ms: 120,
            },
            KeyVia::Rtp,
        )
    }

    fn dialled(actions: &[Action]) -> Vec<&str> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Dial(t) => Some(t.target.as_str()),
                _ => None,
            })
            .collect()
    }

    fn dtmf_lines(m: &Machine) -> Vec<serde_json::Value> {
        let lines = m.timeline().iter();
        let dtmf = lines.filter(|e| e.event == EventKind::Dtmf);
        dtmf.map(|e| e.detail.clone()).collect()
    }

    #[test]
    fn every_press_is_a_published_timeline_line() {
        let mut m = held();
        assert!(m.handle(key('5'), t(2_000)).is_empty());
        assert!(m.handle(key('#'), t(2_500)).is_empty());
        assert_eq!(
            dtmf_lines(&m),
            vec![
                json!({"digit": "5", "durationMs": 120}),
                json!({"digit": "#", "durationMs": 120}),
            ]
        );
        assert!(EventKind::Dtmf.published());
        assert_eq!(m.state(), State::Held);
    }

    #[test]
    fn a_flood_of_presses_is_bounded() {
        let mut m = held();
        // A caller pressing (or faking) keys for ever logs MAX_PRESSES.
        for i in 0..1_000 {
            m.handle(key('3'), t(3_000 + 50 * i));
        }
        assert_eq!(dtmf_lines(&m).len(), MAX_PRESSES as usize);
        // Past the cap, a mapped key moves nobody either.
        assert!(m.handle(key('0'), t(100_000)).is_empty());
    }

    #[test]
    fn a_mapped_key_while_held_transfers_as_an_update_would() {
        let mut m = held();
        let a = m.handle(key('0'), t(2_000));
        assert_eq!(dialled(&a), vec!["sip:operator@r"]);
        assert_eq!(m.state(), State::Transferring);
        let started = m.timeline().last().unwrap();
        assert_eq!(started.event, EventKind::TransferStarted);
        assert_eq!(started.detail["mode"], "bridge");
        // Pressed again while that transfer is under way: logged, no
        // second leg.
        assert!(m.handle(key('0'), t(2_100)).is_empty());
        assert!(m.handle(Input::RoomAnswered, t(3_000)).is_empty());
        assert_eq!(m.state(), State::Bridged);
        // Bridged, the key is the room's.
        assert!(m.handle(key('0'), t(4_000)).is_empty());
        assert_eq!(dtmf_lines(&m).len(), 3);
        assert_eq!(m.view().target.as_deref(), Some("sip:operator@r"));
    }

    #[test]
    fn an_unmapped_key_moves_nobody() {
        let mut m = held();
        assert!(m.handle(key('1'), t(2_000)).is_empty());
        assert_eq!(m.state(), State::Held);
    }

    #[test]
    fn a_call_saved_before_dtmf_transfer_existed_restores() {
        let m = held();
        let mut saved = serde_json::to_value(&m).unwrap();
        let policy = saved["policy"].as_object_mut().unwrap();
        assert!(policy.remove("dtmf_transfer").is_some());
        let restored: Machine = serde_json::from_value(saved).unwrap();
        assert!(restored.policy.dtmf_transfer.is_empty());
    }

    fn press(digit: char) -> DtmfPress {
        DtmfPress {
            digit,
            duration_ms: 100,
        }
    }

    fn bridged_to(m: &mut Machine, request: TransferRequest) {
        let a = m.handle(Input::UpdateRequested { request, key: None }, t(1_000));
        assert!(a.len() >= 2, "{a:?}");
        m.handle(Input::RoomAnswered, t(1_500));
        assert_eq!(m.state(), State::Bridged);
    }

    #[test]
    fn keys_go_on_to_a_room_as_info_only_when_they_came_as_info() {
        let mut m = held();
        // Held: nobody to pass a key to.
        let a = m.handle(Input::Dtmf(press('7'), KeyVia::Info), t(500));
        assert!(
            !a.iter().any(|a| matches!(a, Action::SendDtmf { .. })),
            "{a:?}"
        );
        let room = TransferRequest {
            targets: vec!["sip:room@r".into()],
            headers: vec![],
            mode: Mode::Bridge,
            stream: None,
            media_encryption: None,
            record: None,
        };
        bridged_to(&mut m, room);
        let a = m.handle(Input::Dtmf(press('1'), KeyVia::Info), t(2_000));
        assert_eq!(
            a,
            vec![Action::SendDtmf {
                press: press('1'),
                to: KeyTo::RoomInfo
            }]
        );
        // RFC 4733 keys reach the room with the relay.
        assert_eq!(
            m.handle(Input::Dtmf(press('2'), KeyVia::Rtp), t(2_100)),
            vec![]
        );
    }

    #[test]
    fn keys_go_on_to_a_bot_however_they_came_and_past_the_cap() {
        let mut m = held();
        let bot = TransferRequest {
            targets: vec!["wss://bot.example/s".into()],
            headers: vec![],
            mode: Mode::Bridge,
            stream: Some(Box::new(crate::call::machine::plan::StreamTarget {
                url: "wss://bot.example/s".into(),
                parameters: vec![],
                headers: vec![],
                restored: false,
            })),
            media_encryption: None,
            record: None,
        };
        bridged_to(&mut m, bot);
        for (i, via) in [KeyVia::Rtp, KeyVia::Info].into_iter().enumerate() {
            let a = m.handle(Input::Dtmf(press('5'), via), t(2_000 + i as u64));
            assert_eq!(
                a,
                vec![Action::SendDtmf {
                    press: press('5'),
                    to: KeyTo::Bot
                }]
            );
        }
        for i in 0..MAX_PRESSES {
            m.handle(
                Input::Dtmf(press('9'), KeyVia::Rtp),
                t(3_000 + u64::from(i)),
            );
        }
        let a = m.handle(Input::Dtmf(press('4'), KeyVia::Rtp), t(9_000));
        assert!(
            matches!(a[..], [Action::SendDtmf { to: KeyTo::Bot, .. }]),
            "{a:?}"
        );
    }
}
