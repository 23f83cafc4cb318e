//! `hold --heap`: where a held call's memory goes, measured. The gateway
//! runs under heaptrack (Debian's `heaptrack`), which records every
//! allocation with its backtrace; once the calls are up and settled, the
//! gateway is killed (SIGKILL: it frees nothing on the way out), so what
//! heaptrack counts as never freed is exactly what was live at that
//! moment. Each live allocation is put in one part by its backtrace (the
//! first rule that matches, see `PARTS`). An idle gateway is recorded the
//! same way first, and each part's figure is what the calls added to it,
//! per held call (the music, prompts and tables every node has are not a
//! call's). The plain `hold` run's RSS figure includes what the
//! allocator keeps beyond this (and the code, stacks and page tables);
//! this table is the heap alone.

use crate::receiver::Receiver;
use crate::{Args, free_port, ramp, sink, start_callers, start_pinless};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// When set, `start_pinless` runs the gateway under heaptrack, writing
/// its record here (without the `.zst` heaptrack adds).
pub static PROFILE: Mutex<Option<PathBuf>> = Mutex::new(None);

/// The parts a live allocation is put in: the first whose every needle is
/// in its backtrace wins.
const PARTS: &[(&str, &[&str])] = &[
    (
        "media task (its future)",
        &["task::core::Cell", "pinless::media::"],
    ),
    (
        "webhook task (while it runs)",
        &["task::core::Cell", "post_webhook"],
    ),
    ("SIP tasks (ezk and ours)", &["task::core::Cell", "sip"]),
    // Any other task lands here too; at 4.37 KiB a call today this part
    // is the call task's 4,344-byte future and its header alone.
    ("call task (its future)", &["task::core::Cell"]),
    ("SQLite page cache", &["sqlite3"]),
    ("SIP ladder (the trace)", &["sip::trace"]),
    ("SIP dialog and transactions (ezk)", &["ezk_sip"]),
    ("SIP dialog (ours)", &["pinless::sip::"]),
    ("inboxes (channels)", &["sync::mpsc"]),
    ("inboxes (channels)", &["sync::oneshot"]),
    ("inboxes (channels)", &["sync::watch"]),
    ("media state (legs, pacer, ports)", &["pinless::media::"]),
    ("registry entries", &["call::registry"]),
    ("machine, timeline and view", &["call::machine"]),
    ("call driver state", &["call::driver"]),
    ("webhooks and HTTP", &["webhook"]),
];

/// `hold --heap`: the gateway under heaptrack, idle and then with
/// `--calls` held calls.
pub fn run(args: &Args, dir: &Path) -> Result<(), String> {
    let idle = record(args, dir, 0)?.1;
    let (calls_up, held) = record(args, dir, args.calls)?;
    let mut rows: Vec<(&str, f64)> = held
        .iter()
        .map(|(part, bytes)| {
            let added = *bytes as f64 - idle.get(part).copied().unwrap_or(0) as f64;
            (*part, added / 1024.0 / calls_up.max(1) as f64)
        })
        .collect();
    rows.sort_by(|a, b| b.1.total_cmp(&a.1));
    let total: f64 = rows.iter().map(|r| r.1).sum();
    println!("\nhold --heap: the gateway's live heap per held call, {calls_up} calls held");
    println!("(heaptrack; what the calls added to an idle gateway's heap)\n");
    println!("| part | KiB per held call | share |");
    println!("|---|---|---|");
    for (part, kib) in rows {
        println!("| {part} | {kib:.2} | {:.0} % |", kib / total * 100.0);
    }
    println!("| **the heap, all parts** | **{total:.2}** | 100 % |");
    Ok(())
}

