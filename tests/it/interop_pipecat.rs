//! Interop: a caller transferred with `streamUrl` to a bot built on
//! pipecat (examples/pipecat_bot: pipecat's own `TwilioFrameSerializer`
//! and `FastAPIWebsocketTransport`, a pipeline echoing the caller's audio
//! back), over real SIP, RTP and WebSocket on loopback. Run with `cargo
//! test --features interop` and `PIPECAT_PYTHON` naming the venv
//! that `.ci/run` makes; fails, never skips, when it is missing.

use crate::support;

use serde_json::json;
use std::time::Duration;
use support::audio::{assert_one_stream, law};
use support::peers::Packet;
use support::pipecat::PipecatBot;
use support::tone::{ToneSender, carries};
use support::*;

/// The caller's first tone, and the one it switches to while the bot
/// echoes: hearing the second proves the audio is the caller's own, live.
const FIRST: u32 = 700;
const SECOND: u32 = 1300;

/// Waits (`secs` at most) until the caller hears a frame of `freq` Hz.
async fn hears_tone(peer: &RtpPeer, freq: u32, secs: u64) -> Packet {
    within(secs, &format!("the caller to hear {freq} Hz"), async {
        loop {
            for p in peer.collect(Duration::from_millis(40)).await {
                if carries(law(&p), &p.payload, freq) {
                    return p;
                }
            }
        }
    })
    .await
}

#[tokio::test]
async fn a_pipecat_bot_hears_the_caller_and_the_caller_hears_its_own_tone_back() {
    // The bot first: Python and pipecat take a second or two to load.
    let mut bot = PipecatBot::start().await;
    let call = held_call("", &[("X-Customer", "42")]).await;
    let tone = ToneSender::start(call.phone.rtp.socket.clone(), call.media.addr, FIRST);

    // On hold the caller hears music, not its own voice.
    let held = call.phone.rtp.collect(Duration::from_millis(500)).await;
    assert!(held.len() >= 15, "{} packets of music", held.len());
    assert!(
        held.iter().all(|p| !carries(law(p), &p.payload, FIRST)),
        "the caller's tone came back while on hold"
    );

    let (status, body) = call
        .update(json!({
            "streamUrl": bot.url,
            "streamParameters": { "greeting": "hello" }
        }))
        .await;
    assert_eq!(status, 200, "{body}");

    // pipecat's parser took pinless's `start` for Twilio's, and the
    // custom parameters carry the caller's X- header and ours.
    let start = bot.logged(&format!("call {} from", call.call_id), 10).await;
    assert!(
        start.contains("X-Customer") && start.contains("42") && start.contains("greeting"),
        "customParameters as pipecat saw them: {start}"
    );

    // The caller hears its tone, then the new one once it switches.
    hears_tone(&call.phone.rtp, FIRST, 10).await;
    tone.set(SECOND);
    hears_tone(&call.phone.rtp, SECOND, 3).await;
    // Steady echo: nearly every frame is the caller's tone (pipecat
    // sends 40 ms chunks in real time; pinless paces them as 20 ms RTP),
    // on the caller's one unbroken stream.
    let echoed = call.phone.rtp.collect(Duration::from_secs(1)).await;
    let toned = echoed
        .iter()
        .filter(|p| carries(law(p), &p.payload, SECOND))
        .count();
    assert!(echoed.len() >= 45, "{} packets in 1 s", echoed.len());
    assert!(
        toned * 10 >= echoed.len() * 9,
        "{toned} of {} frames carried the caller's tone",
        echoed.len()
    );
    assert_one_stream(&echoed);

    // The caller hangs up: pinless sends `stop` and closes, and the bot's
    // transport sees the stream end.
    drop(tone);
    call.caller.hangup();
    bot.logged("pinless closed the stream", 5).await;
}
