//! One call's media, driven by a small task on its shard's runtime: it
//! latches the caller's real RTP source (NAT), and once bridged relays RTP
//! both ways (untouched when the legs agree on the codec; PCMU↔PCMA and
//! G.722↔G.711 converted when they differ, see `transcode`;
//! telephone-events passed through with their payload type mapped),
//! keeping the caller's stream continuous.
//! The caller's telephone-events are also read as key presses (`dtmf`),
//! held or bridged, and reported to the call's driver. A leg with SRTP
//! (`srtp`) is decrypted as it comes in and encrypted as it goes out, so
//! everything in between sees plain RTP.

use super::bot::{self, BotQueue, CallerFeed};
use super::dtmf::DtmfDetector;
use super::hold::HoldLoop;
use super::liveness::{Liveness, MediaLeg};
use super::pacer::{NewStream, Pacer, StreamState};
use super::ports::RtpSocket;
use super::prompt::Prompt;
use super::rewrite::Rewriter;
use super::rtp;
use super::srtp::{self, LegKeys, SrtpLeg};
use super::state::{LegState, MediaState, RoomState, StreamPosition};
use super::stats::{ShardStats, StreamsHeld};
use super::transcode::Transcoder;
use crate::clock::unix_ms;
use crate::codec::{AudioCodec, DtmfPress};
use std::net::SocketAddr;
use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::sync::{mpsc, oneshot};

pub use crate::codec::LegCodec;

enum Command {
    Bridge {
        room: RtpSocket,
        remote: SocketAddr,
        codec: LegCodec,
        sends: bool,
        srtp: Option<Arc<SrtpLeg>>,
        done: oneshot::Sender<()>,
    },
    /// Stop relaying; the pacer plays `source` to the caller again.
    Play {
        source: Arc<HoldLoop>,
        done: oneshot::Sender<()>,
    },
    /// Where the call's media stands, to save it.
    State { reply: oneshot::Sender<MediaState> },
    /// A voice bot: the pacer plays its queue to the caller, and the
    /// caller's audio goes to `to_bot` (see `bot`).
    Bot {
        queue: BotQueue,
        to_bot: mpsc::Sender<Vec<u8>>,
        done: oneshot::Sender<()>,
    },
    /// A one-shot prompt in place of the music (held calls only).
    Prompt {
        prompt: Prompt,
        done: oneshot::Sender<()>,
    },
}

/// The handle the call driver holds. Dropping it stops the call's media
/// within a pacer slot (1 ms) and frees its ports.
pub struct CallMedia {
    tx: mpsc::UnboundedSender<Command>,
    liveness: Arc<Liveness>,
    /// Gets the first leg found silent (see `liveness`); None once read.
    silent: Option<oneshot::Receiver<MediaLeg>>,
    /// The caller's key presses (RFC 4733), until `presses` takes them.
    dtmf: Option<mpsc::UnboundedReceiver<DtmfPress>>,
    /// What the caller's leg speaks (fixed for the call).
    caller_codec: LegCodec,
}

/// The caller's key presses sent as RFC 4733 telephone-events, held or
/// bridged, once per press however many packets carry it (see `dtmf`).
/// Apart from `CallMedia` so that a driver can wait on both at once.
pub struct Presses(Option<mpsc::UnboundedReceiver<DtmfPress>>);

impl Presses {
    /// The next press. Never resolves once the media task is gone (or
    /// for a second taker). Cancel-safe.
    pub async fn next(&mut self) -> DtmfPress {
        if let Some(rx) = self.0.as_mut()
            && let Some(press) = rx.recv().await
        {
            return press;
        }
        self.0 = None;
        std::future::pending().await
    }
}

/// One leg as a media task starts with it.
pub(super) struct LegStart {
    pub socket: RtpSocket,
    /// The peer's SDP address, or where it was latched to before a restart.
    pub remote: SocketAddr,
    pub latched: bool,
    pub codec: LegCodec,
    /// The peer's SDP says it sends (see `liveness`).
    pub sends: bool,
    /// The leg's SRTP (None: plain RTP).
    pub srtp: Option<Arc<SrtpLeg>>,
}

