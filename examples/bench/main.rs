//! Benchmarks of the release gateway, pinned to core 0 (or `--cores`),
//! driven by sipp on the next core, RTP received by our own lean receiver
//! (recvmmsg, kernel timestamps, streams by SSRC). All traffic stays on
//! 127.0.0.1.
//!
//! ```text
//! cargo build --release
//! cargo run --release --example bench -- hold --calls 1000 --secs 20 [--settle 35]
//! cargo run --release --example bench -- cps --rate 1000 --secs 30
//! cargo run --release --example bench -- transfer --calls 1000 --transfers 200
//! cargo run --release --example bench -- relay --calls 1000 --secs 20
//! cargo run --release --example bench -- hold --calls 2000 --threads 2 --cores 0,1
//! cargo run --release --example bench -- scaling --calls 1000 --secs 10
//! cargo run --release --example bench -- stream --calls 200 --secs 20
//! cargo run --release --example bench -- hold --srtp --calls 1000 --secs 20
//! cargo run --release --example bench -- relay --srtp --calls 500 --secs 20
//! cargo run --release --example bench -- relay --opus --calls 300 --secs 20
//! cargo run --release --example bench -- hold --heap --calls 1000 --settle 35
//! cargo run --release --example bench -- hold --record --calls 1000 --secs 20
//! cargo run --release --example bench -- relay --record --calls 1000 --secs 20
//! ```
//! `--threads N` is the gateway's `[media] threads` (default: what the
//! gateway picks, one shard per core it may use); `--cores LIST` (`0`,
//! `0,1`, `0-3`) the cores it is pinned to with taskset, the baselines
//! too; sipp and the load run on the first core outside the list.
//! - `hold`: side by side with sipp's own `rtp_stream` hold player on the
//!   same load, one table with both and the ratio.
//! - `cps`: call set-up rate with one signed webhook per call (cps.rs).
//! - `transfer`: update → room INVITE, room 200 OK → first relayed packet,
//!   and the caller's audio gap at the switch (transfer.rs).
//! - `relay`: bridged calls with audio both ways, side by side with
//!   rtpengine in userspace (relay.rs).
//! - `scaling`: hold and relay at 1, 2, … shards, `--calls` per shard
//!   (scaling.rs).
//! - `stream`: calls sent with `streamUrl` to a WebSocket echo bot in the
//!   bench, side by side with `relay` to SIP rooms on the same calls
//!   (stream.rs, bot.rs).
//! - `hold --srtp`, `relay --srtp`: the same gateway with plain RTP and
//!   with SRTP, side by side: the cost of encryption per packet (srtp.rs).
//! - `relay --opus`: Opus↔Opus and Opus↔PCMU beside PCMU↔PCMU: the cost
//!   of Opus per relayed packet, untouched and transcoded (opus.rs).
//! - `hold --record`, `relay --record`: the same gateway with its calls
//!   recorded and not, side by side (record.rs).
//! - `hold --heap`: where a held call's memory goes, part by part, from
//!   heaptrack's record of the gateway's live allocations (heap.rs; needs
//!   `apt-get install heaptrack`).
//!
//! Needs sipp (`apt-get install sip-tester`), taskset (util-linux), and for
//! `relay` rtpengine (`apt-get install rtpengine-daemon`).

mod bot;
mod cps;
mod heap;
mod load;
mod ng;
mod opus;
mod proc;
mod receiver;
mod record;
mod relay;
mod scaling;
mod scenarios;
mod sink;
mod srtp;
mod stream;
mod transfer;

use receiver::{Receiver, Stats};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

#[derive(Clone)]
struct Args {
    mode: String,
    calls: u32,
    secs: u64,
    /// Wait after every call is up before measuring (SIP transactions of
    /// the set-up linger for 32 s; `--settle 35` measures without them).
    settle: u64,
    /// Transfers to measure (transfer mode).
    transfers: u32,
    /// Calls per second offered (cps mode).
    rate: u32,
    /// The gateway's media shards and cores.
    shards: Shards,
    /// `--srtp`: hold and relay measure plain RTP and SRTP side by side
    /// (srtp.rs) instead of against a baseline.
    srtp: bool,
    /// `--opus`: relay measures Opus↔Opus and Opus↔PCMU beside PCMU↔PCMU
    /// (opus.rs).
    opus: bool,
    /// `--record`: hold and relay measure the gateway with every call
    /// recorded beside the same without (record.rs).
    record: bool,
    /// `--heap`: hold prints where a held call's memory goes (heap.rs).
    heap: bool,
}

