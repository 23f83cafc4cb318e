//! Tones sent as RTP at a codec's pace, and telling a tone apart in what
//! came back (Goertzel power, level): shared by the wideband codec tests
//! (G.722, Opus), whose audio is decoded before it is judged.

use super::RtpPeer;
use super::peers::Packet;
use pinless::media::rtp::{HEADER_LEN, Header};
use std::net::SocketAddr;
use std::time::Duration;

/// A `hz` tone at `rate` Hz, `secs` long, at 6364 rms.
pub fn tone(hz: f64, rate: f64, secs: f64) -> Vec<i16> {
    (0..(rate * secs) as usize)
        .map(|i| ((i as f64 * hz / rate * std::f64::consts::TAU).sin() * 9000.0) as i16)
        .collect()
}

/// A `hz` tone, `secs` long, as 20 ms PCMU payloads (160 bytes each).
pub fn mulaw_tone(hz: f64, secs: f64) -> Vec<Vec<u8>> {
    let law = pinless::media::Law::Mu;
    tone(hz, 8000.0, secs)
        .chunks(160)
        .map(|f| f.iter().map(|s| law.encode(*s)).collect())
        .collect()
}

/// A `hz` tone, `secs` long, as 20 ms G.722 payloads (160 bytes each).
pub fn g722_tone(hz: f64, secs: f64) -> Vec<Vec<u8>> {
    let mut encoder = pinless::media::g722::G722Encoder::new();
    tone(hz, 16000.0, secs)
        .chunks(320)
        .map(|f| encoder.encode(f))
        .collect()
}

/// An Opus decoder as a peer would have it: 48 kHz, mono out; a payload
/// libopus cannot read fails the test.
pub fn opus_peer_decoder() -> impl FnMut(&[u8]) -> Vec<i16> {
    let mut decoder = opus::Decoder::new(48_000, opus::Channels::Mono).expect("libopus decoder");
    move |payload| {
        let mut out = vec![0i16; 5760];
        let n = decoder
            .decode(payload, &mut out, false)
            .expect("a valid Opus packet");
        out.truncate(n);
        out
    }
}

/// `pcm` (48 kHz) encoded as a peer does: 20 ms a packet.
pub fn opus_peer_encoded(pcm: &[i16]) -> Vec<Vec<u8>> {
    let mut encoder = opus::Encoder::new(48_000, opus::Channels::Mono, opus::Application::Voip)
        .expect("libopus encoder");
    pcm.chunks(960)
        .map(|f| encoder.encode_vec(f, 1500).expect("20 ms encodes"))
        .collect()
}

/// Sends `payloads` as one RTP stream, one every 20 ms, to `to`; the
/// timestamp moves `step` a packet (160 at 8000 Hz, 960 for Opus).
pub fn send_payloads(
    peer: &RtpPeer,
    to: SocketAddr,
    payload_type: u8,
    step: u32,
    payloads: Vec<Vec<u8>>,
) -> tokio::task::JoinHandle<()> {
    let socket = peer.socket.clone();
    tokio::spawn(async move {
        let ssrc = rand::random();
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        for (i, payload) in payloads.iter().enumerate() {
            tick.tick().await;
            let mut head = [0u8; HEADER_LEN];
            Header {
                marker: i == 0,
                payload_type,
                sequence: 7 + i as u16,
                timestamp: 3000 + i as u32 * step,
                ssrc,
            }
            .write(&mut head);
            let mut packet = head.to_vec();
            packet.extend(payload);
            let _ = socket.send_to(&packet, to).await;
        }
    })
}

/// Power of `hz` in `x` (Goertzel).
pub fn power(x: &[i16], rate: f64, hz: f64) -> f64 {
    let w = 2.0 * (std::f64::consts::TAU * hz / rate).cos();
    let (mut s1, mut s2) = (0f64, 0f64);
    for v in x {
        let s = f64::from(*v) + w * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    (s1 * s1 + s2 * s2 - w * s1 * s2) / x.len() as f64
}

pub fn rms(x: &[i16]) -> f64 {
    (x.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>() / x.len().max(1) as f64).sqrt()
}

/// `x` carries `hz` and no other of the tests' tones, at about the level
/// it was sent.
pub fn assert_tone(x: &[i16], rate: f64, hz: f64, what: &str) {
    assert!(
        x.len() as f64 > rate * 0.3,
        "{what}: only {} samples",
        x.len()
    );
    let wanted = power(x, rate, hz);
    for other in [440.0, 697.0, 1000.0, 1633.0, 2300.0] {
        if other != hz {
            let p = power(x, rate, other);
            assert!(
                wanted > 100.0 * p,
                "{what}: {hz} Hz not clear of {other} Hz"
            );
        }
    }
    let level = rms(x);
    assert!(
        (4500.0..8500.0).contains(&level),
        "{what}: level {level:.0} (sent at 6364)"
    );
}

/// The audio of `packets` of `payload_type`, decoded by `decode`, without
/// the first 100 ms (the filters and the codecs' state settling).
pub fn decoded(
    packets: &[Packet],
    payload_type: u8,
    mut decode: impl FnMut(&[u8]) -> Vec<i16>,
) -> Vec<i16> {
    packets
        .iter()
        .filter(|p| p.header.payload_type == payload_type)
        .skip(5)
        .flat_map(|p| decode(&p.payload))
        .collect()
}
