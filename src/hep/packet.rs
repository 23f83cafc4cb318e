//! HEP3 packets (the Homer Encapsulation Protocol, version 3), without
//! I/O: "HEP3", the total length, then chunks of vendor 0 (generic), each
//! `vendor u16, type u16, length u16` (the length counts these 6 bytes)
//! and its payload, all in network byte order.

use std::net::{IpAddr, SocketAddr};
use std::time::{SystemTime, UNIX_EPOCH};

/// What a packet carries (chunk 0x000b, the capture protocol type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload {
    /// A SIP message as it went over the wire.
    Sip,
    /// A call's quality report, JSON (Homer's "MOS full report").
    QualityReport,
}

impl Payload {
    fn code(self) -> u8 {
        match self {
            Payload::Sip => 0x01,
            Payload::QualityReport => 0x22,
        }
    }
}

/// The transport a captured message went over (chunk 0x0002).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ip {
    Udp,
    Tcp,
}

/// One captured message and who captured it.
#[derive(Debug, Clone)]
pub struct Frame<'a> {
    pub payload_type: Payload,
    pub ip: Ip,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub at: SystemTime,
    /// The capture agent's number (`[hep] node_id`).
    pub node_id: u32,
    /// `[hep] password`; empty: no authentication chunk.
    pub password: &'a str,
    /// The SIP Call-ID the collector groups by (chunk 0x0011).
    pub correlation: Option<&'a str>,
    /// MOS ×100 of a quality report (chunk 0x0020).
    pub mos: Option<u16>,
    pub payload: &'a [u8],
}

/// The largest packet HEP's 16-bit length can describe.
pub const MAX_PACKET: usize = u16::MAX as usize;

/// Encodes `f`; None when it would not fit in one HEP3 packet (a SIP
/// message near 64 KiB over TCP).
pub fn encode(f: &Frame) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(f.payload.len() + 128);
    out.extend_from_slice(b"HEP3");
    out.extend_from_slice(&[0, 0]); // the total length, set below
    // Both ends of one family: a v4 peer of a v6 socket is shown mapped.
    let (src, dst) = (canonical(f.src.ip()), canonical(f.dst.ip()));
    let (src, dst) = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            chunk(&mut out, 0x0001, &[2]);
            (IpBytes::V4(s.octets()), IpBytes::V4(d.octets()))
        }
        (s, d) => {
            chunk(&mut out, 0x0001, &[10]);
            (IpBytes::V6(v6(s)), IpBytes::V6(v6(d)))
        }
    };
    chunk(
        &mut out,
        0x0002,
        &[match f.ip {
            Ip::Udp => 17,
            Ip::Tcp => 6,
        }],
    );
    match (src, dst) {
        (IpBytes::V4(s), IpBytes::V4(d)) => {
            chunk(&mut out, 0x0003, &s);
            chunk(&mut out, 0x0004, &d);
        }
        (IpBytes::V6(s), IpBytes::V6(d)) => {
            chunk(&mut out, 0x0005, &s);
            chunk(&mut out, 0x0006, &d);
        }
        // Both sides were made of one family above.
        _ => return None,
    }
    chunk(&mut out, 0x0007, &f.src.port().to_be_bytes());
    chunk(&mut out, 0x0008, &f.dst.port().to_be_bytes());
    let since = f.at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = u32::try_from(since.as_secs()).unwrap_or(u32::MAX);
    chunk(&mut out, 0x0009, &secs.to_be_bytes());
    chunk(&mut out, 0x000a, &since.subsec_micros().to_be_bytes());
    chunk(&mut out, 0x000b, &[f.payload_type.code()]);
    chunk(&mut out, 0x000c, &f.node_id.to_be_bytes());
    if !f.password.is_empty() {
        chunk(&mut out, 0x000e, f.password.as_bytes());
    }
    if let Some(id) = f.correlation {
        chunk(&mut out, 0x0011, id.as_bytes());
    }
    if let Some(mos) = f.mos {
        chunk(&mut out, 0x0020, &mos.to_be_bytes());
    }
    chunk(&mut out, 0x000f, f.payload);
    let total = u16::try_from(out.len()).ok()?;
    out[4..6].copy_from_slice(&total.to_be_bytes());
    Some(out)
}

