//! The binding's decisions on a fake clock: answers in, REGISTERs out.

use super::*;
use crate::sip::digest::DigestAuth;

fn settings() -> Settings {
    Settings {
        registrar: "sip:registrar.test".into(),
        user: "joe".into(),
        password: "secret".into(),
        expires: 600,
    }
}

fn answer(code: u16) -> RegisterAnswer {
    RegisterAnswer {
        code,
        reason: String::new(),
        granted: None,
        min_expires: None,
        retry_after: None,
        challenge: None,
        seen_as: None,
    }
}

fn challenge(stale: bool) -> RegisterAnswer {
    let server = DigestAuth::new("registrar.test");
    RegisterAnswer {
        challenge: Some((false, server.challenge(1_000, stale))),
        ..answer(401)
    }
}

fn used() -> (String, u16) {
    ("192.0.2.10".into(), 5060)
}

fn feed(b: &mut Binding, a: RegisterAnswer, now: Instant) {
    b.handle(
        Input::Answered {
            answer: a,
            used: used(),
            udp: true,
        },
        now,
    );
}

/// The REGISTERs among the pending actions.
fn registers(b: &mut Binding) -> Vec<Register> {
    let mut out = Vec::new();
    while let Some(a) = b.poll_action() {
        if let Action::Register(r) = a {
            out.push(r);
        }
    }
    out
}

fn one(b: &mut Binding) -> Register {
    let mut all = registers(b);
    assert_eq!(all.len(), 1, "{all:?}");
    all.remove(0)
}

#[test]
fn registers_with_credentials_and_refreshes_at_85_percent_of_the_grant() {
    let t0 = Instant::now();
    let mut b = Binding::new(settings(), 7);
    let first = one(&mut b);
    assert_eq!(
        (first.cseq, first.expires, first.credentials.is_none()),
        (1, 600, true)
    );
    feed(&mut b, challenge(false), t0);
    let second = one(&mut b);
    assert_eq!(second.cseq, 2);
    let (name, value) = second.credentials.unwrap();
    assert_eq!(name, "Authorization");
    assert!(
        value.contains("username=\"joe\"") && value.contains("nc=00000001"),
        "{value}"
    );
    // The registrar grants less than we asked: its grant wins.
    feed(
        &mut b,
        RegisterAnswer {
            granted: Some(120),
            ..answer(200)
        },
        t0,
    );
    assert_eq!(b.state(), State::Registered);
    assert_eq!(b.status(t0).expires_in, Some(Duration::from_secs(120)));
    // Keep-alives every 25 s; the refresh at 102 s, with the same nonce.
    assert_eq!(b.poll_timeout(), Some(t0 + KEEP_ALIVE_EVERY));
    b.handle_timeout(t0 + KEEP_ALIVE_EVERY);
    assert!(std::iter::from_fn(|| b.poll_action()).any(|a| a == Action::KeepAlive));
    b.handle_timeout(t0 + Duration::from_secs(101));
    assert!(registers(&mut b).is_empty(), "not before 85 %");
    b.handle_timeout(t0 + Duration::from_secs(102));
    let refresh = one(&mut b);
    assert_eq!(refresh.cseq, 3);
    assert!(refresh.credentials.unwrap().1.contains("nc=00000002"));
}

#[test]
fn a_stale_nonce_is_answered_again_without_failing() {
    let t0 = Instant::now();
    let mut b = Binding::new(settings(), 7);
    one(&mut b);
    feed(&mut b, challenge(false), t0);
    one(&mut b);
    feed(&mut b, challenge(true), t0);
    let again = one(&mut b);
    assert!(again.credentials.is_some());
    assert_ne!(b.state(), State::Failing);
}

