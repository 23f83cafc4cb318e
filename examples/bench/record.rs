//! `hold --record`, `relay --record`: what call recording costs. The same
//! gateway is measured twice in one run, on the same load: its entry with
//! `record = "off"`, then with `record = "answer"` (every call recorded
//! from its answer: music, or both ways of a bridge, into the run's
//! state directory). One table, side by side: CPU per packet (the
//! writer thread's work included: it is the gateway's process), packets
//! lost, and the p99 of the packets' interval deviation.

use crate::receiver::Receiver;
use crate::relay::{Relay, pinless_run_entry};
use crate::{Args, Run, free_port, hold_run, row, sink, start_pinless_with};
use std::path::Path;

/// The entry keys of the two runs.
const RUNS: [(&str, &str); 2] = [
    ("plain", "record = \"off\""),
    ("recorded", "record = \"answer\""),
];

pub fn hold(args: &Args, dir: &Path) -> Result<(), String> {
    let rx = Receiver::start().map_err(|e| e.to_string())?;
    let (hook, _arrivals) = sink::start().map_err(|e| e.to_string())?;
    let mut runs: Vec<Run> = Vec::new();
    for (name, entry) in RUNS {
        let sip = free_port();
        let (server, _) =
            start_pinless_with(dir, sip, args.calls, hook, &args.shards, ["", "", entry])?;
        runs.push(hold_run(name, server, sip, &rx, args, dir)?);
    }
    let [plain, recorded] = &runs[..] else {
        return Err("a run is missing".into());
    };
    println!(
        "\nhold --record: {} held calls for {} s, each run; server pinned to cores {}\n",
        args.calls, args.secs, args.shards.cores
    );
    println!("| metric | recorded | plain | ratio |");
    println!("|---|---|---|---|");
    let per_packet =
        |r: &Run| r.cpu_pct / 100.0 * args.secs as f64 * 1e6 / r.stats.packets.max(1) as f64;
    row(
        "CPU per packet sent",
        per_packet(recorded),
        per_packet(plain),
        "µs",
    );
    row("CPU", recorded.cpu_pct, plain.cpu_pct, "% core");
    row(
        "memory per held call",
        recorded.rss_per_call_kib,
        plain.rss_per_call_kib,
        "KiB",
    );
    row(
        "packets lost (sequence gaps)",
        recorded.stats.lost as f64,
        plain.stats.lost as f64,
        "",
    );
    row(
        "interval deviation p99",
        recorded.stats.deviation.quantile(0.99) / 1000.0,
        plain.stats.deviation.quantile(0.99) / 1000.0,
        "ms",
    );
    Ok(())
}

pub fn relay(args: &Args, dir: &Path) -> Result<(), String> {
    let (a, b) = (crate::relay::receiver()?, crate::relay::receiver()?);
    let mut runs: Vec<Relay> = Vec::new();
    for (_, entry) in RUNS {
        runs.push(pinless_run_entry(args, dir, &a, &b, entry)?);
        a.reset();
        b.reset();
    }
    let [plain, recorded] = &runs[..] else {
        return Err("a run is missing".into());
    };
    println!(
        "\nrelay --record: {} bridged calls, audio both ways ({} streams at 50 packets/s) \
         for {} s, each run; server pinned to cores {}\n",
        args.calls,
        args.calls * 2,
        args.secs,
        args.shards.cores
    );
    println!("| metric | recorded | plain | ratio |");
    println!("|---|---|---|---|");
    let per_packet =
        |r: &Relay| r.cpu_pct / 100.0 * args.secs as f64 * 1e6 / r.packets().max(1) as f64;
    row(
        "CPU per packet relayed",
        per_packet(recorded),
        per_packet(plain),
        "µs",
    );
    row("CPU", recorded.cpu_pct, plain.cpu_pct, "% core");
    row(
        "packets lost (sequence gaps)",
        (recorded.a.lost + recorded.b.lost) as f64,
        (plain.a.lost + plain.b.lost) as f64,
        "",
    );
    let p99 = |r: &Relay| {
        let a = r.a.deviation.quantile(0.99);
        let b = r.b.deviation.quantile(0.99);
        a.max(b) / 1000.0
    };
    row("interval deviation p99", p99(recorded), p99(plain), "ms");
    Ok(())
}
