//! Call recording over real SIP, RTP and HTTP on loopback: the WAV file's
//! left channel is what the caller sent, its right what the caller heard
//! (the music, then the room), on the call's clock; the app is told when
//! a recording starts, pauses, resumes and is ready (with its checksum);
//! the file is served (ranges too), listed and deleted; sox reads it.

use crate::support;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::time::Duration;
use support::signal::{self, mulaw_tone, power, send_payloads};
use support::*;

/// A gateway whose entry says `record = "{record}"`, plays a 440 Hz tone
/// as its music and posts its events to the webhook receiver, and a
/// caller held there.
async fn held_recorded(record: &str) -> HeldCall {
    let music = support::audio::temp_dir("rec-music").join("a440.wav");
    support::audio::wav(&music, &signal::tone(440.0, 8000.0, 2.0));
    let extra = format!(
        "record = \"{record}\"\nhold_music = \"{}\"",
        music.display()
    );
    held_call_with_events(&extra, &[]).await
}

async fn next_where(hooks: &mut WebhookReceiver, pred: impl Fn(&Value) -> bool) -> Hook {
    within(15, "the webhook or event awaited", async {
        loop {
            let hook = hooks.next().await;
            if pred(&hook.json()) {
                return hook;
            }
        }
    })
    .await
}

/// The next event of type `kind`: its `data` and `timestamp` (Unix ms,
/// on the call's clock).
async fn timed_event(hooks: &mut WebhookReceiver, kind: &str) -> (Value, u64) {
    let hook = next_where(hooks, |b| b["type"] == kind).await;
    let body = hook.json();
    let at = body["timestamp"].as_u64().expect("a timestamp");
    (body["data"].clone(), at)
}

/// The next event of type `kind`, its `data`.
async fn event(hooks: &mut WebhookReceiver, kind: &str) -> Value {
    let hook = next_where(hooks, |b| b["type"] == kind).await;
    hook.json()["data"].clone()
}

/// A WAV file's two channels, checking its header counts every byte.
fn channels(bytes: &[u8]) -> (u32, Vec<i16>, Vec<i16>) {
    assert_eq!(&bytes[..4], b"RIFF");
    assert_eq!(&bytes[8..16], b"WAVEfmt ");
    let rate = u32::from_le_bytes(bytes[24..28].try_into().unwrap());
    assert_eq!(u16::from_le_bytes([bytes[22], bytes[23]]), 2, "stereo");
    assert_eq!(u16::from_le_bytes([bytes[34], bytes[35]]), 16, "16-bit");
    let data = u32::from_le_bytes(bytes[40..44].try_into().unwrap()) as usize;
    assert_eq!(data, bytes.len() - 44, "the header counts the audio");
    let (left, right) = bytes[44..]
        .chunks(4)
        .map(|f| {
            (
                i16::from_le_bytes([f[0], f[1]]),
                i16::from_le_bytes([f[2], f[3]]),
            )
        })
        .unzip();
    (rate, left, right)
}

/// The held caller transferred to a room of its own, bridged.
async fn bridge_to_room(
    call: &HeldCall,
) -> (Room, pinless::sip::Leg, pinless::sip::sdp::PeerMedia) {
    let mut room = Room::new().await;
    let (status, _) = call
        .update(json!({ "sipUri": room.uri("room", false) }))
        .await;
    assert_eq!(status, 200);
    let invite = room.next_invite().await;
    let (leg, media) = room.answer(invite).await;
    call.wait(|c| c["state"] == "bridged").await;
    (room, leg, media)
}

/// The length of a file `channels` reads, in seconds.
#[cfg(feature = "interop")]
fn left_secs(bytes: &[u8]) -> f64 {
    (bytes.len() - 44) as f64 / 4.0 / 8000.0
}

