//! Voice bots without a room, over real SIP, RTP, HTTP and WebSocket on
//! loopback: a held caller transferred to a bot speaking Twilio Media
//! Streams. The caller's audio reaches the bot as `media` 50 times a
//! second; the bot's audio reaches the caller as paced RTP on the
//! caller's one stream; marks, `clear` and key presses work as Twilio's;
//! failures are retried while the caller hears music; a bot closing, a
//! caller hanging up, re-transfers and hold behave as with rooms.

use crate::support;

use pinless::media::rtp::{HEADER_LEN, Header};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use support::audio::assert_one_stream;
use support::bot::{BotConn, TestBot, payload};
use support::peers::{Packet, TestCert};
use support::*;

/// μ-law silence.
const SILENCE: u8 = 0xFF;

/// Sends one RFC 4733 key press (100 ms) as a phone does.
async fn press(rtp: &RtpPeer, to: SocketAddr, pt: u8, event: u8) {
    let mut packets = Vec::new();
    for (seq, (marker, end, duration)) in (5000u16..).zip([
        (true, false, 160u16),
        (false, false, 320),
        (false, false, 480),
        (false, true, 800),
        (false, true, 800),
        (false, true, 800),
    ]) {
        let mut head = [0u8; HEADER_LEN];
        Header {
            marker,
            payload_type: pt,
            sequence: seq,
            timestamp: 48_000,
            ssrc: 0x0D7F_0002,
        }
        .write(&mut head);
        let d = duration.to_be_bytes();
        let flags = if end { 0x80 | 10 } else { 10 };
        packets.push([&head[..], &[event, flags, d[0], d[1]]].concat());
    }
    for p in packets {
        rtp.socket.send_to(&p, to).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Collects what the caller receives for `d`, in the background.
fn listen(phone: &Phone, d: Duration) -> tokio::task::JoinHandle<Vec<Packet>> {
    let socket = phone.rtp.socket.clone();
    tokio::spawn(async move {
        let peer = RtpPeer {
            addr: socket.local_addr().unwrap(),
            socket,
        };
        peer.collect(d).await
    })
}

/// The largest gap between consecutive packets.
fn largest_gap(packets: &[Packet]) -> Duration {
    packets
        .windows(2)
        .map(|w| w[1].at.duration_since(w[0].at))
        .max()
        .unwrap_or_default()
}

fn all(p: &Packet, byte: u8) -> bool {
    p.payload.iter().all(|b| *b == byte)
}

/// Transfers `call` to `bot` at `path`; returns the bot's side, started.
async fn to_bot(call: &HeldCall, bot: &TestBot, path: &str, extra: Value) -> (BotConn, Value) {
    let mut fields = json!({ "streamUrl": bot.url(path) });
    if let (Some(f), Value::Object(e)) = (fields.as_object_mut(), extra) {
        f.extend(e);
    }
    let (status, body) = call.update(fields).await;
    assert_eq!(status, 200, "{body}");
    let mut conn = bot.accept().await;
    let start = conn.started().await;
    (conn, start)
}

#[tokio::test]
async fn the_bot_hears_the_caller_and_the_caller_hears_the_bot_on_its_one_stream() {
    let call = held_call("", &[("X-Lang", "de")]).await;
    let bot = TestBot::new().await;
    // Music, the switch and the bot's audio, heard as one stream.
    let heard = listen(&call.phone, Duration::from_millis(1500));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (mut conn, start) = to_bot(
        &call,
        &bot,
        "/bot?token=s3cret",
        json!({
            "streamParameters": { "lang": "de-DE" },
            "streamHeaders": { "Authorization": "Bearer t0k" },
        }),
    )
    .await;
    // The handshake: the URL's query and the app's headers.
    assert_eq!(conn.path, "/bot?token=s3cret");
    assert_eq!(conn.header("Authorization"), Some("Bearer t0k"));
    // `start`: who is calling, the caller's headers, the app's parameters.
    let s = &start["start"];
    assert_eq!(s["callSid"], call.call_id.as_str(), "{start}");
    assert_eq!(s["tracks"], json!(["inbound"]));
    assert_eq!(
        s["mediaFormat"],
        json!({"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1})
    );
    let custom = &s["customParameters"];
    assert_eq!(custom["callId"], call.call_id.as_str());
    assert_eq!(custom["From"], call.hook.json()["From"]);
    assert_eq!(custom["To"], call.hook.json()["To"]);
    assert_eq!(custom["X-Lang"], "de", "{custom}");
    assert_eq!(custom["lang"], "de-DE");
    assert_eq!(start["streamSid"], s["streamSid"]);

    // The bot speaks: 0.4 s of 0x33, in one message.
    conn.media(&[0x33; 3200]).await;
    let packets = heard.await.unwrap();
    let first_bot = packets
        .iter()
        .position(|p| all(p, 0x33))
        .expect("the bot's audio reached the caller");
    assert!(first_bot > 10, "music before the bot");
    let bot_frames = packets.iter().filter(|p| all(p, 0x33)).count();
    assert_eq!(bot_frames, 20, "0.4 s in 20 ms frames");
    assert!(
        packets[first_bot..].iter().any(|p| all(p, SILENCE)),
        "silence frames once the bot's audio is out"
    );
    assert_one_stream(&packets);
    let gap = largest_gap(&packets);
    assert!(gap < Duration::from_millis(45), "a gap of {gap:?}");

    // The caller speaks: 0x55 frames, 50 a second, as `media`.
    call.phone
        .rtp
        .send_pattern(call.media.addr, 0, 0x55, 50)
        .await
        .unwrap();
    // Silence chunks came before (the caller sent nothing), and may come
    // between when a packet is late: chunks are numbered throughout.
    let mut media = Vec::new();
    let mut chunk = None;
    while media.len() < 50 {
        let m = conn.next_event("media").await;
        assert_eq!(m["media"]["track"], "inbound");
        let n: u64 = m["media"]["chunk"].as_str().unwrap().parse().unwrap();
        assert_eq!(n, chunk.map_or(n, |c| c + 1), "{m}");
        chunk = Some(n);
        match payload(&m)[..] {
            [0x55, ..] => {
                assert_eq!(payload(&m), vec![0x55; 160]);
                media.push(m);
            }
            _ => assert_eq!(payload(&m), vec![SILENCE; 160]),
        }
    }
    let ts = |m: &Value| -> u64 { m["media"]["timestamp"].as_str().unwrap().parse().unwrap() };
    let span = ts(&media[49]) - ts(&media[0]);
    assert!(
        (880..=1100).contains(&span),
        "50 chunks over {span} ms: 50 a second"
    );

    // The events and the call name the stream without its query.
    let view = call.wait(|c| c["state"] == "bridged").await;
    let bridged = details(&view, "call.bridged");
    assert_eq!(bridged[0]["target"], bot.url("/bot"), "{view:#}");
    assert_eq!(view["target"], bot.url("/bot"));
    assert!(!view.to_string().contains("s3cret"), "{view}");
}

#[tokio::test]
async fn marks_come_back_once_played_and_clear_cuts_the_queue() {
    let call = held_call("", &[]).await;
    let bot = TestBot::new().await;
    let (mut conn, _) = to_bot(&call, &bot, "/bot", json!({})).await;
    // 0.5 s of audio, then a mark: back once the audio is played.
    let sent = Instant::now();
    conn.media(&[0x44; 4000]).await;
    conn.mark("greeting").await;
    let mark = conn.next_event("mark").await;
    let after = sent.elapsed();
    assert_eq!(mark["mark"]["name"], "greeting");
    assert!(
        after >= Duration::from_millis(420),
        "mark back after {after:?}, before its audio played"
    );
    assert!(after < Duration::from_millis(1000), "mark late: {after:?}");

    // 10 s of audio and a mark after it; the caller hears it, then the
    // bot clears (barge-in).
    conn.media(&[0x22; 80_000]).await;
    conn.mark("long").await;
    call.phone.rtp.drain();
    call.phone.rtp.hears(0x22).await;
    let heard = listen(&call.phone, Duration::from_millis(400));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let cleared = Instant::now();
    conn.clear().await;
    let packets = heard.await.unwrap();
    let late: Vec<_> = packets
        .iter()
        .filter(|p| p.at > cleared + Duration::from_millis(40) && all(p, 0x22))
        .collect();
    assert!(
        late.is_empty(),
        "{} frames of cleared audio heard",
        late.len()
    );
    assert!(
        packets.iter().any(|p| p.at > cleared && all(p, SILENCE)),
        "silence after the clear"
    );
    assert!(packets.iter().any(|p| p.at < cleared && all(p, 0x22)));
    assert_one_stream(&packets);
    // The mark after the cleared audio comes back at once (as Twilio's).
    let mark = conn.next_event("mark").await;
    assert_eq!(mark["mark"]["name"], "long");
    assert!(cleared.elapsed() < Duration::from_secs(1));
}

/// A caller that sends no RTP (VAD, comfort noise) is silence to the bot,
/// 50 `media` a second, so that the bot's own VAD sees the end of speech.
#[tokio::test]
async fn a_silent_caller_still_gives_the_bot_media_every_20_ms() {
    let call = held_call("", &[]).await;
    let bot = TestBot::new().await;
    let (mut conn, _) = to_bot(&call, &bot, "/bot", json!({})).await;
    let since = Instant::now();
    let mut silence = 0;
    while since.elapsed() < Duration::from_secs(1) {
        let m = conn.next().await.expect("the stream is up");
        if m["event"] == "media" {
            assert!(payload(&m).iter().all(|b| *b == SILENCE), "{m}");
            silence += 1;
        }
    }
    assert!((40..=55).contains(&silence), "{silence} media in 1 s");
}

#[tokio::test]
async fn the_caller_s_key_presses_reach_the_bot_as_dtmf() {
    let mut call = held_call("", &[]).await;
    let bot = TestBot::new().await;
    let (mut conn, _) = to_bot(&call, &bot, "/bot", json!({})).await;
    let pt = call
        .media
        .event_payload_type
        .expect("telephone-event agreed");
    press(&call.phone.rtp, call.media.addr, pt, 7).await;
    let dtmf = conn.next_event("dtmf").await;
    assert_eq!(dtmf["dtmf"]["digit"], "7", "{dtmf}");
    assert_eq!(dtmf["dtmf"]["track"], "inbound_track");
    // SIP INFO (application/dtmf-relay) reaches the bot the same way.
    let info = call
        .caller
        .info("application/dtmf-relay", "Signal=#\r\nDuration=160\r\n");
    assert_eq!(info.await.unwrap(), Some(200));
    let dtmf = conn.next_event("dtmf").await;
    assert_eq!(dtmf["dtmf"]["digit"], "#", "{dtmf}");
}

#[tokio::test]
async fn a_pcma_caller_is_transcoded_both_ways() {
    let mut hooks = WebhookReceiver::start(&[]).await;
    let gw = TestGateway::start(&hooks.url(), "").await;
    let phone = Phone::new().await;
    let a = phone.rtp.addr;
    let offer = format!(
        "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\na=sendrecv\r\n",
        ip = a.ip(),
        port = a.port()
    );
    let mut dialing = phone.dial_sdp(&gw.sip_uri("support", false), &[], offer);
    let (_leg, media) = match within(10, "answer", dialing.outcome()).await {
        pinless::sip::DialOutcome::Answered { leg, sdp } => {
            (leg, pinless::sip::sdp::parse(&sdp).unwrap())
        }
        other => panic!("{other:?}"),
    };
    let call_id = hooks.next().await.json()["callId"]
        .as_str()
        .unwrap()
        .to_string();
    let bot = TestBot::new().await;
    let (status, _) = gw
        .update(gw.update_body(&call_id, json!({ "streamUrl": bot.url("/") })))
        .await;
    assert_eq!(status, 200);
    let mut conn = bot.accept().await;
    conn.started().await;
    let alaw = pinless::media::Law::A.encode(3000);
    let mulaw = pinless::media::Law::Mu.encode(3000);
    assert_ne!(alaw, mulaw);
    phone
        .rtp
        .send_pattern(media.addr, 8, alaw, 10)
        .await
        .unwrap();
    let m = conn.next_event("media").await;
    assert_eq!(payload(&m), vec![mulaw; 160], "μ-law to the bot");
    conn.media(&[mulaw; 1600]).await;
    let heard = phone.rtp.hears(alaw).await;
    assert_eq!(heard.header.payload_type, 8, "A-law to the caller");
}

#[tokio::test]
async fn a_refused_bot_then_a_401_is_retried_while_the_caller_hears_music() {
    let call = held_call("", &[]).await;
    // A port nobody listens on yet: the first attempt is refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let url = format!("ws://{port}/late");
    let heard = listen(&call.phone, Duration::from_millis(1500));
    let (status, _) = call.update(json!({ "streamUrl": url })).await;
    assert_eq!(status, 200);
    call.wait(|c| !details(c, "call.transfer_failed").is_empty())
        .await;
    // Now it listens, but refuses the handshake once (401), then takes it.
    let bot = TestBot::on(port, None).await;
    bot.refuse(401).await;
    let mut conn = bot.accept().await;
    conn.started().await;
    conn.media(&[0x66; 24_000]).await;
    let view = call.wait(|c| c["state"] == "bridged").await;
    // Refused (once, or more on a slow machine), then the 401.
    let failed = details(&view, "call.transfer_failed");
    let [.., refused, unauthorized] = &failed[..] else {
        panic!("two failures at least: {view:#}");
    };
    assert_eq!(refused["code"], Value::Null);
    assert!(
        refused["reason"].as_str().unwrap().contains("connect"),
        "{failed:?}"
    );
    assert_eq!(unauthorized["code"], 401);
    assert_eq!(unauthorized["target"], url);
    assert_eq!(unauthorized["final"], false);
    let packets = heard.await.unwrap();
    let music: Vec<_> = packets.iter().take_while(|p| !all(p, SILENCE)).collect();
    assert!(music.len() >= 25, "{} frames of music first", music.len());
    assert_one_stream(&packets);
    let gap = largest_gap(&packets);
    assert!(gap < Duration::from_millis(45), "a gap of {gap:?}");
    call.phone.rtp.hears(0x66).await;
}

#[tokio::test]
async fn a_bot_that_never_comes_leaves_the_caller_on_hold() {
    let call = held_call("transfer_timeout_secs = 1", &[]).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (status, _) = call
        .update(json!({ "streamUrl": format!("ws://{port}/") }))
        .await;
    assert_eq!(status, 200);
    let view = call
        .wait(|c| {
            details(c, "call.transfer_failed")
                .iter()
                .any(|d| d["final"] == true)
        })
        .await;
    assert_eq!(view["state"], "held");
    let last = details(&view, "call.transfer_failed").pop().unwrap();
    assert_eq!(last["gaveUp"], "transfer_timeout_secs reached", "{last}");
    // Music plays on (not silence frames).
    let packets = call.phone.rtp.collect(Duration::from_millis(300)).await;
    assert!(packets.iter().filter(|p| !all(p, SILENCE)).count() >= 10);
}

#[tokio::test]
async fn a_bot_that_closes_ends_the_call() {
    let call = held_call("", &[]).await;
    let bot = TestBot::new().await;
    let (conn, _) = to_bot(&call, &bot, "/", json!({})).await;
    call.wait(|c| c["state"] == "bridged").await;
    conn.close().await;
    let view = call.wait(|c| c["state"] == "ended").await;
    assert_eq!(view["endReason"], "room_hangup", "{view:#}");
    // The caller got a BYE.
    let mut caller = call.caller;
    let event = within(5, "the caller's BYE", caller.next_event()).await;
    assert!(matches!(event, pinless::sip::LegEvent::Bye), "{event:?}");
}

#[tokio::test]
async fn a_bot_message_over_256_kib_ends_its_stream() {
    let call = held_call("", &[]).await;
    let bot = TestBot::new().await;
    let (mut conn, _) = to_bot(&call, &bot, "/", json!({})).await;
    call.wait(|c| c["state"] == "bridged").await;
    // 200 kB of audio in one message (267 KiB as base64): over the limit.
    conn.media(&vec![0x55; 200_000]).await;
    let view = call.wait(|c| c["state"] == "ended").await;
    assert_eq!(view["endReason"], "room_hangup", "{view:#}");
}

/// A bot that stops reading (nor answers pings) does not keep the caller:
/// its stream ends after `rtp_timeout_secs`, as a dead RTP peer would.
#[tokio::test]
async fn a_bot_that_stops_reading_ends_its_stream() {
    let mut hooks = WebhookReceiver::start(&[]).await;
    let gw = TestGateway::start_with_env(
        &hooks.url(),
        "",
        &[("PINLESS_MEDIA__RTP_TIMEOUT_SECS", "2")],
    )
    .await;
    let phone = Phone::new().await;
    let (caller, media) = phone.call(&gw.sip_uri("support", false), &[]).await;
    let hook = hooks.next().await;
    let call_id = hook.json()["callId"].as_str().unwrap().to_string();
    // The caller talks throughout (its own RTP timeout must not fire).
    let _talk = phone.rtp.send_pattern(media.addr, 0, 0x11, 500);
    let call = HeldCall {
        gw,
        hooks,
        phone,
        caller,
        media,
        call_id,
        hook,
    };
    let bot = TestBot::new().await;
    let (_stalled, _) = to_bot(&call, &bot, "/", json!({})).await;
    call.wait(|c| c["state"] == "bridged").await;
    let since = Instant::now();
    // `_stalled` is never read again.
    let view = call
        .gw
        .wait_call(&call.call_id, Duration::from_secs(8), |c| {
            c["state"] == "ended"
        })
        .await;
    assert_eq!(view["endReason"], "room_hangup", "{view:#}");
    assert!(
        since.elapsed() >= Duration::from_millis(1500),
        "{:?}",
        since.elapsed()
    );
}

#[tokio::test]
async fn a_bot_that_closes_returns_the_caller_to_hold_when_the_entry_says_so() {
    let mut call = held_call("on_room_hangup = \"hold\"", &[]).await;
    let bot = TestBot::new().await;
    let (conn, _) = to_bot(&call, &bot, "/", json!({})).await;
    call.wait(|c| c["state"] == "bridged").await;
    conn.close().await;
    let view = call.wait(|c| c["state"] == "held").await;
    assert_eq!(
        details(&view, "call.returned_to_hold").last().unwrap()["reason"],
        "room_hangup"
    );
    // A new webhook, and music again.
    let again = within(5, "a second webhook", call.hooks.next()).await;
    assert_eq!(again.json()["callId"], call.call_id.as_str());
    let packets = call.phone.rtp.collect(Duration::from_millis(300)).await;
    assert!(packets.iter().filter(|p| !all(p, SILENCE)).count() >= 10);
}

#[tokio::test]
async fn a_caller_bye_sends_stop_then_closes_the_socket() {
    let call = held_call("", &[]).await;
    let bot = TestBot::new().await;
    let (mut conn, _) = to_bot(&call, &bot, "/", json!({})).await;
    call.wait(|c| c["state"] == "bridged").await;
    let HeldCall {
        gw,
        caller,
        call_id,
        ..
    } = call;
    caller.hangup();
    let rest = conn.until_closed().await;
    let last = rest.last().expect("a stop");
    assert_eq!(last["event"], "stop", "{rest:?}");
    assert_eq!(last["stop"]["callSid"], call_id.as_str());
    let view = gw
        .wait_call(&call_id, Duration::from_secs(5), |c| c["state"] == "ended")
        .await;
    assert_eq!(view["endReason"], "caller_hangup");
}

#[tokio::test]
async fn re_transfers_between_bots_and_rooms_and_back_to_hold() {
    let call = held_call("", &[]).await;
    let (one, two) = (TestBot::new().await, TestBot::new().await);
    let mut room = Room::new().await;

    // Everything the caller receives, all along.
    let rec = Recorder::start(&call.phone);

    // Bot → bot: the first talks until the second has the caller, and
    // gets stop only then.
    let (mut first, _) = to_bot(&call, &one, "/one", json!({})).await;
    call.wait(|c| c["state"] == "bridged").await;
    first.media(&[0x11; 8000 * 10]).await;
    rec.hears(0x11).await;
    let first_stop = tokio::spawn(async move {
        let rest = first.until_closed().await;
        (Instant::now(), rest)
    });
    let (mut second, _) = to_bot(&call, &two, "/two", json!({})).await;
    second.media(&[0x12; 8000]).await;
    rec.hears(0x12).await;
    let (stop_at, rest) = first_stop.await.unwrap();
    assert_eq!(rest.last().unwrap()["event"], "stop");
    let packets = rec.packets();
    let last_first = packets.iter().rposition(|p| all(p, 0x11)).unwrap();
    let switched = &packets[last_first + 1];
    assert!(
        stop_at + Duration::from_millis(25) >= switched.at,
        "bot 1 got stop {:?} before the caller left it",
        switched.at.duration_since(stop_at)
    );
    // From bot 1's audio to bot 2's: at most a few silence frames, no music.
    let first_second = packets.iter().position(|p| all(p, 0x12)).unwrap();
    let between = &packets[last_first + 1..first_second];
    assert!(
        between.len() < 10 && between.iter().all(|p| all(p, SILENCE)),
        "{} frames between the bots",
        between.len()
    );

    // Bot → room: the bot gets stop once the room answered.
    let (status, _) = call.update(json!({ "sipUri": room.uri("r", false) })).await;
    assert_eq!(status, 200);
    let invite = room.next_invite().await;
    let (mut room_leg, offer) = room.answer(invite).await;
    let _sending = room.rtp.send_pattern(offer.addr, 0, 0x34, 200);
    rec.hears(0x34).await;
    let rest = second.until_closed().await;
    assert_eq!(rest.last().unwrap()["event"], "stop");
    let view = call.wait(|c| c["state"] == "bridged").await;
    let bridged = details(&view, "call.bridged");
    assert_eq!(bridged[2]["sipUri"], room.uri("r", false), "{view:#}");

    // Room → bot: the room gets BYE once the bot is there.
    let (mut third, _) = to_bot(&call, &one, "/three", json!({})).await;
    third.media(&[0x56; 1600]).await;
    rec.hears(0x56).await;
    let event = within(5, "the room's BYE", room_leg.next_event()).await;
    assert!(matches!(event, pinless::sip::LegEvent::Bye), "{event:?}");

    // Back to hold: stop to the bot, music to the caller.
    let (status, _) = call
        .gw
        .post(&format!("/v1/calls/{}/hold", call.call_id))
        .await;
    assert_eq!(status, 200);
    let rest = third.until_closed().await;
    assert_eq!(rest.last().unwrap()["event"], "stop");
    let view = call.wait(|c| c["state"] == "held").await;
    assert_eq!(
        details(&view, "call.bridged").len(),
        4,
        "bot, bot, room, bot: {view:#}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let packets = rec.stop();
    let music_again = packets
        .iter()
        .rev()
        .take(15)
        .filter(|p| !all(p, SILENCE) && !all(p, 0x56))
        .count();
    assert!(music_again >= 10, "music again at the end");
    // One stream throughout (the hold music's SSRC, sequence and
    // timestamps run on through bots and the room), and no hole while
    // each new target opened.
    assert_one_stream(&packets);
    let gap = largest_gap(&packets);
    assert!(gap < Duration::from_millis(100), "a gap of {gap:?}");
}

/// What the caller receives, read on an OS thread of its own (the test's
/// runtime is busy with the gateway) into a list the test can look at.
struct Recorder {
    packets: std::sync::Arc<std::sync::Mutex<Vec<Packet>>>,
    done: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Recorder {
    fn start(phone: &Phone) -> Recorder {
        use std::os::fd::AsFd;
        let fd = phone.rtp.socket.as_fd().try_clone_to_owned().unwrap();
        let socket = std::net::UdpSocket::from(fd);
        let packets = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (list, stop) = (packets.clone(), done.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                match socket.recv_from(&mut buf) {
                    Ok((n, from)) => {
                        if let Some((header, range)) = pinless::media::rtp::parse(&buf[..n]) {
                            list.lock().unwrap().push(Packet {
                                header,
                                payload: buf[range].to_vec(),
                                at: Instant::now(),
                                from,
                            });
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_micros(200)),
                }
            }
        });
        Recorder {
            packets,
            done,
            thread: Some(thread),
        }
    }

    fn packets(&self) -> Vec<Packet> {
        self.packets.lock().unwrap().clone()
    }

    /// Waits (5 s at most) until the caller received a frame of `byte`.
    async fn hears(&self, byte: u8) {
        within(5, &format!("audio 0x{byte:02X}"), async {
            while !self.packets.lock().unwrap().iter().any(|p| all(p, byte)) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
    }

    fn stop(mut self) -> Vec<Packet> {
        self.done.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        self.packets()
    }
}

#[tokio::test]
async fn wss_bots_are_verified_against_sip_tls_ca() {
    let cert = TestCert::new();
    let mut hooks = WebhookReceiver::start(&[]).await;
    let ca = cert.cert.display().to_string();
    let gw = TestGateway::start_with_env(&hooks.url(), "", &[("PINLESS_SIP__TLS_CA", ca.as_str())])
        .await;
    let phone = Phone::new().await;
    let (_leg, _media) = phone.call(&gw.sip_uri("support", false), &[]).await;
    let call_id = hooks.next().await.json()["callId"]
        .as_str()
        .unwrap()
        .to_string();
    let bot = TestBot::tls(&cert).await;
    assert!(bot.url("/").starts_with("wss://"));
    let (status, _) = gw
        .update(gw.update_body(&call_id, json!({ "streamUrl": bot.url("/tls") })))
        .await;
    assert_eq!(status, 200);
    let mut conn = bot.accept().await;
    conn.started().await;
    conn.media(&[0x3C; 1600]).await;
    phone.rtp.hears(0x3C).await;
}

#[tokio::test]
async fn a_wss_bot_with_an_untrusted_certificate_is_refused() {
    let cert = TestCert::new();
    let call = held_call("transfer_timeout_secs = 1", &[]).await;
    // A bot whose certificate nobody told the gateway to trust.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("wss://{}/", listener.local_addr().unwrap());
    let acceptor = pinless::sip::tls::acceptor(&cert.cert, &cert.key).unwrap();
    let accepting = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let _ = acceptor.accept(tcp).await;
        }
    });
    let (status, _) = call.update(json!({ "streamUrl": url })).await;
    assert_eq!(status, 200);
    let view = call
        .wait(|c| {
            details(c, "call.transfer_failed")
                .iter()
                .any(|d| d["final"] == true)
        })
        .await;
    accepting.abort();
    let failed = details(&view, "call.transfer_failed");
    assert!(
        failed[0]["reason"].as_str().unwrap().starts_with("TLS"),
        "{failed:?}"
    );
    assert_eq!(view["state"], "held");
}

#[tokio::test]
async fn bad_stream_fields_get_400_naming_the_field() {
    let call = held_call("", &[]).await;
    for (fields, error) in [
        (
            json!({ "streamUrl": "https://bot/ws" }),
            "streamUrl: must be a ws:// or wss:// URL",
        ),
        (
            json!({ "streamUrl": "wss://bot/ws", "streamParameters": "x" }),
            "streamParameters: must be an object of strings",
        ),
        (
            json!({ "streamUrl": "wss://bot/ws", "streamHeaders": { "Bad Name": "x" } }),
            "streamHeaders.Bad Name: not a valid HTTP header name",
        ),
        // The handshake could not send it: a 400 now, not a 200 and then
        // attempts until transfer_timeout_secs.
        (
            json!({ "streamUrl": "wss://bot/ws", "streamHeaders": { "X-Name": "Zoë" } }),
            "streamHeaders.X-Name: value must be visible text (no control characters)",
        ),
        (
            json!({ "streamUrl": "wss://bot/ws", "streamHeaders": { "Sec-WebSocket-Protocol": "audio" } }),
            "streamHeaders.Sec-WebSocket-Protocol: set by the WebSocket handshake itself",
        ),
    ] {
        let (status, body) = call.update(fields).await;
        assert_eq!(status, 400);
        assert_eq!(body["error"], error);
    }
}

#[tokio::test]
async fn a_caller_with_a_bot_at_a_restart_is_back_on_hold_with_a_new_webhook() {
    let mut hooks = WebhookReceiver::start(&[]).await;
    let mut gw = support::binary::Binary::new("", &hooks.url(), "", "");
    gw.start().await;
    let phone = Phone::new().await;
    let (_caller, _media) = phone.call(&format!("sip:support@{}", gw.sip), &[]).await;
    let hook = hooks.next().await.json();
    let (call_id, domain) = (hook["callId"].clone(), hook["callDomain"].clone());
    let bot = TestBot::new().await;
    let http = reqwest::Client::new();
    let status = http
        .post(format!("{}/v1/dialin/pinlessCallUpdate", gw.api))
        .bearer_auth(TOKEN)
        .json(&json!({ "callId": call_id, "callDomain": domain, "streamUrl": bot.url("/") }))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    let mut conn = bot.accept().await;
    conn.started().await;
    // Saved bridged (to the bot), then stopped in resume mode.
    tokio::time::sleep(Duration::from_millis(300)).await;
    gw.signal("TERM");
    assert!(gw.exited(5).await.success(), "{}", gw.log());
    conn.until_closed().await;
    gw.start().await;
    // The socket did not survive: music, and the app is asked again.
    let again = within(10, "a new webhook", hooks.next()).await.json();
    assert_eq!(again["callId"], call_id);
    phone.rtp.drain();
    let packets = phone.rtp.collect(Duration::from_millis(400)).await;
    assert!(
        packets.iter().filter(|p| !all(p, SILENCE)).count() >= 10,
        "music after the restart"
    );
    let view: Value = http
        .get(format!("{}/v1/calls/{}", gw.api, call_id.as_str().unwrap()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(view["state"], "held", "{view:#}");
    assert_eq!(
        details(&view, "call.returned_to_hold").last().unwrap()["reason"],
        "restart"
    );
    gw.signal("KILL");
}