/// What the caller hears from the start.
pub(super) enum Then {
    /// This, looped, by the pacer.
    Play(Arc<HoldLoop>),
    /// The room (a bridged call resumed after a restart).
    Relay(LegStart, Rewriter),
}

pub(super) struct Start {
    pub id: u64,
    pub caller: LegStart,
    /// Where the caller's stream starts (a fresh one, or a resumed one).
    pub stream: StreamState,
    pub then: Then,
    pub pacer: Pacer,
    /// The counters of the call's shard.
    pub stats: Arc<ShardStats>,
    /// The call's count in its shard's streams (the shard's load).
    pub streams: StreamsHeld,
    pub liveness: Arc<Liveness>,
}

impl CallMedia {
    /// Starts the call's media task; `silent` gets the first leg found
    /// silent (a closed channel when the timeout is off).
    pub(super) fn start(
        rt: &tokio::runtime::Handle,
        s: Start,
        silent: oneshot::Receiver<MediaLeg>,
    ) -> std::io::Result<CallMedia> {
        let sender = Arc::new(s.caller.socket.socket.try_clone()?);
        if let Then::Play(music) = &s.then {
            s.pacer.add(NewStream {
                id: s.id,
                source: music.clone(),
                socket: sender.clone(),
                remote: s.caller.remote,
                codec: s.caller.codec.audio,
                payload_type: s.caller.codec.payload_type,
                state: s.stream,
                srtp: s.caller.srtp.clone(),
            });
        }
        let liveness = s.liveness.clone();
        let (tx, rx) = mpsc::unbounded_channel();
        let (dtmf_tx, dtmf) = mpsc::unbounded_channel();
        let caller_codec = s.caller.codec;
        rt.spawn(run(s, sender, rx, dtmf_tx));
        Ok(CallMedia {
            tx,
            liveness,
            silent: Some(silent),
            dtmf: Some(dtmf),
            caller_codec,
        })
    }

    /// What the caller's leg speaks: a room offer puts it first, so that
    /// a room that speaks it too is relayed untouched, not transcoded.
    pub fn caller_codec(&self) -> LegCodec {
        self.caller_codec
    }

    /// Switches the caller from music to the room: the pacer lets go of the
    /// stream and relaying starts. `sends`: the room's SDP says it sends
    /// (its silence then ends the call, see `silent`). Resolves once the
    /// switch is done.
    pub async fn bridge(
        &self,
        room: RtpSocket,
        remote: SocketAddr,
        codec: LegCodec,
        sends: bool,
    ) -> bool {
        self.bridge_secure(room, remote, codec, sends, None).await
    }

    /// `bridge`, with SRTP on the room's leg when `srtp` has its keys.
    /// False, as for a media task that is gone, when they cannot be used.
    pub async fn bridge_secure(
        &self,
        room: RtpSocket,
        remote: SocketAddr,
        codec: LegCodec,
        sends: bool,
        srtp: Option<LegKeys>,
    ) -> bool {
        let srtp = match srtp.map(SrtpLeg::new).transpose() {
            Ok(s) => s.map(Arc::new),
            Err(e) => {
                tracing::warn!(error = %e, "room leg SRTP unusable");
                return false;
            }
        };
        let (done, rx) = oneshot::channel();
        let sent = self.tx.send(Command::Bridge {
            room,
            remote,
            codec,
            sends,
            srtp,
            done,
        });
        sent.is_ok() && rx.await.is_ok()
    }

    /// Plays `source` (looped) to the caller from where its stream stands,
    /// whether it was hearing music, another source, or a room (which is
    /// let go). Resolves once the pacer has the stream.
    pub async fn play(&self, source: Arc<HoldLoop>) -> bool {
        let (done, rx) = oneshot::channel();
        let sent = self.tx.send(Command::Play { source, done });
        sent.is_ok() && rx.await.is_ok()
    }

