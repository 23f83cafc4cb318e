//! Property tests for what reads untrusted input (SDP, digest headers,
//! custom headers, INVITE limits) and for the call and transfer state
//! machines: no input makes them panic, and their invariants hold for any
//! sequence of events.

use pinless::call::machine::plan::{Mode, Next, Plan, TransferRequest};
use pinless::call::machine::recording::RecordRequest;
use pinless::call::machine::{
    Action, HoldTimeout, Input, Machine, Parties, Policy, PromptEnd, Reply, State,
};
use pinless::clock::Instant;
use pinless::config::OnRoomHangup;
use pinless::media::record::PauseMode;
use pinless::sip::digest::{DigestAuth, Verdict};
use pinless::sip::{headers, sdp};
use proptest::prelude::*;
use std::time::Duration;

/// The nonce of a `Proxy-Authenticate` value.
fn issued_nonce(challenge: &str) -> String {
    let start = challenge.find("nonce=\"").map(|i| i + 7).unwrap_or(0);
    let rest = &challenge[start..];
    rest[..rest.find('"').unwrap_or(rest.len())].to_string()
}

/// A `Proxy-Authorization` value as a client knowing `password` builds it
/// (RFC 7616, MD5, qop=auth), or with `response` put in its place.
fn digest_header(nonce: &str, password: &str, cnonce: &str, response: Option<&str>) -> String {
    use md5::{Digest, Md5};
    let h = |s: String| -> String {
        Md5::digest(s.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    let uri = "sip:support@127.0.0.1";
    let ha1 = h(format!("support:pinless:{password}"));
    let ha2 = h(format!("INVITE:{uri}"));
    let computed = h(format!("{ha1}:{nonce}:00000001:{cnonce}:auth:{ha2}"));
    let response = response.unwrap_or(&computed);
    format!(
        "Digest username=\"support\", realm=\"pinless\", nonce=\"{nonce}\", uri=\"{uri}\", \
         response=\"{response}\", algorithm=MD5, qop=auth, nc=00000001, cnonce=\"{cnonce}\""
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn sdp_parsing_never_panics(body in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = sdp::parse(&body);
    }

    #[test]
    fn sdp_offers_parse_to_a_codec_that_was_offered(
        port in 1024u16..65000,
        pts in proptest::collection::vec(prop_oneof![Just(0u8), Just(8u8), Just(18u8), Just(101u8)], 1..5),
    ) {
        let list: Vec<String> = pts.iter().map(|p| p.to_string()).collect();
        let body = format!(
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {port} RTP/AVP {}\r\na=rtpmap:101 telephone-event/8000\r\n",
            list.join(" ")
        );
        match sdp::parse(body.as_bytes()) {
            Ok(media) => {
                prop_assert_eq!(media.addr.port(), port);
                let chosen = media.choose().payload_type;
                prop_assert!(pts.contains(&chosen) && (chosen == 0 || chosen == 8));
            }
            Err(_) => prop_assert!(!pts.contains(&0) && !pts.contains(&8), "G.711 offered but refused"),
        }
    }

    #[test]
    fn no_forged_digest_header_is_accepted(header in ".{0,300}") {
        let d = DigestAuth::new("pinless");
        let v = d.check("INVITE", Some(&header), Some("support"), |_| Some("pw".into()), 1_000);
        let accepted = matches!(v, Verdict::Ok { .. });
        prop_assert!(!accepted, "a forged header was accepted: {:?}", header);
    }

    /// Forgeries that get past parsing, realm and nonce (a nonce the
    /// gateway really issued) and so reach the response check: a guessed
    /// password or a made-up response is refused, while the same header
    /// with the right password is accepted (so the property cannot hold
    /// just because every header is thrown out early).
    #[test]
    fn only_the_right_password_passes_a_real_nonce(
        password in "[ -~]{0,24}",
        guessed in "[0-9a-f]{32}",
        cnonce in "[0-9a-zA-Z]{1,16}",
    ) {
        let d = DigestAuth::new("pinless");
        let nonce = issued_nonce(&d.challenge(1_000, false));
        let right = digest_header(&nonce, "pw", &cnonce, None);
        let v = d.check("INVITE", Some(&right), Some("support"), |_| Some("pw".into()), 2_000);
        prop_assert!(matches!(v, Verdict::Ok { .. }), "the right password was refused: {:?}", v);

        let nonce = issued_nonce(&d.challenge(1_000, false));
        let wrong = digest_header(&nonce, &password, &cnonce, None);
        let v = d.check("INVITE", Some(&wrong), Some("support"), |_| Some("pw".into()), 2_000);
        prop_assert_eq!(matches!(v, Verdict::Ok { .. }), password == "pw", "password {:?}", password);

        let nonce = issued_nonce(&d.challenge(1_000, false));
        let made_up = digest_header(&nonce, "pw", &cnonce, Some(&guessed));
        let v = d.check("INVITE", Some(&made_up), Some("support"), |_| Some("pw".into()), 2_000);
        prop_assert!(!matches!(v, Verdict::Ok { .. }), "a made-up response was accepted: {}", guessed);
    }

    #[test]
    fn app_headers_never_carry_line_breaks(name in "[ -~]{1,20}", value in ".{0,40}") {
        if headers::check(&name, &value).is_ok() {
            prop_assert!(headers::is_custom(&name));
            prop_assert!(!value.contains('\r') && !value.contains('\n'));
            prop_assert!(!name.contains(':') && !name.contains(' '));
        }
    }

    #[test]
    fn a_transfer_plan_always_ends_by_its_deadline(
        codes in proptest::collection::vec(prop_oneof![Just(None), (100u16..700).prop_map(Some)], 1..200),
        targets in 1usize..4,
    ) {
        let request = TransferRequest {
            targets: (0..targets).map(|i| format!("sip:r{i}@h")).collect(),
            headers: vec![],
            mode: Mode::Bridge,
            stream: None,
            media_encryption: None,
            record: None,
        };
        let mut plan = Plan::new(request, Instant::from_millis(0), Duration::from_secs(30));
        let mut now = 0u64;
        for code in codes {
            match plan.failed(code, Instant::from_millis(now)) {
                Next::Try(t) => prop_assert!(t.starts_with("sip:r")),
                Next::Wait(d) => {
                    prop_assert!(d <= Duration::from_secs(2));
                    now += d.as_millis() as u64;
                }
                Next::GiveUp(_) => return Ok(()),
            }
            prop_assert!(now < 30_000 + 2_000, "an attempt was scheduled past the deadline");
            now += 10;
        }
    }

    /// Any sequence of facts, requests and elapsed time: an ended call
    /// never acts again, no more time is counted than passed, a timeout
    /// leaves no deadline due, and every state it reaches
    /// survives a save and restore (serde) unchanged.
    #[test]
    fn the_call_machine_survives_any_event_sequence(
        events in proptest::collection::vec(0u8..21, 0..60),
        announce in proptest::bool::ANY,
    ) {
        let policy = Policy {
            transfer_timeout: Duration::from_secs(30),
            max_hold: Duration::from_secs(600),
            on_room_hangup: OnRoomHangup::Hold,
            on_hold_timeout: if announce {
                HoldTimeout::Hangup { announcement: Some(Duration::from_secs(3)) }
            } else {
                HoldTimeout::Transfer("sip:overflow@h".into())
            },
            ring_cap: Duration::from_secs(30),
            dtmf_transfer: Default::default(),
            announce_every: Some(Duration::from_secs(45)),
            record: pinless::config::RecordMode::Bridge,
            consent: announce.then_some(Duration::from_secs(2)),
        };
        let parties = Parties {
            call_id: "c".into(),
            call_domain: "d".into(),
            from: "f".into(),
            to: "t".into(),
            entry: "e".into(),
            caller_headers: vec![("X-Lang".into(), "de".into())],
            registration: None,
        };
        let mut m = Machine::answered(parties, policy, Instant::from_millis(0), 1_700_000_000_000);
        let mut now = 0;
        for e in events {
            now += 100;
            let was_ended = m.state() == State::Ended;
            let at = Instant::from_millis(now);
            let actions = match e {
                0 => m.handle(Input::UpdateRequested { request: TransferRequest { targets: vec!["sip:a@h".into()], headers: vec![], mode: Mode::Bridge, stream: None, media_encryption: None, record: None }, key: None }, at),
                1 => m.handle(Input::UpdateRequested { request: TransferRequest { targets: vec!["sip:b@h".into()], headers: vec![], mode: Mode::Refer, stream: None, media_encryption: None, record: None }, key: Some("k".into()) }, at),
                2 => m.handle(Input::HoldRequested, at),
                3 => m.handle(Input::RoomAnswered, at),
                4 => m.handle(Input::RoomFailed { code: Some(480), reason: "x".into() }, at),
                5 => m.handle(Input::RoomFailed { code: Some(603), reason: "x".into() }, at),
                6 => m.handle(Input::ReferAnswered(Some(405)), at),
                7 => m.handle(Input::ReferAnswered(Some(202)), at),
                8 => m.handle(Input::ReferNotified(200), at),
                9 => m.handle(Input::RoomHungUp, at),
                10 => m.handle(Input::CallerHungUp, at),
                11 => m.handle(Input::HangupRequested, at),
                12 => m.handle(Input::ReferNotified(503), at),
                13 => m.handle(Input::RecordRequested(RecordRequest::Start), at),
                14 => m.handle(Input::RecordRequested(RecordRequest::Pause(PauseMode::Skip)), at),
                15 => m.handle(Input::RecordRequested(RecordRequest::Resume), at),
                16 => m.handle(Input::RecordRequested(RecordRequest::Stop), at),
                17 => m.handle(Input::PromptFinished(PromptEnd::Consent { played: true }), at),
                18 => m.handle(Input::PromptFinished(PromptEnd::Consent { played: false }), at),
                // Time passes to the machine's next deadline.
                _ => match m.poll_timeout() {
                    Some(deadline) => {
                        now = now.max(deadline.as_millis());
                        let actions = m.handle_timeout(Instant::from_millis(now));
                        let next = m.poll_timeout();
                        prop_assert!(next.is_none_or(|d| d.as_millis() > now), "a deadline left due: {next:?}");
                        actions
                    }
                    None => vec![],
                },
            };
            if was_ended {
                // An ended call answers requests (refusing them) and does
                // nothing else.
                let acted = actions.iter().any(|a| !matches!(a, Action::Reply(Reply::Update(Err(_)) | Reply::Hold(Err(_)) | Reply::Record(Err(_)))));
                prop_assert!(!acted, "an ended call acted: {actions:?}");
                prop_assert_eq!(m.state(), State::Ended);
            }
            // A call's end ends its recording.
            if m.state() == State::Ended {
                prop_assert!(m.recording().is_none(), "an ended call still records");
            }
            let view = m.view();
            prop_assert!(view.hold_ms + view.talk_ms <= now, "more time counted than passed");
            // Everything saved reads back the same (what is not saved, a
            // prompt playing, is not carried over by design).
            let saved = serde_json::to_string(&m).unwrap();
            let restored: Machine = serde_json::from_str(&saved).unwrap();
            prop_assert_eq!(serde_json::to_string(&restored).unwrap(), saved);
            prop_assert_eq!(restored.view(), m.view());
            prop_assert_eq!(restored.poll_timeout(), m.poll_timeout());
        }
    }
}
