//! `pinless probe`: the binary places real calls on loopback and reports
//! what it heard — against pinless (music), against a room that refuses,
//! through pinless's API to a room, and (interop) against sipp's echo.

use crate::support;

use serde_json::Value;
use std::time::Duration;
use support::*;

/// Runs `pinless probe` with `args`; its exit code and JSON report.
async fn probe(args: &[&str]) -> (i32, Value) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_pinless"))
        .arg("probe")
        .args(args)
        .args(["--json", "--bind", "127.0.0.1"])
        .kill_on_drop(true)
        .output();
    let out = within(40, "the probe to finish", out)
        .await
        .expect("probe runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let report = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "report is JSON ({e}): {text}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), report)
}

#[tokio::test]
async fn against_pinless_it_hears_the_hold_music_and_exits_0() {
    let hooks = WebhookReceiver::start(&[]).await;
    let gw = TestGateway::start(&hooks.url(), "").await;
    let (code, r) = probe(&[
        &gw.sip_uri("support", false),
        "--duration",
        "2",
        "--dtmf",
        "7#",
    ])
    .await;
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(r["dtmfSent"], "7#");
    // pinless heard the keys: one call.dtmf per press, in the call's
    // record (written just after the probe's BYE).
    let from = r["from"].as_str().unwrap().to_string();
    let mut record = None;
    for _ in 0..50 {
        let (_, records) = gw.api(reqwest::Method::GET, "/v1/call-records", None).await;
        record = records["records"]
            .as_array()
            .and_then(|all| all.iter().find(|c| c["from"] == from.as_str()).cloned());
        if record.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let record = record.expect("the probe's call is recorded");
    let presses = details(&record, "call.dtmf");
    let keys: Vec<&str> = presses
        .iter()
        .map(|d| d["digit"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(keys, ["7", "#"], "{record:#}");
    assert_eq!(r["result"], "answered");
    assert_eq!(r["codec"], "PCMU/8000");
    let heard = &r["heard"];
    assert!(heard["packets"].as_u64().unwrap() >= 80, "{r:#}");
    assert_eq!(heard["lost"], 0, "{r:#}");
    assert_eq!(heard["silent"], false, "music is not silence: {r:#}");
    assert_eq!(heard["ssrcs"], 1);
    assert!(r["quality"]["mos"].as_f64().unwrap() > 4.0, "{r:#}");
    // Over TCP too.
    let (code, r) = probe(&[&gw.sip_uri("support", true), "--duration", "1"]).await;
    assert_eq!(code, 0, "{r:#}");
}

#[tokio::test]
async fn a_refusal_exits_non_zero_with_its_code() {
    let mut room = Room::new().await;
    let target = room.uri("busy", false);
    let refusing = tokio::spawn(async move {
        room.next_invite().await.reject(486, None, &[]).await;
        room
    });
    let (code, r) = probe(&[&target, "--duration", "1"]).await;
    refusing.await.unwrap();
    assert_eq!(code, 1, "{r:#}");
    assert_eq!(r["result"], "rejected");
    assert_eq!(r["code"], 486);
    assert!(r["heard"].is_null());
}

#[tokio::test]
async fn update_to_checks_the_whole_path_through_the_api() {
    let hooks = WebhookReceiver::start(&[]).await;
    let gw = TestGateway::start(&hooks.url(), "").await;
    let mut room = Room::new().await;
    let room_uri = room.uri("agent", false);
    let answering = tokio::spawn(async move {
        let invite = room.next_invite().await;
        let (leg, offer) = room.answer(invite).await;
        let sending = room.rtp.send_pattern(offer.addr, 0, 0x2A, 250);
        (room, leg, sending)
    });
    let api = gw.url("");
    let (code, r) = probe(&[
        &gw.sip_uri("support", false),
        "--duration",
        "4",
        "--update-to",
        &room_uri,
        "--api",
        &api,
        "--token",
        TOKEN,
    ])
    .await;
    let _room = answering.await.unwrap();
    assert_eq!(code, 0, "{r:#}");
    let update = &r["update"];
    assert_eq!(update["status"], 200, "{r:#}");
    assert_eq!(update["bridged"], true, "{r:#}");
    // Music, then the room, on one stream: pinless keeps the caller's
    // SSRC across the switch.
    assert_eq!(r["heard"]["ssrcs"], 1, "{r:#}");
    // A wrong token: the probe says the update failed (exit 2).
    let (code, r) = probe(&[
        &gw.sip_uri("support", false),
        "--duration",
        "2",
        "--update-to",
        "sip:nobody@127.0.0.1:9",
        "--api",
        &api,
        "--token",
        "wrong",
    ])
    .await;
    assert_eq!(code, 2, "{r:#}");
    assert_eq!(r["update"]["status"], 401, "{r:#}");
}

#[cfg(feature = "interop")]
#[tokio::test]
async fn against_sipp_s_echo_it_hears_its_own_tone_without_loss() {
    use support::sipp::*;
    let port = free_udp_port().to_string();
    let media = free_udp_port().to_string();
    let echo = sipp(&[
        "-sn",
        "uas",
        "-rtp_echo",
        "-i",
        "127.0.0.1",
        "-p",
        &port,
        "-mp",
        &media,
        "-m",
        "1",
        "-timeout",
        "30",
    ]);
    // sipp needs a moment to listen.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let target = format!("sip:echo@127.0.0.1:{port}");
    let (code, r) = probe(&[&target, "--duration", "3"]).await;
    assert_eq!(code, 0, "{r:#}");
    let heard = &r["heard"];
    assert!(heard["packets"].as_u64().unwrap() >= 120, "{r:#}");
    assert_eq!(heard["lost"], 0, "{r:#}");
    assert_eq!(heard["silent"], false, "its own tone came back: {r:#}");
    assert!(
        finished(echo, "sipp echo", 15).await,
        "sipp saw a clean call"
    );
}
