//! RTP port allocation: even ports in `[rtp_port_min, rtp_port_max]`,
//! handed out round-robin and bound on the spot, so a port in use by
//! anything else is simply skipped. Dropping the socket frees the port.
//! A call resumed after a restart claims its saved port by number.

use super::error::MediaError;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU32, Ordering};

/// A bound RTP socket and its port, with the RTCP socket on `port + 1`
/// when that port could be bound (RFC 3550: peers that do not multiplex
/// send RTCP there, and it tells that a silent peer is still alive).
#[derive(Debug)]
pub struct RtpSocket {
    pub socket: UdpSocket,
    pub port: u16,
    pub rtcp: Option<UdpSocket>,
}

/// Binds `port` for RTP (non-blocking) and, if it is free, `port + 1` for
/// RTCP; RTP alone is enough for a call, so a taken RTCP port is no error.
fn bind_pair(ip: IpAddr, port: u16) -> std::io::Result<RtpSocket> {
    let bind = |port| {
        UdpSocket::bind(SocketAddr::new(ip, port)).and_then(|s| s.set_nonblocking(true).map(|()| s))
    };
    let socket = bind(port)?;
    let rtcp = port.checked_add(1).and_then(|p| bind(p).ok());
    Ok(RtpSocket { socket, port, rtcp })
}

/// Hands out RTP sockets from a range.
#[derive(Debug)]
pub struct Ports {
    ip: IpAddr,
    /// The lowest even port of the range (u32: see `new`).
    first: u32,
    /// Even ports in the range; zero when there is none.
    count: u32,
    cursor: AtomicU32,
}

impl Ports {
    pub fn new(ip: IpAddr, min: u16, max: u16) -> Self {
        // In u32: rounding an odd `min` of 65535 up must not overflow a
        // u16, and a range with no even port must count zero ports, not one
        // outside the range.
        let first = u32::from(min) + u32::from(min % 2);
        let count = if first > u32::from(max) {
            0
        } else {
            (u32::from(max) - first) / 2 + 1
        };
        // Start at a random point so that two gateways (or test processes)
        // sharing a range rarely probe the same ports first.
        let start = rand::random::<u32>().checked_rem(count).unwrap_or(0);
        Self {
            ip,
            first,
            count,
            cursor: AtomicU32::new(start),
        }
    }

    /// Binds the next free even port; `None` when the whole range is taken.
    pub fn allocate(&self) -> Option<RtpSocket> {
        for _ in 0..self.count {
            let n = self.cursor.fetch_add(1, Ordering::Relaxed) % self.count;
            // n < count, so the port is at most `max`: the conversion
            // cannot fail, and a failure would only skip the port.
            let Ok(port) = u16::try_from(self.first + n * 2) else {
                continue;
            };
            if let Ok(pair) = bind_pair(self.ip, port) {
                return Some(pair);
            }
        }
        None
    }

    /// Binds exactly `port`, for a call resumed after a restart: the caller
    /// keeps sending to the port written in the SDP it got, so no other
    /// port will do. An error says whether the port is outside the range
    /// or could not be bound (taken, or the address is gone).
    pub fn claim(&self, port: u16) -> Result<RtpSocket, MediaError> {
        let offset = u32::from(port).checked_sub(self.first);
        let in_range = offset.is_some_and(|o| o % 2 == 0 && o / 2 < self.count);
        if !in_range {
            return Err(MediaError::PortOutOfRange { port });
        }
        bind_pair(self.ip, port).map_err(|source| MediaError::PortTaken { port, source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn even_ports_in_range_and_freed_on_drop() {
        let ports = Ports::new("127.0.0.1".parse().unwrap(), 41001, 41008);
        let a = ports.allocate().unwrap();
        let b = ports.allocate().unwrap();
        let c = ports.allocate().unwrap();
        let d = ports.allocate().unwrap();
        let mut got = vec![a.port, b.port, c.port, d.port];
        got.sort();
        assert_eq!(got, vec![41002, 41004, 41006, 41008]);
        assert!(ports.allocate().is_none(), "range exhausted");
        let freed = b.port;
        drop(b);
        assert_eq!(ports.allocate().unwrap().port, freed);
    }

    #[test]
    fn a_saved_port_is_claimed_by_number_once() {
        let ports = Ports::new("127.0.0.1".parse().unwrap(), 41011, 41018);
        let a = ports.claim(41014).unwrap();
        assert_eq!(a.port, 41014);
        assert_eq!(a.socket.local_addr().unwrap().port(), 41014);
        let taken = ports.claim(41014).unwrap_err();
        assert!(
            matches!(taken, MediaError::PortTaken { port: 41014, .. }),
            "{taken:?}"
        );
        assert!(std::error::Error::source(&taken).is_some());
        for outside in [41010, 41013, 41015, 41020, 0, 65535] {
            assert!(
                matches!(ports.claim(outside), Err(MediaError::PortOutOfRange { .. })),
                "{outside}"
            );
        }
        drop(a);
        assert_eq!(ports.claim(41014).unwrap().port, 41014);
    }

    #[test]
    fn ranges_at_the_top_or_without_an_even_port_do_not_overflow() {
        let ip = "127.0.0.1".parse().unwrap();
        let none = Ports::new(ip, 65535, 65535);
        assert_eq!(none.count, 0);
        assert!(none.allocate().is_none());
        assert_eq!(Ports::new(ip, 41003, 41003).count, 0);
        let top = Ports::new(ip, 65533, 65535);
        assert_eq!((top.first, top.count), (65534, 1));
    }
}
