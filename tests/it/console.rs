//! The operator console in a real browser: headless Chromium driven over
//! WebDriver, against a gateway with a sipp caller and a room on loopback.
//! Run with `cargo test --features interop`; fails, never skips, when
//! chromium, chromedriver or sipp is missing. A failed step leaves a
//! screenshot in `target/test-artifacts/console-<step>.png`.

use crate::support;

use fantoccini::{Client, Locator};
use std::time::{Duration, Instant};
use support::browser::{self, js, step, until};
use support::sipp::*;
use support::*;

const ENTER: &str = "\u{E007}";

async fn type_into(client: &Client, css: &str, text: &str) {
    let e = client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"));
    e.send_keys(text).await.unwrap();
}

async fn click(client: &Client, css: &str) {
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("click {css}: {e}"));
}

/// Opens `gw`'s console and waits for its sign-in form.
async fn open_console(c: &Client, gw: &TestGateway) {
    c.goto(&gw.url("/console")).await.unwrap();
    until(
        c,
        5.0,
        "the sign-in form, ready",
        "return !document.getElementById('signin-fields').disabled",
    )
    .await;
}

/// Signs in with the test token and waits for the live view.
async fn sign_in(c: &Client) {
    type_into(c, "#token", TOKEN).await;
    click(c, "#signin-btn").await;
    until(
        c,
        5.0,
        "the live view",
        "return !document.getElementById('live').hidden",
    )
    .await;
}

/// The CSS selector of a call's card in a list (`held` or `bridged`).
fn card(list: &str, call_id: &str) -> String {
    format!("#{list} li.call[data-call-id=\"{call_id}\"]")
}

