//! `POST /v1/calls/{callId}/play` over real SIP, RTP and HTTP on
//! loopback: the prompt is heard in place of the music, the music then
//! resumes where it stopped (or the caller gets BYE), the app gets
//! `call.play_finished`, and bad requests are refused naming what is
//! wrong.

use crate::support;

use pinless::media::HoldLoop;
use pinless::sip::LegEvent;
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};
use support::audio::{assert_one_stream, chirp, law, music_frame, temp_dir, wav};
use support::peers::Packet;
use support::*;

/// A gateway whose entry plays `music` and posts events to the webhook
/// receiver too, and whose API plays files from `music`'s directory; a
/// caller held there.
async fn held_with_events(music: &Path) -> HeldCall {
    let extra = format!("hold_music = \"{}\"", music.display());
    let dir = folder_of(music);
    held_call_with_events(&extra, &[(MEDIA_DIR, &dir)]).await
}

/// The override of `[api] media_dir`.
const MEDIA_DIR: &str = "PINLESS_API__MEDIA_DIR";

/// The directory `file` is in.
fn folder_of(file: &Path) -> String {
    file.parent()
        .expect("a file in a directory")
        .display()
        .to_string()
}

/// The next webhook or event whose body satisfies `pred`.
async fn next_where(hooks: &mut WebhookReceiver, pred: impl Fn(&Value) -> bool) -> Hook {
    loop {
        let hook = hooks.next().await;
        if pred(&hook.json()) {
            return hook;
        }
    }
}

async fn play(call: &HeldCall, body: Value) -> (u16, Value) {
    let path = format!("/v1/calls/{}/play", call.call_id);
    call.gw.api(reqwest::Method::POST, &path, Some(body)).await
}

/// A prompt of `frames` 20 ms frames of one constant sample value.
fn prompt_file(path: &Path, frames: usize) {
    wav(path, &vec![-7_000; frames * 160]);
}

/// Packets until the first run of `clip`'s frames is over and 10 more
/// packets came; (packets, first, last) of that run.
async fn hear_prompt(peer: &RtpPeer, clip: &HoldLoop) -> (Vec<Packet>, usize, usize) {
    let is_prompt = |p: &Packet| p.payload == clip.frame(law(p), 0);
    let span = |all: &[Packet]| {
        let first = all.iter().position(is_prompt)?;
        let run = all[first..].iter().take_while(|p| is_prompt(p)).count();
        Some((first, first + run - 1))
    };
    within(6, "the prompt, then music", async {
        let mut all = Vec::new();
        loop {
            all.extend(peer.collect(Duration::from_millis(40)).await);
            if let Some((first, last)) = span(&all)
                && all.len() > last + 10
            {
                return (all, first, last);
            }
        }
    })
    .await
}

