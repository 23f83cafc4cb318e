//! `cps` mode: sipp on its own core places `--rate` calls a second for `--secs`
//! seconds, each held one second (music to our receiver) then hung up;
//! every call makes pinless post one signed webhook to our sink. Figures:
//! calls answered and failed (sipp's own count), the rate webhooks arrived
//! at, pinless's CPU per call, and webhook latency from pinless signing it
//! (`X-Pinless-Timestamp`) to the app holding it. Past what the node
//! takes (`--rate 3000` on one core), the calls it refused with 503 are
//! counted by the gateway's own metrics, by reason, beside sipp's failures.

use crate::receiver::Receiver;
use crate::{Args, CallerLoad, free_port, proc, quantile, sink, sipp_callers, start_pinless};
use std::path::Path;
use std::time::{Duration, Instant, UNIX_EPOCH};

/// How long each call stays up.
const HOLD: Duration = Duration::from_secs(1);

pub fn run(args: &Args, dir: &Path) -> Result<(), String> {
    let rx = Receiver::start().map_err(|e| e.to_string())?;
    let (hook, arrivals) = sink::start().map_err(|e| e.to_string())?;
    let sip = free_port();
    let concurrent = args.rate * 3;
    let (mut server, api) = start_pinless(dir, sip, concurrent, hook, &args.shards)?;
    let pid = server.id();
    std::thread::sleep(Duration::from_millis(800));

    let total = u64::from(args.rate) * args.secs;
    let stats = dir.join("cps-stats.csv");
    let load = CallerLoad {
        rate: args.rate,
        total,
        concurrent,
        timeout_secs: args.secs + 60,
    };
    let trace: Vec<String> = [
        "-trace_stat",
        "-stf",
        &stats.display().to_string(),
        "-fd",
        "1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let cpu0 = proc::cpu_secs(pid).ok_or("server process gone")?;
    let started = Instant::now();
    let mut caller = sipp_callers(sip, rx.addr.port(), HOLD, &load, &trace, dir, "cps")?;
    let status = caller.wait().map_err(|e| e.to_string())?;
    let elapsed = started.elapsed();
    let cpu1 = proc::cpu_secs(pid).ok_or("server process gone")?;
    std::thread::sleep(Duration::from_millis(500));
    let refused = refusals(api);
    let _ = server.kill();
    let _ = server.wait();

    let (ok, failed) = sipp_counts(&stats)?;
    let mut latency = Vec::new();
    let (mut first, mut last) = (None, None);
    let mut webhooks = 0u64;
    for a in arrivals.try_iter() {
        webhooks += 1;
        first = first.or(Some(a.at));
        last = Some(a.at);
        let signed = a.headers.lines().find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("x-pinless-timestamp")
                .then(|| value.trim().parse::<u64>().ok())?
        });
        let at_ms =
            a.at.duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs_f64() * 1000.0);
        if let (Some(signed), Ok(at)) = (signed, at_ms) {
            latency.push(at - signed as f64);
        }
    }
    latency.sort_by(f64::total_cmp);
    let span = match (first, last) {
        (Some(f), Some(l)) => l.duration_since(f).unwrap_or_default().as_secs_f64(),
        _ => 0.0,
    };
    println!(
        "\ncps: {} calls offered at {}/s for {} s, each held {} s; pinless pinned to cores {}, sipp on core {}\n",
        total,
        args.rate,
        args.secs,
        HOLD.as_secs(),
        args.shards.cores,
        crate::driver_core()
    );
    println!("| metric | value | target |");
    println!("|---|---|---|");
    println!("| calls answered (sipp: successful) | {ok} of {total} | all |");
    println!("| calls failed (sipp) | {failed} | 0 |");
    for (reason, count) in &refused {
        println!("| INVITEs refused with 503: {reason} (the gateway's count) | {count} | - |");
    }
    println!("| sipp exit status | {} | 0 |", status.code().unwrap_or(-1));
    println!("| webhooks received | {webhooks} | one per call |");
    // Only an answered call posts its webhook: more webhooks than calls
    // sipp saw through are calls answered that then failed.
    println!(
        "| calls answered that then failed (webhooks less sipp's successes) | {} | 0 |",
        webhooks.saturating_sub(ok)
    );
    let rate = if span > 0.0 {
        (webhooks.saturating_sub(1)) as f64 / span
    } else {
        0.0
    };
    println!("| achieved rate (webhooks / s) | {rate:.0} | ≥ 1,000 |");
    let cpu_ms = (cpu1 - cpu0) * 1000.0 / total as f64;
    println!(
        "| pinless CPU per call offered (set-up, 1 s of music, BYE, record; a refusal is cheaper) | {cpu_ms:.3} ms | - |"
    );
    for (label, q) in [("p50", 0.5), ("p99", 0.99)] {
        println!(
            "| webhook latency {label} (signed → received) | {:.1} ms | - |",
            quantile(&latency, q)
        );
    }
    println!(
        "| webhook latency max | {:.1} ms | - |",
        latency.last().copied().unwrap_or(f64::NAN)
    );
    println!("\nrun took {:.1} s", elapsed.as_secs_f64());
    Ok(())
}

/// Successful and failed calls from the last line of sipp's statistics file.
fn sipp_counts(path: &Path) -> Result<(u64, u64), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("sipp statistics: {e}"))?;
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = lines
        .next()
        .ok_or("sipp statistics empty")?
        .split(';')
        .collect();
    let last: Vec<&str> = lines
        .next_back()
        .ok_or("sipp statistics have no row")?
        .split(';')
        .collect();
    let field = |name: &str| -> Result<u64, String> {
        let i = header
            .iter()
            .position(|h| *h == name)
            .ok_or(format!("sipp statistics lack {name}"))?;
        last.get(i)
            .and_then(|v| v.trim().parse().ok())
            .ok_or(format!("sipp statistics: bad {name}"))
    };
    Ok((field("SuccessfulCall(C)")?, field("FailedCall(C)")?))
}

/// The gateway's counts of INVITEs refused with 503, by reason, from its
/// `/metrics` (empty when it cannot be read: the rows are then left out).
fn refusals(api: std::net::SocketAddr) -> Vec<(&'static str, u64)> {
    const REASONS: [(&str, &str); 2] = [
        (
            "pinless_invites_pacer_overloaded_total",
            "media shards overloaded",
        ),
        ("pinless_invites_at_capacity_total", "at max_calls"),
    ];
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return Vec::new();
    };
    let text = rt.block_on(async {
        let url = format!("http://{api}/metrics");
        reqwest::get(&url).await.ok()?.text().await.ok()
    });
    let Some(text) = text else {
        return Vec::new();
    };
    REASONS
        .iter()
        .filter_map(|(metric, reason)| {
            let line = text
                .lines()
                .find(|l| l.starts_with(&format!("{metric} ")))?;
            let count = line.split_whitespace().nth(1)?.parse().ok()?;
            Some((*reason, count))
        })
        .collect()
}