    /// Switches the caller to a voice bot, from music or a room (which is
    /// let go): the caller's stream goes on, paced, with the bot's queued
    /// audio (silence when there is none); the caller's audio goes to
    /// `to_bot` in 20 ms μ-law chunks. Resolves once the switch is done.
    pub async fn bot(&self, queue: BotQueue, to_bot: mpsc::Sender<Vec<u8>>) -> bool {
        let (done, rx) = oneshot::channel();
        let sent = self.tx.send(Command::Bot {
            queue,
            to_bot,
            done,
        });
        sent.is_ok() && rx.await.is_ok()
    }

    /// Plays `prompt` to a held caller in place of the music, on the same
    /// stream, after any prompt already playing; the music then resumes
    /// where it stopped. The receiver gets `Ok` once the prompt's last
    /// frame has left, and an error when it was refused (the caller is
    /// with a room, not on music) or cut short (bridged or ended while
    /// it played).
    pub fn prompt(&self, prompt: Prompt) -> oneshot::Receiver<()> {
        let (done, rx) = oneshot::channel();
        // A media task that is gone drops `done`: refused.
        let _ = self.tx.send(Command::Prompt { prompt, done });
        rx
    }

    /// Resolves, once, when a leg whose SDP says it sends has sent nothing
    /// (RTP, or RTCP on the RTP port) for `[media] rtp_timeout_secs`: the
    /// caller's leg, held or bridged, or the room's while bridged. The
    /// call should then end with reason `rtp_timeout`. Never resolves when
    /// the timeout is off, or again after it did. Cancel-safe (for
    /// `select!`).
    pub async fn silent(&mut self) -> MediaLeg {
        if let Some(rx) = self.silent.as_mut() {
            let got = rx.await;
            self.silent = None;
            if let Ok(leg) = got {
                return leg;
            }
        }
        std::future::pending().await
    }

    /// The caller's key presses; the first call takes them, later ones
    /// get none.
    pub fn presses(&mut self) -> Presses {
        Presses(self.dtmf.take())
    }

    /// `leg`'s peer now does (or does not) send, as a re-INVITE's SDP
    /// says; the timeout runs from now.
    pub fn set_sends(&self, leg: MediaLeg, sends: bool) {
        self.liveness.set_sends(leg, sends);
    }

    /// The call's media as data, for `MediaEngine::resume` in a later
    /// process; `None` if the media task is gone.
    pub async fn state(&self) -> Option<MediaState> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Command::State { reply }).ok()?;
        rx.await.ok()
    }
}

/// A UDP socket the media task waits on for reading only. Registered
/// with read interest alone on purpose: tokio's own UdpSocket also asks
/// for writability, and on Linux every datagram sent on the socket (the
/// pacer sends 50 a second per call from this very port) then wakes the
/// shard for nothing. Sends are plain non-blocking `send_to`.
type RtpFd = AsyncFd<UdpSocket>;

fn readable(socket: UdpSocket) -> std::io::Result<RtpFd> {
    // Why unsafe: tokio 1.54 offers read-only registration only through
    // `register_with_interest`, which is unsafe (its safe predecessor is
    // deprecated as unsound for arbitrary `AsRawFd` types). The need is
    // measured: `cargo run --release --example bench -- hold --calls 1000`
    // went from 46.7 % to 29.3 % of a core per 1,000 held calls with
    // read-only interest (sipp's player: 27-28 %).
    // SAFETY: `socket` is a `std::net::UdpSocket`, which owns its file
    // descriptor; the `AsyncFd` takes ownership of it, so the descriptor
    // stays open and `as_raw_fd` returns the same one until the `AsyncFd`
    // is dropped, which is all `register_with_interest` asks.
    unsafe { AsyncFd::register_with_interest(socket, Interest::READABLE) }.map_err(|e| e.into())
}

async fn recv_from(fd: &RtpFd, buf: &mut [u8]) -> std::io::Result<(usize, SocketAddr)> {
    loop {
        let mut ready = fd.readable().await?;
        if let Ok(result) = ready.try_io(|inner| inner.get_ref().recv_from(buf)) {
            return result;
        }
    }
}

struct Bridge {
    socket: RtpFd,
    /// The room's RTCP on `port + 1`, read only as a sign of life.
    rtcp: Option<RtpFd>,
    port: u16,
    remote: SocketAddr,
    latched: bool,
    codec: LegCodec,
    rewriter: Rewriter,
    srtp: Option<Arc<SrtpLeg>>,
    /// Codec conversion state, one per direction (stateful for G.722).
    to_room: Transcoder,
    to_caller: Transcoder,
}

