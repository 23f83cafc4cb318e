//! A call's media task, on its shard's runtime until the call's
//! `CallMedia` is dropped. One loop waits on everything the call's media
//! does: the handle's commands (switching what the caller hears, see
//! `Mode`), the caller's packets, the room's while bridged, RTCP on the
//! legs' second ports as life, and the end of a key press whose end
//! packet got lost.
//!
//! The caller's stream (SSRC, sequence, timestamp) is one for the whole
//! call: whoever has it (the pacer, or a relay's rewriter) gives it to the
//! next at each switch. The caller's telephone-events are read as key
//! presses (`dtmf`) whatever the mode, and reported to the call's driver.

use super::command::{Command, CommandRx};
use super::leg::{Leg, with_received};
use super::mode::Mode;
use super::relay::Relay;
use super::start::{LegStart, Start, Then};
use crate::clock::unix_ms;
use crate::codec::DtmfPress;
use crate::media::bot::{self, Uplink};
use crate::media::dtmf::DtmfDetector;
use crate::media::hold::HoldLoop;
use crate::media::liveness::{Liveness, MediaLeg};
use crate::media::pacer::{NewStream, Pacer, StreamState};
use crate::media::record::Tap;
use crate::media::rewrite::Rewriter;
use crate::media::rtp;
use crate::media::state::{MediaState, StreamPosition};
use crate::media::stats::{ShardStats, StreamsHeld};
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;

/// `sender` is the caller's socket as the pacer sends from it (a clone);
/// `dtmf` gets the caller's key presses. Returns when the handle is gone.
pub(super) async fn run(
    s: Start,
    sender: Arc<UdpSocket>,
    mut commands: CommandRx,
    dtmf: mpsc::UnboundedSender<DtmfPress>,
) {
    let Some(mut task) = Task::open(s, sender, dtmf) else {
        return;
    };
    loop {
        tokio::select! {
            command = commands.recv() => match command {
                Some(command) => task.command(*command).await,
                None => break,
            },
            // The datagram is in the shard's buffer (`leg::with_received`)
            // until this task's next await.
            got = task.caller.datagram() => {
                if let Ok((n, src)) = got {
                    with_received(|buf| task.caller_packet(buf, n, src));
                }
            },
            got = room_datagram(task.mode.room()) => {
                if let Ok((n, src)) = got {
                    with_received(|buf| task.room_packet(buf, n, src));
                }
            },
            () = press_over(task.presses.deadline()) => task.press_timed_out(),
            () = task.caller.rtcp(&task.liveness) => {},
            () = room_rtcp(task.mode.room(), &task.liveness) => {},
        }
    }
    if task.mode.paced() {
        task.pacer.remove(task.id).await;
    }
}

struct Task {
    id: u64,
    caller: Leg,
    mode: Mode,
    /// The caller's stream's SSRC, kept should the pacer lose the stream.
    ssrc: u32,
    /// The caller's socket as the pacer sends from it.
    sender: Arc<UdpSocket>,
    pacer: Pacer,
    stats: Arc<ShardStats>,
    /// The call's count in its shard's streams: 1 paced, 2 bridged.
    streams: StreamsHeld,
    liveness: Arc<Liveness>,
    presses: DtmfDetector,
    dtmf: mpsc::UnboundedSender<DtmfPress>,
    /// The call's recording, while one runs.
    tap: Option<Tap>,
}

impl Task {
    /// The task's legs registered on the shard (None, and the call's media
    /// is over, when that fails), and the caller's stream given to the
    /// pacer when the call starts held.
    fn open(
        s: Start,
        sender: Arc<UdpSocket>,
        dtmf: mpsc::UnboundedSender<DtmfPress>,
    ) -> Option<Task> {
        let caller = Leg::open(s.caller, MediaLeg::Caller).ok()?;
        let presses = DtmfDetector::at_clock(caller.codec().audio.clock_rate());
        let (mode, music) = match s.then {
            Then::Play(music) => (Mode::Held, Some(music)),
            Then::Relay(room, rewriter) => {
                let room = Leg::open(room, MediaLeg::Room).ok()?;
                let relay = Relay::new(room, rewriter, caller.codec());
                (Mode::Bridged(Box::new(relay)), None)
            }
        };
        let task = Task {
            id: s.id,
            caller,
            mode,
            ssrc: s.stream.ssrc,
            sender,
            pacer: s.pacer,
            stats: s.stats,
            streams: s.streams,
            liveness: s.liveness,
            presses,
            dtmf,
            tap: None,
        };
        if let Some(music) = music {
            task.pace(music, s.stream);
        }
        Some(task)
    }

