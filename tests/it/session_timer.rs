//! RFC 4028 session timers where the caller's INVITE asks for them: the
//! 200 OK carries Session-Expires and the refresher; a session nobody
//! refreshes ends with `LegEvent::SessionExpired`; refreshes (the peer's
//! UPDATE, or our own re-INVITE when we are the refresher) keep it up.
//! The 90 s minimum is lowered through the test-only
//! `Stack::set_min_session_expires_for_tests`.

use crate::support;

use pinless::sip::{IncomingInvite, Leg, LegEvent, Stack, sdp};
use std::time::{Duration, Instant};
use support::raw::RawSip;
use support::{Phone, within};
use tokio::sync::mpsc;

async fn accept(stack: &Stack, invites: &mut mpsc::Receiver<IncomingInvite>) -> Leg {
    let invite = within(5, "the INVITE", invites.recv()).await.unwrap();
    let offer = sdp::parse(&invite.info.sdp).unwrap();
    let answer = sdp::answer("127.0.0.1".parse().unwrap(), 40000, offer.choose());
    invite.accept(stack, answer).await.unwrap()
}

/// A raw INVITE asking for a `secs` session timer; the final answer.
async fn raw_call(
    stack: &Stack,
    invites: &mut mpsc::Receiver<IncomingInvite>,
    secs: u32,
) -> (RawSip, support::raw::RawResponse, Leg) {
    let raw = RawSip::new(stack.udp_addr().unwrap()).await;
    let extra = format!("Session-Expires: {secs};refresher=uac\r\nSupported: timer\r\n");
    raw.send(&raw.invite(
        "support",
        &format!("st-{}", uuid::Uuid::new_v4()),
        1,
        &extra,
    ))
    .await;
    let leg = accept(stack, invites).await;
    let ok = raw.response(Duration::from_secs(5), true).await.unwrap();
    assert_eq!(ok.code(), 200);
    (raw, ok, leg)
}

#[tokio::test]
async fn an_unrefreshed_session_expires_and_a_short_one_is_not_enforced() {
    let (stack, mut invites) = support::peers::stack_with(None).await;
    // At the RFC's minimum, a 3 s timer is not taken up.
    let (_raw, ok, _leg) = raw_call(&stack, &mut invites, 3).await;
    assert_eq!(ok.header("Session-Expires"), None, "{}", ok.0);

    stack.set_min_session_expires_for_tests(1);
    let (raw, ok, mut leg) = raw_call(&stack, &mut invites, 3).await;
    assert_eq!(ok.header("Session-Expires"), Some("3;refresher=uac"));
    assert_eq!(ok.header("Require"), Some("timer"));
    assert_eq!(leg.state().session_timer.unwrap().interval_secs, 3);
    let started = Instant::now();
    let event = within(6, "the session to expire", leg.next_event()).await;
    assert_eq!(event, LegEvent::SessionExpired);
    // min(32 s, 3 s / 3) before the 3 s are up.
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1800) && took < Duration::from_secs(3),
        "{took:?}"
    );
    // The owner's hang-up still reaches the (silent) peer as a BYE.
    leg.hangup();
    let bye = within(5, "a BYE after the expiry", async {
        loop {
            if let Some(r) = raw.request(Duration::from_secs(5)).await
                && r.0.starts_with("BYE ")
            {
                return r;
            }
        }
    })
    .await;
    assert!(bye.0.starts_with("BYE "));
}

#[tokio::test]
async fn the_peers_refreshes_keep_the_session_up() {
    let (stack, mut invites) = support::peers::stack_with(None).await;
    stack.set_min_session_expires_for_tests(1);
    let phone = Phone::new().await;
    phone.stack.set_min_session_expires_for_tests(1);
    let target = format!("sip:support@{}", stack.udp_addr().unwrap());
    let headers = [
        ("Session-Expires", "3;refresher=uac"),
        ("Supported", "timer"),
    ];
    let mut dialing = phone.dial(&target, &headers);
    let mut leg = accept(&stack, &mut invites).await;
    let mut caller = match within(5, "the answer", dialing.outcome()).await {
        pinless::sip::DialOutcome::Answered { leg, .. } => leg,
        other => panic!("{other:?}"),
    };
    // Refreshing every second for 3 s (past the 2 s deadline) keeps it;
    // the leg is watched (and answers) a little longer than that.
    let watching = tokio::time::timeout(Duration::from_secs(4), leg.next_event());
    let refreshing = async {
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            assert_eq!(caller.update().await.unwrap(), Some(200));
        }
    };
    let (event, ()) = tokio::join!(watching, refreshing);
    assert!(event.is_err(), "no event while refreshed: {event:?}");
    // Then silence: it expires.
    let event = within(4, "the session to expire", leg.next_event()).await;
    assert_eq!(event, LegEvent::SessionExpired);
}

#[tokio::test]
async fn as_refresher_we_reinvite_and_the_session_stays_up() {
    let (stack, mut invites) = support::peers::stack_with(None).await;
    stack.set_min_session_expires_for_tests(1);
    let phone = Phone::new().await;
    phone.stack.set_min_session_expires_for_tests(1);
    let target = format!("sip:support@{}", stack.udp_addr().unwrap());
    let headers = [
        ("Session-Expires", "4;refresher=uas"),
        ("Supported", "timer"),
    ];
    let mut dialing = phone.dial(&target, &headers);
    let mut leg = accept(&stack, &mut invites).await;
    assert!(leg.state().session_timer.unwrap().we_refresh);
    let mut caller = match within(5, "the answer", dialing.outcome()).await {
        pinless::sip::DialOutcome::Answered { leg, .. } => leg,
        other => panic!("{other:?}"),
    };
    // Unrefreshed it would expire after 2.7 s; our re-INVITEs every 2 s
    // (answered by the phone's leg) keep it up for 6 s.
    let watching = tokio::time::timeout(Duration::from_secs(6), leg.next_event());
    let answering = tokio::time::timeout(Duration::from_secs(6), caller.next_event());
    let (event, phone_event) = tokio::join!(watching, answering);
    assert!(event.is_err(), "no event while we refresh: {event:?}");
    assert!(phone_event.is_err(), "{phone_event:?}");
    // The phone forgets the dialog: our refresh gets 481 and it expires.
    drop(caller);
    let event = within(5, "the session to expire", leg.next_event()).await;
    assert_eq!(event, LegEvent::SessionExpired);
}