/// What sox says of the file (`sox --i -<flag>`).
#[cfg(feature = "interop")]
fn soxi(path: &std::path::Path, flag: &str) -> String {
    let out = std::process::Command::new("sox")
        .args(["--i", flag])
        .arg(path)
        .output()
        .expect("sox (Debian's sox package) runs");
    assert!(
        out.status.success(),
        "sox: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The share of `x`'s power that is at `hz`, over 100 ms windows: how
/// many windows carry the tone.
fn windows_with(x: &[i16], rate: f64, hz: f64) -> usize {
    x.chunks(rate as usize / 10)
        .filter(|w| {
            let energy: f64 = w.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>() / w.len() as f64;
            energy > 1e5 && power(w, rate, hz) * 2.0 > energy * w.len() as f64 / 4.0
        })
        .count()
}

async fn get_bytes(
    gw: &TestGateway,
    path: &str,
    range: Option<&str>,
) -> (u16, Vec<u8>, reqwest::header::HeaderMap) {
    let mut request = reqwest::Client::new().get(gw.url(path)).bearer_auth(TOKEN);
    if let Some(r) = range {
        request = request.header("range", r);
    }
    let answer = request.send().await.expect("the API answers");
    let status = answer.status().as_u16();
    let headers = answer.headers().clone();
    (
        status,
        answer.bytes().await.expect("a body").to_vec(),
        headers,
    )
}

#[tokio::test]
async fn a_call_recorded_from_the_answer_has_the_caller_left_and_the_music_then_the_room_right() {
    let mut call = held_recorded("answer").await;
    // Positions in the file are read on the call's own clock: the
    // events' timestamps (the machine's), not this test's, which sees
    // each step only once it is told of it.
    let (data, started_at) = timed_event(&mut call.hooks, "call.recording_started").await;
    let recording_id = data["recordingId"].as_str().unwrap().to_string();
    assert_eq!(recording_id, format!("{}-1", call.call_id));
    // The caller says 697 Hz for 3 s; music plays to it meanwhile.
    let speaking = send_payloads(
        &call.phone.rtp,
        call.media.addr,
        0,
        160,
        mulaw_tone(697.0, 3.0),
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    // Then a room takes the call and says 1000 Hz.
    let (room, room_leg, room_media) = bridge_to_room(&call).await;
    let (_, bridged_at) = timed_event(&mut call.hooks, "call.bridged").await;
    let room_says = send_payloads(&room.rtp, room_media.addr, 0, 160, mulaw_tone(1000.0, 1.5));
    room_says.await.unwrap();
    speaking.await.unwrap();
    call.caller.hangup();
    let (_, stopped_at) = timed_event(&mut call.hooks, "call.recording_stopped").await;
    let ready = event(&mut call.hooks, "call.recording_ready").await;
    drop(room_leg);
    assert_eq!(ready["recordingId"], recording_id.as_str());
    assert_eq!(
        (ready["sampleRate"].as_u64(), ready["channels"].as_u64()),
        (Some(8000), Some(2))
    );
    assert_eq!(ready["lostPackets"], 0);
    let location = ready["location"].as_str().unwrap();
    let path = std::path::PathBuf::from(location.strip_prefix("file:").expect("a local file"));

    // The file as served is the file on disk, and its checksum is the
    // event's.
    let url = format!("/v1/calls/{}/recording", call.call_id);
    let (status, bytes, headers) = get_bytes(&call.gw, &url, None).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "audio/wav");
    assert_eq!(bytes, std::fs::read(&path).unwrap());
    assert_eq!(ready["bytes"].as_u64(), Some(bytes.len() as u64));
    let sha: String = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(ready["sha256"], sha.as_str());
    // sox, Debian's, reads it as we wrote it (with the interop feature,
    // which `.ci/run` turns on after installing sox).
    #[cfg(feature = "interop")]
    {
        assert_eq!(soxi(&path, "-c"), "2");
        assert_eq!(soxi(&path, "-r"), "8000");
        let secs: f64 = soxi(&path, "-D").parse().expect("a duration");
        assert!(
            (secs - left_secs(&bytes)).abs() < 0.01,
            "sox reads {secs} s"
        );
    }

    let (rate, left, right) = channels(&bytes);
    assert_eq!(rate, 8000);
    let secs = left.len() as f64 / 8000.0;
    // The time recorded: from the start of capture to its stop.
    let want = (stopped_at - started_at) as f64 / 1000.0;
    assert!(
        (secs - want).abs() < 0.1,
        "{secs:.3} s recorded of {want:.3} s"
    );
    assert_eq!(
        ready["durationMs"].as_u64(),
        Some((left.len() as u64 * 1000) / 8000)
    );
    // Left: the caller's tone, 3 s of it, and nothing of the room's.
    let spoke = windows_with(&left, 8000.0, 697.0);
    assert!(
        (25..=31).contains(&spoke),
        "{spoke} windows of the caller's tone"
    );
    assert_eq!(
        windows_with(&left, 8000.0, 1000.0),
        0,
        "the room is not on the left"
    );
    // Right: the music (440 Hz) until the bridge, the room's 1 kHz after
    // it, where the call's clock puts it (100 ms either side left out:
    // the bridge is logged a moment after the relay starts).
    let bridge = ((bridged_at - started_at) * 8) as usize;
    let before = &right[..(bridge - 800).min(right.len())];
    let music = windows_with(before, 8000.0, 440.0);
    assert!(
        music + 3 >= before.len() / 800,
        "music in {music} of {} windows",
        before.len() / 800
    );
    assert_eq!(
        windows_with(before, 8000.0, 697.0),
        0,
        "the caller is not on the right"
    );
    assert_eq!(
        windows_with(before, 8000.0, 1000.0),
        0,
        "the room not before the bridge"
    );
    let after = &right[(bridge + 800).min(right.len())..];
    let heard_room = windows_with(after, 8000.0, 1000.0);
    assert!(
        (12..=16).contains(&heard_room),
        "{heard_room} windows of the room's tone"
    );
    assert_eq!(
        windows_with(after, 8000.0, 440.0),
        0,
        "no music once bridged"
    );

    // A range of it, as an audio element asks.
    let (status, head, headers) = get_bytes(&call.gw, &url, Some("bytes=0-43")).await;
    assert_eq!(status, 206);
    assert_eq!(head, bytes[..44]);
    assert_eq!(
        headers["content-range"],
        format!("bytes 0-43/{}", bytes.len()).as_str()
    );
    let (status, _, _) = get_bytes(&call.gw, &url, Some(&format!("bytes={}-", bytes.len()))).await;
    assert_eq!(status, 416);

    // Listed, then deleted: gone from the list, the disk and the call.
    let (status, list) = call
        .gw
        .api(reqwest::Method::GET, "/v1/recordings", None)
        .await;
    assert_eq!(status, 200);
    let listed = &list["recordings"][0];
    assert_eq!(listed["recordingId"], recording_id.as_str());
    assert_eq!(listed["state"], "ready");
    assert_eq!(listed["sha256"], sha.as_str());
    let one = format!("/v1/recordings/{recording_id}");
    let (status, _) = call.gw.api(reqwest::Method::DELETE, &one, None).await;
    assert_eq!(status, 200);
    assert!(!path.exists());
    let (status, body) = call.gw.api(reqwest::Method::GET, &one, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("unknown recordingId"))
    );
    let (status, _, _) = get_bytes(&call.gw, &url, None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn the_api_starts_pauses_resumes_and_stops_spans_each_a_file_of_its_own() {
    let mut call = held_recorded("off").await;
    let url = format!("/v1/calls/{}/recording", call.call_id);
    let post = |body: Value| call.gw.api(reqwest::Method::POST, &url, Some(body));
    // Not recording: nothing to stop, pause or serve.
    let (status, body) = post(json!({ "action": "stop" })).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("the call is not being recorded"))
    );
    let (status, _, _) = get_bytes(&call.gw, &url, None).await;
    assert_eq!(status, 404);
    // Bad bodies name the field.
    let (status, body) = post(json!({ "action": "rewind" })).await;
    assert_eq!(status, 400);
    assert!(
        body["error"].as_str().unwrap().starts_with("action: "),
        "{body}"
    );
    let (status, body) = post(json!({ "action": "pause", "pause": "mute" })).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("pause: must be \"silence\" or \"skip\""))
    );
    let (status, _) = call
        .gw
        .api(
            reqwest::Method::POST,
            "/v1/calls/nope/recording",
            Some(json!({ "action": "start" })),
        )
        .await;
    assert_eq!(status, 404);

    let speaking = send_payloads(
        &call.phone.rtp,
        call.media.addr,
        0,
        160,
        mulaw_tone(697.0, 3.2),
    );
    let (status, body) = post(json!({ "action": "start" })).await;
    assert_eq!(status, 200);
    let first = body["recordingId"].as_str().unwrap().to_string();
    assert_eq!(body["state"], "recording");
    tokio::time::sleep(Duration::from_millis(800)).await;
    let (status, body) = post(json!({ "action": "pause", "pause": "skip" })).await;
    assert_eq!((status, body["state"].as_str()), (200, Some("paused")));
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let (status, body) = post(json!({ "action": "resume" })).await;
    assert_eq!((status, body["state"].as_str()), (200, Some("recording")));
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (status, body) = post(json!({ "action": "stop" })).await;
    assert_eq!((status, body["state"].as_str()), (200, Some("stopped")));
    let mut at = Vec::new();
    for kind in [
        "call.recording_started",
        "call.recording_paused",
        "call.recording_resumed",
        "call.recording_stopped",
    ] {
        let (data, timestamp) = timed_event(&mut call.hooks, kind).await;
        assert_eq!(data["recordingId"], first.as_str(), "{kind}");
        at.push(timestamp);
    }
    let ready = event(&mut call.hooks, "call.recording_ready").await;
    assert_eq!(ready["recordingId"], first.as_str());
    // About 0.8 s, a skipped second, 0.6 s: on the call's clock, the
    // time recorded less the pause; the caller's tone in all of it.
    let want = (at[1] - at[0]) + (at[3] - at[2]);
    let ms = ready["durationMs"].as_u64().unwrap();
    assert!(
        ms.abs_diff(want) <= 100,
        "{ms} ms in the file for {want} ms recorded"
    );
    assert!(ms < 2000, "the skipped second is not in the file: {ms} ms");
    let (_, bytes, _) = get_bytes(&call.gw, &url, None).await;
    let (_, left, _) = channels(&bytes);
    let spoke = windows_with(&left, 8000.0, 697.0);
    assert!(
        spoke >= 11,
        "the caller's tone in {spoke} of {} windows",
        left.len() / 800
    );

    // A second span is a recording of its own, and the call's latest.
    let (status, body) = post(json!({ "action": "start" })).await;
    assert_eq!(status, 200);
    let second = body["recordingId"].as_str().unwrap().to_string();
    assert_ne!(second, first);
    assert_eq!(second, format!("{}-2", call.call_id));
    // Being recorded: not deletable.
    let (status, body) = call
        .gw
        .api(
            reqwest::Method::DELETE,
            &format!("/v1/recordings/{second}"),
            None,
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("recording is under way; stop it first"))
    );
    speaking.await.unwrap();
    // The call's end stops it, and the app is told it is ready.
    call.caller.hangup();
    let ready = event(&mut call.hooks, "call.recording_ready").await;
    assert_eq!(ready["recordingId"], second.as_str());
    let (_, bytes, headers) = get_bytes(&call.gw, &url, None).await;
    assert_eq!(headers["x-recording-id"], second.as_str());
    assert_eq!(ready["bytes"].as_u64(), Some(bytes.len() as u64));
}

