//! The machine's voice-bot paths: a stream target is an attempt like a
//! room's (every failure retried, the events naming the stream), a bot
//! takes part in re-transfers, and a restart puts its caller on hold.

use super::tests::{held_with, parties, policy, t};
use super::*;
use crate::call::machine::plan::StreamTarget;
use crate::config::OnRoomHangup;

fn bot(url: &str, shown: &str) -> TransferRequest {
    TransferRequest {
        targets: vec![shown.into()],
        headers: vec![],
        mode: Mode::Bridge,
        stream: Some(Box::new(StreamTarget {
            url: url.into(),
            parameters: vec![
                ("lang".into(), "de-DE".into()),
                ("From".into(), "app".into()),
            ],
            headers: vec![("Authorization".into(), "Bearer t".into())],
            restored: false,
        })),
        media_encryption: None,
        record: None,
    }
}

fn connects(actions: &[Action]) -> Vec<&Connect> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Connect(c) => Some(c),
            _ => None,
        })
        .collect()
}

fn detail(m: &Machine, kind: EventKind) -> Vec<Value> {
    m.timeline()
        .iter()
        .filter(|e| e.event == kind)
        .map(|e| e.detail.clone())
        .collect()
}

#[test]
fn a_stream_is_an_attempt_every_failure_retried_and_named_by_its_target() {
    let mut m = held_with(policy());
    let (_, actions) = m
        .request_transfer(bot("wss://b/ws?k=1", "wss://b/ws"), None, t(2_000))
        .unwrap();
    let c = connects(&actions);
    assert_eq!(c.len(), 1, "{actions:?}");
    assert_eq!(c[0].stream.url, "wss://b/ws?k=1");
    let p = parties();
    // Ours first, the caller's headers, then the app's (which win).
    assert_eq!(
        c[0].parameters,
        [
            ("callId".to_string(), p.call_id.clone()),
            ("From".to_string(), p.from.clone()),
            ("To".to_string(), p.to.clone()),
            ("X-Lang".to_string(), "de".to_string()),
            ("lang".to_string(), "de-DE".to_string()),
            ("From".to_string(), "app".to_string()),
        ]
    );
    // A 401 on the handshake is "not ready yet" for a bot (a SIP 401
    // would be a hard no).
    let refused = Input::RoomFailed {
        code: Some(401),
        reason: "handshake answered HTTP 401".into(),
    };
    assert!(m.handle(refused, t(2_010)).is_empty());
    assert_eq!(m.poll_timeout(), Some(t(2_260)), "backoff");
    assert_eq!(connects(&m.handle_timeout(t(2_260))).len(), 1);
    m.handle(Input::RoomAnswered, t(2_300));
    assert_eq!(m.state(), State::Bridged);
    assert_eq!(m.view().target.as_deref(), Some("wss://b/ws"));
    let started = detail(&m, EventKind::TransferStarted);
    assert_eq!(started[0]["target"], "wss://b/ws");
    assert_eq!(started[0]["mode"], "stream");
    assert!(started[0].get("sipUri").is_none());
    let failed = detail(&m, EventKind::TransferFailed);
    assert_eq!(failed[0]["code"], 401);
    assert_eq!(failed[0]["target"], "wss://b/ws");
    assert_eq!(detail(&m, EventKind::Bridged)[0]["target"], "wss://b/ws");
}

#[test]
fn a_bot_is_left_make_before_break_and_its_close_follows_the_entry() {
    let mut m = held_with(policy());
    m.request_transfer(bot("ws://b/1", "ws://b/1"), None, t(1_000))
        .unwrap();
    m.handle(Input::RoomAnswered, t(1_100));
    // To a room: the bot stays until the room answers.
    let (_, actions) = m
        .request_transfer(
            TransferRequest {
                targets: vec!["sip:room@r".into()],
                headers: vec![],
                mode: Mode::Bridge,
                stream: None,
                media_encryption: None,
                record: None,
            },
            None,
            t(2_000),
        )
        .unwrap();
    assert!(matches!(actions[..], [Action::Dial(_)]), "{actions:?}");
    assert!(m.with_bot());
    m.handle(Input::RoomAnswered, t(2_100));
    assert!(!m.with_bot());
    // Back to a bot, whose close ends the call (entry: end).
    m.request_transfer(bot("ws://b/2", "ws://b/2"), None, t(3_000))
        .unwrap();
    m.handle(Input::RoomAnswered, t(3_100));
    assert!(m.with_bot());
    let actions = m.handle(Input::RoomHungUp, t(4_000));
    assert_eq!(actions, [Action::HangupCaller, Action::Finish]);
    assert_eq!(m.end_reason(), Some(EndReason::RoomHangup));
    // With "hold", the caller is back on music and the app asked again.
    let mut m = held_with(Policy {
        on_room_hangup: OnRoomHangup::Hold,
        ..policy()
    });
    m.request_transfer(bot("ws://b/1", "ws://b/1"), None, t(1_000))
        .unwrap();
    m.handle(Input::RoomAnswered, t(1_100));
    let actions = m.handle(Input::RoomHungUp, t(2_000));
    assert_eq!(actions, [Action::ResumeHold, Action::PostWebhook]);
    assert_eq!(m.state(), State::Held);
}