#[tokio::test]
async fn an_operator_sees_a_held_caller_live_and_moves_it_to_a_room() {
    let mut hooks = WebhookReceiver::start(&[]).await;
    // A registration to a registrar that is not there: the console shows
    // it, not registered.
    let nobody = free_udp_port();
    let registration = format!(
        "\n[[registration]]\nname = \"provider\"\nregistrar = \"sip:127.0.0.1:{nobody}\"\n\
         aor = \"sip:+15550001111@pinless.test\"\nentry = \"support\"\n"
    );
    let gw = TestGateway::start(&hooks.url(), &registration).await;
    let mut room = Room::new().await;
    let driver = browser::Driver::start().await;
    let client = driver.browser(1280, 900).await;
    let c = &client;

    step(c, "open", async {
        open_console(c, &gw).await;
        // Marks this page load: a reload would lose it.
        js(c, "window.pinlessTestLoad = 1; return true").await;
    })
    .await;

    step(c, "wrong-token", async {
        type_into(c, "#token", "not-the-token").await;
        type_into(c, "#token", ENTER).await; // the keyboard signs in
        let msg = until(
            c,
            5.0,
            "the refusal",
            "const t = document.getElementById('signin-msg').textContent; \
             return t.includes('refused') ? t : null",
        )
        .await;
        let msg = msg.as_str().unwrap_or_default().to_string();
        assert!(msg.contains("refused") && msg.contains("401"), "{msg}");
        let state = js(
            c,
            "return [getComputedStyle(document.getElementById('live')).display === 'none', \
                     document.querySelectorAll('li.call').length, \
                     sessionStorage.length]",
        )
        .await;
        assert_eq!(
            state,
            serde_json::json!([true, 0, 0]),
            "no call list, nothing kept"
        );
    })
    .await;

    // A call that ends before the operator signs in: the console lists it
    // among the recently ended, from the call records.
    let phone = Phone::new().await;
    let (early, _) = phone.call(&gw.sip_uri("support", false), &[]).await;
    let early_id = hooks.next().await.json()["callId"]
        .as_str()
        .unwrap()
        .to_string();
    early.hangup();
    within(5, "the early call's record", async {
        loop {
            let (_, page) = gw
                .api(reqwest::Method::GET, "/v1/call-records?since=0", None)
                .await;
            if page.to_string().contains(&early_id) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;

    step(c, "sign-in", async {
        c.find(Locator::Css("#token"))
            .await
            .unwrap()
            .clear()
            .await
            .unwrap();
        sign_in(c).await;
        let kept = js(
            c,
            "return [sessionStorage.getItem('pinless.token'), localStorage.length, \
                     location.href, document.body.innerText, document.getElementById('token').value]",
        )
        .await;
        assert_eq!(kept[0], TOKEN, "the token is kept in the tab");
        assert_eq!(kept[1], 0, "and nowhere that outlives it");
        for shown in [&kept[2], &kept[3], &kept[4]] {
            let shown = shown.as_str().unwrap_or_default();
            assert!(!shown.contains(TOKEN), "the token is never shown: {shown}");
        }
        until(
            c,
            3.0,
            "the early call among the ended ones",
            &format!(
                "const r = document.querySelector('#ended-rows tr[data-call-id=\"{early_id}\"] .outcome'); \
                 return r && r.textContent === 'caller_hangup'"
            ),
        )
        .await;
        let registration = until(
            c,
            5.0,
            "the registration's line",
            "const s = document.getElementById('regs-section'); \
             const li = document.querySelector('#regs li.reg'); \
             return !s.hidden && li ? li.textContent : null",
        )
        .await;
        let line = registration.as_str().unwrap_or_default();
        assert!(
            line.starts_with("provider: registering") || line.starts_with("provider: failing"),
            "{line}"
        );
    })
    .await;

    // A held caller: sipp, which stays until pinless hangs up.
    let gw_addr = gw.gw.sip_udp.unwrap().to_string();
    let caller = sipp_call(
        &gw_addr,
        "caller_until_bye.xml",
        &["-key", "caller", "+15557654321", "-key", "customer", "4711"],
    );
    let hook = hooks.next().await;
    let held_since = Instant::now();
    let call_id = hook.json()["callId"].as_str().unwrap().to_string();
    let held = card("held", &call_id);

    step(c, "held-appears", async {
        let left = 2.0 - held_since.elapsed().as_secs_f64();
        until(
            c,
            left,
            "the caller in the held list within 2 s",
            &format!("return !!document.querySelector('{held}')"),
        )
        .await;
        let text = js(
            c,
            &format!("return document.querySelector('{held}').innerText"),
        )
        .await;
        let text = text.as_str().unwrap_or_default();
        for shown in [
            "+15557654321",
            "support",
            "X-Lang: de",
            "X-Customer: 4711",
            "held",
            // The caller's codec.
            "PCMU",
        ] {
            assert!(text.contains(shown), "the card shows {shown}: {text}");
        }
        // Its wait ticks without any event.
        let waited = format!("return document.querySelector('{held} .waited').textContent");
        let first = js(c, &waited).await;
        until(
            c,
            3.0,
            "the waited time to tick",
            &format!(
                "{}; return t !== {first}",
                waited.replace("return", "const t =")
            ),
        )
        .await;
    })
    .await;

    let room_uri = room.uri("room", false);
    step(c, "transfer", async {
        click(c, &format!("{held} .act-transfer")).await;
        type_into(c, &format!("{held} input.uri"), &room_uri).await;
        type_into(
            c,
            &format!("{held} textarea.headers-in"),
            "X-Pinless-Test: 1",
        )
        .await;
        click(c, &format!("{held} button[type=submit]")).await;
    })
    .await;
    let invite = room.next_invite().await;
    assert!(
        invite
            .info
            .custom_headers
            .contains(&("X-Pinless-Test".to_string(), "1".to_string())),
        "the room's INVITE carries the form's header: {:?}",
        invite.info.custom_headers
    );
    let (_room_leg, _) = room.answer(invite).await;

    let bridged = card("bridged", &call_id);
    step(c, "bridged", async {
        until(
            c,
            5.0,
            "the call shown bridged",
            &format!(
                "const b = document.querySelector('{bridged} .badge'); \
                 return b && b.textContent === 'bridged'"
            ),
        )
        .await;
        let text = js(
            c,
            &format!("return document.querySelector('{bridged}').innerText"),
        )
        .await;
        let text = text.as_str().unwrap_or_default();
        assert!(text.contains(&room_uri), "the card names the room: {text}");
        assert!(text.contains("Talk time"), "{text}");
        assert_eq!(
            js(
                c,
                &format!(
                    "return document.querySelector('{bridged}').contains(document.activeElement)"
                )
            )
            .await,
            true,
            "the keyboard focus moved with the call"
        );
        assert_eq!(
            js(
                c,
                &format!("return document.querySelectorAll('{held}').length")
            )
            .await,
            0,
            "no longer in the held list"
        );
    })
    .await;

    // A second caller, held, so that the pictures show both lists.
    let second = sipp_call(
        &gw_addr,
        "caller_until_bye.xml",
        &["-key", "caller", "+4930123456", "-key", "customer", "9001"],
    );
    let second_id = hooks.next().await.json()["callId"]
        .as_str()
        .unwrap()
        .to_string();
    step(c, "pictures", async {
        until(
            c,
            3.0,
            "the second caller",
            &format!(
                "return !!document.querySelector('{}')",
                card("held", &second_id)
            ),
        )
        .await;
        c.set_window_size(1280, 1000).await.unwrap();
        tokio::time::sleep(Duration::from_millis(2100)).await;
        browser::screenshot(c, "console-live").await;
        c.set_window_size(390, 844).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let scroll = js(
            c,
            "return document.documentElement.scrollWidth <= window.innerWidth",
        )
        .await;
        assert_eq!(scroll, true, "no sideways scroll on a phone-size screen");
        browser::screenshot(c, "console-phone").await;
        c.set_window_size(1280, 900).await.unwrap();
    })
    .await;

    step(c, "call-page", async {
        click(c, &format!("{bridged} a.act-details")).await;
        let events = until(
            c,
            5.0,
            "the timeline up to call.bridged",
            "const e = [...document.querySelectorAll('#timeline .ename')].map(x => x.textContent); \
             return e.includes('call.bridged') ? e : null",
        )
        .await;
        let events: Vec<&str> = events
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e.as_str())
            .collect();
        let at = |name: &str| events.iter().position(|e| *e == name);
        assert!(
            at("call.held") < at("call.bridged") && at("call.held").is_some(),
            "call.held … call.bridged in order: {events:?}"
        );
        let title = js(c, "return document.getElementById('call-h').textContent").await;
        assert_eq!(title, "Call from +15557654321");
    })
    .await;

    // The ladder from the node's trace endpoint: arrows of both legs, the
    // first an INVITE whose message opens with Enter. The page's "No SIP
    // trace" text is a failure here: the node keeps every call's trace.
    step(c, "ladder", async {
        let ladder = until(
            c,
            5.0,
            "the ladder or its absence",
            "const l = document.getElementById('ladder'); \
             return l.children.length ? l.innerText : null",
        )
        .await;
        assert_ne!(
            ladder.as_str(),
            Some("No SIP trace for this call."),
            "the node's trace of this call is drawn"
        );
        let lanes = js(
            c,
            "return [...document.querySelectorAll('#ladder .arrow')].map(a => \
               [a.closest('.lane').classList.contains('b') ? 'room' : 'caller', \
                a.querySelector('.label').textContent])",
        )
        .await;
        let lanes = lanes.as_array().cloned().unwrap_or_default();
        assert!(
            lanes.first().is_some_and(
                |a| a[0] == "caller" && a[1].as_str().unwrap_or("").starts_with("INVITE")
            ),
            "{lanes:?}"
        );
        assert!(lanes.iter().any(|a| a[0] == "room"), "{lanes:?}");
        type_into(c, "#ladder .arrow", ENTER).await;
        let shown = until(
            c,
            2.0,
            "the first message's headers",
            "const d = document.querySelector('#ladder .ldetail'); \
             return d && !d.hidden ? d.innerText : null",
        )
        .await;
        assert!(shown.as_str().unwrap_or("").contains("Call-ID"), "{shown}");
        browser::screenshot(c, "console-call").await;
    })
    .await;

    // How the page draws a given trace: the page is given one in the
    // endpoint's JSON (both legs, a masked digest) in place of the node's
    // answer.
    step(c, "ladder-drawing", async {
        let trace = ladder_fixture(&call_id);
        js(
            c,
            &format!(
                "const trace = {trace}; const real = window.fetch; \
                 window.fetch = (url, opts) => String(url).endsWith('/sip') \
                   ? Promise.resolve(new Response(JSON.stringify(trace), \
                       {{status: 200, headers: {{'content-type': 'application/json'}}}})) \
                   : real(url, opts); \
                 location.hash = '#'; location.hash = '#call/{call_id}'; return true"
            ),
        )
        .await;
        let arrows = until(
            c,
            5.0,
            "the drawn ladder",
            "const a = [...document.querySelectorAll('#ladder .arrow')]; \
             return a.length === 9 ? a.map(x => [x.closest('.lane').classList.contains('b') ? 'b' : 'a', \
               x.classList.contains('to-right') ? '>' : '<', x.querySelector('.label').textContent]) : null",
        )
        .await;
        let drawn: Vec<String> = arrows
            .as_array()
            .unwrap()
            .iter()
            .map(|a| format!("{}{} {}", a[0].as_str().unwrap(), a[1].as_str().unwrap(), a[2].as_str().unwrap()))
            .collect();
        assert_eq!(
            drawn,
            [
                "a> INVITE sip:support@127.0.0.1 SIP/2.0",
                "a< SIP/2.0 100 Trying",
                "a< SIP/2.0 200 OK",
                "a> ACK sip:support@127.0.0.1 SIP/2.0",
                "b> INVITE sip:room@127.0.0.1:5070 SIP/2.0",
                "b< SIP/2.0 407 Proxy Authentication Required",
                "b> INVITE sip:room@127.0.0.1:5070 SIP/2.0",
                "b< SIP/2.0 200 OK",
                "b> ACK sip:room@127.0.0.1:5070 SIP/2.0",
            ],
            "caller lane then room lane, each arrow the way its message went"
        );
        let peers = js(c, "return document.querySelector('#ladder .lhead').innerText").await;
        let peers = peers.as_str().unwrap_or_default();
        assert!(peers.contains("127.0.0.1:5062") && peers.contains("127.0.0.1:5070"), "{peers}");
        // The keyboard opens a message: Tab to the 7th arrow, Enter.
        js(c, "document.querySelectorAll('#ladder .arrow')[6].focus(); return true").await;
        c.active_element().await.unwrap().send_keys(ENTER).await.unwrap();
        let shown = until(
            c,
            2.0,
            "the re-sent INVITE's headers",
            "const d = document.querySelectorAll('#ladder .ldetail')[6]; \
             return d && !d.hidden ? d.innerText : null",
        )
        .await;
        let shown = shown.as_str().unwrap_or_default();
        assert!(shown.contains("Proxy-Authorization: Digest username=\"pinless\", response=\"***\""), "{shown}");
        assert!(shown.contains("m=audio 40002 RTP/AVP 0 101"), "the body too: {shown}");
        assert!(shown.contains("<script>x</script>"), "shown as text: {shown}");
        assert_eq!(
            js(c, "return document.querySelectorAll('#ladder script, #ladder b').length").await,
            0,
            "never as HTML"
        );
        browser::screenshot(c, "console-call").await;
        c.set_window_size(390, 844).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let fits = js(c, "return document.documentElement.scrollWidth <= window.innerWidth").await;
        assert_eq!(fits, true, "the ladder fits a phone-size screen");
        browser::screenshot(c, "console-call-phone").await;
        c.set_window_size(1280, 900).await.unwrap();
        click(c, "#back").await;
    })
    .await;

    step(c, "hang-up", async {
        until(
            c,
            3.0,
            "the live view again",
            "return !document.getElementById('live').hidden",
        )
        .await;
        click(c, &format!("{bridged} .act-hangup")).await;
        // Nothing happens before the operator confirms.
        assert!(gw.get_call(&call_id).await.1["state"] == "bridged");
        click(c, &format!("{bridged} .act-hangup-confirm")).await;
        until(
            c,
            5.0,
            "the call among the ended ones",
            &format!(
                "const r = document.querySelector('#ended-rows tr[data-call-id=\"{call_id}\"] .outcome'); \
                 return r && r.textContent === 'api_hangup'"
            ),
        )
        .await;
    })
    .await;
    assert!(
        finished(caller, "sipp caller", 10).await,
        "sipp got the operator's BYE and answered it"
    );

    // Play a prompt: the form reaches `POST /v1/calls/{id}/play` and says
    // what the node answered (an error in the API's own words where the
    // node has no such endpoint or refuses the file).
    let second_card = card("held", &second_id);
    step(c, "play", async {
        click(c, &format!("{second_card} .act-play")).await;
        type_into(
            c,
            &format!("{second_card} input.audio"),
            "no-such-prompt.wav",
        )
        .await;
        type_into(c, &format!("{second_card} input.audio"), ENTER).await;
        let said = until(
            c,
            5.0,
            "the play answer",
            &format!(
                "const m = document.querySelector('{second_card} .msg').textContent; \
                 return m && !m.endsWith('…') ? m : null"
            ),
        )
        .await;
        let said = said.as_str().unwrap_or_default();
        let (status, answer) = gw
            .api(
                reqwest::Method::POST,
                &format!("/v1/calls/{second_id}/play"),
                Some(serde_json::json!({"audio": "no-such-prompt.wav", "then": "hold"})),
            )
            .await;
        if status >= 400 {
            let error = answer["error"].as_str().unwrap_or_default();
            assert!(
                said.starts_with(&format!("Play failed: {status}: {error}")),
                "{said}"
            );
        } else {
            assert_eq!(said, "Playing.");
        }
    })
    .await;

    let (status, _) = gw
        .api(
            reqwest::Method::DELETE,
            &format!("/v1/calls/{second_id}"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert!(finished(second, "second sipp caller", 10).await);

    step(c, "no-reload", async {
        assert_eq!(
            js(c, "return window.pinlessTestLoad === 1").await,
            true,
            "every update came without a page reload"
        );
    })
    .await;

    step(c, "sign-out", async {
        click(c, "#signout").await;
        let state = js(
            c,
            "return [sessionStorage.getItem('pinless.token'), \
                     document.getElementById('signin').hidden, \
                     getComputedStyle(document.getElementById('live')).display === 'none', \
                     document.querySelectorAll('li.call').length]",
        )
        .await;
        assert_eq!(state, serde_json::json!([null, false, true, 0]));
    })
    .await;
    let _ = client.close().await;
}

/// A trace in the shape of `GET /v1/calls/{callId}/sip`: the caller's
/// INVITE transaction, then a room INVITE challenged and sent again with
/// credentials (masked, as the node masks them).
fn ladder_fixture(call_id: &str) -> serde_json::Value {
    let msg = |at: u64,
               leg: &str,
               dir: &str,
               peer: &str,
               line: &str,
               extra: &[(&str, &str)],
               body: &str| {
        let mut headers = vec![
            serde_json::json!(["Via", "SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK1"]),
            serde_json::json!(["Call-ID", "ladder-fixture"]),
        ];
        headers.extend(extra.iter().map(|(n, v)| serde_json::json!([n, v])));
        serde_json::json!({
            "at": 1795339001000u64 + at, "leg": leg, "direction": dir, "peer": peer,
            "transport": "udp", "startLine": line, "headers": headers,
            "body": body, "bodyTruncated": false,
        })
    };
    let caller = "127.0.0.1:5062";
    let room = "127.0.0.1:5070";
    let sdp = "v=0\r\nm=audio 40002 RTP/AVP 0 101\r\n";
    serde_json::json!({
        "callId": call_id,
        "truncated": false,
        "messages": [
            msg(0, "caller", "in", caller, "INVITE sip:support@127.0.0.1 SIP/2.0", &[], sdp),
            msg(2, "caller", "out", caller, "SIP/2.0 100 Trying", &[], ""),
            msg(15, "caller", "out", caller, "SIP/2.0 200 OK", &[], sdp),
            msg(17, "caller", "in", caller, "ACK sip:support@127.0.0.1 SIP/2.0", &[], ""),
            msg(900, "room", "out", room, "INVITE sip:room@127.0.0.1:5070 SIP/2.0", &[], sdp),
            msg(903, "room", "in", room, "SIP/2.0 407 Proxy Authentication Required", &[], ""),
            msg(905, "room", "out", room, "INVITE sip:room@127.0.0.1:5070 SIP/2.0",
                &[
                    ("Proxy-Authorization", "Digest username=\"pinless\", response=\"***\""),
                    ("X-Note", "<script>x</script><b>"),
                ], sdp),
            msg(940, "room", "in", room, "SIP/2.0 200 OK", &[], sdp),
            msg(942, "room", "out", room, "ACK sip:room@127.0.0.1:5070 SIP/2.0", &[], ""),
        ],
    })
}

#[tokio::test]
async fn an_operator_plays_a_call_s_recording_on_its_page() {
    let mut call = held_call_with_events("record = \"answer\"", &[]).await;
    let talking = support::signal::send_payloads(
        &call.phone.rtp,
        call.media.addr,
        0,
        160,
        support::signal::mulaw_tone(697.0, 1.2),
    );
    talking.await.unwrap();
    call.caller.hangup();
    loop {
        let hook = call.hooks.next().await;
        if hook.json()["type"] == "call.recording_ready" {
            break;
        }
    }
    let driver = browser::Driver::start().await;
    let client = driver.browser(1280, 900).await;
    let c = &client;
    step(c, "recording-open", async {
        open_console(c, &call.gw).await;
        sign_in(c).await;
        js(
            c,
            &format!("location.hash = '#call/{}'; return true", call.call_id),
        )
        .await;
    })
    .await;
    step(c, "recording-plays", async {
        // The player has the file: its length is the call's, about 1.2 s
        // of talk after the answer.
        let secs = until(
            c,
            5.0,
            "the recording's player, its audio loaded",
            "const a = document.querySelector('#recording audio'); \
             return a && a.readyState >= 1 && isFinite(a.duration) ? a.duration : null",
        )
        .await;
        let secs = secs.as_f64().unwrap_or_default();
        assert!(
            (1.0..3.0).contains(&secs),
            "{secs} s of audio in the player"
        );
        let link = js(
            c,
            "const l = document.querySelector('#recording a[download]'); \
             return l ? l.getAttribute('download') : null",
        )
        .await;
        assert_eq!(link, serde_json::json!(format!("{}-1.wav", call.call_id)));
    })
    .await;
}
