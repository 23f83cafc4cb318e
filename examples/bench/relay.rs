//! `relay` mode: `--calls` bridged calls with audio both ways, pinless
//! against rtpengine (userspace, no kernel module) relaying the same
//! streams, each pinned to the same cores (`--cores`, default 0) in turn,
//! rtpengine with as many threads as pinless has media shards.
//!
//! The load is the same for both: two receivers stand for the callers'
//! side (A) and the rooms' side (B); each sends one 50 packet/s stream per
//! call from its own socket (so symmetric-RTP latching points back at it)
//! to the server's port for that side, and measures what the server
//! relays to it. pinless's calls come in from sipp and are transferred to
//! a room the bench answers; rtpengine's are set up with `offer`/`answer`
//! on its control port.

use crate::load::Load;
use crate::ng::{Ng, audio_port};
use crate::receiver::{Receiver, Stats};
use crate::{Args, free_port, pinned, proc, ramp, row, sink, start_callers, start_pinless_with};
use pinless::sip::sdp;
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::Child;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What one server measured.
pub struct Relay {
    pub cpu_pct: f64,
    /// What the callers' side received.
    pub a: Stats,
    /// What the rooms' side received.
    pub b: Stats,
    pub streams: usize,
    /// Calls bridged for the measure.
    pub calls: usize,
}

impl Relay {
    pub fn packets(&self) -> u64 {
        self.a.packets + self.b.packets
    }
}

pub fn run(args: &Args, dir: &Path) -> Result<(), String> {
    let (a, b) = (receiver()?, receiver()?);
    let p = pinless_run(args, dir, &a, &b)?;
    a.reset();
    b.reset();
    let r = rtpengine_run(args, dir, &a, &b)?;
    table(args, &p, &r);
    Ok(())
}

pub fn receiver() -> Result<Receiver, String> {
    Receiver::start().map_err(|e| e.to_string())
}

/// Sends both sides' load for `settle` + `secs` and measures the window.
fn measure(
    pid: u32,
    args: &Args,
    a: &Receiver,
    b: &Receiver,
    to_a_side: &[SocketAddr],
    to_b_side: &[SocketAddr],
) -> Result<Relay, String> {
    let from_a = Arc::new(a.sender.try_clone().map_err(|e| e.to_string())?);
    let from_b = Arc::new(b.sender.try_clone().map_err(|e| e.to_string())?);
    let mut streams: Vec<(Arc<UdpSocket>, SocketAddr)> = Vec::new();
    streams.extend(to_a_side.iter().map(|to| (from_a.clone(), *to)));
    streams.extend(to_b_side.iter().map(|to| (from_b.clone(), *to)));
    let count = streams.len();
    let load = Load::start(streams).map_err(|e| e.to_string())?;
    std::thread::sleep(Duration::from_secs(args.settle.max(2)));
    // The far end's audio is the load's: counted apart from music and
    // silence.
    a.watch(crate::load::PAYLOAD);
    b.watch(crate::load::PAYLOAD);
    a.record();
    b.record();
    let cpu0 = proc::cpu_secs(pid).ok_or("server process gone")?;
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(args.secs));
    let cpu1 = proc::cpu_secs(pid).ok_or("server process gone")?;
    let elapsed = t0.elapsed().as_secs_f64();
    let (sa, sb) = (a.finish(), b.finish());
    drop(load);
    Ok(Relay {
        cpu_pct: (cpu1 - cpu0) / elapsed * 100.0,
        a: sa,
        b: sb,
        streams: count,
        calls: to_a_side.len(),
    })
}

pub fn pinless_run(args: &Args, dir: &Path, a: &Receiver, b: &Receiver) -> Result<Relay, String> {
    pinless_run_entry(args, dir, a, b, "")
}

/// `pinless_run` with more keys in the gateway's entry.
pub fn pinless_run_entry(
    args: &Args,
    dir: &Path,
    a: &Receiver,
    b: &Receiver,
    entry: &str,
) -> Result<Relay, String> {
    pinless_run_with(args, dir, a, b, ("relay", entry), |runtime, calls, api| {
        let (room_ports, legs) = runtime.block_on(bridge_all(calls, api, b.addr))?;
        Ok((room_ports, Box::new(legs)))
    })
}