    async fn command(&mut self, command: Command) {
        match command {
            Command::Bridge {
                room,
                remote,
                codec,
                sends,
                srtp,
                done,
            } => {
                let start = LegStart {
                    socket: room,
                    remote,
                    latched: false,
                    codec,
                    sends,
                    srtp,
                };
                // Unusable: `done` is dropped, and the switch refused.
                let Ok(room) = Leg::open(start, MediaLeg::Room) else {
                    return;
                };
                // From music, a bot or another room (a re-transfer):
                // either way the caller's stream continues.
                let stream = self.take_stream().await;
                let frame_ticks = self.caller.codec().audio.ticks_per_frame();
                let rewriter = Rewriter::new(stream, frame_ticks);
                let relay = Relay::new(room, rewriter, self.caller.codec());
                self.mode = Mode::Bridged(Box::new(relay));
                self.liveness.set_room(Some(sends));
                self.streams.set(2);
                let _ = done.send(());
            }
            Command::Play { source, done } => {
                let stream = self.take_stream().await;
                self.pace(source, stream);
                self.mode = Mode::Held;
                self.liveness.set_room(None);
                self.streams.set(1);
                let _ = done.send(());
            }
            Command::Bot {
                queue,
                to_bot,
                done,
            } => {
                if !self.mode.paced() {
                    // From a room: the pacer takes the caller's stream back
                    // where the relay left it.
                    let stream = self.take_stream().await;
                    self.pace(bot::silence(), stream);
                    self.liveness.set_room(None);
                    self.streams.set(1);
                }
                // Applied by the pacer right after the stream's `Add`
                // above, before its next send: no frame of music between.
                self.pacer.set_bot(self.id, Some(queue.clone()));
                self.mode = Mode::Bot(Box::new(Uplink::new(queue, to_bot)));
                let _ = done.send(());
            }
            Command::Prompt { prompt, done } => {
                // Only the pacer plays prompts: with a room, `done` is
                // dropped and the prompt refused.
                if self.mode.paced() {
                    self.pacer.prompt(self.id, prompt, done);
                }
            }
            Command::Record(tap) => {
                if self.mode.paced() {
                    self.pacer.set_tap(self.id, tap.clone());
                }
                self.tap = tap;
            }
            Command::Quality { reply } => {
                let room = self.mode.relay().map(|r| r.room().quality());
                let caller = self.caller.quality();
                let _ = reply.send(super::CallQuality { caller, room });
            }
            Command::State { reply } => {
                // No stream (the pacer is gone): the reply is dropped and
                // the caller of `state` gets None.
                if let Some(state) = self.state().await {
                    let _ = reply.send(state);
                }
            }
        }
    }

    /// Takes the caller's stream from whoever has it, the pacer or the
    /// relay (which is let go), to give it to the next. The mode is left
    /// at `Held` for the caller to set.
    async fn take_stream(&mut self) -> StreamState {
        let taken = match std::mem::replace(&mut self.mode, Mode::Held) {
            Mode::Held | Mode::Bot(_) => self.pacer.remove(self.id).await,
            Mode::Bridged(relay) => Some(relay.stream()),
        };
        // The pacer lost it (it is stopping): a fresh one, same SSRC.
        taken.unwrap_or(StreamState {
            ssrc: self.ssrc,
            next_sequence: rand::random(),
            next_timestamp: rand::random(),
            last_sent: None,
        })
    }

    /// Gives the caller's stream to the pacer, playing `source` from
    /// `stream` on, from the caller's port to where the caller is.
    fn pace(&self, source: Arc<HoldLoop>, stream: StreamState) {
        let codec = self.caller.codec();
        self.pacer.add(NewStream {
            id: self.id,
            source,
            socket: self.sender.clone(),
            remote: self.caller.remote(),
            codec,
            state: stream,
            srtp: self.caller.srtp().cloned(),
            tap: self.tap.clone(),
        });
    }