/// How the gateway's media runs: `[media] threads` and the cores it is
/// pinned to.
#[derive(Clone)]
pub struct Shards {
    /// None: the key is left out (one shard per core the gateway may use).
    pub threads: Option<u16>,
    /// A taskset list: `0`, `0,1`, `0-3`.
    pub cores: String,
}

impl Shards {
    /// The cores of `cores`, or an error naming what is wrong.
    fn core_numbers(list: &str) -> Result<Vec<u32>, String> {
        let mut cores = Vec::new();
        for part in list.split(',') {
            let bad = || format!("--cores {list}: a list such as 0 or 0,1 or 0-3");
            let (a, b) = part.split_once('-').unwrap_or((part, part));
            let (a, b): (u32, u32) = (
                a.trim().parse().map_err(|_| bad())?,
                b.trim().parse().map_err(|_| bad())?,
            );
            if a > b {
                return Err(bad());
            }
            cores.extend(a..=b);
        }
        Ok(cores)
    }

    /// The `[media]` line the gateway's config gets.
    fn config_line(&self) -> String {
        self.threads
            .map(|n| format!("threads = {n}\n"))
            .unwrap_or_default()
    }
}

/// The core sipp, the RTP load and the receivers' side run on: set once
/// from `--cores` (the first core outside it, else the machine's last).
static DRIVER_CORE: OnceLock<String> = OnceLock::new();

fn driver_core() -> &'static str {
    DRIVER_CORE.get().map_or("1", |s| s.as_str())
}

/// The machine's cores (all of them, whatever this process's affinity).
fn machine_cores() -> u32 {
    std::fs::read_to_string("/sys/devices/system/cpu/online")
        .ok()
        .and_then(|s| Shards::core_numbers(s.trim()).ok())
        .map_or(1, |c| c.len() as u32)
}

