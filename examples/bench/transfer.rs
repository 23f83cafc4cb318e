//! `transfer` mode: with `--calls` callers held (sipp on its own core, music to
//! our receiver), transfers `--transfers` of them one after another to a
//! room the bench runs itself (pinless's SIP stack as a UAS, so the moment
//! the INVITE arrives and the moment the 200 OK leaves are read on the same
//! clock as the update). For each transfer:
//! - update → room INVITE: from writing the update request to the room
//!   holding the INVITE;
//! - room 200 OK → first relayed packet: from just before the room answers
//!   (and starts sending its audio, a payload the music never has) to the
//!   kernel receive time of that audio's first packet at the caller;
//! - gap at the switch: between the caller's last music packet and that
//!   first room packet (same stream: pinless keeps SSRC and sequence).

use crate::receiver::Receiver;
use crate::{Args, free_port, quantile, ramp, sink, start_callers, start_pinless};
use pinless::media::rtp::{HEADER_LEN, Header};
use pinless::sip::{IncomingInvite, Stack, StackConfig, sdp};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;

/// The room's audio: every payload byte this value.
const ROOM_BYTE: u8 = 0x5A;

/// What one transfer measured, ms.
struct Sample {
    update_to_invite: f64,
    ok_to_audio: f64,
    gap: f64,
}

pub fn run(args: &Args, dir: &Path) -> Result<(), String> {
    let rx = Receiver::start().map_err(|e| e.to_string())?;
    let (hook, arrivals) = sink::start().map_err(|e| e.to_string())?;
    let sip = free_port();
    let (mut server, api) = start_pinless(dir, sip, args.calls, hook, &args.shards)?;
    std::thread::sleep(Duration::from_millis(800));
    let (_, ramp) = ramp(args.calls);
    let hold = ramp + Duration::from_secs(60 + u64::from(args.transfers) / 5);
    let mut callers = start_callers(sip, rx.addr.port(), args.calls, hold, dir, "transfer")?;

    // Every caller held and announced: collect the call ids.
    let by = Instant::now() + ramp + Duration::from_secs(15);
    let calls = sink::calls(&arrivals, args.calls as usize, by)?;
    while rx.ssrcs() < args.calls as usize && Instant::now() < by {
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(args.settle));
    rx.watch(ROOM_BYTE);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let transfers = calls.iter().take(args.transfers as usize);
    let result = runtime.block_on(transfer_all(transfers, api, &rx));
    let _ = server.kill();
    let _ = server.wait();
    let _ = callers.kill();
    let _ = callers.wait();
    let (samples, failures) = result?;
    table(args, &samples, failures);
    Ok(())
}

/// Transfers each call in turn; returns the samples and how many failed.
async fn transfer_all<'a>(
    calls: impl Iterator<Item = &'a (String, String)>,
    api: SocketAddr,
    rx: &Receiver,
) -> Result<(Vec<Sample>, usize), String> {
    let (room, mut invites, room_addr) = room().await?;
    let audio = std::sync::Arc::new(
        tokio::net::UdpSocket::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?,
    );
    let audio_addr = audio.local_addr().map_err(|e| e.to_string())?;
    let http = reqwest::Client::new();
    let url = format!("http://{api}/v1/dialin/pinlessCallUpdate");
    let (mut samples, mut failures) = (Vec::new(), 0);
    // Room legs and their audio stay up until the end, like real rooms.
    let mut legs = Vec::new();
    for (i, (call_id, domain)) in calls.enumerate() {
        let body = serde_json::json!({
            "callId": call_id,
            "callDomain": domain,
            "sipUri": format!("sip:room{i}@{room_addr}"),
        });
        let asked = Instant::now();
        let update = http.post(&url).bearer_auth("bench").json(&body).send();
        let update = tokio::spawn(update);
        let Ok(Some(invite)) = tokio::time::timeout(Duration::from_secs(5), invites.recv()).await
        else {
            failures += 1;
            continue;
        };
        let update_to_invite = asked.elapsed();
        match update.await {
            Ok(Ok(r)) if r.status().is_success() => {}
            _ => {
                failures += 1;
                continue;
            }
        }
        let Ok(offer) = sdp::parse(&invite.info.sdp) else {
            failures += 1;
            continue;
        };
        let answer = sdp::answer(audio_addr.ip(), audio_addr.port(), offer.choose());
        let answered = SystemTime::now();
        legs.push(tokio::spawn(send_room_audio(
            audio.clone(),
            offer.addr,
            offer.choose().payload_type,
        )));
        match invite.accept(&room, answer).await {
            Ok(leg) => legs.push(tokio::spawn(async move {
                let _leg = leg;
                std::future::pending::<()>().await
            })),
            Err(_) => {
                failures += 1;
                continue;
            }
        }
        let by = Instant::now() + Duration::from_secs(3);
        let switch = loop {
            if let Some(s) = rx.switches().get(samples.len()).copied() {
                break Some(s);
            }
            if Instant::now() > by {
                break None;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        };
        let Some(switch) = switch else {
            failures += 1;
            continue;
        };
        let answered_ns = answered
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as i128)
            .unwrap_or(0);
        samples.push(Sample {
            update_to_invite: update_to_invite.as_secs_f64() * 1000.0,
            ok_to_audio: (switch.at_ns - answered_ns) as f64 / 1e6,
            gap: switch.gap_ns as f64 / 1e6,
        });
    }
    for l in legs {
        l.abort();
    }
    Ok((samples, failures))
}