#[test]
fn wrong_credentials_fail_and_retries_back_off_from_30_s_to_30_min() {
    let t0 = Instant::now();
    let mut b = Binding::new(settings(), 99);
    one(&mut b);
    feed(&mut b, challenge(false), t0);
    one(&mut b);
    feed(&mut b, challenge(false), t0);
    assert_eq!(b.state(), State::Failing);
    let status = b.status(t0);
    assert_eq!(status.last_code, Some(401));
    assert_eq!(
        status.last_error.as_deref(),
        Some("401: credentials refused")
    );
    // Each failure waits longer; never under 24 s, never over 30 min.
    let mut now = t0;
    let mut waits = Vec::new();
    for _ in 0..10 {
        let wake = b.poll_timeout().unwrap();
        waits.push(wake - now);
        now = wake;
        b.handle_timeout(now);
        assert_eq!(registers(&mut b).len(), 1);
        feed(&mut b, answer(403), now);
    }
    assert!(
        waits[0] >= Duration::from_secs(24) && waits[0] <= FIRST_BACKOFF,
        "{waits:?}"
    );
    assert!(
        waits[1] >= Duration::from_secs(48) && waits[1] <= FIRST_BACKOFF * 2,
        "{waits:?}"
    );
    assert!(waits.iter().all(|w| *w <= MAX_BACKOFF), "{waits:?}");
    assert!(waits[9] >= MAX_BACKOFF.mul_f64(0.8), "{waits:?}");
    // Each failure is reported, the state changing only once.
    let mut b2 = Binding::new(settings(), 5);
    one(&mut b2);
    feed(&mut b2, answer(503), t0);
    let wake = b2.poll_timeout().unwrap();
    b2.handle_timeout(wake);
    feed(&mut b2, answer(503), wake);
    let actions: Vec<Action> = std::iter::from_fn(|| b2.poll_action()).collect();
    let failed = actions
        .iter()
        .filter(|a| **a == Action::Failed(Some(503)))
        .count();
    let changed = actions
        .iter()
        .filter(|a| **a == Action::Changed(State::Failing))
        .count();
    assert_eq!((failed, changed), (2, 1), "{actions:?}");
    // Ten attempts in over two hours: never a tight loop.
    assert!(now - t0 > Duration::from_secs(2 * 3600));
}

#[test]
fn no_answer_and_retry_after_wait_as_long_as_the_registrar_says() {
    let t0 = Instant::now();
    let mut b = Binding::new(settings(), 3);
    one(&mut b);
    feed(
        &mut b,
        RegisterAnswer {
            retry_after: Some(300),
            ..answer(503)
        },
        t0,
    );
    assert_eq!(b.status(t0).last_error.as_deref(), Some("503"));
    assert!(b.poll_timeout().unwrap() - t0 >= Duration::from_secs(300));
    b.handle_timeout(t0 + Duration::from_secs(300));
    one(&mut b);
    b.handle(Input::NoAnswer("no answer to REGISTER".into()), t0);
    assert_eq!(b.state(), State::Failing);
    assert_eq!(b.status(t0).last_code, None);
}

#[test]
fn interval_too_brief_asks_again_with_min_expires() {
    let t0 = Instant::now();
    let mut b = Binding::new(settings(), 3);
    one(&mut b);
    feed(
        &mut b,
        RegisterAnswer {
            min_expires: Some(900),
            ..answer(423)
        },
        t0,
    );
    assert_eq!(one(&mut b).expires, 900);
    feed(&mut b, answer(200), t0);
    assert_eq!(b.status(t0).expires_in, Some(Duration::from_secs(900)));
}