fn pick_driver_core(gateway: &[u32]) -> (u32, bool) {
    let n = machine_cores();
    match (0..n).find(|c| !gateway.contains(c)) {
        Some(c) => (c, false),
        None => (n.saturating_sub(1), true),
    }
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let mode = args
        .next()
        .ok_or("usage: bench hold [--calls N] [--secs T]")?;
    let (mut calls, mut secs, mut settle, mut transfers, mut rate) = (1000, 20, 1, 200, 1000);
    let mut shards = Shards {
        threads: None,
        cores: "0".into(),
    };
    let (mut srtp, mut opus, mut heap, mut record) = (false, false, false, false);
    while let Some(flag) = args.next() {
        if flag == "--record" {
            record = true;
            continue;
        }
        if flag == "--heap" {
            heap = true;
            continue;
        }
        if flag == "--srtp" {
            srtp = true;
            continue;
        }
        if flag == "--opus" {
            opus = true;
            continue;
        }
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        if flag == "--cores" {
            Shards::core_numbers(&value)?;
            shards.cores = value;
            continue;
        }
        let n: u64 = value
            .parse()
            .map_err(|_| format!("{flag} {value}: not a number"))?;
        match flag.as_str() {
            "--calls" if (1..=MAX_CALLS).contains(&n) => calls = n as u32,
            "--calls" => {
                return Err(format!(
                    "--calls: 1 to {MAX_CALLS} (the RTP port range of the bench config)"
                ));
            }
            "--threads" if (1..=256).contains(&n) => shards.threads = Some(n as u16),
            "--threads" => return Err("--threads: 1 to 256".into()),
            "--secs" if n >= 5 => secs = n,
            "--secs" => return Err("--secs: at least 5".into()),
            "--settle" => settle = n,
            "--transfers" if (1..=2000).contains(&n) => transfers = n as u32,
            "--transfers" => return Err("--transfers: 1 to 2000".into()),
            "--rate" if (1..=MAX_CALLS / 3).contains(&n) => rate = n as u32,
            "--rate" => {
                return Err(format!(
                    "--rate: 1 to {} (3 s of calls must fit the bench's RTP port range)",
                    MAX_CALLS / 3
                ));
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(Args {
        mode,
        calls,
        secs,
        settle,
        transfers,
        rate,
        shards,
        srtp,
        opus,
        record,
        heap,
    })
}

/// Calls the RTP range of the bench's gateway config holds (even ports of
/// 10000-59999, two per bridged call), with room to spare.
const MAX_CALLS: u64 = 12_000;

fn free_port() -> u16 {
    loop {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("a UDP port");
        let port = udp.local_addr().expect("bound").port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Starts `program` pinned to `cores` (a taskset list).
fn pinned(cores: &str, program: &Path, args: &[String], log: &Path) -> std::io::Result<Child> {
    let log = std::fs::File::create(log)?;
    Command::new("taskset")
        .arg("-c")
        .arg(cores)
        .arg(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
}

/// What one side of the comparison measured.
struct Run {
    name: &'static str,
    cpu_pct: f64,
    /// What the server cores' softirq threads did meanwhile.
    softirq_pct: f64,
    rss_per_call_kib: f64,
    stats: Stats,
    after_bye: u64,
    calls_up: usize,
}

/// One hold run against a server at `sip` (process `server`).
fn hold_run(
    name: &'static str,
    mut server: Child,
    sip: u16,
    rx: &Receiver,
    args: &Args,
    dir: &Path,
) -> Result<Run, String> {
    let pid = server.id();
    std::thread::sleep(Duration::from_millis(800));
    let rss0 = proc::rss_kib(pid).ok_or("server process gone")?;
    let (_, ramp) = ramp(args.calls);
    let hold = ramp + Duration::from_secs(args.secs + args.settle + 5);
    let mut caller = start_callers(sip, rx.addr.port(), args.calls, hold, dir, name)?;
    let up_by = Instant::now() + ramp + Duration::from_secs(10);
    while rx.ssrcs() < args.calls as usize && Instant::now() < up_by {
        std::thread::sleep(Duration::from_millis(100));
    }
    let calls_up = rx.ssrcs();
    std::thread::sleep(Duration::from_secs(args.settle));
    rx.record();
    let cpu0 = proc::cpu_secs(pid).ok_or("server process gone")?;
    // Work the kernel defers from the server's sends to its softirq
    // threads is the server's cost too.
    let softirq = proc::softirq_threads(&args.shards.cores);
    let soft0 = proc::cpu_secs_of(&softirq);
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(args.secs));
    let cpu1 = proc::cpu_secs(pid).ok_or("server process gone")?;
    let soft1 = proc::cpu_secs_of(&softirq);
    let elapsed = t0.elapsed().as_secs_f64();
    let rss1 = proc::rss_kib(pid).ok_or("server process gone")?;
    let stats = rx.finish();
    let _ = caller.wait();
    // Every BYE is answered by now: anything still arriving is late.
    std::thread::sleep(Duration::from_millis(200));
    let before = rx.all_packets();
    std::thread::sleep(Duration::from_secs(1));
    let after_bye = rx.all_packets() - before;
    let _ = server.kill();
    let _ = server.wait();
    rx.reset();
    Ok(Run {
        name,
        cpu_pct: (cpu1 - cpu0) / elapsed * 100.0,
        softirq_pct: (soft1 - soft0) / elapsed * 100.0,
        // Per call that came up: refused calls cost nothing held.
        rss_per_call_kib: (rss1.saturating_sub(rss0)) as f64 / calls_up.max(1) as f64,
        stats,
        after_bye,
        calls_up,
    })
}

/// Calls per second for setting up `calls` held calls, and how long that takes.
fn ramp(calls: u32) -> (u32, Duration) {
    // At most 200 new calls a second: set-up costs about 1 ms of CPU a
    // call, so the ramp takes at most a fifth of a core while the held
    // calls' music grows towards the shard's busy limit (at 4,000 on one
    // core the limit is near, and a call set up past it gets 503).
    let rate = (calls / 5).clamp(10, 200);
    (
        rate,
        Duration::from_secs_f64(f64::from(calls) / f64::from(rate)),
    )
}

/// How many calls sipp places, how fast and how many at once, and how
/// long it may run.
struct CallerLoad {
    rate: u32,
    total: u64,
    concurrent: u32,
    timeout_secs: u64,
}

/// sipp on the driver core placing `calls` calls to `sip` (at the `ramp` rate),
/// each held for `hold` with its RTP pointed at our receiver.
fn start_callers(
    sip: u16,
    rtp_port: u16,
    calls: u32,
    hold: Duration,
    dir: &Path,
    name: &str,
) -> Result<Child, String> {
    let load = CallerLoad {
        rate: ramp(calls).0,
        total: u64::from(calls),
        concurrent: calls,
        timeout_secs: hold.as_secs() + 30,
    };
    sipp_callers(sip, rtp_port, hold, &load, &[], dir, name)
}

/// sipp on the driver core placing `load` calls to `sip`, each held for `hold` with
/// its RTP pointed at our receiver; `extra` goes on sipp's command line.
fn sipp_callers(
    sip: u16,
    rtp_port: u16,
    hold: Duration,
    load: &CallerLoad,
    extra: &[String],
    dir: &Path,
    name: &str,
) -> Result<Child, String> {
    let scenario = dir.join(format!("caller-{name}.xml"));
    std::fs::write(
        &scenario,
        scenarios::caller(rtp_port, hold.as_millis() as u64),
    )
    .map_err(|e| e.to_string())?;
    let mut caller_args: Vec<String> = [
        &format!("127.0.0.1:{sip}"),
        "-sf",
        &scenario.display().to_string(),
        "-s",
        "support",
        "-i",
        "127.0.0.1",
        "-p",
        &free_port().to_string(),
        "-r",
        &load.rate.to_string(),
        "-m",
        &load.total.to_string(),
        "-l",
        &load.concurrent.to_string(),
        "-buff_size",
        "4194304",
        "-timeout",
        &load.timeout_secs.to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    caller_args.extend_from_slice(extra);
    pinned(
        driver_core(),
        Path::new("sipp"),
        &caller_args,
        &dir.join(format!("caller-{name}.log")),
    )
    .map_err(|e| format!("sipp: {e} (apt-get install sip-tester)"))
}

fn pinless_binary() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("pinless"))
        .ok_or("cannot find the target directory")?;
    if bin.exists() {
        Ok(bin)
    } else {
        Err(format!(
            "{} not built: run `cargo build --release` first",
            bin.display()
        ))
    }
}

/// The release gateway on `shards.cores`, its webhooks going to `hook`; returns
/// it and its API address (bearer token `bench`).
fn start_pinless(
    dir: &Path,
    sip: u16,
    calls: u32,
    hook: SocketAddr,
    shards: &Shards,
) -> Result<(Child, SocketAddr), String> {
    start_pinless_with(dir, sip, calls, hook, shards, ["", "", ""])
}

/// `start_pinless` with more `[sip]` keys, `[media]` keys and keys of the
/// entry (`extra`, in that order).
fn start_pinless_with(
    dir: &Path,
    sip: u16,
    calls: u32,
    hook: SocketAddr,
    shards: &Shards,
    extra: [&str; 3],
) -> Result<(Child, SocketAddr), String> {
    let [sip_extra, media_extra, entry_extra] = extra;
    let music = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/hold.flac");
    let config = dir.join("pinless.toml");
    let api: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    // A benchmark measures capacity: the pacer may run to 95 % busy before
    // new calls are refused (the default 80 % starts refusing at about
    // 3,900 held calls on a 2-vCPU machine). sipp's callers send no RTP,
    // so the dead-peer rule (`rtp_timeout_secs`) is off, or every call
    // would end 30 s after its answer, in the middle of a long run.
    let text = format!(
        "[node]\nstate_dir = \"{state}\"\n[sip]\nudp = \"127.0.0.1:{sip}\"\ntcp = \"\"\n{sip_extra}\
         [api]\nlisten = \"{api}\"\nbearer_tokens = [\"bench\"]\nallow_private_urls = true\n[hold]\nmusic = \"{music}\"\nmax_hold_secs = 3600\n\
         [media]\nrtp_port_min = 10000\nrtp_port_max = 59999\nrtp_timeout_secs = 0\n{threads}{media_extra}\
         [limits]\nmax_calls = {max}\ninvites_per_sec_per_ip = 100000\npacer_busy_max_pct = 95\n\
         [[dialin]]\nname_prefix = \"support\"\nsip_uri = \"sip:support@127.0.0.1\"\n\
         room_creation_api = \"http://{hook}/hook\"\nopen = true\n{entry_extra}",
        state = dir.join("state").display(),
        max = calls + 100,
        threads = shards.config_line(),
    );
    std::fs::write(&config, text).map_err(|e| e.to_string())?;
    // Each run starts empty: a gateway of an earlier run (scaling mode
    // runs several) was killed with its calls saved, and would otherwise
    // be resumed here, with their ports.
    match std::fs::remove_dir_all(dir.join("state")) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.to_string()),
        _ => {}
    }
    let mut args = vec!["--config".to_string(), config.display().to_string()];
    let mut program = pinless_binary()?;
    if let Some(record) = heap::PROFILE.lock().ok().and_then(|p| p.clone()) {
        let gateway = std::mem::replace(&mut program, PathBuf::from("heaptrack"));
        let wrapper = [
            "-o".to_string(),
            record.display().to_string(),
            gateway.display().to_string(),
        ];
        args.splice(0..0, wrapper);
    }
    let child = pinned(&shards.cores, &program, &args, &dir.join("pinless.log"))
        .map_err(|e| e.to_string())?;
    Ok((child, api))
}

fn start_sipp_server(dir: &Path, sip: u16, cores: &str) -> Result<Child, String> {
    let music = pinless::media::HoldLoop::load(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/assets/hold.flac"
    )))
    .map_err(|e| e.to_string())?;
    let wav = dir.join("hold-pcmu.wav");
    scenarios::write_pcmu_wav(&music, &wav).map_err(|e| e.to_string())?;
    let scenario = dir.join("server.xml");
    std::fs::write(&scenario, scenarios::sipp_hold_server(&wav)).map_err(|e| e.to_string())?;
    let args: Vec<String> = [
        "-sf",
        &scenario.display().to_string(),
        "-i",
        "127.0.0.1",
        "-p",
        &sip.to_string(),
        "-mp",
        &free_port().to_string(),
        "-buff_size",
        "4194304",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    pinned(
        cores,
        Path::new("sipp"),
        &args,
        &dir.join("sipp-server.log"),
    )
    .map_err(|e| e.to_string())
}

/// The value below which `q` of the sorted samples fall.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn row(name: &str, a: f64, b: f64, unit: &str) {
    let ratio = if b > 0.0 {
        format!("{:.2}", a / b)
    } else {
        "-".into()
    };
    println!("| {name} | {a:.2} {unit} | {b:.2} {unit} | {ratio} |");
}

