//! Side-by-side benchmark: pinless against a baseline on the same load,
//! both pinned to core 0, the load (sipp) on core 1, RTP received by our
//! own lean receiver (recvmmsg, kernel timestamps, streams by SSRC). One
//! table with both and the ratio.
//!
//! ```text
//! cargo build --release && cargo run --release --example bench -- hold --calls 1000 --secs 20 [--settle 35]
//! ```
//! Modes: `hold` (baseline: sipp's own `rtp_stream` hold player). `cps`,
//! `relay` and `transfer` are not built yet.
//! Needs sipp (`apt-get install sip-tester`) and taskset (util-linux).
//! All traffic stays on 127.0.0.1.

mod proc;
mod receiver;
mod scenarios;
mod sink;

use receiver::{Receiver, Stats};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Args {
    mode: String,
    calls: u32,
    secs: u64,
    /// Wait after every call is up before measuring (SIP transactions of
    /// the set-up linger for 32 s; `--settle 35` measures without them).
    settle: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let mode = args
        .next()
        .ok_or("usage: bench hold [--calls N] [--secs T]")?;
    let (mut calls, mut secs, mut settle) = (1000, 20, 1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        let n: u64 = value
            .parse()
            .map_err(|_| format!("{flag} {value}: not a number"))?;
        match flag.as_str() {
            "--calls" if (1..=4500).contains(&n) => calls = n as u32,
            "--calls" => {
                return Err("--calls: 1 to 4500 (the RTP port range of the bench config)".into());
            }
            "--secs" if n >= 5 => secs = n,
            "--secs" => return Err("--secs: at least 5".into()),
            "--settle" => settle = n,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(Args {
        mode,
        calls,
        secs,
        settle,
    })
}

fn free_port() -> u16 {
    loop {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("a UDP port");
        let port = udp.local_addr().expect("bound").port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

fn pinned(core: u32, program: &Path, args: &[String], log: &Path) -> std::io::Result<Child> {
    let log = std::fs::File::create(log)?;
    Command::new("taskset")
        .arg("-c")
        .arg(core.to_string())
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
    /// What core 0's softirq thread did meanwhile.
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
    let rate = (args.calls / 5).clamp(10, 400);
    let ramp = Duration::from_secs_f64(f64::from(args.calls) / f64::from(rate));
    let hold = ramp + Duration::from_secs(args.secs + args.settle + 5);
    let scenario = dir.join(format!("caller-{name}.xml"));
    std::fs::write(
        &scenario,
        scenarios::caller(rx.addr.port(), hold.as_millis() as u64),
    )
    .map_err(|e| e.to_string())?;
    let caller_args: Vec<String> = [
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
        &rate.to_string(),
        "-m",
        &args.calls.to_string(),
        "-l",
        &args.calls.to_string(),
        "-buff_size",
        "4194304",
        "-timeout",
        &(hold.as_secs() + 30).to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut caller = pinned(
        1,
        Path::new("sipp"),
        &caller_args,
        &dir.join(format!("caller-{name}.log")),
    )
    .map_err(|e| format!("sipp: {e} (apt-get install sip-tester)"))?;
    let up_by = Instant::now() + ramp + Duration::from_secs(10);
    while rx.ssrcs() < args.calls as usize && Instant::now() < up_by {
        std::thread::sleep(Duration::from_millis(100));
    }
    let calls_up = rx.ssrcs();
    std::thread::sleep(Duration::from_secs(args.settle));
    rx.record();
    let cpu0 = proc::cpu_secs(pid).ok_or("server process gone")?;
    // Work the kernel defers from the server's sends to its softirq thread
    // is the server's cost too.
    let softirq = proc::kernel_thread("ksoftirqd/0");
    let soft0 = softirq.and_then(proc::cpu_secs).unwrap_or(0.0);
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(args.secs));
    let cpu1 = proc::cpu_secs(pid).ok_or("server process gone")?;
    let soft1 = softirq.and_then(proc::cpu_secs).unwrap_or(0.0);
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
        rss_per_call_kib: (rss1.saturating_sub(rss0)) as f64 / f64::from(args.calls),
        stats,
        after_bye,
        calls_up,
    })
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

fn start_pinless(dir: &Path, sip: u16, calls: u32) -> Result<Child, String> {
    let music = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/hold.flac");
    let config = dir.join("pinless.toml");
    let hook = sink::start().map_err(|e| e.to_string())?;
    let text = format!(
        "[node]\nstate_dir = \"{state}\"\n[sip]\nudp = \"127.0.0.1:{sip}\"\ntcp = \"\"\n\
         [api]\nlisten = \"127.0.0.1:{api}\"\n[hold]\nmusic = \"{music}\"\nmax_hold_secs = 3600\n\
         [media]\nrtp_port_min = 20000\nrtp_port_max = 29999\n\
         [limits]\nmax_calls = {max}\ninvites_per_sec_per_ip = 100000\n\
         [[dialin]]\nname_prefix = \"support\"\nsip_uri = \"sip:support@127.0.0.1\"\n\
         room_creation_api = \"http://{hook}/hook\"\nopen = true\n",
        state = dir.join("state").display(),
        api = free_port(),
        max = calls + 100,
    );
    std::fs::write(&config, text).map_err(|e| e.to_string())?;
    let args = vec!["--config".to_string(), config.display().to_string()];
    pinned(0, &pinless_binary()?, &args, &dir.join("pinless.log")).map_err(|e| e.to_string())
}

fn start_sipp_server(dir: &Path, sip: u16) -> Result<Child, String> {
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
    pinned(0, Path::new("sipp"), &args, &dir.join("sipp-server.log")).map_err(|e| e.to_string())
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
        "\nhold: {} calls held for {} s; server pinned to core 0, sipp callers on core 1\n",
        args.calls, args.secs
    );
    println!("| metric | {} | {} (baseline) | ratio |", p.name, s.name);
    println!("|---|---|---|---|");
    let per_k = |r: &Run| r.cpu_pct * 1000.0 / f64::from(args.calls);
    row("calls up", p.calls_up as f64, s.calls_up as f64, "");
    row("CPU per 1,000 held calls", per_k(p), per_k(s), "% core");
    let soft_k = |r: &Run| r.softirq_pct * 1000.0 / f64::from(args.calls);
    row("  + ksoftirqd/0 meanwhile, per 1,000", soft_k(p), soft_k(s), "% core");
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
    if args.mode != "hold" {
        eprintln!("bench: mode {} is not built yet (only `hold`)", args.mode);
        std::process::exit(2);
    }
    let dir = std::env::temp_dir().join(format!("pinless-bench-{}", std::process::id()));
    let result = (|| -> Result<(Run, Run), String> {
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let rx = Receiver::start().map_err(|e| e.to_string())?;
        let sip = free_port();
        let p = hold_run(
            "pinless",
            start_pinless(&dir, sip, args.calls)?,
            sip,
            &rx,
            &args,
            &dir,
        )?;
        let sip = free_port();
        let s = hold_run("sipp", start_sipp_server(&dir, sip)?, sip, &rx, &args, &dir)?;
        Ok((p, s))
    })();
    match result {
        Ok((p, s)) => {
            table(&args, &p, &s);
            let _ = std::fs::remove_dir_all(&dir);
        }
        Err(e) => {
            eprintln!("bench: {e} (logs in {})", dir.display());
            std::process::exit(1);
        }
    }
}