    /// The datagram `buf[..n]` from `src` on the caller's port.
    fn caller_packet(&mut self, buf: &mut [u8], n: usize, src: SocketAddr) {
        let Some(got) = self
            .caller
            .receive(buf, n, src, &self.liveness, &self.stats.relay)
        else {
            return;
        };
        if let Some(to) = got.moved_to
            && self.mode.paced()
        {
            self.pacer.set_remote(self.id, to);
        }
        let packet = &mut buf[..got.len];
        let codec = self.caller.codec();
        if let Some((header, payload)) = rtp::parse(packet) {
            self.caller.heard(&header);
            if let Some(tap) = &self.tap
                && let Some(audio) = codec.audio_of(header.payload_type)
            {
                tap.caller(audio, &packet[payload.clone()]);
            }
            if Some(header.payload_type) == codec.event_payload_type {
                let ended = self.presses.packet(
                    header.ssrc,
                    header.timestamp,
                    &packet[payload],
                    Instant::now(),
                );
                for press in ended {
                    let _ = self.dtmf.send(press);
                }
            }
        }
        match &mut self.mode {
            Mode::Held => {}
            Mode::Bot(uplink) => uplink.packet(packet, codec),
            Mode::Bridged(relay) => relay.pass_to_room(packet, codec, &self.stats.relay),
        }
    }

    /// The datagram `buf[..n]` from `src` on the room's port.
    fn room_packet(&mut self, buf: &mut [u8], n: usize, src: SocketAddr) {
        let Mode::Bridged(relay) = &mut self.mode else {
            return;
        };
        let room = relay.room_mut();
        let Some(got) = room.receive(buf, n, src, &self.liveness, &self.stats.relay) else {
            return;
        };
        if let Some((header, _)) = rtp::parse(&buf[..got.len]) {
            room.heard(&header);
        }
        let tap = self.tap.as_ref();
        relay.pass_to_caller(&mut buf[..got.len], &self.caller, tap, &self.stats.relay);
    }

    /// A press under way is over without its end packet (see `dtmf`).
    fn press_timed_out(&mut self) {
        if let Some(press) = self.presses.timeout(Instant::now()) {
            let _ = self.dtmf.send(press);
        }
    }

    /// The call's media as data; None when the pacer no longer has the
    /// caller's stream (it is stopping).
    async fn state(&self) -> Option<MediaState> {
        let stream = match &self.mode {
            Mode::Bridged(relay) => relay.stream(),
            Mode::Held | Mode::Bot(_) => self.pacer.peek(self.id).await?,
        };
        let relay = self.mode.relay();
        Some(MediaState {
            caller: self.caller.state(&self.liveness),
            stream: StreamPosition::of(stream, Instant::now(), unix_ms()),
            room: relay.map(|r| r.state(&self.liveness)),
            caller_srtp: self.caller.srtp().map(|s| s.state()),
            room_srtp: relay.and_then(|r| r.room().srtp()).map(|s| s.state()),
        })
    }
}

/// The room's next datagram; never, while there is no room.
async fn room_datagram(room: Option<&Leg>) -> std::io::Result<(usize, SocketAddr)> {
    match room {
        Some(room) => room.datagram().await,
        None => std::future::pending().await,
    }
}

/// RTCP from the room on its port + 1 (see `Leg::rtcp`); never, while
/// there is no room.
async fn room_rtcp(room: Option<&Leg>, liveness: &Liveness) {
    match room {
        Some(room) => room.rtcp(liveness).await,
        None => std::future::pending().await,
    }
}

/// Until the press under way is over without its end packet (see `dtmf`).
async fn press_over(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod size_tests {
    fn future_size<A, B, C, D, F: std::future::Future>(_: fn(A, B, C, D) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    /// A call's media task lives as long as the call: no per-call
    /// buffers in it (the shard's one is `leg::with_received`); it was
    /// 6.1 KB with two, 1.8 KB without.
    #[test]
    fn a_media_task_stays_small() {
        let size = future_size(super::run);
        eprintln!("media task future: {size} bytes");
        assert!(size <= 3 * 1024, "the media task's future is {size} bytes");
    }
}
