//! `hold --srtp` and `relay --srtp`: what SRTP costs per packet. The same
//! gateway (SIP over TLS, entry `media_encryption = "allow"`) is measured
//! twice in one run, on the same load: once with callers (and rooms)
//! offering plain RTP, once offering SRTP (SDES, AES_CM_128_HMAC_SHA1_80);
//! one table, side by side, with the ratio and the difference per packet.
//!
//! sipp speaks no TLS, so the callers here are the bench's own, on
//! pinless's SIP stack over TLS (a self-signed certificate the gateway
//! and the bench both trust). The relay's load encrypts each stream with
//! its leg's keys (SRTP headers are in clear, so the receivers measure
//! SRTP as they measure RTP). `relay --srtp` then runs rtpengine
//! (userspace) on the same SRTP streams as the baseline.

use crate::load::{Load, Stream, Voice};
use crate::ng::{Ng, audio_port};
use crate::receiver::{Receiver, Stats};
use crate::{Args, free_port, proc, ramp, row, sink};
use pinless::codec::AudioCodec;
use pinless::media::{LegKeys, SrtpLeg};
use pinless::sdes::{MasterKey, Suite};
use pinless::sip::{
    DialOutcome, Dialing, IncomingInvite, Leg, OutboundRequest, Stack, StackConfig, crypto, sdp,
};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

const SUITE: Suite = Suite::AesCm128HmacSha1_80;

/// The certificate files of a run.
pub struct Cert {
    cert: PathBuf,
    key: PathBuf,
}

pub fn cert(dir: &Path) -> Result<Cert, String> {
    let made =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).map_err(|e| e.to_string())?;
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, made.cert.pem()).map_err(|e| e.to_string())?;
    std::fs::write(&key, made.key_pair.serialize_pem()).map_err(|e| e.to_string())?;
    Ok(Cert { cert, key })
}

/// A SIP stack on loopback that speaks TLS (listening too, for rooms).
async fn tls_stack(cert: &Cert) -> Result<(Stack, mpsc::Receiver<IncomingInvite>), String> {
    let acceptor = pinless::sip::tls::acceptor(&cert.cert, &cert.key).map_err(|e| e.to_string())?;
    let connector = pinless::sip::tls::connector(Some(&cert.cert)).map_err(|e| e.to_string())?;
    Stack::start(StackConfig {
        udp: Some(([127, 0, 0, 1], 0).into()),
        tcp: None,
        tls: Some((([127, 0, 0, 1], 0).into(), acceptor)),
        tls_connector: Some(connector),
        public_host: "127.0.0.1".into(),
        invite_queue: 1024,
    })
    .await
    .map_err(|e| e.to_string())
}

/// The release gateway with a TLS listener on `tls` and an `allow` entry.
fn start_gateway(
    dir: &Path,
    tls: u16,
    args: &Args,
    hook: SocketAddr,
    cert: &Cert,
) -> Result<(Child, SocketAddr), String> {
    let sip = format!(
        "tls = \"127.0.0.1:{tls}\"\ntls_cert = \"{c}\"\ntls_key = \"{k}\"\ntls_ca = \"{c}\"\n",
        c = cert.cert.display(),
        k = cert.key.display()
    );
    crate::start_pinless_with(
        dir,
        free_port(),
        args.calls,
        hook,
        &args.shards,
        [
            &sip,
            // Opus for `relay --opus` (callers of the other runs offer
            // PCMU only, and rooms take it).
            "codecs = [\"PCMU\", \"PCMA\", \"opus\"]\n",
            "media_encryption = \"allow\"\n",
        ],
    )
}

/// One call placed by the bench: its leg, the gateway's media address
/// for it, and the caller's SRTP (None for plain).
struct Placed {
    _leg: Leg,
    gateway: SocketAddr,
    srtp: Option<Arc<SrtpLeg>>,
}