/// One gateway under heaptrack with `calls` calls held: how many came up,
/// and the bytes live per part once they had settled.
fn record(
    args: &Args,
    dir: &Path,
    calls: u32,
) -> Result<(usize, BTreeMap<&'static str, u64>), String> {
    let record = dir.join(format!("heap-{calls}"));
    *PROFILE.lock().map_err(|_| "profile lock")? = Some(record.clone());
    let rx = Receiver::start().map_err(|e| e.to_string())?;
    let (hook, _arrivals) = sink::start().map_err(|e| e.to_string())?;
    let sip = free_port();
    let started = start_pinless(dir, sip, calls.max(1), hook, &args.shards);
    *PROFILE.lock().map_err(|_| "profile lock")? = None;
    let (mut heaptrack, _api) = started?;
    std::thread::sleep(Duration::from_millis(800));
    let gateway = gateway_pid(heaptrack.id()).ok_or("the gateway did not start under heaptrack")?;
    let mut caller = None;
    let mut calls_up = 0;
    if calls > 0 {
        let (_, ramp) = ramp(calls);
        let hold = ramp * 4 + Duration::from_secs(args.settle + 120);
        caller = Some(start_callers(
            sip,
            rx.addr.port(),
            calls,
            hold,
            dir,
            "heap",
        )?);
        // Slower under heaptrack: every call is waited for.
        let up_by = Instant::now() + ramp * 4 + Duration::from_secs(60);
        while rx.ssrcs() < calls as usize && Instant::now() < up_by {
            std::thread::sleep(Duration::from_millis(100));
        }
        calls_up = rx.ssrcs();
    }
    std::thread::sleep(Duration::from_secs(if calls > 0 { args.settle } else { 3 }));
    // Live now is what the record will show as never freed.
    let _ = Command::new("kill")
        .args(["-KILL", &gateway.to_string()])
        .status();
    let _ = heaptrack.wait();
    if let Some(mut caller) = caller {
        let _ = caller.kill();
        let _ = caller.wait();
    }
    let printed = Command::new("heaptrack_print")
        .arg("-f")
        .arg(record.with_extension("zst"))
        .args([
            "--print-peaks",
            "0",
            "--print-allocators",
            "0",
            "--print-temporary",
            "0",
        ])
        .args([
            "--print-histogram",
            "0",
            "--print-leaks",
            "1",
            "-n",
            "100000",
        ])
        .output()
        .map_err(|e| format!("heaptrack_print: {e} (apt-get install heaptrack)"))?;
    Ok((
        calls_up,
        attribute(&String::from_utf8_lossy(&printed.stdout)),
    ))
}

/// The gateway's process: heaptrack's script starts it as its child.
fn gateway_pid(heaptrack: u32) -> Option<u32> {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let children =
            std::fs::read_to_string(format!("/proc/{heaptrack}/task/{heaptrack}/children"))
                .unwrap_or_default();
        for pid in children
            .split_whitespace()
            .filter_map(|p| p.parse::<u32>().ok())
        {
            let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok();
            if exe.is_some_and(|e| e.ends_with("pinless")) {
                return Some(pid);
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

/// Bytes live per part, from heaptrack_print's list of leaks: each entry
/// is a line `SIZE leaked over N calls from:` and its backtrace, indented.
fn attribute(text: &str) -> BTreeMap<&'static str, u64> {
    let mut parts = BTreeMap::new();
    let mut entry: Option<(u64, String)> = None;
    let mut close = |entry: &mut Option<(u64, String)>| {
        if let Some((bytes, trace)) = entry.take() {
            let part = PARTS
                .iter()
                .find(|(_, needles)| needles.iter().all(|n| trace.contains(n)))
                .map_or("other", |(part, _)| part);
            *parts.entry(part).or_insert(0) += bytes;
        }
    };
    for line in text.lines() {
        if let Some(head) = line.strip_suffix(" calls from:") {
            close(&mut entry);
            let size = head.split(" leaked over ").next().unwrap_or("");
            entry = size_bytes(size).map(|b| (b, String::new()));
        } else if line.ends_with(" calls from") || line.is_empty() {
            // A group's total, or the end of an entry.
            close(&mut entry);
        } else if let Some((_, trace)) = entry.as_mut()
            && line.starts_with("    ")
        {
            trace.push_str(line.trim());
            trace.push('\n');
        }
    }
    close(&mut entry);
    parts
}

/// heaptrack's sizes: `512B`, `9.34K`, `31.52M`, `1.2G` (powers of 1000,
/// as it prints them).
fn size_bytes(size: &str) -> Option<u64> {
    let size = size.trim();
    let (number, scale) = match size.chars().last()? {
        'B' => (&size[..size.len() - 1], 1.0),
        'K' => (&size[..size.len() - 1], 1e3),
        'M' => (&size[..size.len() - 1], 1e6),
        'G' => (&size[..size.len() - 1], 1e9),
        _ => (size, 1.0),
    };
    Some((number.parse::<f64>().ok()? * scale) as u64)
}