/// The next RTCP packet's source on `fd`; pending without a socket. The
/// packet itself is not used (a short buffer: the rest is discarded).
async fn rtcp_from(fd: &Option<RtpFd>) -> std::io::Result<SocketAddr> {
    let mut buf = [0u8; 16];
    match fd {
        Some(fd) => recv_from(fd, &mut buf).await.map(|(_, src)| src),
        None => std::future::pending().await,
    }
}

fn room_rtcp(bridge: &Option<Bridge>) -> &Option<RtpFd> {
    const NONE: &Option<RtpFd> = &None;
    bridge.as_ref().map_or(NONE, |b| &b.rtcp)
}

async fn recv_from_room(
    bridge: &Option<Bridge>,
    buf: &mut [u8],
) -> std::io::Result<(usize, SocketAddr)> {
    match bridge {
        Some(b) => recv_from(&b.socket, buf).await,
        None => std::future::pending().await,
    }
}

/// Where the caller's outgoing stream stands, taking it from the pacer
/// (when `held`) or from the bridge being let go; `held` becomes false.
async fn stream_state(
    pacer: &Pacer,
    id: u64,
    ssrc: u32,
    held: &mut bool,
    bridge: Option<Bridge>,
) -> StreamState {
    let from_pacer = if *held { pacer.remove(id).await } else { None };
    *held = false;
    from_pacer
        .or(bridge.map(|b| b.rewriter.state()))
        .unwrap_or(StreamState {
            ssrc,
            next_sequence: rand::random(),
            next_timestamp: rand::random(),
            last_sent: None,
        })
}