/// Places `args.calls` calls over TLS to the gateway at `tls`, at the
/// `ramp` rate, each offering media at `media` (SRTP when `srtp`), with
/// `X-Bench: <i>` so the webhook says which is which.
async fn place_calls(
    stack: &Stack,
    tls: u16,
    media: SocketAddr,
    args: &Args,
    srtp: bool,
    codec: AudioCodec,
) -> Result<Vec<Placed>, String> {
    // TLS set-ups cost more than sipp's UDP INVITEs: a gentler ramp.
    let rate = ramp(args.calls).0.min(50);
    let gap = Duration::from_secs_f64(1.0 / f64::from(rate));
    let mut pending = Vec::new();
    for i in 0..args.calls {
        let key = srtp.then(|| MasterKey::fresh(SUITE));
        let plain = sdp::offer_of(media.ip(), media.port(), &[codec]);
        let offer = match &key {
            Some(k) => crypto::secure(plain, true, &[(1, k)]),
            None => plain,
        };
        let request = OutboundRequest {
            target: format!("sip:support@127.0.0.1:{tls};transport=tls"),
            from: "sip:+15557654321@127.0.0.1".into(),
            headers: vec![("X-Bench".into(), i.to_string())],
            sdp: offer,
            ring_timeout: Some(Duration::from_secs(30)),
            trace: None,
        };
        let stack = stack.clone();
        pending.push(tokio::spawn(async move {
            // A TLS connection refused under the burst of connects is
            // tried again (the call never reached the gateway).
            let mut outcome = Dialing::start(&stack, request.clone()).outcome().await;
            // So is a 503: a burst of TLS set-ups on a small machine can
            // make the shard late for a moment, and it refuses new calls
            // until it keeps up again.
            for _ in 0..10 {
                let again = matches!(
                    outcome,
                    DialOutcome::Failed(_) | DialOutcome::Rejected { code: 503, .. }
                );
                if !again {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
                outcome = Dialing::start(&stack, request.clone()).outcome().await;
            }
            (outcome, key)
        }));
        tokio::time::sleep(gap).await;
    }
    let mut placed = Vec::new();
    for p in pending {
        let (outcome, key) = p.await.map_err(|e| e.to_string())?;
        let DialOutcome::Answered { leg, sdp: body } = outcome else {
            return Err(format!("a call was not answered: {outcome:?}"));
        };
        let gateway = sdp::parse(&body).map_err(|e| e.to_string())?.addr;
        let srtp = match key {
            None => None,
            Some(local) => {
                let line = crypto::read(&body)
                    .lines
                    .into_iter()
                    .next()
                    .ok_or("the gateway answered an SRTP offer without SRTP")?;
                let keys = LegKeys {
                    local,
                    remote: line.key,
                };
                Some(Arc::new(SrtpLeg::new(keys).map_err(|e| e.to_string())?))
            }
        };
        placed.push(Placed {
            _leg: leg,
            gateway,
            srtp,
        });
    }
    Ok(placed)
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
}

/// What one run measured.
pub struct Measured {
    pub cpu_pct: f64,
    pub stats: Stats,
    /// Packets the server sent (hold) or was sent (relay) per second.
    pub packets_per_sec: f64,
}

impl Measured {
    pub fn us_per_packet(&self) -> f64 {
        self.cpu_pct / 100.0 * 1e6 / self.packets_per_sec.max(1.0)
    }
}

fn cpu_over(pid: u32, secs: u64) -> Result<f64, String> {
    let cpu0 = proc::cpu_secs(pid).ok_or("server process gone")?;
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(secs));
    let cpu1 = proc::cpu_secs(pid).ok_or("server process gone")?;
    Ok((cpu1 - cpu0) / t0.elapsed().as_secs_f64() * 100.0)
}

