//! The relay mode's audio load: many RTP streams, each from a given socket
//! to a given address, paced on one thread the way a real peer sends (every
//! stream every 20 ms, streams spread over the period).

use pinless::media::SrtpLeg;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// A running load; stops when dropped.
pub struct Load {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Load {
    /// Starts sending one stream per `(from, to)`.
    pub fn start(streams: Vec<(Arc<UdpSocket>, SocketAddr)>) -> std::io::Result<Load> {
        Self::start_srtp(streams.into_iter().map(|(f, t)| (f, t, None)).collect())
    }

    /// `start`, each stream encrypted with its SRTP leg when it has one.
    pub fn start_srtp(streams: Vec<Stream>) -> std::io::Result<Load> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("bench-load".into())
            .spawn(move || send(streams, flag))?;
        Ok(Load {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The payload byte of every packet the load sends: a far end's audio is
/// told from music and silence by it.
pub const PAYLOAD: u8 = 0x33;

/// From, to, and the stream's SRTP.
pub type Stream = (Arc<UdpSocket>, SocketAddr, Option<Arc<SrtpLeg>>);

fn send(streams: Vec<Stream>, stop: Arc<AtomicBool>) {
    let ssrcs: Vec<u32> = streams.iter().map(|_| rand::random()).collect();
    let start = Instant::now();
    let mut packet = [PAYLOAD; 172];
    packet[0] = 0x80;
    for tick in 0u64.. {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let deadline = start + Duration::from_millis(tick);
        if let Some(wait) = deadline.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let round = (tick / 20) as u32;
        for (i, (socket, to, srtp)) in streams.iter().enumerate() {
            if i % 20 != (tick % 20) as usize {
                continue;
            }
            packet[1] = 0; // PCMU
            packet[2..4].copy_from_slice(&(round as u16).to_be_bytes());
            packet[4..8].copy_from_slice(&round.wrapping_mul(160).to_be_bytes());
            packet[8..12].copy_from_slice(&ssrcs[i].to_be_bytes());
            match srtp.as_ref().and_then(|s| s.protect(&packet)) {
                Some(wire) => socket.send_to(&wire, to),
                None => socket.send_to(&packet, to),
            }
            .ok();
        }
    }
}