#[test]
fn a_restart_puts_a_caller_with_a_bot_back_on_hold() {
    let mut m = held_with(policy());
    m.request_transfer(bot("ws://b/1", "ws://b/1"), None, t(1_000))
        .unwrap();
    m.handle(Input::RoomAnswered, t(1_100));
    let saved: Machine = serde_json::from_value(serde_json::to_value(&m).unwrap()).unwrap();
    let mut m = saved;
    assert_eq!(m.interrupted(t(5_000)), [Action::PostWebhook]);
    assert_eq!(m.state(), State::Held);
    assert!(!m.with_bot());
    let back = detail(&m, EventKind::ReturnedToHold);
    assert_eq!(back.last().unwrap()["reason"], "restart");
    // A caller with a SIP room is left with it.
    let mut m = held_with(policy());
    m.request_transfer(
        TransferRequest {
            targets: vec!["sip:room@r".into()],
            headers: vec![],
            mode: Mode::Bridge,
            stream: None,
            media_encryption: None,
            record: None,
        },
        None,
        t(1_000),
    )
    .unwrap();
    m.handle(Input::RoomAnswered, t(1_100));
    assert!(m.interrupted(t(5_000)).is_empty());
    assert_eq!(m.state(), State::Bridged);
}

#[test]
fn another_query_parameters_or_headers_is_another_bot() {
    let mut m = held_with(policy());
    let sales = bot("wss://b/x?agent=sales", "wss://b/x");
    m.request_transfer(sales.clone(), None, t(1_000)).unwrap();
    // While the plan for sales runs, support is another transfer: 409.
    let support = bot("wss://b/x?agent=support", "wss://b/x");
    assert!(m.request_transfer(support.clone(), None, t(1_010)).is_err());
    let (same, _) = m.request_transfer(sales.clone(), None, t(1_020)).unwrap();
    assert_eq!(same, Accepted::Duplicate);
    m.handle(Input::RoomAnswered, t(1_100));
    // With sales: support (query), other parameters or other headers
    // each start a transfer; sales again is a duplicate.
    let (again, _) = m.request_transfer(sales.clone(), None, t(2_000)).unwrap();
    assert_eq!(again, Accepted::Duplicate);
    let mut params = sales.clone();
    params.stream.as_mut().unwrap().parameters = vec![("lang".into(), "fr".into())];
    let mut headers = sales.clone();
    headers.stream.as_mut().unwrap().headers = vec![("Authorization".into(), "Bearer u".into())];
    for other in [support, params, headers] {
        let mut m = m.clone();
        let (started, actions) = m.request_transfer(other, None, t(2_000)).unwrap();
        assert_eq!(started, Accepted::Started);
        assert_eq!(connects(&actions).len(), 1, "{actions:?}");
    }
}

#[test]
fn a_saved_call_keeps_no_bot_credentials_and_a_restart_abandons_its_stream() {
    let mut m = held_with(policy());
    let mut request = bot("wss://u:pw@b/ws?token=s3cret", "wss://b/ws");
    request.stream.as_mut().unwrap().headers = vec![("Authorization".into(), "Bearer hush".into())];
    request.stream.as_mut().unwrap().parameters = vec![("apiKey".into(), "psst".into())];
    m.request_transfer(request.clone(), Some("k1".into()), t(1_000))
        .unwrap();
    let json = serde_json::to_string(&m).unwrap();
    for secret in ["s3cret", "hush", "psst", "pw@", "apiKey"] {
        assert!(!json.contains(secret), "{secret} saved: {json}");
    }
    assert!(json.contains("wss://b/ws"), "{json}");
    let mut m: Machine = serde_json::from_str(&json).unwrap();
    // The attempt under way cannot be made again without its token.
    let actions = m.interrupted(t(5_000));
    assert!(connects(&actions).is_empty(), "{actions:?}");
    assert_eq!(actions, [Action::PostWebhook]);
    assert_eq!(m.state(), State::Held);
    let failed = detail(&m, EventKind::TransferFailed);
    assert_eq!(failed.last().unwrap()["final"], true);
    assert_eq!(failed.last().unwrap()["target"], "wss://b/ws");
    // The same update under the same key is still a duplicate.
    let (again, _) = m
        .request_transfer(request, Some("k1".into()), t(6_000))
        .unwrap();
    assert_eq!(again, Accepted::Duplicate);
}

#[test]
fn a_stream_that_cannot_be_sent_is_not_retried() {
    let mut m = held_with(policy());
    m.request_transfer(bot("wss://b/ws", "wss://b/ws"), None, t(1_000))
        .unwrap();
    let input = Input::StreamUnusable("streamHeaders.X-A: cannot be sent".into());
    assert!(connects(&m.handle(input, t(1_010))).is_empty());
    // No backoff: the next deadline is the hold timer's.
    assert!(m.poll_timeout() > Some(t(10_000)), "{:?}", m.poll_timeout());
    assert_eq!(m.state(), State::Held);
    let failed = detail(&m, EventKind::TransferFailed);
    assert_eq!(failed[0]["final"], true);
    assert_eq!(failed[0]["gaveUp"], "every target refused the call");
}

/// A bot whose stream does not open by the attempt's timeout is given up
/// by the machine (the opening dropped) and retried as any bot failure.
#[test]
fn a_bot_that_does_not_open_in_time_is_given_up_and_retried() {
    let mut m = held_with(Policy {
        ring_cap: Duration::from_secs(5),
        ..policy()
    });
    let (_, a) = m
        .request_transfer(bot("wss://b/ws?k=1", "wss://b/ws"), None, t(2_000))
        .unwrap();
    assert_eq!(connects(&a).len(), 1);
    assert_eq!(m.poll_timeout(), Some(t(7_000)));
    let a = m.handle_timeout(t(7_000));
    assert_eq!(a.first(), Some(&Action::CancelTransfer), "{a:?}");
    let failed = detail(&m, EventKind::TransferFailed);
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["reason"], "no answer from the bot in 5s");
    assert_eq!(failed[0]["final"], false);
    assert_eq!(m.state(), State::Transferring, "retried after a backoff");
}