#[test]
fn behind_a_nat_the_contact_takes_the_address_the_registrar_saw() {
    let t0 = Instant::now();
    let mut b = Binding::new(settings(), 3);
    one(&mut b);
    let seen = RegisterAnswer {
        seen_as: Some(("203.0.113.7".into(), Some(40312))),
        ..answer(200)
    };
    feed(&mut b, seen, t0);
    let again = one(&mut b);
    assert_eq!(again.contact_at, Some(("203.0.113.7".into(), 40312)));
    assert_eq!(b.state(), State::Registering);
    // Registered once the Contact names what the registrar sees.
    let same = RegisterAnswer {
        seen_as: Some(("203.0.113.7".into(), Some(40312))),
        ..answer(200)
    };
    b.handle(
        Input::Answered {
            answer: same,
            used: ("203.0.113.7".into(), 40312),
            udp: true,
        },
        t0,
    );
    assert_eq!(b.state(), State::Registered);
    // No NAT: received equal to what we sent changes nothing.
    let mut c = Binding::new(settings(), 3);
    one(&mut c);
    let plain = RegisterAnswer {
        seen_as: Some(("192.0.2.10".into(), Some(5060))),
        ..answer(200)
    };
    feed(&mut c, plain, t0);
    assert!(registers(&mut c).is_empty());
    assert_eq!(c.state(), State::Registered);
    // Over TCP, rport is the connection's own port: not an address.
    let mut t = Binding::new(settings(), 3);
    one(&mut t);
    let over_tcp = RegisterAnswer {
        seen_as: Some(("192.0.2.10".into(), Some(41234))),
        ..answer(200)
    };
    let input = Input::Answered {
        answer: over_tcp,
        used: used(),
        udp: false,
    };
    t.handle(input, t0);
    assert!(registers(&mut t).is_empty());
    assert_eq!(t.state(), State::Registered);
}

#[test]
fn a_drain_removes_the_binding_and_a_resume_stop_keeps_it() {
    let t0 = Instant::now();
    let mut b = Binding::new(settings(), 3);
    one(&mut b);
    feed(&mut b, answer(200), t0);
    b.handle(Input::Stop { unregister: true }, t0);
    assert_eq!(one(&mut b).expires, 0);
    feed(&mut b, answer(200), t0);
    assert_eq!(b.state(), State::Stopped);
    assert_eq!(b.poll_timeout(), None);

    let mut kept = Binding::new(settings(), 3);
    one(&mut kept);
    feed(&mut kept, answer(200), t0);
    kept.handle(Input::Stop { unregister: false }, t0);
    let actions: Vec<Action> = std::iter::from_fn(|| kept.poll_action()).collect();
    assert!(actions.contains(&Action::Finished), "{actions:?}");
    assert!(
        !actions.iter().any(|a| matches!(a, Action::Register(_))),
        "{actions:?}"
    );

    // A stop while the first REGISTER is out: its 200 is removed again.
    let mut early = Binding::new(settings(), 3);
    one(&mut early);
    early.handle(Input::Stop { unregister: true }, t0);
    assert!(registers(&mut early).is_empty());
    feed(&mut early, answer(200), t0);
    assert_eq!(one(&mut early).expires, 0);
}

#[test]
fn a_lost_connection_registers_again_at_once() {
    let t0 = Instant::now();
    let mut b = Binding::new(settings(), 3);
    one(&mut b);
    feed(&mut b, answer(200), t0);
    b.handle(Input::FlowLost, t0 + Duration::from_secs(5));
    assert_eq!(b.state(), State::Registering);
    assert_eq!(one(&mut b).cseq, 2);
    // While one is out, a second loss changes nothing.
    b.handle(Input::FlowLost, t0 + Duration::from_secs(6));
    assert!(registers(&mut b).is_empty());
}

#[test]
fn a_kept_nonce_refused_after_a_registrar_restart_is_answered_anew() {
    let t0 = Instant::now();
    let mut b = Binding::new(settings(), 3);
    one(&mut b);
    feed(&mut b, challenge(false), t0);
    one(&mut b);
    feed(&mut b, answer(200), t0);
    // The refresh carries the kept nonce; a restarted registrar does not
    // know it and challenges (not stale): that is no wrong password.
    let refresh_at = b.poll_timeout().unwrap().max(t0 + Duration::from_secs(510));
    b.handle_timeout(refresh_at);
    let refresh = registers(&mut b).pop().expect("the refresh");
    assert!(refresh.credentials.is_some());
    feed(&mut b, challenge(false), refresh_at);
    assert!(one(&mut b).credentials.is_some(), "answered anew");
    assert_ne!(b.state(), State::Failing);
    // Refused again right after: now the credentials are wrong.
    feed(&mut b, challenge(false), refresh_at);
    assert_eq!(b.state(), State::Failing);
}