/// pinless with `--calls` calls from sipp (their audio at `a`), each
/// connected to its far end by `bridge` (rooms' audio at `b`), measured
/// with the load running both ways; `name` names its logs, `entry` adds
/// keys to the gateway's entry. `bridge` returns where pinless wants
/// each far end's RTP (none for a far end that sends no RTP) and what must
/// live while the load runs (room legs, a bot).
pub fn pinless_run_with<'a>(
    args: &Args,
    dir: &Path,
    a: &Receiver,
    b: &Receiver,
    (name, entry): (&str, &str),
    bridge: impl FnOnce(
        &tokio::runtime::Runtime,
        &[(String, String)],
        SocketAddr,
    ) -> Result<(Vec<SocketAddr>, Box<dyn std::any::Any>), String>
    + 'a,
) -> Result<Relay, String> {
    let (hook, arrivals) = sink::start().map_err(|e| e.to_string())?;
    let sip = free_port();
    let extra = ["", "", entry];
    let (mut server, api) = start_pinless_with(dir, sip, args.calls, hook, &args.shards, extra)?;
    std::thread::sleep(Duration::from_millis(800));
    let (_, ramp) = ramp(args.calls);
    let hold = ramp + Duration::from_secs(90 + args.secs + u64::from(args.calls) / 50);
    let mut callers = start_callers(sip, a.addr.port(), args.calls, hold, dir, name)?;
    let result = (|| {
        let by = Instant::now() + ramp + Duration::from_secs(15);
        let calls = sink::calls(&arrivals, args.calls as usize, by)?;
        // Music came from each call's caller-side port: that is where the
        // callers' audio goes.
        while a.sources().len() < args.calls as usize && Instant::now() < by {
            std::thread::sleep(Duration::from_millis(100));
        }
        let caller_ports = a.sources();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let (far_ports, _alive) = bridge(&runtime, &calls, api)?;
        if caller_ports.len() != calls.len() {
            return Err(format!(
                "{} calls, {} caller ports",
                calls.len(),
                caller_ports.len(),
            ));
        }
        let relay = measure(server.id(), args, a, b, &caller_ports, &far_ports);
        drop(runtime);
        relay
    })();
    stop(&mut server);
    stop(&mut callers);
    result
}

/// Transfers every call to a room the bench answers with its media at
/// `room_media`; returns where pinless wants each room's audio, and the
/// room legs (kept up until dropped).
async fn bridge_all(
    calls: &[(String, String)],
    api: SocketAddr,
    room_media: SocketAddr,
) -> Result<(Vec<SocketAddr>, Vec<pinless::sip::Leg>), String> {
    let (room, mut invites, room_addr) = crate::transfer::room().await?;
    let http = reqwest::Client::new();
    let url = format!("http://{api}/v1/dialin/pinlessCallUpdate");
    let (mut ports, mut legs) = (Vec::new(), Vec::new());
    for (i, (call_id, domain)) in calls.iter().enumerate() {
        let body = serde_json::json!({
            "callId": call_id,
            "callDomain": domain,
            "sipUri": format!("sip:room{i}@{room_addr}"),
        });
        let update = tokio::spawn(http.post(&url).bearer_auth("bench").json(&body).send());
        let invite = tokio::time::timeout(Duration::from_secs(5), invites.recv())
            .await
            .ok()
            .flatten()
            .ok_or(format!("no room INVITE for call {i}"))?;
        let _ = update.await;
        let offer = sdp::parse(&invite.info.sdp).map_err(|e| e.to_string())?;
        let answer = sdp::answer(room_media.ip(), room_media.port(), offer.choose());
        legs.push(
            invite
                .accept(&room, answer)
                .await
                .map_err(|e| e.to_string())?,
        );
        ports.push(offer.addr);
    }
    Ok((ports, legs))
}