fn table(args: &Args, p: &Run, s: &Run) {
    println!(
        "\nhold: {} calls held for {} s; server pinned to cores {}{}, sipp callers on core {}\n",
        args.calls,
        args.secs,
        args.shards.cores,
        args.shards
            .threads
            .map(|n| format!(" ({n} media shards)"))
            .unwrap_or_default(),
        driver_core()
    );
    println!("| metric | {} | {} (baseline) | ratio |", p.name, s.name);
    println!("|---|---|---|---|");
    let per_k = |r: &Run| r.cpu_pct * 1000.0 / f64::from(args.calls);
    row("calls up", p.calls_up as f64, s.calls_up as f64, "");
    row("CPU per 1,000 held calls", per_k(p), per_k(s), "% core");
    let soft_k = |r: &Run| r.softirq_pct * 1000.0 / f64::from(args.calls);
    row(
        "  + ksoftirqd of those cores meanwhile, per 1,000",
        soft_k(p),
        soft_k(s),
        "% core",
    );
    row(
        "memory per held call",
        p.rss_per_call_kib,
        s.rss_per_call_kib,
        "KiB",
    );
    for (label, q) in [("p50", 0.5), ("p99", 0.99), ("p99.9", 0.999)] {
        row(
            &format!("interval deviation {label}"),
            p.stats.deviation.quantile(q) / 1000.0,
            s.stats.deviation.quantile(q) / 1000.0,
            "ms",
        );
    }
    row(
        "RFC 3550 jitter p99 (per stream)",
        p.stats.jitter.quantile(0.99) / 1000.0,
        s.stats.jitter.quantile(0.99) / 1000.0,
        "ms",
    );
    row(
        "packets received",
        p.stats.packets as f64,
        s.stats.packets as f64,
        "",
    );
    // 50 packets a second per call: what falls short was sent late or not at all.
    let expected = f64::from(args.calls) * 50.0 * args.secs as f64;
    row(
        "packets on time (received / 50 per s per call)",
        p.stats.packets as f64 / expected * 100.0,
        s.stats.packets as f64 / expected * 100.0,
        "%",
    );
    row(
        "packets lost (sequence gaps)",
        p.stats.lost as f64,
        s.stats.lost as f64,
        "",
    );
    row(
        "RTP after BYE (1 s)",
        p.after_bye as f64,
        s.after_bye as f64,
        "packets",
    );
    println!(
        "\nstreams seen: {} / {}; interval samples: {} / {}",
        p.stats.streams,
        s.stats.streams,
        p.stats.deviation.count(),
        s.stats.deviation.count()
    );
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("bench: {e}");
            std::process::exit(2);
        }
    };
    let gateway_cores = Shards::core_numbers(&args.shards.cores).unwrap_or_default();
    let (driver, shared) = if args.mode == "scaling" {
        // Shards take cores from 0 up: the load gets the last one.
        (machine_cores().saturating_sub(1), false)
    } else {
        pick_driver_core(&gateway_cores)
    };
    if shared && args.mode != "scaling" {
        eprintln!(
            "bench: no core outside --cores {}: sipp and the load share core {driver} with the gateway",
            args.shards.cores
        );
    }
    let _ = DRIVER_CORE.set(driver.to_string());
    let dir = std::env::temp_dir().join(format!("pinless-bench-{}", std::process::id()));
    type Mode = fn(&Args, &Path) -> Result<(), String>;
    let other: Option<Mode> = match args.mode.as_str() {
        "hold" if args.srtp => Some(srtp::hold),
        "hold" if args.heap => Some(heap::run),
        "hold" if args.record => Some(record::hold),
        "relay" if args.record => Some(record::relay),
        "relay" if args.srtp => Some(srtp::relay),
        "relay" if args.opus => Some(opus::relay),
        "hold" => None,
        "transfer" => Some(transfer::run),
        "cps" => Some(cps::run),
        "relay" => Some(relay::run),
        "scaling" => Some(scaling::run),
        "stream" => Some(stream::run),
        other => {
            eprintln!("bench: no mode {other} (hold, cps, relay, transfer, scaling, stream)");
            std::process::exit(2);
        }
    };
    if let Some(run) = other {
        let result = std::fs::create_dir_all(&dir)
            .map_err(|e| e.to_string())
            .and_then(|()| run(&args, &dir));
        finish(result, &dir, |()| {});
        return;
    }
    let result = (|| -> Result<(Run, Run), String> {
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let rx = Receiver::start().map_err(|e| e.to_string())?;
        let (hook, _arrivals) = sink::start().map_err(|e| e.to_string())?;
        let sip = free_port();
        let p = hold_run(
            "pinless",
            start_pinless(&dir, sip, args.calls, hook, &args.shards)?.0,
            sip,
            &rx,
            &args,
            &dir,
        )?;
        let sip = free_port();
        let sipp = start_sipp_server(&dir, sip, &args.shards.cores)?;
        let s = hold_run("sipp", sipp, sip, &rx, &args, &dir)?;
        Ok((p, s))
    })();
    finish(result, &dir, |(p, s)| table(&args, &p, &s));
}

/// Prints the outcome; logs are kept on failure, removed on success.
fn finish<T>(result: Result<T, String>, dir: &Path, report: impl FnOnce(T)) {
    match result {
        Ok(r) => {
            report(r);
            let _ = std::fs::remove_dir_all(dir);
        }
        Err(e) => {
            eprintln!("bench: {e} (logs in {})", dir.display());
            std::process::exit(1);
        }
    }
}
