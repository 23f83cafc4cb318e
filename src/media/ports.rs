//! RTP port allocation: even ports in `[rtp_port_min, rtp_port_max]`,
//! handed out round-robin and bound on the spot, so a port in use by
//! anything else is simply skipped. Dropping the socket frees the port.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU32, Ordering};

/// A bound RTP socket and its port.
#[derive(Debug)]
pub struct RtpSocket {
    pub socket: UdpSocket,
    pub port: u16,
}

/// Hands out RTP sockets from a range.
#[derive(Debug)]
pub struct Ports {
    ip: IpAddr,
    first: u16,
    count: u32,
    cursor: AtomicU32,
}

impl Ports {
    pub fn new(ip: IpAddr, min: u16, max: u16) -> Self {
        let first = min + (min % 2);
        let count = ((max.saturating_sub(first)) as u32 / 2) + 1;
        // Start at a random point so that two gateways (or test processes)
        // sharing a range rarely probe the same ports first.
        let start = rand::random::<u32>() % count;
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
            let port = self.first + (n * 2) as u16;
            let bound = UdpSocket::bind(SocketAddr::new(self.ip, port));
            if let Ok(socket) = bound.and_then(|s| s.set_nonblocking(true).map(|()| s)) {
                return Some(RtpSocket { socket, port });
            }
        }
        None
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
}
