//! A lean RTP receiver: one UDP socket for every stream (told apart by
//! SSRC), `recvmmsg` in batches, kernel receive timestamps (SO_TIMESTAMPNS),
//! and per-stream interval, jitter (RFC 3550) and loss accounting into
//! fixed-size histograms, so a million packets cost no allocation.

use nix::sys::socket::{
    ControlMessageOwned, MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg, setsockopt, sockopt,
};
use nix::sys::time::TimeSpec;
use std::collections::HashMap;
use std::io::IoSliceMut;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const BATCH: usize = 64;
/// Histogram buckets of 10 µs up to 100 ms; the last one holds the rest.
const BUCKETS: usize = 10_000;
const BUCKET_US: u64 = 10;

/// A histogram of microsecond values.
#[derive(Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
}

impl Histogram {
    fn new() -> Self {
        Self {
            counts: vec![0; BUCKETS],
            total: 0,
        }
    }

    fn add(&mut self, us: u64) {
        let i = ((us / BUCKET_US) as usize).min(BUCKETS - 1);
        self.counts[i] += 1;
        self.total += 1;
    }

    /// The value (µs) below which `q` of the samples fall.
    pub fn quantile(&self, q: f64) -> f64 {
        let want = (self.total as f64 * q).ceil() as u64;
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= want && *c > 0 {
                return ((i as u64 + 1) * BUCKET_US) as f64;
            }
        }
        0.0
    }

    pub fn count(&self) -> u64 {
        self.total
    }
}

struct Stream {
    last_seq: u16,
    last_ts: u32,
    last_arrival_ns: i128,
    /// RFC 3550 jitter estimate, in RTP timestamp units (1/8000 s).
    jitter: f64,
    /// The watched payload seen on this stream already.
    switched: bool,
}

/// What the receiver measured while recording.
pub struct Stats {
    pub packets: u64,
    pub lost: u64,
    pub streams: usize,
    /// |inter-arrival − 20 ms| per packet, µs.
    pub deviation: Histogram,
    /// Final jitter of each stream, µs.
    pub jitter: Histogram,
    /// Packets whose payload was all the watched byte (see `watch`).
    pub watched: u64,
}

struct State {
    recording: bool,
    streams: HashMap<u32, Stream>,
    seen_ssrcs: usize,
    packets: u64,
    lost: u64,
    deviation: Histogram,
    /// Recorded packets whose payload is all the watched byte.
    watched: u64,
    /// Packets at any time, recording or not.
    all_packets: u64,
    /// A payload byte that marks a room's audio (transfer mode), and each
    /// stream's first packet of it.
    watch: Option<u8>,
    switches: Vec<Switch>,
    /// Every address packets came from.
    sources: std::collections::HashSet<SocketAddr>,
}

/// The moment a stream went from music to a room's audio.
#[derive(Debug, Clone, Copy)]
pub struct Switch {
    /// Kernel receive time, ns since the Unix epoch.
    pub at_ns: i128,
    /// Since the stream's packet before (the last of the music), ns.
    pub gap_ns: i128,
}

