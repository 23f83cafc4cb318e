//! The hold-music pacer of one shard: the streams of its held calls and
//! the handle through which calls add and remove them. Time is cut into
//! 1 ms slots; each stream lives in one of the 20 slots of the 20 ms packet
//! period, so sends are spread evenly rather than bursting. The shard's
//! tick (`shard`) sends one slot per millisecond at absolute deadlines
//! (start + n ms), so lateness never accumulates. Measured in DESIGN.md:
//! one tick for many streams beats a timer per call by a wide margin in
//! CPU and jitter.
//!
//! A stream may also play one-shot prompts (`prompt`): they take the
//! music's place on the same stream (same SSRC, sequence and timestamp
//! running on), and the music resumes at the frame where it stopped, so
//! a caller hears "you are caller number three" as a break in the music,
//! not as a new call or a restarted tune.

use super::bot::BotQueue;
use super::hold::HoldLoop;
use super::joiner::Joiner;
use super::prompt::{Playing, Prompt};
use super::record::Tap;
use super::rtp::{HEADER_LEN, Header};
use super::srtp::SrtpLeg;
use crate::codec::LegCodec;
use std::collections::{HashMap, VecDeque};
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

pub(super) const SLOTS: usize = 20;

/// The longest payload a paced packet carries: 160 bytes of G.711 or
/// G.722, or an Opus packet (`opus::MAX_PAYLOAD`), or as many as a peer's
/// ptime joins (`joiner`).
const MAX_PAYLOAD: usize = super::joiner::MAX_JOINED;

/// When slot `tick` is due: `start + tick` ms, computed in u64 all the way.
/// Why: the tick counts milliseconds of uptime, and narrowing it (as
/// `SLOT * tick as u32` once did) wraps after 2^32 ms, 49.7 days; from then
/// on every deadline lies in the past, the pacer never sleeps again, floods
/// the held callers and reports itself overloaded. A u64 of milliseconds
/// lasts 584 million years.
pub(super) fn slot_deadline(start: Instant, tick: u64) -> Instant {
    start + Duration::from_millis(tick)
}

/// Where an outgoing stream stood when the pacer let go of it, so whoever
/// sends next keeps SSRC, sequence and timestamp continuous.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamState {
    pub ssrc: u32,
    /// Sequence number the next packet must carry.
    pub next_sequence: u16,
    /// RTP timestamp the next packet must carry if sent 20 ms after the last.
    pub next_timestamp: u32,
    /// When the last packet left (None if none did).
    pub last_sent: Option<Instant>,
}

/// Counters the pacer keeps; read by `/metrics` and the benchmarks.
#[derive(Debug, Default)]
pub struct PacerStats {
    pub packets_sent: AtomicU64,
    pub send_errors: AtomicU64,
    /// Slots processed more than 5 ms after their deadline.
    pub late_slots: AtomicU64,
    pub streams: AtomicU64,
    /// Share of the last window the shard's thread was busy (music,
    /// relay, everything), in thousandths.
    pub busy_permille: AtomicU64,
    /// The last window's verdict (see `load`): new calls get 503 while set.
    pub overloaded: AtomicBool,
}

/// A stream to start: one held call's music towards `remote`.
pub struct NewStream {
    pub id: u64,
    /// What it plays, looped: the hold music, or an announcement.
    pub source: Arc<HoldLoop>,
    pub socket: Arc<UdpSocket>,
    pub remote: SocketAddr,
    /// The caller's codec: the pre-encoded frames it gets, its payload
    /// type, and (for Opus) how it wants them.
    pub codec: LegCodec,
    pub state: StreamState,
    /// The caller's SRTP: every frame is encrypted with it before it
    /// leaves (None: plain RTP).
    pub srtp: Option<Arc<SrtpLeg>>,
    /// The call's recording, fed every frame sent.
    pub tap: Option<Tap>,
}

pub(super) enum Command {
    Add(NewStream),
    Remove(u64, oneshot::Sender<Option<StreamState>>),
    Peek(u64, oneshot::Sender<Option<StreamState>>),
    SetRemote(u64, SocketAddr),
    /// Play a prompt in place of the music, after those already queued;
    /// `done` is told when it has played (dropped if the stream is gone).
    Prompt(u64, Prompt, oneshot::Sender<()>),
    /// Nothing to do but wake an idle shard: a call was placed on it.
    Wake,
    /// Play a voice bot's queue on the stream instead of its music and
    /// prompts (None: back to them).
    Bot(u64, Option<BotQueue>),
    /// Feed every frame sent on the stream to a recording (None: stop).
    Tap(u64, Option<Tap>),
}