fn stop(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// `hold --srtp`.
pub fn hold(args: &Args, dir: &Path) -> Result<(), String> {
    let cert = cert(dir)?;
    let rx = Receiver::start().map_err(|e| e.to_string())?;
    let mut runs = Vec::new();
    for srtp in [false, true] {
        let (hook, _arrivals) = sink::start().map_err(|e| e.to_string())?;
        let tls = free_port();
        let (mut server, _) = start_gateway(dir, tls, args, hook, &cert)?;
        std::thread::sleep(Duration::from_millis(800));
        let rt = runtime()?;
        let result = (|| -> Result<Measured, String> {
            let (stack, _invites) = rt.block_on(tls_stack(&cert))?;
            let calls = rt.block_on(place_calls(
                &stack,
                tls,
                rx.addr,
                args,
                srtp,
                AudioCodec::Pcmu,
            ))?;
            if srtp && calls.iter().any(|c| c.srtp.is_none()) {
                return Err("a call without SRTP".to_string());
            }
            std::thread::sleep(Duration::from_secs(args.settle.max(2)));
            rx.record();
            let cpu_pct = cpu_over(server.id(), args.secs)?;
            let stats = rx.finish();
            drop(calls);
            drop(stack);
            Ok(Measured {
                cpu_pct,
                stats,
                packets_per_sec: f64::from(args.calls) * 50.0,
            })
        })();
        stop(&mut server);
        rx.reset();
        drop(rt);
        runs.push(result?);
    }
    let (srtp, plain) = (&runs[1], &runs[0]);
    println!(
        "\nhold --srtp: {} calls held over TLS for {} s, each run; server pinned to cores {}\n",
        args.calls, args.secs, args.shards.cores
    );
    table(plain, srtp, f64::from(args.calls) * 50.0 * args.secs as f64);
    Ok(())
}

/// One relay run: SRTP or not, the callers' codec and the rooms'.
#[derive(Clone, Copy)]
pub struct Variant {
    pub srtp: bool,
    pub caller: AudioCodec,
    pub room: AudioCodec,
}

impl Variant {
    pub const PLAIN: Variant = Variant {
        srtp: false,
        caller: AudioCodec::Pcmu,
        room: AudioCodec::Pcmu,
    };
}

fn voice(codec: AudioCodec) -> Arc<Voice> {
    Arc::new(match codec {
        AudioCodec::Opus => Voice::opus(),
        _ => Voice::pcmu(),
    })
}

/// Runs the relay once per variant, each on a fresh gateway with the same
/// load (`args.calls` calls over TLS, audio both ways); what each measured.
pub fn relay_variants(
    args: &Args,
    dir: &Path,
    cert: &Cert,
    a: &Receiver,
    b: &Receiver,
    variants: &[Variant],
) -> Result<Vec<Measured>, String> {
    let mut runs = Vec::new();
    for v in variants {
        let (hook, arrivals) = sink::start().map_err(|e| e.to_string())?;
        let tls = free_port();
        let (mut server, api) = start_gateway(dir, tls, args, hook, cert)?;
        std::thread::sleep(Duration::from_millis(800));
        let rt = runtime()?;
        let result = (|| -> Result<Measured, String> {
            let (stack, _) = rt.block_on(tls_stack(cert))?;
            let calls = rt.block_on(place_calls(&stack, tls, a.addr, args, v.srtp, v.caller))?;
            let by = Instant::now() + Duration::from_secs(15);
            let ids = sink::calls_by_header(&arrivals, calls.len(), by, "X-Bench")?;
            let (room, invites) = rt.block_on(tls_stack(cert))?;
            let (rooms, _room_legs) = rt.block_on(bridge_all(
                &ids, api, &room, invites, b.addr, v.srtp, v.room,
            ))?;
            let (caller_voice, room_voice) = (voice(v.caller), voice(v.room));
            let from_a = Arc::new(a.sender.try_clone().map_err(|e| e.to_string())?);
            let from_b = Arc::new(b.sender.try_clone().map_err(|e| e.to_string())?);
            let mut streams: Vec<Stream> = Vec::new();
            for (i, call) in calls.iter().enumerate() {
                let (room_gw, room_srtp) = rooms
                    .get(&(i as u32))
                    .ok_or(format!("call {i} was not bridged"))?;
                let to_caller_side = (from_a.clone(), call.gateway, call.srtp.clone());
                streams.push((
                    to_caller_side.0,
                    to_caller_side.1,
                    to_caller_side.2,
                    caller_voice.clone(),
                ));
                streams.push((
                    from_b.clone(),
                    *room_gw,
                    room_srtp.clone(),
                    room_voice.clone(),
                ));
            }
            let measured = measure(server.id(), args, a, b, streams);
            drop(calls);
            drop(stack);
            drop(room);
            measured
        })();
        stop(&mut server);
        a.reset();
        b.reset();
        drop(rt);
        runs.push(result?);
    }
    Ok(runs)
}

/// `relay --srtp`.
pub fn relay(args: &Args, dir: &Path) -> Result<(), String> {
    let cert = cert(dir)?;
    let (a, b) = (crate::relay::receiver()?, crate::relay::receiver()?);
    let secure = Variant {
        srtp: true,
        ..Variant::PLAIN
    };
    let runs = relay_variants(args, dir, &cert, &a, &b, &[Variant::PLAIN, secure])?;
    let rtpengine = rtpengine_srtp(args, dir, &a, &b);
    let (plain, srtp) = (&runs[0], &runs[1]);
    println!(
        "\nrelay --srtp: {} bridged calls over TLS, audio both ways ({} streams at 50 \
         packets/s) for {} s, each run; server pinned to cores {}\n",
        args.calls,
        args.calls * 2,
        args.secs,
        args.shards.cores
    );
    let expected = f64::from(args.calls) * 2.0 * 50.0 * args.secs as f64;
    table(plain, srtp, expected);
    match rtpengine {
        Ok(r) => {
            println!(
                "\nThe same SRTP relay (both legs SDES, AES_CM_128_HMAC_SHA1_80), against rtpengine in userspace:\n"
            );
            println!("| metric | pinless SRTP | rtpengine SRTP (baseline) | ratio |");
            println!("|---|---|---|---|");
            row(
                "CPU per packet",
                srtp.us_per_packet(),
                r.us_per_packet(),
                "µs",
            );
            row("CPU", srtp.cpu_pct, r.cpu_pct, "% core");
            row(
                "packets received",
                srtp.stats.packets as f64,
                r.stats.packets as f64,
                "",
            );
            row(
                "packets lost (sequence gaps)",
                srtp.stats.lost as f64,
                r.stats.lost as f64,
                "",
            );
        }
        Err(e) => println!("\nrtpengine SRTP baseline not measured: {e}"),
    }
    Ok(())
}

/// Sends `streams` for `settle` + `secs` and measures the server `pid`
/// over the window: CPU, and what both sides received.
fn measure(
    pid: u32,
    args: &Args,
    a: &Receiver,
    b: &Receiver,
    streams: Vec<Stream>,
) -> Result<Measured, String> {
    let count = streams.len();
    let load = Load::start_streams(streams).map_err(|e| e.to_string())?;
    std::thread::sleep(Duration::from_secs(args.settle.max(2)));
    a.record();
    b.record();
    let cpu_pct = cpu_over(pid, args.secs)?;
    let (sa, sb) = (a.finish(), b.finish());
    drop(load);
    let mut stats = sa;
    stats.packets += sb.packets;
    stats.lost += sb.lost;
    Ok(Measured {
        cpu_pct,
        stats,
        packets_per_sec: count as f64 * 50.0,
    })
}

/// rtpengine (userspace) relaying the same SRTP streams: each side offers
/// and answers `RTP/SAVP` with its own SDES key; rtpengine decrypts with
/// one side's key and encrypts with its own key toward the other side,
/// as pinless does.
fn rtpengine_srtp(args: &Args, dir: &Path, a: &Receiver, b: &Receiver) -> Result<Measured, String> {
    a.reset();
    b.reset();
    let (mut server, ng_port) = crate::relay::start_rtpengine(args, dir, "rtpengine-srtp.log")?;
    let result = (|| -> Result<Measured, String> {
        let mut ng = Ng::new(([127, 0, 0, 1], ng_port).into()).map_err(|e| e.to_string())?;
        let sdp_at = |port: u16, tag: u32, key: &MasterKey| {
            format!(
                "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
                 m=audio {port} RTP/SAVP 0\r\na=rtpmap:0 PCMU/8000\r\n\
                 a=crypto:{tag} {} inline:{}\r\na=sendrecv\r\n",
                key.suite.name(),
                key.inline()
            )
        };
        let from_a = Arc::new(a.sender.try_clone().map_err(|e| e.to_string())?);
        let from_b = Arc::new(b.sender.try_clone().map_err(|e| e.to_string())?);
        let mut streams: Vec<Stream> = Vec::new();
        for i in 0..args.calls {
            let call = format!("bench-srtp-{i}");
            let ka = MasterKey::fresh(SUITE);
            let offer = ng.sdp(&[
                ("command", "offer"),
                ("call-id", &call),
                ("from-tag", "a"),
                ("sdp", &sdp_at(a.addr.port(), 1, &ka)),
            ])?;
            // rtpengine's offer to the room carries its own keys.
            let to_room = crypto::read(offer.as_bytes())
                .lines
                .into_iter()
                .find(|l| l.key.suite == SUITE)
                .ok_or("rtpengine's offer has no AES_CM_128_HMAC_SHA1_80 line")?;
            let kb = MasterKey::fresh(SUITE);
            let answer = ng.sdp(&[
                ("command", "answer"),
                ("call-id", &call),
                ("from-tag", "a"),
                ("to-tag", "b"),
                ("sdp", &sdp_at(b.addr.port(), to_room.tag, &kb)),
            ])?;
            let to_caller = crypto::read(answer.as_bytes())
                .lines
                .into_iter()
                .next()
                .ok_or("rtpengine's answer has no a=crypto line")?;
            let b_port = audio_port(&offer).ok_or("offer without m=audio")?;
            let a_port = audio_port(&answer).ok_or("answer without m=audio")?;
            let leg = |local: MasterKey, remote: MasterKey| {
                SrtpLeg::new(LegKeys { local, remote })
                    .map(Arc::new)
                    .map_err(|e| e.to_string())
            };
            streams.push((
                from_a.clone(),
                ([127, 0, 0, 1], a_port).into(),
                Some(leg(ka, to_caller.key)?),
                voice(AudioCodec::Pcmu),
            ));
            streams.push((
                from_b.clone(),
                ([127, 0, 0, 1], b_port).into(),
                Some(leg(kb, to_room.key)?),
                voice(AudioCodec::Pcmu),
            ));
        }
        measure(server.id(), args, a, b, streams)
    })();
    stop(&mut server);
    result
}

/// Per call index: where the gateway wants the room's audio, the room's SRTP.
type RoomMedia = std::collections::HashMap<u32, (SocketAddr, Option<Arc<SrtpLeg>>)>;

/// Transfers every call (`X-Bench` index → callId, callDomain) to a room
/// on `room` over TLS, SRTP when `srtp`; the room answers with its media
/// at `media`. Returns each call's room media and the room legs (up while
/// kept).
async fn bridge_all(
    ids: &std::collections::HashMap<u32, (String, String)>,
    api: SocketAddr,
    room: &Stack,
    mut invites: mpsc::Receiver<IncomingInvite>,
    media: SocketAddr,
    srtp: bool,
    codec: AudioCodec,
) -> Result<(RoomMedia, Vec<Leg>), String> {
    let room_tls = room.tls_addr().ok_or("room has no TLS address")?;
    let http = reqwest::Client::new();
    let url = format!("http://{api}/v1/dialin/pinlessCallUpdate");
    let mut out = std::collections::HashMap::new();
    let mut legs = Vec::new();
    let mut order: Vec<_> = ids.iter().collect();
    order.sort_by_key(|(i, _)| **i);
    for (i, (call_id, domain)) in order {
        let mut body = serde_json::json!({
            "callId": call_id,
            "callDomain": domain,
            "sipUri": format!("sip:room{i}@{room_tls};transport=tls"),
        });
        if srtp {
            body["mediaEncryption"] = "require".into();
        }
        let update = tokio::spawn(http.post(&url).bearer_auth("bench").json(&body).send());
        let invite = tokio::time::timeout(Duration::from_secs(5), invites.recv())
            .await
            .ok()
            .flatten()
            .ok_or(format!("no room INVITE for call {i}"))?;
        let _ = update.await;
        let mut offer = sdp::parse(&invite.info.sdp).map_err(|e| e.to_string())?;
        offer.codecs.retain(|(_, c)| *c == codec);
        if offer.codecs.is_empty() {
            return Err(format!(
                "the room was not offered {}",
                codec.encoding_name()
            ));
        }
        let plain = sdp::answer(media.ip(), media.port(), offer.choose());
        let (answer, leg_srtp) = match crypto::read(&invite.info.sdp).pick() {
            Some(line) if srtp => {
                let local = MasterKey::fresh(line.key.suite);
                let answer = crypto::secure(plain, true, &[(line.tag, &local)]);
                let keys = LegKeys {
                    local,
                    remote: line.key.clone(),
                };
                let leg = SrtpLeg::new(keys).map_err(|e| e.to_string())?;
                (answer, Some(Arc::new(leg)))
            }
            _ => (plain, None),
        };
        legs.push(
            invite
                .accept(room, answer)
                .await
                .map_err(|e| e.to_string())?,
        );
        out.insert(*i, (offer.addr, leg_srtp));
    }
    Ok((out, legs))
}

fn table(plain: &Measured, srtp: &Measured, expected: f64) {
    println!("| metric | SRTP | plain RTP | ratio |");
    println!("|---|---|---|---|");
    row(
        "CPU per packet",
        srtp.us_per_packet(),
        plain.us_per_packet(),
        "µs",
    );
    row("CPU", srtp.cpu_pct, plain.cpu_pct, "% core");
    row(
        "packets received",
        srtp.stats.packets as f64,
        plain.stats.packets as f64,
        "",
    );
    row(
        "packets on time (received / expected)",
        srtp.stats.packets as f64 / expected * 100.0,
        plain.stats.packets as f64 / expected * 100.0,
        "%",
    );
    row(
        "packets lost (sequence gaps)",
        srtp.stats.lost as f64,
        plain.stats.lost as f64,
        "",
    );
    row(
        "interval deviation p99",
        srtp.stats.deviation.quantile(0.99) / 1000.0,
        plain.stats.deviation.quantile(0.99) / 1000.0,
        "ms",
    );
    println!(
        "\nSRTP costs {:.2} µs of CPU per packet over plain RTP (AES_CM_128_HMAC_SHA1_80, \
         the rtc-srtp crate on ring).",
        srtp.us_per_packet() - plain.us_per_packet()
    );
}