/// Starts rtpengine (userspace, pinned like pinless) with its ng control
/// port on 127.0.0.1, logging to `log` in `dir`; the process and that
/// port, once it has had time to bind.
pub fn start_rtpengine(args: &Args, dir: &Path, log: &str) -> Result<(Child, u16), String> {
    let ng_port = free_port();
    let rtp_args: Vec<String> = [
        "--config-file=none",
        "--foreground",
        "--log-stderr",
        "--log-level=4",
        "--table=-1",
        &format!("--num-threads={}", server_threads(args)),
        "--interface=127.0.0.1",
        &format!("--listen-ng=127.0.0.1:{ng_port}"),
        "--port-min=30000",
        "--port-max=39999",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let server = pinned(
        &args.shards.cores,
        Path::new("rtpengine"),
        &rtp_args,
        &dir.join(log),
    )
    .map_err(|e| format!("rtpengine: {e} (apt-get install rtpengine-daemon)"))?;
    std::thread::sleep(Duration::from_millis(800));
    Ok((server, ng_port))
}

fn rtpengine_run(args: &Args, dir: &Path, a: &Receiver, b: &Receiver) -> Result<Relay, String> {
    let (mut server, ng_port) = start_rtpengine(args, dir, "rtpengine.log")?;
    let result = (|| {
        let mut ng = Ng::new(([127, 0, 0, 1], ng_port).into()).map_err(|e| e.to_string())?;
        let sdp_at = |port: u16| {
            format!(
                "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
                 m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"
            )
        };
        let (caller_sdp, room_sdp) = (sdp_at(a.addr.port()), sdp_at(b.addr.port()));
        let (mut to_a_side, mut to_b_side) = (Vec::new(), Vec::new());
        for i in 0..args.calls {
            let call = format!("bench-{i}");
            let offer = ng.sdp(&[
                ("command", "offer"),
                ("call-id", &call),
                ("from-tag", "a"),
                ("sdp", &caller_sdp),
            ])?;
            let answer = ng.sdp(&[
                ("command", "answer"),
                ("call-id", &call),
                ("from-tag", "a"),
                ("to-tag", "b"),
                ("sdp", &room_sdp),
            ])?;
            // The offer goes to the room: its port takes the room's audio;
            // the answer goes to the caller: its port takes the caller's.
            let b_port = audio_port(&offer).ok_or("offer without m=audio")?;
            let a_port = audio_port(&answer).ok_or("answer without m=audio")?;
            to_a_side.push(([127, 0, 0, 1], a_port).into());
            to_b_side.push(([127, 0, 0, 1], b_port).into());
        }
        measure(server.id(), args, a, b, &to_a_side, &to_b_side)
    })();
    stop(&mut server);
    result
}

/// rtpengine's threads: as many as pinless's media shards (its default
/// when `--threads` is not given: one per core of `--cores`).
pub fn server_threads(args: &Args) -> usize {
    match args.shards.threads {
        Some(n) => usize::from(n),
        None => crate::Shards::core_numbers(&args.shards.cores).map_or(1, |c| c.len().max(1)),
    }
}

fn stop(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

fn table(args: &Args, p: &Relay, r: &Relay) {
    println!(
        "\nrelay: {} bridged calls, audio both ways ({} streams at 50 packets/s) for {} s; \
         servers pinned to cores {}, {} media threads each\n",
        args.calls,
        p.streams,
        args.secs,
        args.shards.cores,
        server_threads(args)
    );
    println!("| metric | pinless | rtpengine (baseline) | ratio |");
    println!("|---|---|---|---|");
    let per_packet = |x: &Relay| {
        let expected = x.streams as f64 * 50.0 * args.secs as f64;
        x.cpu_pct / 100.0 * args.secs as f64 * 1e6 / expected.max(1.0)
    };
    row("CPU per relayed packet", per_packet(p), per_packet(r), "µs");
    row("CPU", p.cpu_pct, r.cpu_pct, "% core");
    row(
        "packets relayed (both ways)",
        p.packets() as f64,
        r.packets() as f64,
        "",
    );
    row(
        "packets lost (sequence gaps)",
        (p.a.lost + p.b.lost) as f64,
        (r.a.lost + r.b.lost) as f64,
        "",
    );
    for (label, side) in [("to callers", true), ("to rooms", false)] {
        fn side_of(x: &Relay, callers: bool) -> &Stats {
            if callers { &x.a } else { &x.b }
        }
        let pick = |x| side_of(x, side);
        row(
            &format!("interval deviation p99, {label}"),
            pick(p).deviation.quantile(0.99) / 1000.0,
            pick(r).deviation.quantile(0.99) / 1000.0,
            "ms",
        );
        row(
            &format!("RFC 3550 jitter p99, {label}"),
            pick(p).jitter.quantile(0.99) / 1000.0,
            pick(r).jitter.quantile(0.99) / 1000.0,
            "ms",
        );
    }
    println!(
        "\nCPU per packet divides the server's CPU by the packets it was sent \
         ({} per second); the load itself adds the same jitter to both.",
        p.streams * 50
    );
}
