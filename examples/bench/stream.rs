//! `stream` mode: `--calls` calls held by sipp, each transferred with
//! `streamUrl` to the bench's WebSocket echo bot (bot.rs), side by side
//! with `relay` (the same calls bridged to SIP rooms) on the same N in the
//! same run. The load sends each caller's audio (50 packets/s); in
//! `relay` the rooms send theirs too, in `stream` the bot sends the
//! caller's back in 100 ms chunks, which pinless paces out as 20 ms RTP.
//! What the callers receive is measured the same way in both.

use crate::bot::EchoBot;
use crate::relay::{self, Relay};
use crate::{Args, row};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

pub fn run(args: &Args, dir: &Path) -> Result<(), String> {
    let (a, b) = (relay::receiver()?, relay::receiver()?);
    let r = relay::pinless_run(args, dir, &a, &b)?;
    a.reset();
    b.reset();
    let s = relay::pinless_run_with(args, dir, &a, &b, ("stream", ""), |runtime, calls, api| {
        let bot = runtime.block_on(to_bots(calls, api))?;
        Ok((Vec::new(), Box::new(bot)))
    })?;
    table(args, &s, &r);
    Ok(())
}

/// Sends every call to the bot and waits until each stream has started.
async fn to_bots(calls: &[(String, String)], api: SocketAddr) -> Result<EchoBot, String> {
    let bot = EchoBot::start().await.map_err(|e| e.to_string())?;
    let http = reqwest::Client::new();
    let url = format!("http://{api}/v1/dialin/pinlessCallUpdate");
    for (i, (call_id, domain)) in calls.iter().enumerate() {
        let body = serde_json::json!({
            "callId": call_id,
            "callDomain": domain,
            "streamUrl": format!("ws://{}/call/{i}", bot.addr),
        });
        let answer = http
            .post(&url)
            .bearer_auth("bench")
            .json(&body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !answer.status().is_success() {
            let status = answer.status();
            let text = answer.text().await.unwrap_or_default();
            return Err(format!("update of call {i}: {status} {text}"));
        }
    }
    let by = Instant::now() + Duration::from_secs(15);
    while bot.started() < calls.len() {
        if Instant::now() > by {
            return Err(format!(
                "{} of {} streams started ({} failed at the bot)",
                bot.started(),
                calls.len(),
                bot.failed()
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(bot)
}

fn table(args: &Args, s: &Relay, r: &Relay) {
    println!(
        "\nstream: {} calls, each caller's audio (50 packets/s) to a WebSocket echo bot \
         answering in 100 ms chunks, against relay: the same calls bridged to SIP rooms \
         (50 packets/s each way); {} s, pinless pinned to cores {}\n",
        args.calls, args.secs, args.shards.cores
    );
    println!("| metric | stream (bot) | relay (room) | ratio |");
    println!("|---|---|---|---|");
    let per_call = |x: &Relay| x.cpu_pct / x.calls.max(1) as f64;
    row("CPU per call", per_call(s), per_call(r), "% core");
    row("CPU", s.cpu_pct, r.cpu_pct, "% core");
    row(
        "packets to callers",
        s.a.packets as f64,
        r.a.packets as f64,
        "",
    );
    let share = |x: &Relay| x.a.watched as f64 / x.a.packets.max(1) as f64 * 100.0;
    row(
        "of which the far end's audio (not silence)",
        share(s),
        share(r),
        "%",
    );
    let expected = args.calls as f64 * 50.0 * args.secs as f64;
    row(
        "packets on time (received / 50 per s per call)",
        s.a.packets as f64 / expected * 100.0,
        r.a.packets as f64 / expected * 100.0,
        "%",
    );
    row(
        "packets lost to callers (sequence gaps)",
        s.a.lost as f64,
        r.a.lost as f64,
        "",
    );
    for (label, q) in [("p50", 0.5), ("p99", 0.99), ("p99.9", 0.999)] {
        row(
            &format!("interval deviation {label}, to callers"),
            s.a.deviation.quantile(q) / 1000.0,
            r.a.deviation.quantile(q) / 1000.0,
            "ms",
        );
    }
    row(
        "RFC 3550 jitter p99, to callers",
        s.a.jitter.quantile(0.99) / 1000.0,
        r.a.jitter.quantile(0.99) / 1000.0,
        "ms",
    );
    println!(
        "\nThe bot runs in the bench process, not in pinless's: its CPU is not counted. \
         Streams seen by the callers' receiver: {} / {}.",
        s.a.streams, r.a.streams
    );
}