#[tokio::test]
async fn with_an_announcement_the_caller_hears_it_first_and_it_is_not_in_the_file() {
    let dir = support::audio::temp_dir("rec-consent");
    let (music, notice) = (dir.join("a440.wav"), dir.join("notice.wav"));
    support::audio::wav(&music, &signal::tone(440.0, 8000.0, 2.0));
    support::audio::wav(&notice, &signal::tone(1633.0, 8000.0, 0.6));
    let extra = format!(
        "record = \"answer\"\nhold_music = \"{}\"\nrecord_announcement = \"{}\"",
        music.display(),
        notice.display()
    );
    let mut call = held_call_with_events(&extra, &[]).await;
    // What the caller hears first: the announcement, then the music.
    let heard: Vec<i16> = call
        .phone
        .rtp
        .collect(Duration::from_millis(1000))
        .await
        .iter()
        .flat_map(|p| p.payload.iter().map(|b| pinless::media::Law::Mu.decode(*b)))
        .collect();
    let announced = windows_with(&heard, 8000.0, 1633.0);
    assert!(
        (4..=7).contains(&announced),
        "the announcement in {announced} windows"
    );
    // The answer, on the call's clock (its `call.held` event went by
    // before the webhook).
    let held_at = call.gw.get_call(&call.call_id).await.1["createdAt"]
        .as_u64()
        .expect("createdAt");
    let (data, started_at) = timed_event(&mut call.hooks, "call.recording_started").await;
    assert!(
        started_at - held_at >= 600,
        "capture began {} ms after the answer, before the 600 ms announcement was over",
        started_at - held_at
    );
    let recording_id = data["recordingId"].as_str().unwrap().to_string();
    let speaking = send_payloads(
        &call.phone.rtp,
        call.media.addr,
        0,
        160,
        mulaw_tone(697.0, 1.0),
    );
    speaking.await.unwrap();
    // Bridged: the caller heard the announcement once, so its next
    // recording starts at once, room or not.
    let (_room, room_leg, _) = bridge_to_room(&call).await;
    let url = format!("/v1/calls/{}/recording", call.call_id);
    let post = |body: Value| call.gw.api(reqwest::Method::POST, &url, Some(body));
    let (status, _) = post(json!({ "action": "stop" })).await;
    assert_eq!(status, 200);
    // Heard once already: a new span needs no second announcement.
    let (status, body) = post(json!({ "action": "start" })).await;
    assert_eq!(
        (status, body["state"].as_str()),
        (200, Some("recording")),
        "{body}"
    );
    let ready = event(&mut call.hooks, "call.recording_ready").await;
    assert_eq!(ready["recordingId"], recording_id.as_str());
    drop(room_leg);
    let path = ready["location"]
        .as_str()
        .unwrap()
        .strip_prefix("file:")
        .unwrap()
        .to_string();
    let (_, left, right) = channels(&std::fs::read(path).unwrap());
    assert_eq!(
        windows_with(&right, 8000.0, 1633.0),
        0,
        "the announcement is not recorded"
    );
    assert!(
        windows_with(&right, 8000.0, 440.0) >= 8,
        "the music after it is"
    );
    assert!(windows_with(&left, 8000.0, 697.0) >= 8, "and the caller");
}

