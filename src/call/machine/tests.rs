use super::*;
use crate::clock::Instant;
use std::time::Duration;

/// The fake clock: `t(ms)` is `ms` after it started.
pub(super) fn t(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

pub(super) fn policy() -> Policy {
    Policy {
        announce_every: None,
        transfer_timeout: Duration::from_secs(30),
        max_hold: Duration::from_secs(600),
        on_room_hangup: OnRoomHangup::End,
        on_hold_timeout: HoldTimeout::Hangup { announcement: None },
        ring_cap: Duration::from_secs(30),
        dtmf_transfer: Default::default(),
        record: Default::default(),
        consent: None,
    }
}

/// The parties of every test call (the sub-modules' tests share them).
pub(super) fn parties() -> Parties {
    Parties {
        call_id: "c1".into(),
        call_domain: "d".into(),
        from: "+15550001".into(),
        to: "sip:support@gw".into(),
        entry: "support".into(),
        caller_headers: vec![("X-Lang".into(), "de".into())],
        registration: None,
    }
}

/// A call answered and held at t(1 s) under `policy`.
pub(super) fn held_with(policy: Policy) -> Machine {
    Machine::answered(parties(), policy, t(1_000), 1_000)
}

fn held() -> Machine {
    held_with(policy())
}

fn to(targets: &[&str]) -> TransferRequest {
    TransferRequest {
        targets: targets.iter().map(|t| t.to_string()).collect(),
        headers: vec![],
        mode: Mode::Bridge,
        stream: None,
        media_encryption: None,
        record: None,
    }
}

/// One target in `mode` (the sub-modules' tests share it).
pub(super) fn to_one(target: &str, mode: Mode) -> TransferRequest {
    TransferRequest {
        mode,
        ..to(&[target])
    }
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

fn events(m: &Machine) -> Vec<&'static str> {
    m.timeline.iter().map(|e| e.event.name()).collect()
}

fn fail(code: u16) -> Input {
    Input::RoomFailed {
        code: Some(code),
        reason: "x".into(),
    }
}

#[test]
fn transfer_then_bridge_then_caller_hangs_up() {
    let mut m = held();
    let mut req = to(&["sip:room@r"]);
    req.headers = vec![("X-Id".into(), "7".into())];
    let (accepted, a) = m.request_transfer(req, None, t(2_000)).unwrap();
    assert_eq!(accepted, Accepted::Started);
    assert_eq!(
        a,
        vec![Action::Dial(Transfer {
            target: "sip:room@r".into(),
            headers: vec![("X-Lang".into(), "de".into()), ("X-Id".into(), "7".into())],
            ring_timeout: Duration::from_secs(30),
            srtp: false,
            codecs: vec![AudioCodec::Pcmu, AudioCodec::Pcma],
        })]
    );
    assert_eq!(m.state, State::Transferring);
    assert!(m.handle(Input::RoomAnswered, t(3_000)).is_empty());
    assert_eq!((m.state, m.bridged_at), (State::Bridged, Some(3_000)));
    let a = m.handle(Input::CallerHungUp, t(9_000));
    assert_eq!(a, vec![Action::HangupRoom, Action::Finish]);
    assert_eq!((m.hold_ms, m.talk_ms), (2_000, 6_000));
    assert_eq!(m.end_reason, Some(EndReason::CallerHangup));
    let ended = m.timeline.last().unwrap();
    assert_eq!(ended.detail["by"], "caller");
    assert_eq!(ended.detail["talkMs"], 6_000);
    assert!(m.handle(Input::RoomHungUp, t(9_001)).is_empty());
}

#[test]
fn the_apps_headers_replace_the_callers_of_the_same_name() {
    let mut m = held();
    let mut req = to(&["sip:room@r"]);
    req.headers = vec![("x-lang".into(), "fr".into())];
    let (_, a) = m.request_transfer(req, None, t(2_000)).unwrap();
    let Action::Dial(t) = &a[0] else {
        panic!("{a:?}")
    };
    assert_eq!(t.headers, vec![("x-lang".to_string(), "fr".to_string())]);
}

#[test]
fn a_room_not_ready_is_retried_until_it_answers() {
    let mut m = held();
    m.request_transfer(to(&["sip:room@r"]), None, t(2_000))
        .unwrap();
    assert_eq!(m.handle(fail(480), t(2_010)), vec![]);
    assert_eq!(m.poll_timeout(), Some(t(2_260)), "backoff of 250 ms");
    assert_eq!(m.state, State::Transferring);
    assert!(
        m.handle(fail(480), t(2_011)).is_empty(),
        "no failure counts while waiting"
    );
    assert_eq!(dialled(&m.handle_timeout(t(2_260))), ["sip:room@r"]);
    m.handle(Input::RoomAnswered, t(2_300));
    assert_eq!(m.state, State::Bridged);
    assert_eq!(m.transfer_attempts, 2);
    assert_eq!(
        events(&m),
        [
            "call.held",
            "call.transfer_started",
            "call.transfer_failed",
            "call.transfer_started",
            "call.bridged"
        ]
    );
}

#[test]
fn a_list_is_tried_in_turn_and_giving_up_returns_to_hold() {
    let mut m = held();
    m.request_transfer(to(&["sip:a@r", "sip:b@r"]), None, t(2_000))
        .unwrap();
    assert_eq!(dialled(&m.handle(fail(603), t(2_100))), ["sip:b@r"]);
    assert!(m.handle(fail(486), t(2_200)).is_empty());
    assert_eq!(m.state, State::Held);
    let failed = m
        .timeline
        .iter()
        .rfind(|e| e.event == EventKind::TransferFailed)
        .unwrap();
    assert_eq!(failed.detail["code"], 486);
    assert_eq!(failed.detail["final"], true);
    assert_eq!(m.timeline.last().unwrap().event, EventKind::ReturnedToHold);
    // A new update works after giving up.
    assert!(m.request_transfer(to(&["sip:c@r"]), None, t(3_000)).is_ok());
}

#[test]
fn duplicates_are_absorbed_and_conflicts_refused() {
    let mut m = held();
    let key = Some("k1".to_string());
    let (a, _) = m
        .request_transfer(to(&["sip:a@r"]), key.clone(), t(2_000))
        .unwrap();
    assert_eq!(a, Accepted::Started);
    // Same body, same key; same target without a key: nothing new starts.
    assert_eq!(
        m.request_transfer(to(&["sip:a@r"]), key.clone(), t(2_001)),
        Ok((Accepted::Duplicate, vec![]))
    );
    assert_eq!(
        m.request_transfer(to(&["sip:a@r"]), None, t(2_002)),
        Ok((Accepted::Duplicate, vec![]))
    );
    // Same key, other body; other target while transferring: 409.
    let e = m
        .request_transfer(to(&["sip:b@r"]), key, t(2_003))
        .unwrap_err();
    assert!(e.reason.contains("Idempotency-Key"), "{e}");
    let e = m
        .request_transfer(to(&["sip:b@r"]), None, t(2_004))
        .unwrap_err();
    assert!(e.reason.contains("under way"), "{e}");
    m.handle(Input::RoomAnswered, t(2_500));
    // Already there: a late duplicate does not add the caller twice.
    assert_eq!(
        m.request_transfer(to(&["sip:a@r"]), None, t(3_000)),
        Ok((Accepted::Duplicate, vec![]))
    );
    assert_eq!(m.transfer_attempts, 1);
}

#[test]
fn the_same_list_again_after_it_bridged_is_a_duplicate() {
    let mut m = held();
    let list = to(&["sip:a@r", "sip:b@r"]);
    m.request_transfer(list.clone(), None, t(2_000)).unwrap();
    m.handle(Input::RoomAnswered, t(2_100));
    assert_eq!(m.state(), State::Bridged);
    // A Daily-style app sending the update its webhook answer already
    // routed: no second leg.
    assert_eq!(
        m.request_transfer(list, None, t(3_000)),
        Ok((Accepted::Duplicate, vec![]))
    );
    // Another list is a move, as before.
    let (a, actions) = m
        .request_transfer(to(&["sip:b@r", "sip:a@r"]), None, t(3_100))
        .unwrap();
    assert_eq!(a, Accepted::Started);
    assert!(!actions.is_empty());
}

#[test]
fn the_webhook_answer_cannot_route_a_call_for_ever() {
    let mut m = held_with(Policy {
        on_room_hangup: OnRoomHangup::Hold,
        ..policy()
    });
    let mut at = 2_000;
    for round in 0..5 {
        let actions = m.handle(Input::WebhookRouted(Ok(to(&["sip:a@r"]))), t(at));
        let dialled = actions.iter().any(|a| matches!(a, Action::Dial(_)));
        assert_eq!(dialled, round < 3, "round {round}");
        if !dialled {
            break;
        }
        m.handle(Input::RoomAnswered, t(at + 100));
        // The room hangs up: back to hold, and the webhook again.
        let again = m.handle(Input::RoomHungUp, t(at + 200));
        assert!(again.contains(&Action::PostWebhook));
        at += 1_000;
    }
    assert_eq!(m.state(), State::Held);
}

#[test]
fn retransfer_is_make_before_break() {
    let mut m = held();
    m.request_transfer(to(&["sip:a@r"]), None, t(2_000))
        .unwrap();
    m.handle(Input::RoomAnswered, t(2_100));
    let (_, a) = m
        .request_transfer(to(&["sip:b@r"]), None, t(5_000))
        .unwrap();
    assert_eq!(dialled(&a), ["sip:b@r"]);
    assert_eq!(m.state, State::Transferring);
    assert_eq!(m.hold_deadline(), None, "the caller is not on hold");
    // The new room refuses: the caller stays with the old one.
    assert!(m.handle(fail(486), t(5_100)).is_empty());
    assert_eq!(
        (m.state, m.target.as_deref()),
        (State::Bridged, Some("sip:a@r"))
    );
    m.request_transfer(to(&["sip:b@r"]), None, t(6_000))
        .unwrap();
    assert!(m.handle(Input::RoomAnswered, t(6_100)).is_empty());
    let bridged = m.timeline.last().unwrap();
    assert_eq!(bridged.detail["replaced"], "sip:a@r");
    assert_eq!(m.target.as_deref(), Some("sip:b@r"));
}

#[test]
fn hold_request_from_anywhere() {
    let mut m = held();
    assert_eq!(m.request_hold(t(1_500)), Ok(vec![]));
    m.request_transfer(to(&["sip:a@r"]), None, t(2_000))
        .unwrap();
    assert_eq!(m.request_hold(t(2_050)), Ok(vec![Action::CancelTransfer]));
    assert_eq!(m.state, State::Held);
    m.request_transfer(to(&["sip:a@r"]), None, t(3_000))
        .unwrap();
    m.handle(Input::RoomAnswered, t(3_100));
    assert_eq!(
        m.request_hold(t(4_100)),
        Ok(vec![Action::HangupRoom, Action::ResumeHold])
    );
    assert_eq!((m.state, m.talk_ms), (State::Held, 1_000));
    assert_eq!(
        m.hold_deadline(),
        Some(t(4_100 + 600_000)),
        "hold timer restarts"
    );
    m.handle(Input::HangupRequested, t(5_000));
    assert!(m.request_hold(t(5_001)).is_err());
}

#[test]
fn room_hangup_ends_or_holds_per_entry() {
    let mut m = held();
    m.request_transfer(to(&["sip:a@r"]), None, t(2_000))
        .unwrap();
    m.handle(Input::RoomAnswered, t(2_100));
    assert_eq!(
        m.handle(Input::RoomHungUp, t(5_000)),
        vec![Action::HangupCaller, Action::Finish]
    );
    assert_eq!(m.timeline.last().unwrap().detail["by"], "room");

    let mut m = held_with(Policy {
        on_room_hangup: OnRoomHangup::Hold,
        ..policy()
    });
    m.request_transfer(to(&["sip:a@r"]), None, t(2_000))
        .unwrap();
    m.handle(Input::RoomAnswered, t(2_100));
    assert_eq!(
        m.handle(Input::RoomHungUp, t(5_000)),
        vec![Action::ResumeHold, Action::PostWebhook]
    );
    assert_eq!(m.state, State::Held);
}

#[test]
fn hangups_while_transferring_cancel_the_room() {
    let mut m = held();
    m.request_transfer(to(&["sip:a@r"]), None, t(2_000))
        .unwrap();
    assert_eq!(
        m.handle(Input::CallerHungUp, t(2_100)),
        vec![Action::CancelTransfer, Action::Finish]
    );
}

#[test]
fn hold_timeout_hangs_up_announces_or_transfers() {
    let mut m = held();
    assert_eq!(m.hold_deadline(), Some(t(601_000)));
    assert_eq!(
        m.handle_timeout(t(601_000)),
        vec![Action::HangupCaller, Action::Finish]
    );
    assert_eq!(m.end_reason, Some(EndReason::HoldTimeout));

    let mut m = held_with(Policy {
        on_hold_timeout: HoldTimeout::Hangup {
            announcement: Some(Duration::from_secs(3)),
        },
        ..policy()
    });
    assert_eq!(m.handle_timeout(t(601_000)), vec![Action::PlayAnnouncement]);
    assert!(
        m.request_transfer(to(&["sip:a@r"]), None, t(601_001))
            .is_err()
    );
    assert_eq!(
        m.handle_timeout(t(604_000)),
        vec![Action::HangupCaller, Action::Finish]
    );

    let mut m = held_with(Policy {
        on_hold_timeout: HoldTimeout::Transfer("sip:overflow@r".into()),
        ..policy()
    });
    m.request_transfer(to(&["sip:a@r"]), None, t(600_000))
        .unwrap();
    let a = m.handle_timeout(t(601_000));
    assert_eq!(a[0], Action::CancelTransfer);
    assert_eq!(dialled(&a), ["sip:overflow@r"]);
    assert_eq!(m.hold_deadline(), None);
    // If the overflow target fails for good, the call ends.
    let a = m.handle(fail(603), t(601_100));
    assert_eq!(a, vec![Action::HangupCaller, Action::Finish]);
}

#[test]
fn refer_falls_back_to_the_bridge() {
    let mut m = held();
    let mut req = to(&["sip:a@r"]);
    req.mode = Mode::Refer;
    let (_, a) = m.request_transfer(req.clone(), None, t(2_000)).unwrap();
    assert!(matches!(&a[..], [Action::Refer(t)] if t.target == "sip:a@r"));
    let a = m.handle(Input::ReferAnswered(Some(405)), t(2_100));
    assert_eq!(dialled(&a), ["sip:a@r"]);
    m.handle(Input::RoomAnswered, t(2_200));
    assert_eq!(m.state, State::Bridged);

    let mut m = held();
    m.request_transfer(req, None, t(2_000)).unwrap();
    assert!(
        m.handle(Input::ReferAnswered(Some(202)), t(2_100))
            .is_empty()
    );
    assert!(m.handle(Input::ReferNotified(100), t(2_200)).is_empty());
    assert_eq!(
        m.handle(Input::ReferNotified(200), t(2_500)),
        vec![Action::HangupCaller, Action::Finish]
    );
    assert_eq!(m.end_reason, Some(EndReason::Referred));
}

/// Drives the machine the way its driver does: the clock jumps to each
/// deadline `poll_timeout` names, and `handle_timeout` fires it.
fn sleep_to_deadline(m: &mut Machine) -> (Instant, Vec<Action>) {
    let at = m.poll_timeout().expect("a deadline");
    (at, m.handle_timeout(at))
}

#[test]
fn a_whole_call_on_a_fake_clock() {
    let mut m = held_with(Policy {
        on_hold_timeout: HoldTimeout::Hangup {
            announcement: Some(Duration::from_secs(4)),
        },
        ..policy()
    });
    // Held: the only deadline is the hold timeout, 600 s after the answer.
    assert_eq!(m.poll_timeout(), Some(t(601_000)));

    // The room refuses twice (not ready), then answers.
    m.request_transfer(to(&["sip:room@r"]), None, t(2_000))
        .unwrap();
    assert!(m.handle(fail(480), t(2_100)).is_empty());
    let (at, a) = sleep_to_deadline(&mut m);
    assert_eq!((at, dialled(&a)), (t(2_350), vec!["sip:room@r"]));
    assert!(m.handle(fail(503), t(2_400)).is_empty());
    let (at, a) = sleep_to_deadline(&mut m);
    assert_eq!(
        (at, dialled(&a)),
        (t(2_900), vec!["sip:room@r"]),
        "backoff doubled"
    );
    assert!(m.handle(Input::RoomAnswered, t(3_000)).is_empty());
    assert_eq!(m.state, State::Bridged);
    assert_eq!(m.poll_timeout(), None, "a bridged call has no deadline");

    // Re-transfer, make before break: the new room answers.
    let (_, a) = m
        .request_transfer(to(&["sip:other@r"]), None, t(10_000))
        .unwrap();
    assert_eq!(dialled(&a), ["sip:other@r"]);
    assert!(m.handle(Input::RoomAnswered, t(10_500)).is_empty());
    assert_eq!(m.target.as_deref(), Some("sip:other@r"));

    // Back to hold: the hold timer starts again from here.
    assert_eq!(
        m.request_hold(t(20_000)),
        Ok(vec![Action::HangupRoom, Action::ResumeHold])
    );
    assert_eq!(m.poll_timeout(), Some(t(620_000)));

    // Hold timeout: the announcement plays, and the call ends after it.
    let (at, a) = sleep_to_deadline(&mut m);
    assert_eq!((at, a), (t(620_000), vec![Action::PlayAnnouncement]));
    assert_eq!(m.state, State::Announcing);
    let (at, a) = sleep_to_deadline(&mut m);
    assert_eq!(at, t(624_000));
    assert_eq!(a, vec![Action::HangupCaller, Action::Finish]);
    assert_eq!(m.poll_timeout(), None);
    // The announcement counts as time on hold.
    assert_eq!((m.hold_ms, m.talk_ms), (2_000 + 600_000 + 4_000, 17_000));
    assert_eq!(
        events(&m),
        [
            "call.held",
            "call.transfer_started",
            "call.transfer_failed",
            "call.transfer_started",
            "call.transfer_failed",
            "call.transfer_started",
            "call.bridged",
            "call.transfer_started",
            "call.bridged",
            "call.returned_to_hold",
            "call.hold_timeout",
            "call.ended",
        ]
    );
    // Shown times follow the monotonic clock from the answer's wall time.
    assert_eq!(m.timeline.last().unwrap().at, 624_000);
    assert_eq!(m.ended_at, Some(624_000));
}

#[test]
fn a_transfer_gives_up_at_its_deadline() {
    let mut m = held();
    m.request_transfer(to(&["sip:room@r"]), None, t(2_000))
        .unwrap();
    let mut now = 2_000;
    let mut attempts = 1;
    loop {
        now += 100;
        if !m.handle(fail(480), t(now)).is_empty() || m.state == State::Held {
            break;
        }
        let (at, a) = sleep_to_deadline(&mut m);
        now = at.as_millis();
        assert!(now < 32_000, "an attempt past transfer_timeout_secs");
        if dialled(&a).is_empty() {
            break;
        }
        attempts += 1;
    }
    assert_eq!(m.state, State::Held);
    assert!(attempts > 10, "retried until the deadline ({attempts})");
    assert_eq!(
        m.poll_timeout(),
        Some(t(601_000)),
        "only the hold timer is left"
    );
}

#[test]
fn a_refer_without_final_notify_falls_back_when_its_deadline_passes() {
    let mut m = held_with(Policy {
        ring_cap: Duration::from_secs(5),
        ..policy()
    });
    let mut req = to(&["sip:a@r"]);
    req.mode = Mode::Refer;
    m.request_transfer(req, None, t(2_000)).unwrap();
    assert!(
        m.handle(Input::ReferAnswered(Some(202)), t(2_050))
            .is_empty()
    );
    let (at, a) = sleep_to_deadline(&mut m);
    assert_eq!(at, t(7_000));
    assert_eq!(a[0], Action::CancelTransfer);
    assert_eq!(dialled(&a), ["sip:a@r"], "bridged instead");
    let failed = m
        .timeline
        .iter()
        .find(|e| e.event == EventKind::ReferFailed)
        .unwrap();
    assert_eq!(failed.detail["reason"], "no final NOTIFY in time");
}

#[test]
fn a_saved_call_restores_with_its_deadlines() {
    let mut m = held();
    m.request_transfer(to(&["sip:room@r"]), Some("k".into()), t(2_000))
        .unwrap();
    m.handle(fail(480), t(2_100));
    let saved = serde_json::to_string(&m).unwrap();
    let mut back: Machine = serde_json::from_str(&saved).unwrap();
    assert_eq!(back, m);
    assert_eq!(back.poll_timeout(), Some(t(2_350)));
    assert_eq!(dialled(&back.handle_timeout(t(2_350))), ["sip:room@r"]);
    // The idempotency key came along.
    assert!(matches!(
        back.request_transfer(to(&["sip:room@r"]), Some("k".into()), t(2_400)),
        Ok((Accepted::Duplicate, _))
    ));
}

/// API requests are inputs like any fact: the answer comes out as the
/// first action, before what the request sets going.
#[test]
fn requests_are_answered_by_a_reply_action_first() {
    let mut m = held();
    let update = Input::UpdateRequested {
        request: to(&["sip:room@r"]),
        key: Some("k1".into()),
    };
    let a = m.handle(update.clone(), t(2_000));
    assert!(
        matches!(
            &a[..],
            [
                Action::Reply(Reply::Update(Ok(Accepted::Started))),
                Action::Dial(_)
            ]
        ),
        "{a:?}"
    );
    let a = m.handle(update, t(2_100));
    assert_eq!(
        a,
        vec![Action::Reply(Reply::Update(Ok(Accepted::Duplicate)))]
    );
    // Play is refused while transferring, and nothing is played.
    let play = Input::PlayRequested {
        audio: "a.wav".into(),
        then: PlayThen::Hold,
    };
    let a = m.handle(play.clone(), t(2_200));
    assert!(
        matches!(&a[..], [Action::Reply(Reply::Play(Err(_)))]),
        "{a:?}"
    );
    let a = m.handle(Input::HoldRequested, t(2_300));
    assert_eq!(
        a,
        vec![Action::Reply(Reply::Hold(Ok(()))), Action::CancelTransfer]
    );
    // Held again: the prompt is taken and played.
    let a = m.handle(play, t(2_400));
    assert_eq!(
        a,
        vec![Action::Reply(Reply::Play(Ok(()))), Action::PlayPrompt]
    );
    // An ended call refuses, and only answers.
    m.handle(Input::HangupRequested, t(3_000));
    let a = m.handle(Input::HoldRequested, t(3_100));
    assert!(
        matches!(&a[..], [Action::Reply(Reply::Hold(Err(e)))] if e.reason == "call is ended"),
        "{a:?}"
    );
}

/// A room is offered the codecs the call was given, in that order; an
/// SRTP room not reached over TLS is never dialled (its keys would go in
/// clear): the attempt fails and the plan goes on to the next target.
#[test]
fn room_attempts_are_shaped_by_the_machine() {
    use AudioCodec::*;
    let mut m = held().with_room_codecs(room::offer_codecs(G722, &[Pcmu, Pcma, G722]));
    let mut req = to(&["sips:room@r;transport=udp", "sips:room2@r"]);
    req.media_encryption = Some(crate::config::MediaEncryption::Require);
    let (_, a) = m.request_transfer(req, None, t(2_000)).unwrap();
    let dialled: Vec<_> = a
        .iter()
        .filter_map(|a| match a {
            Action::Dial(t) => Some((t.target.as_str(), t.srtp, t.codecs.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        dialled,
        vec![("sips:room2@r", true, vec![G722, Pcmu, Pcma])],
        "{a:?}"
    );
    let failed: Vec<_> = m
        .timeline()
        .iter()
        .filter(|e| e.event == EventKind::TransferFailed)
        .map(|e| e.detail["reason"].clone())
        .collect();
    assert_eq!(
        failed,
        vec![serde_json::json!(
            "SRTP keys are only sent over TLS; sips:room@r;transport=udp is not"
        )]
    );
}

/// The ring timeout is the machine's: a room that does not answer by it is
/// given up (CANCEL), logged as a 408, and the next target is tried.
#[test]
fn a_room_that_rings_past_its_timeout_is_cancelled_and_the_next_tried() {
    let mut m = held_with(Policy {
        ring_cap: Duration::from_secs(10),
        ..policy()
    });
    let (_, a) = m
        .request_transfer(to(&["sip:slow@r", "sip:next@r"]), None, t(2_000))
        .unwrap();
    assert!(
        matches!(&a[..], [Action::Dial(d)] if d.target == "sip:slow@r"),
        "{a:?}"
    );
    assert_eq!(m.poll_timeout(), Some(t(12_000)));
    assert_eq!(m.handle_timeout(t(11_999)), vec![]);
    let a = m.handle_timeout(t(12_000));
    assert!(
        matches!(&a[..], [Action::CancelTransfer, Action::Dial(d)] if d.target == "sip:next@r"),
        "{a:?}"
    );
    let failed = m
        .timeline()
        .iter()
        .rev()
        .find(|e| e.event == EventKind::TransferFailed);
    let failed = failed.map(|e| (e.detail["code"].clone(), e.detail["reason"].clone()));
    assert_eq!(
        failed,
        Some((
            serde_json::json!(408),
            serde_json::json!("no answer from room")
        ))
    );
    // The second has its own 10 s.
    assert_eq!(m.poll_timeout(), Some(t(22_000)));
    let a = m.handle_timeout(t(22_000));
    assert_eq!(a.first(), Some(&Action::CancelTransfer), "{a:?}");
}

/// A room that answers in time clears the ring deadline.
#[test]
fn an_answer_in_time_leaves_no_ring_deadline() {
    let mut m = held();
    m.request_transfer(to(&["sip:room@r"]), None, t(2_000))
        .unwrap();
    m.handle(Input::RoomAnswered, t(5_000));
    assert_eq!(m.state(), State::Bridged);
    assert_eq!(m.handle_timeout(t(40_000)), vec![]);
    assert_eq!(m.state(), State::Bridged);
}

/// A room's answer SDP: `m=audio 4000 {proto}` with PCMU.
fn room_sdp(proto: &str) -> Vec<u8> {
    format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio 4000 {proto}\r\na=rtpmap:0 PCMU/8000\r\n"
    )
    .into_bytes()
}

/// A held call whose transfer to one room is dialling.
fn dialling() -> Machine {
    let mut m = held();
    let request = to(&["sip:room@r"]);
    let a = m.handle(Input::UpdateRequested { request, key: None }, t(2_000));
    assert!(a.iter().any(|a| matches!(a, Action::Dial(_))), "{a:?}");
    m
}

#[test]
fn the_machine_bridges_a_usable_answer_and_hangs_up_an_unusable_one() {
    let mut m = dialling();
    let sdp = room_sdp("RTP/AVP 0");
    let a = m.handle(
        Input::RoomAnswer {
            sdp: sdp.into(),
            offered: None,
        },
        t(2_500),
    );
    match &a[..] {
        [Action::BridgeRoom(u)] => assert_eq!(u.media.addr.port(), 4000),
        other => panic!("{other:?}"),
    }
    // SRTP to our plain offer: the room is hung up, the transfer
    // fails (one target, so back to hold) and says why.
    let mut m = dialling();
    let sdp = room_sdp("RTP/SAVP 0");
    let a = m.handle(
        Input::RoomAnswer {
            sdp: sdp.into(),
            offered: None,
        },
        t(2_500),
    );
    assert_eq!(a.first(), Some(&Action::HangupAnswered), "{a:?}");
    let failed = m
        .timeline()
        .iter()
        .find(|e| e.event == EventKind::TransferFailed);
    let detail = failed.map(|e| e.detail.clone()).unwrap_or_default();
    assert_eq!(detail["code"], 488, "{detail}");
    assert_eq!(m.state(), State::Held);
    // An answer nobody waits for any more: that room goes.
    let mut m = Machine::answered(parties(), policy(), t(1_000), 1_000);
    let a = m.handle(
        Input::RoomAnswer {
            sdp: room_sdp("RTP/AVP 0").into(),
            offered: None,
        },
        t(2_000),
    );
    assert_eq!(a, vec![Action::HangupAnswered]);
}

#[test]
fn the_view_names_each_leg_s_codec_once_the_room_is_bridged() {
    let mut m = dialling().with_room_codecs(vec![AudioCodec::Opus, AudioCodec::Pcmu]);
    assert_eq!(m.view().codecs.caller, Some(AudioCodec::Opus));
    let a = m.handle(
        Input::RoomAnswer {
            sdp: room_sdp("RTP/AVP 0").into(),
            offered: None,
        },
        t(2_500),
    );
    assert!(matches!(a[..], [Action::BridgeRoom(_)]), "{a:?}");
    assert_eq!(m.view().codecs.room, None, "not bridged yet");
    m.handle(Input::RoomAnswered, t(2_600));
    let json = serde_json::to_value(m.view()).unwrap();
    assert_eq!(
        json["codecs"],
        serde_json::json!({"caller": "opus", "room": "PCMU"})
    );
    // Saved and read back, the bridged call still says so.
    let saved: Machine = serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
    assert_eq!(saved.view().codecs, m.view().codecs);
    // Back on hold: the caller's codec only.
    m.handle(Input::HoldRequested, t(3_000));
    assert_eq!(m.view().codecs.room, None);
}
