//! Pure tones as caller audio, and telling which one a packet carries:
//! a pattern that survives any codec round trip, resampling or rechunking
//! on the far end, unlike byte patterns.

use pinless::media::Law;
use pinless::media::rtp::{HEADER_LEN, Header};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// One 20 ms frame (160 samples at 8 kHz) of a `freq` Hz sine, starting at
/// sample `from` of an endless tone.
pub fn frame(law: Law, freq: u32, from: u64) -> Vec<u8> {
    (0..160u64)
        .map(|i| {
            let t = (from + i) as f64 / 8000.0;
            let s = (2.0 * std::f64::consts::PI * f64::from(freq) * t).sin() * 10_000.0;
            law.encode(s as i16)
        })
        .collect()
}

/// The share (0..=1) of a frame's energy at `freq` Hz (Goertzel). With
/// 160 samples the bins are 50 Hz apart: use multiples of 50 Hz.
pub fn share(law: Law, payload: &[u8], freq: u32) -> f64 {
    let samples: Vec<f64> = payload.iter().map(|b| f64::from(law.decode(*b))).collect();
    let energy: f64 = samples.iter().map(|s| s * s).sum();
    if samples.is_empty() || energy < 1e3 {
        return 0.0; // silence carries no tone
    }
    let w = 2.0 * std::f64::consts::PI * f64::from(freq) / 8000.0;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0, 0.0);
    for x in &samples {
        let s0 = x + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    // A pure tone of amplitude A over N samples: power = (A·N/2)², energy
    // = A²·N/2, so 2·power / (N·energy) is 1 for the tone alone.
    (2.0 * power / (samples.len() as f64 * energy)).min(1.0)
}

/// Whether a frame is (nearly all) a `freq` Hz tone.
pub fn carries(law: Law, payload: &[u8], freq: u32) -> bool {
    share(law, payload, freq) > 0.8
}

/// A caller's microphone playing a tone whose frequency the test changes
/// while it plays: RTP every 20 ms, one stream, until dropped.
pub struct ToneSender {
    freq: Arc<AtomicU32>,
    task: tokio::task::JoinHandle<()>,
}

impl ToneSender {
    /// Sends `freq` Hz as PCMU from `socket` to `to`.
    pub fn start(socket: Arc<tokio::net::UdpSocket>, to: SocketAddr, freq: u32) -> ToneSender {
        let shared = Arc::new(AtomicU32::new(freq));
        let playing = shared.clone();
        let task = tokio::spawn(async move {
            let ssrc = rand::random();
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            for i in 0u32.. {
                tick.tick().await;
                let mut head = [0u8; HEADER_LEN];
                Header {
                    marker: i == 0,
                    payload_type: 0,
                    sequence: i as u16,
                    timestamp: i.wrapping_mul(160),
                    ssrc,
                }
                .write(&mut head);
                let mut packet = head.to_vec();
                let f = playing.load(Ordering::Relaxed);
                packet.extend(frame(Law::Mu, f, u64::from(i) * 160));
                let _ = socket.send_to(&packet, to).await;
            }
        });
        ToneSender { freq: shared, task }
    }

    /// Plays `freq` Hz from the next frame on.
    pub fn set(&self, freq: u32) {
        self.freq.store(freq, Ordering::Relaxed);
    }
}

impl Drop for ToneSender {
    fn drop(&mut self) {
        self.task.abort();
    }
}