#[tokio::test]
async fn a_prompt_is_heard_in_place_of_the_music_which_then_resumes_and_the_app_is_told() {
    let dir = temp_dir("play");
    let music_path = dir.join("music.wav");
    chirp(&music_path);
    let prompt_path = dir.join("prompt.wav");
    prompt_file(&prompt_path, 15);
    let mut call = held_with_events(&music_path).await;
    let music = HoldLoop::load(&music_path).unwrap();
    let clip = HoldLoop::load(&prompt_path).unwrap();
    // Some music first (left in the socket's buffer, read below).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let audio = prompt_path.display().to_string();
    let (status, body) = play(&call, json!({ "audio": audio })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "playing");
    let (heard, first, last) = hear_prompt(&call.phone.rtp, &clip).await;
    assert_eq!(
        last - first + 1,
        clip.frames() as usize,
        "the whole prompt, once"
    );
    assert_one_stream(&heard[..last + 10]);
    let index_of = |p: &Packet| music_frame(&music, p).expect("music");
    assert!(first > 0, "music before the prompt");
    let before = index_of(&heard[first - 1]);
    assert_eq!(index_of(&heard[last + 1]), (before + 1) % music.frames());
    // The app hears that it played, and the call is still held.
    let event = next_where(&mut call.hooks, |b| b["type"] == "call.play_finished").await;
    let event = event.json();
    assert_eq!(event["callId"], call.call_id.as_str());
    assert_eq!(
        event["data"],
        json!({ "audio": audio, "then": "hold", "completed": true })
    );
    let (_, view) = call.gw.get_call(&call.call_id).await;
    assert_eq!(view["state"], "held");
    assert!(event_names(&view).contains(&"call.play_finished".to_string()));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Serves `bytes` at `http://…/prompt.wav` (and 404 elsewhere).
fn serve(bytes: Vec<u8>) -> String {
    use warp::Filter;
    let route = warp::path("prompt.wav").map(move || bytes.clone());
    let (addr, server) = warp::serve(route).bind_ephemeral(([127, 0, 0, 1], 0));
    tokio::spawn(server);
    format!("http://{addr}")
}

#[tokio::test]
async fn a_prompt_from_a_url_with_then_hangup_is_heard_then_the_caller_gets_bye() {
    let dir = temp_dir("play-url");
    let music_path = dir.join("music.wav");
    chirp(&music_path);
    let prompt_path = dir.join("prompt.wav");
    prompt_file(&prompt_path, 25); // half a second
    let base = serve(std::fs::read(&prompt_path).unwrap());
    let mut call = held_with_events(&music_path).await;
    let clip = HoldLoop::load(&prompt_path).unwrap();
    let url = format!("{base}/prompt.wav");
    let asked = Instant::now();
    let (status, body) = play(&call, json!({ "audio": url, "then": "hangup" })).await;
    assert_eq!(status, 200, "{body}");
    let is_prompt = |p: &Packet| p.payload == clip.frame(law(p), 0);
    let heard = within(5, "the prompt", async {
        loop {
            let got = call.phone.rtp.collect(Duration::from_millis(40)).await;
            if got.iter().any(is_prompt) {
                return got;
            }
        }
    })
    .await;
    assert!(heard.iter().any(is_prompt));
    let bye = within(5, "BYE at the caller", call.caller.next_event()).await;
    assert_eq!(bye, LegEvent::Bye);
    assert!(
        asked.elapsed() >= Duration::from_millis(450),
        "BYE only after the prompt ({:?})",
        asked.elapsed()
    );
    let finished = next_where(&mut call.hooks, |b| b["type"] == "call.play_finished").await;
    assert_eq!(
        finished.json()["data"],
        json!({ "audio": url, "then": "hangup", "completed": true })
    );
    let ended = next_where(&mut call.hooks, |b| b["type"] == "call.ended").await;
    assert_eq!(ended.json()["data"]["reason"], "api_hangup");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn bad_play_requests_are_refused_naming_what_is_wrong() {
    let dir = temp_dir("play-bad");
    let music_path = dir.join("music.wav");
    chirp(&music_path);
    let call = held_with_events(&music_path).await;
    let error = |b: &Value| b["error"].as_str().unwrap_or_default().to_string();

    let (status, body) = play(&call, json!({})).await;
    assert_eq!((status, error(&body)), (400, "audio: required".into()));
    let (status, body) = play(&call, json!({ "audio": "x.wav", "then": "later" })).await;
    assert_eq!(status, 400);
    assert!(error(&body).starts_with("then: "), "{body}");

    let missing = dir.join("missing.wav").display().to_string();
    let (status, body) = play(&call, json!({ "audio": missing })).await;
    assert_eq!(
        (status, error(&body)),
        (400, "audio: no such file in api.media_dir".into())
    );

    // A directory (or a FIFO, a device) is not audio to read.
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    let folder = dir.join("sub").display().to_string();
    let (status, body) = play(&call, json!({ "audio": folder })).await;
    assert_eq!(status, 400, "{body}");
    assert!(error(&body).ends_with("not a regular file"), "{body}");

    let closed = format!("http://127.0.0.1:{}/prompt.wav", free_port());
    let (status, body) = play(&call, json!({ "audio": closed })).await;
    assert_eq!(status, 400, "{body}");
    assert!(error(&body).contains(&closed), "{body}");

    let base = serve(b"not audio".to_vec());
    let not_found = format!("{base}/other.wav");
    let (status, body) = play(&call, json!({ "audio": not_found })).await;
    assert_eq!(status, 400, "{body}");
    assert!(error(&body).contains("HTTP 404"), "{body}");

    let text = dir.join("text.wav");
    std::fs::write(&text, "this is no audio at all").unwrap();
    let text = text.display().to_string();
    let (status, body) = play(&call, json!({ "audio": text })).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        error(&body).starts_with(&format!("audio: cannot decode {text}")),
        "{body}"
    );

    let prompt = dir.join("prompt.wav");
    prompt_file(&prompt, 5);
    let prompt = prompt.display().to_string();
    let (status, body) = call
        .gw
        .api(
            reqwest::Method::POST,
            "/v1/calls/no-such-call/play",
            Some(json!({ "audio": prompt })),
        )
        .await;
    assert_eq!((status, error(&body)), (404, "unknown callId".into()));

    // With a room, not held: 409.
    let mut room = Room::new().await;
    let (status, _) = call.update(json!({ "sipUri": room.uri("r", false) })).await;
    assert_eq!(status, 200);
    let invite = room.next_invite().await;
    let (_room_leg, _) = room.answer(invite).await;
    call.wait(|c| c["state"] == "bridged").await;
    let (status, body) = play(&call, json!({ "audio": prompt })).await;
    assert_eq!((status, error(&body)), (409, "call is bridged".into()));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A TCP port nothing listens on (bound, then let go).
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[tokio::test]
async fn a_prompt_queued_behind_an_announcement_ends_the_call_as_soon_as_it_has_played() {
    let dir = temp_dir("play-after-announcement");
    let music_path = dir.join("music.wav");
    chirp(&music_path);
    let prompts = dir.join("prompts");
    std::fs::create_dir_all(&prompts).unwrap();
    support::audio::constant_prompts(&prompts);
    let prompt_path = dir.join("prompt.wav");
    prompt_file(&prompt_path, 10); // 0.2 s
    let mut hooks = WebhookReceiver::start(&[]).await;
    let extra = format!(
        "hold_music = \"{}\"\nannounce_position_every_secs = 2\nprompts_dir = \"{}\"",
        music_path.display(),
        prompts.display()
    );
    let files = folder_of(&prompt_path);
    let gw = TestGateway::start_with_env(&hooks.url(), &extra, &[(MEDIA_DIR, &files)]).await;
    let phone = Phone::new().await;
    let (mut caller, _media) = phone.call(&gw.sip_uri("support", false), &[]).await;
    let id = hooks.next().await.json()["callId"]
        .as_str()
        .unwrap()
        .to_string();
    // The announcement (constant samples of 9,000) starts 2 s in.
    within(5, "the announcement", async {
        loop {
            let got = phone.rtp.collect(Duration::from_millis(20)).await;
            let announcing = got
                .iter()
                .any(|p| p.payload.iter().all(|b| *b == p.payload[0]) && p.payload[0] != 0xFF);
            if announcing {
                return;
            }
        }
    })
    .await;
    let asked = Instant::now();
    let body = json!({ "audio": prompt_path.display().to_string(), "then": "hangup" });
    let path = format!("/v1/calls/{id}/play");
    let (status, reply) = gw.api(reqwest::Method::POST, &path, Some(body)).await;
    assert_eq!(status, 200, "{reply}");
    let bye = within(5, "BYE at the caller", caller.next_event()).await;
    assert_eq!(bye, LegEvent::Bye);
    // The rest of the announcement (under 0.6 s) and the prompt (0.2 s),
    // not the next announcement's turn 2 s later.
    assert!(
        asked.elapsed() < Duration::from_millis(1300),
        "BYE {:?} after the play request",
        asked.elapsed()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
