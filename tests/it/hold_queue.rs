//! The hold queue over real SIP, RTP and HTTP on loopback: callers'
//! positions in arrival order (`GET /v1/calls/{id}`, `GET /v1/queues`),
//! moving up when the first is bridged, and position announcements heard
//! in the hold stream, the music resuming where it stopped.

use crate::support;

use pinless::media::HoldLoop;
use serde_json::{Value, json};
use std::time::Duration;
use support::audio::{assert_one_stream, chirp, constant_prompts, law, music_frame, temp_dir};
use support::peers::Packet;
use support::*;

async fn dial(gw: &TestGateway, hooks: &mut WebhookReceiver) -> (Phone, pinless::sip::Leg, String) {
    let phone = Phone::new().await;
    let (leg, _) = phone.call(&gw.sip_uri("support", false), &[]).await;
    let hook = hooks.next().await;
    let id = hook.json()["callId"].as_str().unwrap().to_string();
    (phone, leg, id)
}

async fn position(gw: &TestGateway, id: &str) -> Value {
    gw.get_call(id).await.1["position"].clone()
}

#[tokio::test]
async fn three_callers_wait_in_arrival_order_and_move_up_when_the_first_is_bridged() {
    let mut hooks = WebhookReceiver::start(&[]).await;
    let gw = TestGateway::start(&hooks.url(), "").await;
    let (_p1, _l1, first) = dial(&gw, &mut hooks).await;
    let (_p2, _l2, second) = dial(&gw, &mut hooks).await;
    let (_p3, _l3, third) = dial(&gw, &mut hooks).await;
    for (id, expected) in [(&first, 1), (&second, 2), (&third, 3)] {
        assert_eq!(position(&gw, id).await, json!(expected), "{id}");
    }
    let (status, body) = gw.api(reqwest::Method::GET, "/v1/queues", None).await;
    assert_eq!(status, 200, "{body}");
    let queue = &body["queues"][0];
    assert_eq!(queue["entry"], "support");
    assert_eq!(queue["held"], 3);
    assert_eq!(queue["averageWaitMs"], Value::Null, "nothing bridged yet");
    let calls = queue["calls"].as_array().unwrap();
    let order: Vec<(&str, u64)> = calls
        .iter()
        .map(|c| {
            (
                c["callId"].as_str().unwrap(),
                c["position"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        order,
        [
            (first.as_str(), 1),
            (second.as_str(), 2),
            (third.as_str(), 3)
        ]
    );
    let waited = |i: usize| calls[i]["waitedMs"].as_u64().unwrap();
    assert!(waited(0) >= waited(1) && waited(1) >= waited(2), "{queue}");
    assert_eq!(queue["oldestWaitMs"].as_u64(), Some(waited(0)));

    // The first is bridged: the others move up.
    let mut room = Room::new().await;
    let (status, _) = gw
        .update(gw.update_body(&first, json!({ "sipUri": room.uri("r", false) })))
        .await;
    assert_eq!(status, 200);
    let invite = room.next_invite().await;
    let (_room_leg, _) = room.answer(invite).await;
    let bridged = gw
        .wait_call(&first, Duration::from_secs(5), |c| c["state"] == "bridged")
        .await;
    assert_eq!(bridged.get("position"), None, "no position once bridged");
    assert_eq!(position(&gw, &second).await, json!(1));
    assert_eq!(position(&gw, &third).await, json!(2));
    let (_, body) = gw.api(reqwest::Method::GET, "/v1/queues", None).await;
    let queue = &body["queues"][0];
    assert_eq!(queue["held"], 2);
    assert!(queue["averageWaitMs"].as_u64().is_some(), "{queue}");
    let (_, listed) = gw.api(reqwest::Method::GET, "/v1/calls", None).await;
    let third_listed = listed["calls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["callId"] == third.as_str())
        .cloned()
        .unwrap();
    assert_eq!(third_listed["position"], 2);
}

/// Packets until `done` holds on them, 6 s at most.
async fn listen(peer: &RtpPeer, done: impl Fn(&[Packet]) -> bool) -> Vec<Packet> {
    within(6, "the expected audio", async {
        let mut all = Vec::new();
        loop {
            all.extend(peer.collect(Duration::from_millis(40)).await);
            if done(&all) {
                return all;
            }
        }
    })
    .await
}

#[tokio::test]
async fn the_position_is_announced_in_the_hold_stream_and_the_music_resumes_where_it_stopped() {
    let dir = temp_dir("prompts");
    constant_prompts(&dir);
    let music_path = dir.join("music.wav");
    chirp(&music_path);
    let extra = format!(
        "announce_position_every_secs = 1\nprompts_dir = \"{}\"\nhold_music = \"{}\"",
        dir.display(),
        music_path.display()
    );
    let call = held_call(&extra, &[]).await;
    let prompt_clip = HoldLoop::load(&dir.join("n1.wav")).unwrap();
    let music = HoldLoop::load(&music_path).unwrap();
    let is_prompt = |p: &Packet| p.payload == prompt_clip.frame(law(p), 0);
    // The first announcement: where it starts, and where it ends.
    let span = |all: &[Packet]| {
        let first = all.iter().position(is_prompt)?;
        let run = all[first..].iter().take_while(|p| is_prompt(p)).count();
        Some((first, first + run - 1))
    };
    // Until it is over and 10 music packets follow.
    let heard = listen(&call.phone.rtp, |all| {
        span(all).is_some_and(|(_, last)| all.len() > last + 10)
    })
    .await;
    let (first, last) = span(&heard).unwrap();
    assert!(first > 0, "music before the announcement");
    // "You are caller number" "one" "Thank you for waiting": three clips,
    // back to back, with no estimate (nothing bridged yet).
    assert_eq!(
        last - first + 1,
        3 * prompt_clip.frames() as usize,
        "the announcement is three clips long"
    );
    // One stream throughout: same SSRC, sequence and timestamp running on.
    assert_one_stream(&heard[..last + 10]);
    // The music goes on from the frame after the last one heard before.
    let index_of = |p: &Packet| {
        music_frame(&music, p).unwrap_or_else(|| panic!("packet {} is music", p.header.sequence))
    };
    let before = index_of(&heard[first - 1]);
    let after = index_of(&heard[last + 1]);
    assert!(
        before >= 40,
        "about a second of music first, got frame {before}"
    );
    assert_eq!(
        after,
        (before + 1) % music.frames(),
        "music resumes where it stopped"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_prompts_dir_missing_a_file_is_refused_at_start_naming_it() {
    let dir = temp_dir("prompts-missing");
    constant_prompts(&dir);
    std::fs::remove_file(dir.join("n7.wav")).unwrap();
    let toml = format!(
        r#"
[node]
state_dir = "{state}"
[sip]
udp = "127.0.0.1:0"
tcp = ""
[api]
listen = "127.0.0.1:0"
[[dialin]]
name_prefix = "support"
sip_uri = "sip:support@127.0.0.1"
room_creation_api = "http://127.0.0.1:9/dialin"
hmac = "{SECRET}"
open = true
prompts_dir = "{dir}"
"#,
        state = dir.join("state").display(),
        dir = dir.display(),
    );
    let config = pinless::Config::from_toml_with_env(&toml, std::iter::empty(), false).unwrap();
    let err = match pinless::Gateway::start(config).await {
        Ok(_) => panic!("a gateway started without n7.wav"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("dialin[0].prompts_dir"), "{err}");
    assert!(err.contains("n7.wav"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_provisioned_entry_whose_prompts_dir_lacks_a_file_is_refused_naming_it() {
    let hooks = WebhookReceiver::start(&[]).await;
    let dir = temp_dir("prompts-api");
    constant_prompts(&dir);
    std::fs::remove_file(dir.join("minutes.wav")).unwrap();
    // The API names files only inside media_dir: the set is the directory.
    let media_dir = dir.display().to_string();
    let env = [("PINLESS_API__MEDIA_DIR", media_dir.as_str())];
    let gw = TestGateway::start_with_env(&hooks.url(), "", &env).await;
    let config = json!({
        "phone_number": "+15550008888",
        "room_creation_api": hooks.url(),
        "open": true,
        "announce_position_every_secs": 30,
        "prompts_dir": dir.display().to_string(),
    });
    let (status, body) = gw
        .api(
            reqwest::Method::POST,
            "/v1/domain-dialin-config",
            Some(json!({ "type": "pinless_dialin", "config": config })),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let error = body["error"].as_str().unwrap();
    assert!(
        error.contains("prompts_dir") && error.contains("minutes.wav"),
        "{error}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