/// The receiving thread and what it shares.
pub struct Receiver {
    pub addr: SocketAddr,
    /// The receiving socket, for sending from the address we receive on
    /// (symmetric RTP: relay mode's load leaves from here).
    pub sender: UdpSocket,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Receiver {
    /// Binds 127.0.0.1 and starts receiving on its own thread.
    pub fn start() -> std::io::Result<Receiver> {
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        let addr = socket.local_addr()?;
        socket.set_read_timeout(Some(Duration::from_millis(100)))?;
        let _ = setsockopt(&socket, sockopt::RcvBufForce, &(32 << 20))
            .or_else(|_| setsockopt(&socket, sockopt::RcvBuf, &(32 << 20)));
        setsockopt(&socket, sockopt::ReceiveTimestampns, &true).map_err(std::io::Error::from)?;
        let state = Arc::new(Mutex::new(State {
            recording: false,
            streams: HashMap::new(),
            seen_ssrcs: 0,
            packets: 0,
            lost: 0,
            deviation: Histogram::new(),
            watched: 0,
            all_packets: 0,
            watch: None,
            switches: Vec::new(),
            sources: Default::default(),
        }));
        let sender = socket.try_clone()?;
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (state.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("bench-rx".into())
            .spawn(move || receive(socket, s, st))?;
        Ok(Receiver {
            addr,
            sender,
            state,
            stop,
            thread: Some(thread),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every address packets came from so far.
    pub fn sources(&self) -> Vec<SocketAddr> {
        self.lock().sources.iter().copied().collect()
    }

    /// Distinct SSRCs seen so far.
    pub fn ssrcs(&self) -> usize {
        self.lock().seen_ssrcs
    }

    pub fn all_packets(&self) -> u64 {
        self.lock().all_packets
    }

    /// From now on, notes each stream's first packet whose payload is all
    /// `byte` (see `switches`), and counts such packets while recording.
    pub fn watch(&self, byte: u8) {
        self.lock().watch = Some(byte);
    }

    /// The switches seen so far, in arrival order.
    pub fn switches(&self) -> Vec<Switch> {
        self.lock().switches.clone()
    }

    /// Starts a measurement window (forgets earlier figures).
    pub fn record(&self) {
        let mut s = self.lock();
        s.recording = true;
        s.packets = 0;
        s.lost = 0;
        s.watched = 0;
        s.deviation = Histogram::new();
        for stream in s.streams.values_mut() {
            stream.jitter = 0.0;
            stream.last_arrival_ns = 0;
        }
    }

    /// Ends the window and returns its figures.
    pub fn finish(&self) -> Stats {
        let mut s = self.lock();
        s.recording = false;
        let mut jitter = Histogram::new();
        for stream in s.streams.values() {
            jitter.add((stream.jitter / 8.0 * 1000.0) as u64);
        }
        Stats {
            packets: s.packets,
            lost: s.lost,
            streams: s.streams.len(),
            deviation: s.deviation.clone(),
            jitter,
            watched: s.watched,
        }
    }

    /// Forgets every stream (between runs).
    pub fn reset(&self) {
        let mut s = self.lock();
        s.streams.clear();
        s.sources.clear();
        s.seen_ssrcs = 0;
        s.all_packets = 0;
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn receive(socket: UdpSocket, state: Arc<Mutex<State>>, stop: Arc<AtomicBool>) {
    let fd = socket.as_raw_fd();
    let mut bufs = vec![[0u8; 256]; BATCH];
    let mut headers =
        MultiHeaders::<SockaddrStorage>::preallocate(BATCH, Some(nix::cmsg_space!(TimeSpec)));
    let mut got: Vec<(usize, usize, i128, Option<SocketAddr>)> = Vec::with_capacity(BATCH);
    while !stop.load(Ordering::Relaxed) {
        got.clear();
        {
            let mut iovs: Vec<[IoSliceMut; 1]> = bufs
                .iter_mut()
                .map(|b| [IoSliceMut::new(&mut b[..])])
                .collect();
            let Ok(msgs) = recvmmsg(
                fd,
                &mut headers,
                iovs.iter_mut(),
                MsgFlags::MSG_DONTWAIT,
                None,
            ) else {
                // Nothing queued: poll again in a millisecond rather than
                // block, so no sender pays for waking us (on loopback the
                // sender's system call does the receive side's work,
                // wake-ups included; a real network card would not bill
                // the server for it). Kernel timestamps keep the
                // measurement exact whenever we read.
                std::thread::sleep(Duration::from_millis(1));
                continue;
            };
            for (i, msg) in msgs.enumerate() {
                let mut at = 0i128;
                if let Ok(cmsgs) = msg.cmsgs() {
                    for c in cmsgs {
                        if let ControlMessageOwned::ScmTimestampns(ts) = c {
                            at = ts.tv_sec() as i128 * 1_000_000_000 + ts.tv_nsec() as i128;
                        }
                    }
                }
                let from = msg
                    .address
                    .and_then(|a| a.as_sockaddr_in().map(|v4| SocketAddr::V4((*v4).into())));
                got.push((i, msg.bytes, at, from));
            }
        }
        let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
        for &(i, len, at, from) in &got {
            if let Some(from) = from {
                s.sources.insert(from);
            }
            account(&mut s, &bufs[i][..len], at);
        }
    }
}

fn account(s: &mut State, packet: &[u8], at_ns: i128) {
    if packet.len() < 12 || packet[0] >> 6 != 2 {
        return;
    }
    s.all_packets += 1;
    let seq = u16::from_be_bytes([packet[2], packet[3]]);
    let ts = u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]);
    let ssrc = u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]);
    let recording = s.recording;
    let new = !s.streams.contains_key(&ssrc);
    if new {
        s.seen_ssrcs += 1;
    }
    let stream = s.streams.entry(ssrc).or_insert(Stream {
        last_seq: seq.wrapping_sub(1),
        last_ts: ts.wrapping_sub(160),
        last_arrival_ns: 0,
        jitter: 0.0,
        switched: false,
    });
    let watched = s
        .watch
        .is_some_and(|byte| packet.len() > 12 && packet[12..].iter().all(|b| *b == byte));
    if watched && !stream.switched {
        stream.switched = true;
        let switch = Switch {
            at_ns,
            gap_ns: at_ns - stream.last_arrival_ns,
        };
        s.switches.push(switch);
    }
    let gap = seq.wrapping_sub(stream.last_seq);
    let mut lost = 0;
    let mut deviation = None;
    if gap != 0 && gap < 0x8000 {
        lost = u64::from(gap - 1);
        if stream.last_arrival_ns != 0 && at_ns != 0 {
            let arrival = at_ns - stream.last_arrival_ns;
            let expected = i128::from(ts.wrapping_sub(stream.last_ts)) * 125_000; // ns per sample
            deviation = Some(((arrival - 20_000_000).unsigned_abs() / 1000) as u64);
            // RFC 3550 §6.4.1: J += (|D| − J) / 16, D in timestamp units.
            let d = ((arrival - expected) as f64 / 125_000.0).abs();
            stream.jitter += (d - stream.jitter) / 16.0;
        }
        stream.last_seq = seq;
        stream.last_ts = ts;
        stream.last_arrival_ns = at_ns;
    }
    if recording {
        s.packets += 1;
        s.watched += u64::from(watched);
        s.lost += lost;
        if let Some(d) = deviation {
            s.deviation.add(d);
        }
    }
}