#[tokio::test]
async fn with_an_announcement_recording_cannot_start_while_bridged() {
    let dir = support::audio::temp_dir("rec-consent-bridged");
    let notice = dir.join("notice.wav");
    support::audio::wav(&notice, &signal::tone(1633.0, 8000.0, 0.4));
    let extra = format!("record_announcement = \"{}\"", notice.display());
    let call = held_call_with_events(&extra, &[]).await;
    let (room, _room_leg, _) = bridge_to_room(&call).await;
    let url = format!("/v1/calls/{}/recording", call.call_id);
    let (status, body) = call
        .gw
        .api(
            reqwest::Method::POST,
            &url,
            Some(json!({ "action": "start" })),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("only to a caller on hold"),
        "{body}"
    );
    // An update that asks to record a transfer away from a room: refused
    // alike, and the caller stays with the room it has.
    let (status, body) = call
        .update(json!({ "sipUri": room.uri("other", false), "record": true }))
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(call.gw.get_call(&call.call_id).await.1["state"], "bridged");
}

/// A call recorded from its answer at the real binary, which is stopped
/// with `signal` while the caller talks and started again a second later:
/// the call goes on recording into the same file, the downtime silent,
/// the audio after it where the call's clock puts it.
async fn a_recording_survives(signal: &str) {
    let mut hooks = WebhookReceiver::start(&[]).await;
    let entry = format!("record = \"answer\"\nevents_url = \"{}\"", hooks.url());
    let mut gw = support::binary::Binary::new("", &hooks.url(), &entry, "");
    gw.start().await;
    let phone = Phone::new().await;
    let (_caller, media) = phone.call(&format!("sip:support@{}", gw.sip), &[]).await;
    let hook = next_where(&mut hooks, |b| b.get("type").is_none()).await;
    let call_id = hook.json()["callId"].as_str().unwrap().to_string();
    let (_, started_at) = timed_event(&mut hooks, "call.recording_started").await;
    // 1.5 s of the caller's tone, then the stop while it talks on.
    let talking = send_payloads(&phone.rtp, media.addr, 0, 160, mulaw_tone(697.0, 1.5));
    talking.await.unwrap();
    gw.signal(signal);
    gw.exited(5).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    gw.start().await;
    assert!(gw.log().contains("resumed=1"), "{}", gw.log());
    // 1 s of tone to the resumed call, then the caller hangs up.
    let talking = send_payloads(&phone.rtp, media.addr, 0, 160, mulaw_tone(697.0, 1.0));
    talking.await.unwrap();
    let http = reqwest::Client::new();
    let hung = http
        .delete(format!("{}/v1/calls/{call_id}", gw.api))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(hung.status().as_u16(), 200);
    let (_, stopped_at) = timed_event(&mut hooks, "call.recording_stopped").await;
    let ready = event(&mut hooks, "call.recording_ready").await;
    assert_eq!(ready["recordingId"], format!("{call_id}-1").as_str());
    let path = ready["location"]
        .as_str()
        .unwrap()
        .strip_prefix("file:")
        .unwrap()
        .to_string();
    let bytes = std::fs::read(&path).unwrap();
    let sha: String = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(ready["sha256"], sha.as_str());
    let (_, left, _) = channels(&bytes);
    // One file from the first answer to the hang-up, on the call's clock.
    let want = (stopped_at - started_at) as f64 / 1000.0;
    let secs = left.len() as f64 / 8000.0;
    assert!(
        (secs - want).abs() < 0.15,
        "{secs:.2} s in the file for {want:.2} s"
    );
    // 100 ms windows: the tone, then the downtime silent, then the tone
    // again, which ends where the call did.
    let toned: Vec<bool> = left
        .chunks(800)
        .map(|w| windows_with(w, 8000.0, 697.0) == 1)
        .collect();
    let first = toned
        .iter()
        .position(|t| *t)
        .expect("the tone before the stop");
    let gap_start = first + toned[first..].iter().position(|t| !*t).expect("a gap");
    let gap = toned[gap_start..].iter().take_while(|t| !**t).count();
    let again = toned[gap_start + gap..].iter().filter(|t| **t).count();
    // Before a `kill -9`, the chunk under way (up to a second) is lost.
    let before = gap_start - first;
    let least = if signal == "KILL" { 3 } else { 12 };
    assert!(before >= least, "{before} windows of tone before the stop");
    assert!(gap >= 9, "the downtime silent: {gap} windows");
    assert!(
        (8..=11).contains(&again),
        "{again} windows of tone after the restart"
    );
    let tail = toned.len() - (gap_start + gap + again);
    assert!(
        tail <= 3,
        "the tone after the restart ends with the call: {tail} windows after it"
    );
}

#[tokio::test]
async fn a_recording_goes_on_in_the_same_file_after_sigterm_in_resume_mode() {
    a_recording_survives("TERM").await;
}

#[tokio::test]
async fn a_recording_goes_on_in_the_same_file_after_kill_9() {
    a_recording_survives("KILL").await;
}