/// Handle to one shard's pacer. Cheap to clone. While the shard ticks,
/// its tick drains the commands each millisecond (`Slots::apply`), so a
/// command costs no wake-up of its own; an idle shard (no call, no tick)
/// is woken by the first command that reaches it.
#[derive(Clone)]
pub struct Pacer {
    tx: mpsc::UnboundedSender<Command>,
}

impl Pacer {
    /// A pacer handle and the receiving end its shard's tick drains.
    pub(super) fn channel() -> (Pacer, mpsc::UnboundedReceiver<Command>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Pacer { tx }, rx)
    }

    /// Starts sending hold music; the first packet leaves within 1 ms.
    pub fn add(&self, stream: NewStream) {
        let _ = self.tx.send(Command::Add(stream));
    }

    /// Stops a stream; resolves (within one slot) to where it stood.
    pub async fn remove(&self, id: u64) -> Option<StreamState> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(Command::Remove(id, tx)).ok()?;
        rx.await.ok().flatten()
    }

    /// Where a stream stands, leaving it playing (to save a call's state).
    pub async fn peek(&self, id: u64) -> Option<StreamState> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(Command::Peek(id, tx)).ok()?;
        rx.await.ok().flatten()
    }

    /// Points a stream at the address the caller actually sends from.
    pub fn set_remote(&self, id: u64, remote: SocketAddr) {
        let _ = self.tx.send(Command::SetRemote(id, remote));
    }

    /// Plays `prompt` on stream `id` in place of its music, after any
    /// prompt already playing there; the music then resumes where it
    /// stopped. `done` is told once the last frame has left; it is
    /// dropped unheard if the stream is not (or no longer) paced — the
    /// call was bridged, or ended.
    pub fn prompt(&self, id: u64, prompt: Prompt, done: oneshot::Sender<()>) {
        let _ = self.tx.send(Command::Prompt(id, prompt, done));
    }

    /// Plays `queue` (a voice bot's audio, silence when it is empty) on
    /// stream `id` in place of its music, from its next frame on.
    pub fn set_bot(&self, id: u64, queue: Option<BotQueue>) {
        let _ = self.tx.send(Command::Bot(id, queue));
    }

    /// Feeds every frame sent on stream `id` to `tap` (None: no longer).
    pub fn set_tap(&self, id: u64, tap: Option<Tap>) {
        let _ = self.tx.send(Command::Tap(id, tap));
    }

    /// Starts the shard's tick if it was idle (see `shard`).
    pub(super) fn wake(&self) {
        let _ = self.tx.send(Command::Wake);
    }
}

struct Stream {
    id: u64,
    source: Arc<HoldLoop>,
    socket: Arc<UdpSocket>,
    remote: SocketAddr,
    codec: LegCodec,
    ssrc: u32,
    sequence: u16,
    timestamp: u32,
    /// The music's next frame; it stands still while a prompt plays.
    frame: u32,
    first: bool,
    last_sent: Option<Instant>,
    /// Prompts to play before the music goes on, the first one playing.
    prompts: VecDeque<Playing>,
    /// A voice bot's audio, played instead of music and prompts.
    bot: Option<BotQueue>,
    srtp: Option<Arc<SrtpLeg>>,
    /// Joins frames for an Opus peer that asked for longer packets.
    joiner: Option<Box<Joiner>>,
    tap: Option<Tap>,
}

impl Stream {
    fn state(&self) -> StreamState {
        StreamState {
            ssrc: self.ssrc,
            next_sequence: self.sequence,
            next_timestamp: self.timestamp,
            last_sent: self.last_sent,
        }
    }
}

/// Every stream of a shard's pacer, by slot (and where each one is).
pub(super) struct Slots {
    slots: [Vec<Stream>; SLOTS],
    index: HashMap<u64, (usize, usize)>,
    next_slot: usize,
    packet: [u8; HEADER_LEN + MAX_PAYLOAD],
    /// A bot's frame for the caller (its length is the codec's).
    bot_frame: Vec<u8>,
}

impl Default for Slots {
    fn default() -> Self {
        Slots {
            slots: std::array::from_fn(|_| Vec::new()),
            index: HashMap::new(),
            next_slot: 0,
            packet: [0u8; HEADER_LEN + MAX_PAYLOAD],
            bot_frame: Vec::with_capacity(MAX_PAYLOAD),
        }
    }
}