/// A SIP stack on a free loopback UDP port that stands for the rooms;
/// returns it, its INVITEs and its address.
pub async fn room() -> Result<(Stack, mpsc::Receiver<IncomingInvite>, SocketAddr), String> {
    let (stack, invites) = Stack::start(StackConfig {
        udp: Some(([127, 0, 0, 1], 0).into()),
        tcp: None,
        tls: None,
        tls_connector: None,
        public_host: "127.0.0.1".into(),
        invite_queue: 64,
    })
    .await
    .map_err(|e| e.to_string())?;
    let addr = stack.udp_addr().ok_or("room has no UDP address")?;
    Ok((stack, invites, addr))
}

/// A room's audio: `ROOM_BYTE` payloads every 20 ms to `to`, from the
/// moment it answers.
async fn send_room_audio(socket: std::sync::Arc<tokio::net::UdpSocket>, to: SocketAddr, pt: u8) {
    let ssrc = rand::random();
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    for i in 0u32.. {
        tick.tick().await;
        let mut head = [0u8; HEADER_LEN];
        Header {
            marker: i == 0,
            payload_type: pt,
            sequence: i as u16,
            timestamp: i.wrapping_mul(160),
            ssrc,
        }
        .write(&mut head);
        let mut packet = [ROOM_BYTE; HEADER_LEN + 160];
        packet[..HEADER_LEN].copy_from_slice(&head);
        let _ = socket.send_to(&packet, to).await;
    }
}

fn table(args: &Args, samples: &[Sample], failures: usize) {
    println!(
        "\ntransfer: {} transfers, one at a time, with {} calls held; pinless pinned to cores {}\n",
        args.transfers, args.calls, args.shards.cores
    );
    println!("| metric | p50 | p99 | max | target |");
    println!("|---|---|---|---|---|");
    type Row = (&'static str, fn(&Sample) -> f64, &'static str);
    let rows: [Row; 3] = [
        ("update → room INVITE", |s| s.update_to_invite, "p99 ≤ 2 ms"),
        (
            "room 200 OK → first relayed packet at the caller",
            |s| s.ok_to_audio,
            "p99 ≤ 25 ms",
        ),
        (
            "caller's audio gap at the switch",
            |s| s.gap,
            "none over 40 ms",
        ),
    ];
    for (name, value, target) in rows {
        let mut v: Vec<f64> = samples.iter().map(value).collect();
        v.sort_by(f64::total_cmp);
        println!(
            "| {name} | {:.2} ms | {:.2} ms | {:.2} ms | {target} |",
            quantile(&v, 0.5),
            quantile(&v, 0.99),
            v.last().copied().unwrap_or(f64::NAN)
        );
    }
    println!(
        "\ntransfers measured: {}; failed: {failures}",
        samples.len()
    );
}
