//! Draining (issue 11): once the stack is told the node is stopping, a
//! dispatcher's OPTIONS probe gets 503 with Retry-After, so traffic moves
//! at once; a live call's in-dialog requests are answered as ever.

use crate::support;

use pinless::sip::{Refusal, sdp};
use std::time::Duration;
use support::raw::RawSip;
use support::{Phone, within};

#[tokio::test]
async fn options_probe_gets_503_while_draining_and_dialogs_go_on() {
    let (stack, mut invites) = support::peers::stack_with(None).await;
    let probe = RawSip::new(stack.udp_addr().unwrap()).await;
    let ask = |n: u32| probe.options(&format!("probe-{n}"));

    probe.send(&ask(1)).await;
    let r = probe
        .response(Duration::from_secs(5), true)
        .await
        .expect("answer");
    assert_eq!(r.code(), 200);

    // A live call on the stack.
    let phone = Phone::new().await;
    let target = format!("sip:support@{}", stack.udp_addr().unwrap());
    let mut dialing = phone.dial(&target, &[]);
    let invite = within(10, "the INVITE", invites.recv()).await.unwrap();
    let offer = sdp::parse(&invite.info.sdp).unwrap();
    let leg = invite
        .accept(
            &stack,
            sdp::answer("127.0.0.1".parse().unwrap(), 40000, offer.choose()),
        )
        .await
        .unwrap();
    let mut caller = match within(10, "the answer", dialing.outcome()).await {
        pinless::sip::DialOutcome::Answered { leg, .. } => leg,
        other => panic!("not answered: {other:?}"),
    };
    let mut leg = leg;
    tokio::spawn(async move {
        loop {
            leg.next_event().await;
        }
    });

    stack.set_draining(true);
    assert!(stack.is_draining());
    probe.send(&ask(2)).await;
    let r = probe
        .response(Duration::from_secs(5), true)
        .await
        .expect("answer");
    assert_eq!(r.code(), 503);
    let expected = Refusal::draining();
    assert_eq!(
        r.header("Retry-After"),
        Some(expected.headers[0].1.as_str()),
        "{}",
        r.0
    );
    assert!(r.header("To").unwrap().contains("tag="), "{}", r.0);

    // In the dialog, nothing changed.
    let answer = caller.options();
    assert_eq!(
        within(10, "in-dialog OPTIONS", answer).await.unwrap(),
        Some(200)
    );

    stack.set_draining(false);
    probe.send(&ask(3)).await;
    let r = probe
        .response(Duration::from_secs(5), true)
        .await
        .expect("answer");
    assert_eq!(r.code(), 200);
    caller.hangup();
}

/// A full node says so to a dispatcher's probe: with `max_calls` taken,
/// OPTIONS gets 503 with `Retry-After` (the INVITE would get it too), so
/// Kamailio's dispatcher sends the next call to another node; once a place
/// is free, OPTIONS is 200 again.
#[tokio::test]
async fn options_probe_gets_503_while_the_node_is_full() {
    let held = support::held_call("[limits]\nmax_calls = 1", &[]).await;
    let sip = held.gw.gw.sip_udp.unwrap();
    let probe = RawSip::new(sip).await;
    probe.send(&probe.options("full-1")).await;
    let r = probe
        .response(Duration::from_secs(5), true)
        .await
        .expect("answer");
    assert_eq!(r.code(), 503, "{}", r.0);
    assert_eq!(r.header("Retry-After"), Some("5"), "{}", r.0);

    let support::HeldCall { gw, caller, .. } = held;
    caller.hangup();
    assert!(gw.gw.calls_done(Duration::from_secs(5)).await, "call ended");
    probe.send(&probe.options("full-2")).await;
    let r = probe
        .response(Duration::from_secs(5), true)
        .await
        .expect("answer");
    assert_eq!(r.code(), 200, "{}", r.0);
}
