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
    /// Starts sending one PCMU stream per `(from, to)`.
    pub fn start(streams: Vec<(Arc<UdpSocket>, SocketAddr)>) -> std::io::Result<Load> {
        let pcmu = Arc::new(Voice::pcmu());
        let streams = streams.into_iter();
        Self::start_streams(streams.map(|(f, t)| (f, t, None, pcmu.clone())).collect())
    }

    /// `start`, each stream in its own voice, encrypted with its SRTP leg
    /// when it has one.
    pub fn start_streams(streams: Vec<Stream>) -> std::io::Result<Load> {
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

/// What a stream sends every 20 ms: its payload type, one payload, and the
/// timestamp step of its clock.
pub struct Voice {
    pub payload_type: u8,
    pub payload: Vec<u8>,
    pub step: u32,
}

impl Voice {
    /// PCMU, every byte `PAYLOAD`.
    pub fn pcmu() -> Voice {
        Voice {
            payload_type: 0,
            payload: vec![PAYLOAD; 160],
            step: 160,
        }
    }

    /// Opus at payload type 111: one real 20 ms frame of a 440 Hz tone
    /// (32 kbit/s wideband, as our encoder makes it), on the 48 kHz clock.
    pub fn opus() -> Voice {
        let tone: Vec<i16> = (0..320)
            .map(|i| {
                ((f64::from(i) * 440.0 / 16_000.0 * std::f64::consts::TAU).sin() * 9000.0) as i16
            })
            .collect();
        let mut payload = Vec::new();
        if let Ok(mut encoder) = pinless::media::opus::Encoder::new(16_000) {
            // The second frame: past the encoder's start-up.
            encoder.encode(&tone, &mut payload);
            payload.clear();
            encoder.encode(&tone, &mut payload);
        }
        Voice {
            payload_type: pinless::codec::OPUS_PAYLOAD_TYPE,
            payload,
            step: 960,
        }
    }
}

/// From, to, the stream's SRTP, and what it sends.
pub type Stream = (Arc<UdpSocket>, SocketAddr, Option<Arc<SrtpLeg>>, Arc<Voice>);

fn send(streams: Vec<Stream>, stop: Arc<AtomicBool>) {
    let ssrcs: Vec<u32> = streams.iter().map(|_| rand::random()).collect();
    let start = Instant::now();
    let mut packet = vec![0u8; 12];
    for tick in 0u64.. {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let deadline = start + Duration::from_millis(tick);
        if let Some(wait) = deadline.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let round = (tick / 20) as u32;
        for (i, (socket, to, srtp, voice)) in streams.iter().enumerate() {
            if i % 20 != (tick % 20) as usize {
                continue;
            }
            packet.truncate(12);
            packet[0] = 0x80;
            packet[1] = voice.payload_type;
            packet[2..4].copy_from_slice(&(round as u16).to_be_bytes());
            packet[4..8].copy_from_slice(&round.wrapping_mul(voice.step).to_be_bytes());
            packet[8..12].copy_from_slice(&ssrcs[i].to_be_bytes());
            packet.extend_from_slice(&voice.payload);
            match srtp.as_ref().and_then(|s| s.protect(&packet)) {
                Some(wire) => socket.send_to(&wire, to),
                None => socket.send_to(&packet, to),
            }
            .ok();
        }
    }
}