/// Until the press under way is over without its end packet (see `dtmf`).
async fn press_over(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// `sender` is the caller socket as the pacer uses it (a clone); `dtmf`
/// gets the caller's key presses.
async fn run(
    s: Start,
    sender: Arc<std::net::UdpSocket>,
    mut rx: mpsc::UnboundedReceiver<Command>,
    dtmf: mpsc::UnboundedSender<DtmfPress>,
) {
    let Start {
        id,
        caller,
        stream,
        then,
        pacer,
        stats,
        mut streams,
        liveness,
    } = s;
    let ssrc = stream.ssrc;
    let mut held = matches!(then, Then::Play(_));
    let LegStart {
        socket:
            RtpSocket {
                socket: caller_socket,
                port: caller_port,
                rtcp: caller_rtcp,
            },
        mut remote,
        mut latched,
        codec: caller_codec,
        sends: _,
        srtp: caller_srtp,
    } = caller;
    let Ok(caller) = readable(caller_socket) else {
        if held {
            pacer.remove(id).await;
        }
        return;
    };
    let caller_rtcp = caller_rtcp.and_then(|s| readable(s).ok());
    let mut bridge: Option<Bridge> = match then {
        Then::Play(_) => None,
        Then::Relay(room, rewriter) => {
            let Ok(socket) = readable(room.socket.socket) else {
                return;
            };
            Some(Bridge {
                socket,
                rtcp: room.socket.rtcp.and_then(|s| readable(s).ok()),
                port: room.socket.port,
                remote: room.remote,
                latched: room.latched,
                codec: room.codec,
                rewriter,
                srtp: room.srtp,
                to_room: Transcoder::new(),
                to_caller: Transcoder::new(),
            })
        }
    };
    let mut from_caller = [0u8; 2048];
    let mut from_room = [0u8; 2048];
    let mut presses = DtmfDetector::new();
    // The caller's audio on its way to a voice bot, while there is one.
    let mut feed: Option<CallerFeed> = None;
    loop {
        tokio::select! {
            cmd = rx.recv() => match cmd {
                Some(Command::Bridge { room, remote: room_remote, codec, sends, srtp, done }) => {
                    let port = room.port;
                    let rtcp = room.rtcp.and_then(|s| readable(s).ok());
                    let Ok(socket) = readable(room.socket) else { continue };
                    // From music, or from another room (a re-transfer):
                    // either way the caller's stream continues.
                    let state = stream_state(&pacer, id, ssrc, &mut held, bridge.take()).await;
                    bridge = Some(Bridge {
                        socket,
                        rtcp,
                        port,
                        remote: room_remote,
                        latched: false,
                        codec,
                        rewriter: Rewriter::new(state),
                        srtp,
                        to_room: Transcoder::new(),
                        to_caller: Transcoder::new(),
                    });
                    liveness.set_room(Some(sends));
                    streams.set(2);
                    feed = None;
                    let _ = done.send(());
                }
                Some(Command::Play { source, done }) => {
                    let state = stream_state(&pacer, id, ssrc, &mut held, bridge.take()).await;
                    pacer.add(NewStream {
                        id,
                        source,
                        socket: sender.clone(),
                        remote,
                        codec: caller_codec.audio,
                        payload_type: caller_codec.payload_type,
                        state,
                        srtp: caller_srtp.clone(),
                    });
                    held = true;
                    liveness.set_room(None);
                    streams.set(1);
                    feed = None;
                    let _ = done.send(());
                }
                Some(Command::Bot { queue, to_bot, done }) => {
                    if !held {
                        // From a room: the pacer takes the caller's stream
                        // back where the relay left it.
                        let state = stream_state(&pacer, id, ssrc, &mut held, bridge.take()).await;
                        pacer.add(NewStream {
                            id,
                            source: bot::silence(),
                            socket: sender.clone(),
                            remote,
                            codec: caller_codec.audio,
                            payload_type: caller_codec.payload_type,
                            state,
                            srtp: caller_srtp.clone(),
                        });
                        held = true;
                        liveness.set_room(None);
                        streams.set(1);
                    }
                    // Applied by the pacer right after the `Add` above,
                    // before its next send: no frame of music between.
                    pacer.set_bot(id, Some(queue.clone()));
                    feed = Some(CallerFeed::new(queue.clone(), to_bot));
                    let _ = done.send(());
                }
                Some(Command::Prompt { prompt, done }) => {
                    // Only the pacer plays prompts: with a room, `done`
                    // is dropped and the prompt refused.
                    if held {
                        pacer.prompt(id, prompt, done);
                    }
                }
                Some(Command::State { reply }) => {
                    let stream = match &bridge {
                        Some(b) => Some(b.rewriter.state()),
                        None if held => pacer.peek(id).await,
                        None => None,
                    };
                    // No stream (the pacer is gone): the reply is dropped
                    // and the caller of `state` gets None.
                    let Some(stream) = stream else { continue };
                    let caller = LegState {
                        port: caller_port,
                        remote,
                        latched,
                        codec: caller_codec.into(),
                        sends: liveness.sends(MediaLeg::Caller),
                    };
                    let room = bridge.as_ref().map(|b| RoomState {
                        leg: LegState {
                            port: b.port,
                            remote: b.remote,
                            latched: b.latched,
                            codec: b.codec.into(),
                            sends: liveness.sends(MediaLeg::Room),
                        },
                        mapping: b.rewriter.mapping(),
                    });
                    let _ = reply.send(MediaState {
                        caller,
                        stream: StreamPosition::of(stream, Instant::now(), unix_ms()),
                        room,
                        caller_srtp: caller_srtp.as_ref().map(|s| s.state()),
                        room_srtp: bridge.as_ref().and_then(|b| b.srtp.as_ref()).map(|s| s.state()),
                    });
                }
                None => break,
            },
            got = recv_from(&caller, &mut from_caller) => {
                let Ok((n, src)) = got else { continue };
                // Once latched, anyone else is dropped before SRTP sees
                // the packet (its checks cost, and keep state per SSRC).
                if latched && src != remote {
                    stats.relay.dropped_foreign.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                // SRTP: only an authentic packet latches, is life, or is
                // read (DTMF) and relayed, decrypted.
                let n = match &caller_srtp {
                    None => n,
                    Some(s) => match s.open(&mut from_caller, n) {
                        Some(n) => n,
                        None => {
                            stats.relay.srtp_failed.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                    },
                };
                if !latched {
                    // Latch to where the caller really sends from (NAT);
                    // from then on, RTP from anyone else is dropped.
                    latched = true;
                    if src != remote {
                        remote = src;
                        if held {
                            pacer.set_remote(id, src);
                        }
                    }
                }
                // Anything from the peer is life, RTCP (muxed) included.
                liveness.heard(MediaLeg::Caller);
                if let Some((header, payload)) = rtp::parse(&from_caller[..n])
                    && Some(header.payload_type) == caller_codec.event_payload_type
                {
                    let ended = presses.packet(
                        header.ssrc,
                        header.timestamp,
                        &from_caller[payload],
                        Instant::now(),
                    );
                    for press in ended {
                        let _ = dtmf.send(press);
                    }
                }
                if let Some(f) = feed.as_mut() {
                    f.packet(&from_caller[..n], caller_codec);
                }
                if let Some(b) = bridge.as_mut() {
                    let packet = &mut from_caller[..n];
                    if map_payload(packet, caller_codec, b.codec, &mut b.to_room) {
                        // Non-blocking; a full send buffer drops the packet,
                        // as the network would.
                        srtp::send(b.socket.get_ref(), packet, b.remote, b.srtp.as_deref());
                        stats.relay.relayed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            },
            _ = press_over(presses.deadline()) => {
                if let Some(press) = presses.timeout(Instant::now()) {
                    let _ = dtmf.send(press);
                }
            },
            // RTCP on port+1 is life too, from the peer's address only.
            got = rtcp_from(&caller_rtcp) => {
                if got.is_ok_and(|src| src.ip() == remote.ip()) {
                    liveness.heard(MediaLeg::Caller);
                }
            },
            got = rtcp_from(room_rtcp(&bridge)) => {
                let room_ip = bridge.as_ref().map(|b| b.remote.ip());
                if got.is_ok_and(|src| Some(src.ip()) == room_ip) {
                    liveness.heard(MediaLeg::Room);
                }
            },
            got = recv_from_room(&bridge, &mut from_room) => {
                let Ok((n, src)) = got else { continue };
                let Some(b) = bridge.as_mut() else { continue };
                if b.latched && src != b.remote {
                    stats.relay.dropped_foreign.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let n = match &b.srtp {
                    None => n,
                    Some(s) => match s.open(&mut from_room, n) {
                        Some(n) => n,
                        None => {
                            stats.relay.srtp_failed.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                    },
                };
                if !b.latched {
                    b.latched = true;
                    b.remote = src;
                }
                liveness.heard(MediaLeg::Room);
                let packet = &mut from_room[..n];
                let Some((header, _)) = rtp::parse(packet) else { continue };
                if !map_payload(packet, b.codec, caller_codec, &mut b.to_caller) {
                    continue;
                }
                let mut out = b.rewriter.rewrite(&header, Instant::now());
                out.payload_type = packet[1] & 0x7F;
                out.rewrite(packet);
                srtp::send(caller.get_ref(), packet, remote, caller_srtp.as_deref());
                stats.relay.relayed.fetch_add(1, Ordering::Relaxed);
            },
        }
    }
    if held {
        pacer.remove(id).await;
    }
}

/// Rewrites `packet`'s payload type (and payload, for audio in another
/// codec, through `transcoder`) from leg `from` to leg `to`. Returns false
/// for packets to drop: not RTP, or a payload type the other leg did not
/// negotiate.
fn map_payload(
    packet: &mut [u8],
    from: LegCodec,
    to: LegCodec,
    transcoder: &mut Transcoder,
) -> bool {
    let Some((header, payload)) = rtp::parse(packet) else {
        return false;
    };
    let pt = if header.payload_type == from.payload_type {
        transcoder.convert(&mut packet[payload], from.audio, to.audio);
        to.payload_type
    } else if Some(header.payload_type) == from.event_payload_type {
        match to.event_payload_type {
            Some(pt) => pt,
            None => return false,
        }
    } else if let Some(audio) = AudioCodec::from_payload_type(header.payload_type) {
        // A static type of ours the leg did not pick but sent anyway.
        transcoder.convert(&mut packet[payload], audio, to.audio);
        to.payload_type
    } else {
        return false;
    };
    packet[1] = (packet[1] & 0x80) | pt;
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::g711::{alaw_encode, ulaw_decode, ulaw_encode};
    use crate::media::g722::{G722Decoder, G722Encoder};

    fn packet(pt: u8, payload: &[u8]) -> Vec<u8> {
        let mut head = [0u8; rtp::HEADER_LEN];
        rtp::Header {
            marker: false,
            payload_type: pt,
            sequence: 1,
            timestamp: 2,
            ssrc: 3,
        }
        .write(&mut head);
        [&head[..], payload].concat()
    }

    const MU: LegCodec = LegCodec {
        audio: AudioCodec::Pcmu,
        payload_type: 0,
        event_payload_type: Some(101),
    };
    const A: LegCodec = LegCodec {
        audio: AudioCodec::Pcma,
        payload_type: 8,
        event_payload_type: Some(96),
    };

    #[test]
    fn audio_is_transcoded_and_events_remapped() {
        let mut p = packet(0, &[ulaw_encode(1000), ulaw_encode(-1000)]);
        assert!(map_payload(&mut p, MU, A, &mut Transcoder::new()));
        assert_eq!(p[1] & 0x7F, 8);
        let via = |s: i16| alaw_encode(ulaw_decode(ulaw_encode(s)));
        assert_eq!(&p[12..], &[via(1000), via(-1000)][..]);
        let mut e = packet(101, &[5, 0x80, 0, 160]);
        assert!(map_payload(&mut e, MU, A, &mut Transcoder::new()));
        assert_eq!(e[1] & 0x7F, 96);
        assert_eq!(&e[12..], &[5, 0x80, 0, 160]);
    }

    #[test]
    fn unknown_or_unnegotiated_types_are_dropped() {
        let mut p = packet(18, &[1, 2]);
        assert!(!map_payload(&mut p, MU, A, &mut Transcoder::new()));
        let no_events = LegCodec {
            event_payload_type: None,
            ..A
        };
        let mut e = packet(101, &[5, 0x80, 0, 160]);
        assert!(!map_payload(&mut e, MU, no_events, &mut Transcoder::new()));
    }

    const WIDE: LegCodec = LegCodec {
        audio: AudioCodec::G722,
        payload_type: 9,
        event_payload_type: Some(101),
    };

    #[test]
    fn g722_is_relayed_untouched_to_g722_and_transcoded_to_g711() {
        let pcm: Vec<i16> = (0..320)
            .map(|i| ((i as f64 * 0.3).sin() * 8000.0) as i16)
            .collect();
        let g722 = G722Encoder::new().encode(&pcm);
        let mut p = packet(9, &g722);
        assert!(map_payload(&mut p, WIDE, WIDE, &mut Transcoder::new()));
        assert_eq!(&p[12..], &g722[..], "bytes untouched");
        assert_eq!(p[1] & 0x7F, 9);
        let mut t = Transcoder::new();
        assert!(map_payload(&mut p, WIDE, MU, &mut t));
        assert_eq!((p[1] & 0x7F, p.len()), (0, 12 + 160));
        // What the G.711 leg gets is the G.722 decoded and halved: the
        // same tone in µ-law, not the G.722 bytes relabelled.
        assert_ne!(&p[12..], &g722[..]);
        let wide = G722Decoder::new().decode(&g722);
        let narrow: Vec<i16> = p[12..].iter().map(|b| ulaw_decode(*b)).collect();
        let energy =
            |x: &[i16]| x.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>() / x.len() as f64;
        let ratio = energy(&narrow[40..]) / energy(&wide[80..]);
        assert!(ratio > 0.7 && ratio < 1.3, "{ratio}");
        // A static G.711 packet from a G.722 leg is converted too.
        let mut q = packet(8, &[alaw_encode(1000); 160]);
        assert!(map_payload(&mut q, WIDE, MU, &mut t));
        assert_eq!(q[12], ulaw_encode(alaw_decode_of(1000)));
    }

    fn alaw_decode_of(s: i16) -> i16 {
        crate::media::g711::alaw_decode(alaw_encode(s))
    }
}
