//! The hold-music pacer: one dedicated OS thread that sends every held
//! call's RTP. Time is cut into 1 ms slots; each stream lives in one of the
//! 20 slots of the 20 ms packet period, so sends are spread evenly rather
//! than bursting. Deadlines are absolute (start + n ms), so lateness never
//! accumulates. Measured in DESIGN.md: a thread like this beats a tokio
//! task per call by a wide margin in CPU and jitter.

use super::g711::Law;
use super::hold::HoldLoop;
use super::load::LoadGauge;
use super::rtp::{HEADER_LEN, Header, SAMPLES_PER_PACKET};
use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

const SLOTS: usize = 20;

/// When slot `tick` is due: `start + tick` ms, computed in u64 all the way.
/// Why: the tick counts milliseconds of uptime, and narrowing it (as
/// `SLOT * tick as u32` once did) wraps after 2^32 ms, 49.7 days; from then
/// on every deadline lies in the past, the pacer never sleeps again, floods
/// the held callers and reports itself overloaded. A u64 of milliseconds
/// lasts 584 million years.
fn slot_deadline(start: Instant, tick: u64) -> Instant {
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
    /// Share of the last window the pacer spent sending, in thousandths.
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
    pub law: Law,
    pub payload_type: u8,
    pub state: StreamState,
}

enum Command {
    Add(NewStream),
    Remove(u64, oneshot::Sender<Option<StreamState>>),
    Peek(u64, oneshot::Sender<Option<StreamState>>),
    SetRemote(u64, SocketAddr),
}

/// Handle to the pacer thread. Cheap to clone; the thread stops when the
/// last handle is dropped.
#[derive(Clone)]
pub struct Pacer {
    tx: mpsc::Sender<Command>,
    stats: Arc<PacerStats>,
    music: Arc<HoldLoop>,
}

impl Pacer {
    /// Starts the pacer thread; `music` is what held calls hear. Beyond
    /// `busy_limit` (share of its time spent sending, 0.0–1.0) it reports
    /// itself overloaded.
    pub fn start(music: HoldLoop, busy_limit: f64) -> std::io::Result<Pacer> {
        let (tx, rx) = mpsc::channel();
        let stats = Arc::new(PacerStats::default());
        let thread_stats = stats.clone();
        std::thread::Builder::new()
            .name("pinless-pacer".into())
            .spawn(move || run(rx, thread_stats, LoadGauge::new(busy_limit)))?;
        Ok(Pacer {
            tx,
            stats,
            music: Arc::new(music),
        })
    }

    /// The hold music, shared by every held call.
    pub fn music(&self) -> &Arc<HoldLoop> {
        &self.music
    }

    pub fn stats(&self) -> &Arc<PacerStats> {
        &self.stats
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
}

struct Stream {
    id: u64,
    source: Arc<HoldLoop>,
    socket: Arc<UdpSocket>,
    remote: SocketAddr,
    law: Law,
    payload_type: u8,
    ssrc: u32,
    sequence: u16,
    timestamp: u32,
    frame: u32,
    first: bool,
    last_sent: Option<Instant>,
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

/// Where each stream is: slot number and index within the slot.
struct Slots {
    slots: [Vec<Stream>; SLOTS],
    index: HashMap<u64, (usize, usize)>,
    next_slot: usize,
}

impl Slots {
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
}

fn run(rx: mpsc::Receiver<Command>, stats: Arc<PacerStats>, mut load: LoadGauge) {
    let mut slots = Slots {
        slots: std::array::from_fn(|_| Vec::new()),
        index: HashMap::new(),
        next_slot: 0,
    };
    let mut packet = [0u8; HEADER_LEN + SAMPLES_PER_PACKET as usize];
    let start = Instant::now();
    let mut tick: u64 = 0;
    loop {
        loop {
            match rx.try_recv() {
                Ok(Command::Add(n)) => slots.add(Stream {
                    id: n.id,
                    source: n.source,
                    socket: n.socket,
                    remote: n.remote,
                    law: n.law,
                    payload_type: n.payload_type,
                    ssrc: n.state.ssrc,
                    sequence: n.state.next_sequence,
                    timestamp: n.state.next_timestamp,
                    frame: 0,
                    first: true,
                    last_sent: None,
                }),
                Ok(Command::Remove(id, reply)) => {
                    let _ = reply.send(slots.remove(id).map(|s| s.state()));
                }
                Ok(Command::Peek(id, reply)) => {
                    let _ = reply.send(slots.get_mut(id).map(|s| s.state()));
                }
                Ok(Command::SetRemote(id, addr)) => {
                    if let Some(s) = slots.get_mut(id) {
                        s.remote = addr;
                    }
                }
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => return,
            }
        }
        stats
            .streams
            .store(slots.index.len() as u64, Ordering::Relaxed);

        let deadline = slot_deadline(start, tick);
        let now = Instant::now();
        if deadline > now {
            std::thread::sleep(deadline - now);
        } else if now - deadline > Duration::from_millis(5) {
            stats.late_slots.fetch_add(1, Ordering::Relaxed);
        }
        let sent_at = Instant::now();
        let lateness = sent_at.saturating_duration_since(deadline);
        let slot = (tick % SLOTS as u64) as usize;
        for s in slots.slots[slot].iter_mut() {
            let mut header = [0u8; HEADER_LEN];
            Header {
                marker: s.first,
                payload_type: s.payload_type,
                sequence: s.sequence,
                timestamp: s.timestamp,
                ssrc: s.ssrc,
            }
            .write(&mut header);
            packet[..HEADER_LEN].copy_from_slice(&header);
            packet[HEADER_LEN..].copy_from_slice(s.source.frame(s.law, s.frame));
            match s.socket.send_to(&packet, s.remote) {
                Ok(_) => stats.packets_sent.fetch_add(1, Ordering::Relaxed),
                Err(_) => stats.send_errors.fetch_add(1, Ordering::Relaxed),
            };
            s.first = false;
            s.sequence = s.sequence.wrapping_add(1);
            s.timestamp = s.timestamp.wrapping_add(SAMPLES_PER_PACKET);
            s.frame = (s.frame + 1) % s.source.frames();
            s.last_sent = Some(sent_at);
        }
        // An empty slot costs nothing worth counting.
        let work = if slots.slots[slot].is_empty() {
            Duration::ZERO
        } else {
            sent_at.elapsed()
        };
        if let Some(v) = load.slot(lateness, work) {
            let was = stats.overloaded.swap(v.overloaded, Ordering::Relaxed);
            if was != v.overloaded {
                tracing::warn!(
                    overloaded = v.overloaded,
                    busy = format!("{:.0}%", v.busy * 100.0),
                    late_slots = v.late,
                    "pacer load changed: new calls are {}",
                    if v.overloaded {
                        "refused (503)"
                    } else {
                        "taken again"
                    }
                );
            }
            stats
                .busy_permille
                .store((v.busy * 1000.0) as u64, Ordering::Relaxed);
        }
        tick += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
