//! `scaling` mode: the same load per shard at 1, 2, 4, … media shards
//! (`[media] threads`), each shard count pinned to as many cores (0, 0-1,
//! 0-3, …), sipp and the RTP load on the machine's last core. For each:
//! held calls (music) and bridged calls (relay, both ways), `--calls` per
//! shard. Shard counts stop where no core is left for the load, except
//! that 1 and 2 always run (on a 2-core machine the load then shares core
//! 1 with the second shard: the table says so).
//!
//! A row meets the quality targets when (held) at least 99.9 % of packets
//! arrive on time, none is lost, the interval deviation p99 is ≤ 2 ms and
//! p99.9 ≤ 5 ms; (bridged) at most 0.01 % of packets are lost and the
//! deviation p99 is ≤ 2 ms both ways. Efficiency against linear is the
//! CPU per packet at one shard over that at N (1.00: N shards carry N
//! times the load for N times the CPU).

use crate::receiver::{Receiver, Stats};
use crate::relay::{self, Relay};
use crate::{Args, Run, Shards, driver_core, hold_run, machine_cores, sink, start_pinless};
use std::path::Path;

/// One shard count's two measures.
struct Row {
    shards: u16,
    hold: Run,
    relay: Relay,
}

pub fn run(args: &Args, dir: &Path) -> Result<(), String> {
    let cores = machine_cores();
    let mut counts = vec![1u16, 2];
    let mut k = 4u16;
    while u32::from(k) < cores {
        counts.push(k);
        k *= 2;
    }
    let per_shard = args.calls;
    let total = per_shard * u32::from(*counts.last().unwrap_or(&1));
    if u64::from(total) > crate::MAX_CALLS / 2 {
        return Err(format!(
            "--calls {per_shard} per shard × {} shards: more bridged calls than the bench's RTP range holds",
            counts.last().unwrap_or(&1)
        ));
    }
    let rx = Receiver::start().map_err(|e| e.to_string())?;
    let (a, b) = (relay::receiver()?, relay::receiver()?);
    let mut rows = Vec::new();
    for &n in &counts {
        let at = Args {
            calls: per_shard * u32::from(n),
            shards: Shards {
                threads: Some(n),
                cores: if n == 1 {
                    "0".into()
                } else {
                    format!("0-{}", n - 1)
                },
            },
            ..args.clone()
        };
        eprintln!(
            "scaling: {n} shard(s) on cores {}: {} held calls…",
            at.shards.cores, at.calls
        );
        let (hook, _arrivals) = sink::start().map_err(|e| e.to_string())?;
        let sip = crate::free_port();
        let server = start_pinless(dir, sip, at.calls, hook, &at.shards)?.0;
        let hold = hold_run("pinless", server, sip, &rx, &at, dir)?;
        eprintln!("scaling: {n} shard(s): {} bridged calls…", at.calls);
        let relay = relay::pinless_run(&at, dir, &a, &b)?;
        a.reset();
        b.reset();
        rows.push(Row {
            shards: n,
            hold,
            relay,
        });
    }
    table(args, &rows);
    Ok(())
}

fn hold_ok(r: &Run, calls: u32, secs: u64) -> bool {
    let expected = f64::from(calls) * 50.0 * secs as f64;
    r.stats.packets as f64 >= expected * 0.999
        && r.stats.lost == 0
        && r.stats.deviation.quantile(0.99) <= 2000.0
        && r.stats.deviation.quantile(0.999) <= 5000.0
}

fn relay_ok(r: &Relay, secs: u64) -> bool {
    let expected = r.streams as f64 * 50.0 * secs as f64;
    let deviation_ok = |s: &Stats| s.deviation.quantile(0.99) <= 2000.0;
    ((r.a.lost + r.b.lost) as f64) <= expected * 0.0001 && deviation_ok(&r.a) && deviation_ok(&r.b)
}

/// µs of CPU per packet the server sent (held) or relayed.
fn per_packet(cpu_pct: f64, secs: u64, packets: u64) -> f64 {
    cpu_pct / 100.0 * secs as f64 * 1e6 / (packets.max(1) as f64)
}

fn table(args: &Args, rows: &[Row]) {
    println!(
        "\nscaling: {} calls per shard, {} s measured per run; shards pinned one per core \
         from core 0, sipp and the load on core {}\n",
        args.calls,
        args.secs,
        driver_core()
    );
    println!(
        "| load | shards | calls offered | calls carried at the targets | CPU | CPU per shard | \
         CPU per packet | efficiency vs linear |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let secs = args.secs;
    let base_hold = rows
        .first()
        .map(|r| per_packet(r.hold.cpu_pct, secs, r.hold.stats.packets));
    let base_relay = rows
        .first()
        .map(|r| per_packet(r.relay.cpu_pct, secs, r.relay.packets()));
    let efficiency = |base: Option<f64>, now: f64| match base {
        Some(b) if now > 0.0 => format!("{:.2}", b / now),
        _ => "-".into(),
    };
    for r in rows {
        let offered = args.calls * u32::from(r.shards);
        let carried = |ok: bool, up: usize| {
            if ok {
                up.to_string()
            } else {
                format!("{up} (targets missed)")
            }
        };
        let pp = per_packet(r.hold.cpu_pct, secs, r.hold.stats.packets);
        println!(
            "| held | {} | {offered} | {} | {:.1} % core | {:.1} % core | {pp:.2} µs | {} |",
            r.shards,
            carried(hold_ok(&r.hold, offered, secs), r.hold.calls_up),
            r.hold.cpu_pct,
            r.hold.cpu_pct / f64::from(r.shards),
            efficiency(base_hold, pp),
        );
        let pp = per_packet(r.relay.cpu_pct, secs, r.relay.packets());
        println!(
            "| bridged | {} | {offered} | {} | {:.1} % core | {:.1} % core | {pp:.2} µs | {} |",
            r.shards,
            carried(relay_ok(&r.relay, secs), r.relay.calls),
            r.relay.cpu_pct,
            r.relay.cpu_pct / f64::from(r.shards),
            efficiency(base_relay, pp),
        );
    }
    println!("\nper run, held: memory per call, interval deviation p99 / p99.9, packets lost;");
    println!("bridged: deviation p99 to callers / to rooms, packets lost\n");
    for r in rows {
        println!(
            "- {} shard(s): held {:.1} KiB/call, {:.2} / {:.2} ms, {} lost; bridged {:.2} / {:.2} ms, {} lost",
            r.shards,
            r.hold.rss_per_call_kib,
            r.hold.stats.deviation.quantile(0.99) / 1000.0,
            r.hold.stats.deviation.quantile(0.999) / 1000.0,
            r.hold.stats.lost,
            r.relay.a.deviation.quantile(0.99) / 1000.0,
            r.relay.b.deviation.quantile(0.99) / 1000.0,
            r.relay.a.lost + r.relay.b.lost,
        );
    }
    if machine_cores() <= u32::from(rows.last().map_or(1, |r| r.shards)) {
        println!(
            "\nNote: this machine has {} cores; at {} shards the load shared a core with \
             the gateway, so that row understates what the shards carry.",
            machine_cores(),
            rows.last().map_or(1, |r| r.shards)
        );
    }
}
