//! What the media tests share: an engine on a port range of the test's
//! own (tests run in parallel), a fake peer's socket, RTP in and out.

use pinless::codec::AudioCodec;
use pinless::media::{HoldLoop, LegCodec, MediaEngine, MediaSettings};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::time::Duration;

pub const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

pub const MU: LegCodec = LegCodec::new(AudioCodec::Pcmu, 0, Some(101));
pub const A: LegCodec = LegCodec::new(AudioCodec::Pcma, 8, Some(101));

/// One second of a 440 Hz tone.
pub fn music() -> HoldLoop {
    let tone: Vec<f32> = (0..8_000)
        .map(|i| (i as f32 * 440.0 * std::f32::consts::TAU / 8_000.0).sin() * 0.5)
        .collect();
    HoldLoop::from_samples(&tone, 8_000)
}

/// Loopback, RTP timeout off.
pub fn settings(range: (u16, u16)) -> MediaSettings {
    MediaSettings {
        rtp_port_min: range.0,
        rtp_port_max: range.1,
        rtp_timeout: None,
        ..MediaSettings::new(LOOPBACK)
    }
}

pub fn engine(range: (u16, u16)) -> MediaEngine {
    MediaEngine::start(music(), settings(range)).unwrap()
}

/// A peer's RTP socket on loopback; reads time out after 2 s.
pub fn peer() -> UdpSocket {
    let s = UdpSocket::bind((LOOPBACK, 0)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rtp {
    pub marker: bool,
    pub payload_type: u8,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
}

/// A 20 ms G.711 packet.
pub fn rtp(payload_type: u8, sequence: u16, timestamp: u32, ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x80, payload_type];
    p.extend_from_slice(&sequence.to_be_bytes());
    p.extend_from_slice(&timestamp.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&[0xFF; 160]);
    p
}

/// An RTCP receiver report (empty): what a quiet peer still sends.
pub fn rtcp(ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x80, 201, 0, 1];
    p.extend_from_slice(&ssrc.to_be_bytes());
    p
}

pub fn send(from: &UdpSocket, port: u16, packet: &[u8]) {
    from.send_to(packet, (LOOPBACK, port)).unwrap();
}

fn header(p: &[u8]) -> Rtp {
    assert!(p.len() >= 12 && p[0] >> 6 == 2, "not RTP: {p:?}");
    Rtp {
        marker: p[1] & 0x80 != 0,
        payload_type: p[1] & 0x7F,
        sequence: u16::from_be_bytes([p[2], p[3]]),
        timestamp: u32::from_be_bytes([p[4], p[5], p[6], p[7]]),
        ssrc: u32::from_be_bytes([p[8], p[9], p[10], p[11]]),
    }
}

/// The next packet (panics after 2 s without one).
pub fn recv(on: &UdpSocket) -> (SocketAddr, Rtp) {
    let mut buf = [0u8; 2048];
    let (n, from) = on.recv_from(&mut buf).expect("an RTP packet within 2 s");
    (from, header(&buf[..n]))
}

/// Reads what is queued; the last packet, if any.
pub fn drain(on: &UdpSocket) -> Option<(SocketAddr, Rtp)> {
    on.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 2048];
    let mut last = None;
    while let Ok((n, from)) = on.recv_from(&mut buf) {
        last = Some((from, header(&buf[..n])));
    }
    on.set_nonblocking(false).unwrap();
    last
}