enum IpBytes {
    V4([u8; 4]),
    V6([u8; 16]),
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn v6(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

/// Appends one generic chunk. A payload too long for a chunk's 16-bit
/// length makes the packet too long as well, which `encode` refuses.
fn chunk(out: &mut Vec<u8>, kind: u16, payload: &[u8]) {
    let len = u16::try_from(payload.len() + 6).unwrap_or(u16::MAX);
    out.extend_from_slice(&0u16.to_be_bytes());
    out.extend_from_slice(&kind.to_be_bytes());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(payload);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// The chunks of a packet: (type, payload).
    fn chunks(p: &[u8]) -> Vec<(u16, Vec<u8>)> {
        assert_eq!(&p[..4], b"HEP3");
        assert_eq!(usize::from(u16::from_be_bytes([p[4], p[5]])), p.len());
        let mut out = vec![];
        let mut at = 6;
        while at < p.len() {
            assert_eq!(&p[at..at + 2], &[0, 0], "vendor 0");
            let kind = u16::from_be_bytes([p[at + 2], p[at + 3]]);
            let len = usize::from(u16::from_be_bytes([p[at + 4], p[at + 5]]));
            out.push((kind, p[at + 6..at + len].to_vec()));
            at += len;
        }
        assert_eq!(at, p.len());
        out
    }

    fn frame<'a>(src: &str, dst: &str, payload: &'a [u8]) -> Frame<'a> {
        Frame {
            payload_type: Payload::Sip,
            ip: Ip::Udp,
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            at: UNIX_EPOCH + Duration::new(1_313_440_459, 120_000_000),
            node_id: 228,
            password: "",
            correlation: None,
            mos: None,
            payload,
        }
    }

    #[test]
    fn the_specification_s_example_packet_is_written_byte_for_byte() {
        // The example of the HEP3 specification (rev. 37): an INVITE
        // from 212.202.0.1:12010 to 82.116.0.211:5060, capture ID 228.
        let f = frame("212.202.0.1:12010", "82.116.0.211:5060", b"INVITE sip:bob");
        let p = encode(&f).unwrap();
        let expected: Vec<u8> = [
            &b"HEP3"[..],
            &[0x00, 0x71],
            &[0, 0, 0, 1, 0, 7, 2],
            &[0, 0, 0, 2, 0, 7, 17],
            &[0, 0, 0, 3, 0, 10, 212, 202, 0, 1],
            &[0, 0, 0, 4, 0, 10, 82, 116, 0, 211],
            &[0, 0, 0, 7, 0, 8, 0x2e, 0xea],
            &[0, 0, 0, 8, 0, 8, 0x13, 0xc4],
            &[0, 0, 0, 9, 0, 10, 0x4e, 0x49, 0x82, 0xcb],
            &[0, 0, 0, 10, 0, 10, 0x00, 0x01, 0xd4, 0xc0],
            &[0, 0, 0, 11, 0, 7, 1],
            &[0, 0, 0, 12, 0, 10, 0, 0, 0, 0xe4],
            &[0, 0, 0, 15, 0, 20],
            &b"INVITE sip:bob"[..],
        ]
        .concat();
        assert_eq!(p, expected);
    }

    #[test]
    fn password_call_id_mos_and_ipv6_go_in_their_chunks() {
        let mut f = frame("[2001:db8::1]:5060", "127.0.0.1:5080", b"x");
        f.password = "secret";
        f.correlation = Some("abc@host");
        f.payload_type = Payload::QualityReport;
        f.ip = Ip::Tcp;
        f.mos = Some(431);
        let c = chunks(&encode(&f).unwrap());
        let get = |t: u16| c.iter().find(|(k, _)| *k == t).map(|(_, v)| v.clone());
        assert_eq!(get(0x0001), Some(vec![10]), "IPv6 family for mixed ends");
        assert_eq!(get(0x0002), Some(vec![6]));
        assert_eq!(get(0x0006).map(|v| v.len()), Some(16));
        assert_eq!(get(0x000b), Some(vec![0x22]));
        assert_eq!(get(0x000e), Some(b"secret".to_vec()));
        assert_eq!(get(0x0011), Some(b"abc@host".to_vec()));
        assert_eq!(get(0x0020), Some(431u16.to_be_bytes().to_vec()));
        assert_eq!(c.last().map(|(k, _)| *k), Some(0x000f), "payload last");
        // A v4 peer seen on a v6 socket is written as v4.
        let f = frame("[::ffff:10.0.0.1]:5060", "10.0.0.2:5060", b"x");
        let c = chunks(&encode(&f).unwrap());
        assert_eq!(c[0], (0x0001, vec![2]));
    }

    #[test]
    fn a_message_too_long_for_one_packet_is_refused() {
        let big = vec![b'a'; MAX_PACKET];
        assert!(encode(&frame("127.0.0.1:1", "127.0.0.1:2", &big)).is_none());
        let fits = vec![b'a'; 60_000];
        assert!(encode(&frame("127.0.0.1:1", "127.0.0.1:2", &fits)).is_some());
    }
}