impl Slots {
    /// Streams being paced.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    fn add(&mut self, s: Stream) {
        // Round-robin spreads streams evenly over the period.
        let slot = self.next_slot;
        self.next_slot = (self.next_slot + 1) % SLOTS;
        self.index.insert(s.id, (slot, self.slots[slot].len()));
        self.slots[slot].push(s);
    }

    fn remove(&mut self, id: u64) -> Option<Stream> {
        let (slot, i) = self.index.remove(&id)?;
        let s = self.slots[slot].swap_remove(i);
        if let Some(moved) = self.slots[slot].get(i) {
            self.index.insert(moved.id, (slot, i));
        }
        Some(s)
    }

    fn get_mut(&mut self, id: u64) -> Option<&mut Stream> {
        let (slot, i) = *self.index.get(&id)?;
        self.slots[slot].get_mut(i)
    }

    /// Carries out one command.
    pub fn apply(&mut self, command: Command) {
        match command {
            Command::Add(n) => self.add(Stream {
                id: n.id,
                source: n.source,
                socket: n.socket,
                remote: n.remote,
                codec: n.codec,
                joiner: Joiner::for_leg(n.codec).map(Box::new),
                ssrc: n.state.ssrc,
                sequence: n.state.next_sequence,
                timestamp: n.state.next_timestamp,
                frame: 0,
                first: true,
                last_sent: None,
                prompts: VecDeque::new(),
                bot: None,
                srtp: n.srtp,
                tap: n.tap,
            }),
            Command::Remove(id, reply) => {
                let _ = reply.send(self.remove(id).map(|s| s.state()));
            }
            Command::Peek(id, reply) => {
                let _ = reply.send(self.get_mut(id).map(|s| s.state()));
            }
            Command::SetRemote(id, addr) => {
                if let Some(s) = self.get_mut(id) {
                    s.remote = addr;
                }
            }
            Command::Prompt(id, prompt, done) => {
                // An unknown stream drops `done`: the prompt was refused.
                if let Some(s) = self.get_mut(id)
                    && let Some(playing) = Playing::start(prompt, done)
                {
                    s.prompts.push_back(playing);
                }
            }
            Command::Wake => {}
            Command::Tap(id, tap) => {
                if let Some(s) = self.get_mut(id) {
                    s.tap = tap;
                }
            }
            Command::Bot(id, queue) => {
                if let Some(s) = self.get_mut(id) {
                    // Prompts under way are cut short (their `done` is
                    // dropped), as when a room takes the caller.
                    s.prompts.clear();
                    s.bot = queue;
                }
            }
        }
    }

    /// Sends the packet of every stream in `tick`'s slot (non-blocking
    /// sends: a full buffer drops the packet, as the network would);
    /// returns how many streams the slot holds.
    pub fn send(&mut self, tick: u64, sent_at: Instant, stats: &PacerStats) -> usize {
        let slot = (tick % SLOTS as u64) as usize;
        let packet = &mut self.packet;
        let bot_frame = &mut self.bot_frame;
        for s in self.slots[slot].iter_mut() {
            let Stream {
                source,
                socket,
                remote,
                codec,
                ssrc,
                sequence,
                timestamp,
                frame: music,
                first,
                last_sent,
                prompts,
                bot,
                srtp,
                joiner,
                tap,
                ..
            } = s;
            let frame = match (&*bot, prompts.front()) {
                (Some(bot), _) => {
                    bot.frame(codec.audio, bot_frame);
                    // The bot hears the caller on this clock too.
                    bot.caller_tick();
                    &bot_frame[..]
                }
                (None, Some(p)) => p.frame(*codec),
                (None, None) => source.frame_for(*codec, *music),
            };
            if let Some(tap) = tap {
                tap.heard(codec.audio, frame);
            }
            let mut out = |timestamp: u32, marker: bool, payload: &[u8]| {
                let mut header = [0u8; HEADER_LEN];
                Header {
                    marker,
                    payload_type: codec.payload_type,
                    sequence: *sequence,
                    timestamp,
                    ssrc: *ssrc,
                }
                .write(&mut header);
                packet[..HEADER_LEN].copy_from_slice(&header);
                // Every payload fits (G.711 and G.722 are 160 bytes, our
                // Opus at most MAX_PAYLOAD); were one not to, it is cut,
                // not sent past the buffer.
                let len = payload.len().min(MAX_PAYLOAD);
                packet[HEADER_LEN..HEADER_LEN + len].copy_from_slice(&payload[..len]);
                // SRTP is a per-stream step: the frames are shared, each
                // call's keys are its own.
                let packet = &packet[..HEADER_LEN + len];
                match super::srtp::send(socket, packet, *remote, srtp.as_deref()) {
                    true => stats.packets_sent.fetch_add(1, Ordering::Relaxed),
                    false => stats.send_errors.fetch_add(1, Ordering::Relaxed),
                };
                *sequence = sequence.wrapping_add(1);
            };
            match joiner {
                Some(joiner) => joiner.push(*timestamp, *first, frame, &mut out),
                None => out(*timestamp, *first, frame),
            }
            *first = false;
            *timestamp = timestamp.wrapping_add(codec.audio.ticks_per_frame());
            match prompts.front_mut() {
                // The bot's queue moved on by itself; music and prompts
                // wait where they are.
                _ if bot.is_some() => {}
                Some(p) => {
                    if p.advance() {
                        prompts.pop_front();
                    }
                }
                None => *music = (*music + 1) % source.frames(),
            }
            *last_sent = Some(sent_at);
        }
        self.slots[slot].len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{AudioCodec, Law};

    /// Music whose frames differ from one another: a rising tone.
    fn music() -> Arc<HoldLoop> {
        let samples: Vec<f32> = (0..8000)
            .map(|i| (i as f32 * i as f32 * 0.00002).sin() * 0.5)
            .collect();
        Arc::new(HoldLoop::from_samples(&samples, 8000))
    }

    #[test]
    fn a_prompt_takes_the_music_s_place_and_the_music_resumes_where_it_stopped() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let tx = Arc::new(UdpSocket::bind("127.0.0.1:0").unwrap());
        let music = music();
        let mut slots = Slots::default();
        let stats = PacerStats::default();
        slots.apply(Command::Add(NewStream {
            id: 7,
            source: music.clone(),
            socket: tx,
            remote: rx.local_addr().unwrap(),
            codec: LegCodec::new(AudioCodec::Pcmu, 0, None),
            state: StreamState {
                ssrc: 42,
                next_sequence: 65534,
                next_timestamp: u32::MAX - 200,
                last_sent: None,
            },
            srtp: None,
            tap: None,
        }));
        let prompt_clip = Arc::new(HoldLoop::from_samples(&[0.5; 320], 8000));
        let mut tick = 0u64;
        let mut next = |slots: &mut Slots| {
            slots.send(tick, Instant::now(), &stats);
            tick += SLOTS as u64; // the stream's slot again, 20 ms later
            let mut buf = [0u8; 512];
            let n = rx.recv(&mut buf).unwrap();
            let (h, range) = crate::media::rtp::parse(&buf[..n]).unwrap();
            (h, buf[range].to_vec())
        };
        let mut heard = Vec::new();
        for _ in 0..3 {
            heard.push(next(&mut slots));
        }
        let (done, mut played) = oneshot::channel();
        slots.apply(Command::Prompt(
            7,
            Prompt::new(vec![prompt_clip.clone()]),
            done,
        ));
        for i in 0..2 {
            heard.push(next(&mut slots));
            assert_eq!(played.try_recv().is_ok(), i == 1, "told at its last frame");
        }
        for _ in 0..2 {
            heard.push(next(&mut slots));
        }
        // One stream throughout: same SSRC, sequence and timestamp running on.
        for (i, (h, _)) in heard.iter().enumerate() {
            assert_eq!(h.ssrc, 42);
            assert_eq!(h.sequence, 65534u16.wrapping_add(i as u16));
            assert_eq!(h.timestamp, (u32::MAX - 200).wrapping_add(160 * i as u32));
            assert_eq!(h.marker, i == 0);
        }
        let payloads: Vec<&[u8]> = heard.iter().map(|(_, p)| &p[..]).collect();
        let m = |i| music.frame(Law::Mu, i);
        assert_eq!(
            payloads,
            [
                m(0),
                m(1),
                m(2),
                prompt_clip.frame(Law::Mu, 0),
                prompt_clip.frame(Law::Mu, 1),
                m(3),
                m(4)
            ]
        );
    }

    #[test]
    fn a_prompt_for_a_stream_not_paced_is_refused() {
        let mut slots = Slots::default();
        let (done, mut played) = oneshot::channel();
        let clip = Arc::new(HoldLoop::from_samples(&[0.5; 160], 8000));
        slots.apply(Command::Prompt(1, Prompt::new(vec![clip]), done));
        assert!(matches!(
            played.try_recv(),
            Err(oneshot::error::TryRecvError::Closed)
        ));
    }

    #[test]
    fn deadlines_keep_rising_past_two_to_the_32_ticks() {
        let start = Instant::now();
        let ticks = [u64::from(u32::MAX), 1 << 32, (1 << 32) + 1, 1 << 40];
        let deadlines: Vec<Instant> = ticks.iter().map(|t| slot_deadline(start, *t)).collect();
        for (tick, deadline) in ticks.iter().zip(&deadlines) {
            assert_eq!(
                *deadline - start,
                Duration::from_millis(*tick),
                "tick {tick}"
            );
        }
        assert!(deadlines.windows(2).all(|w| w[0] < w[1]), "{deadlines:?}");
        assert_eq!(slot_deadline(start, 0), start);
    }
}
