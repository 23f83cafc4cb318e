//! One leg of a call as its media task reads it: the caller's, for the
//! whole call, or the room's while bridged. Both legs take in a packet
//! the same way (`Leg::receive`), in an order that matters:
//!
//! 1. Once latched, a packet from anyone but the peer is dropped, before
//!    SRTP sees it (its checks cost, and it keeps state per SSRC).
//! 2. SRTP: only an authentic packet goes on, decrypted.
//! 3. The first authentic packet latches the leg to where the peer really
//!    sends from (NAT), whatever its SDP said.
//! 4. It is life (see `liveness`), RTCP muxed on the port included.
//!
//! Only then is the packet read (key presses, a bot's uplink) or relayed.
//! RTCP on port + 1 is read only as a sign of life, from the peer's
//! address.

use super::LegCodec;
use super::start::LegStart;
use crate::media::fd;
use crate::media::liveness::{Liveness, MediaLeg};
use crate::media::ports::RtpSocket;
use crate::media::reception::{self, Reception};
use crate::media::rtp;
use crate::media::srtp::{self, SrtpLeg};
use crate::media::state::LegState;
use crate::media::stats::RelayStats;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::io::unix::AsyncFd;

/// A leg's socket, registered for reading only (see `fd`); sends are
/// plain non-blocking `send_to` calls on it.
type RtpFd = AsyncFd<UdpSocket>;

pub(super) struct Leg {
    /// Which leg this is, for liveness and saved state.
    which: MediaLeg,
    socket: RtpFd,
    /// RTCP on `port + 1`, read only as a sign of life.
    rtcp: Option<RtpFd>,
    port: u16,
    /// The peer: its SDP address until latched, then where it sends from.
    remote: SocketAddr,
    latched: bool,
    codec: LegCodec,
    /// The leg's SRTP (None: plain RTP).
    srtp: Option<Arc<SrtpLeg>>,
    /// Loss and jitter of what the peer sends (the call's quality report),
    /// with arrival times from `opened`.
    reception: Reception,
    opened: std::time::Instant,
}

/// A leg's end of the call's media and what it received, for the quality
/// report at the call's end.
#[derive(Debug, Clone, Copy)]
pub struct LegQuality {
    pub local_port: u16,
    pub remote: SocketAddr,
    pub received: reception::Received,
}

/// A packet `Leg::receive` let through.
pub(super) struct Received {
    /// Its length, decrypted.
    pub len: usize,
    /// It latched the leg to an address other than the SDP's: what is sent
    /// to the peer goes there from now on.
    pub moved_to: Option<SocketAddr>,
}

impl Leg {
    /// Registers the leg's sockets with the current runtime's reactor:
    /// call it on the call's shard.
    pub fn open(start: LegStart, which: MediaLeg) -> std::io::Result<Leg> {
        let LegStart {
            socket: RtpSocket { socket, port, rtcp },
            remote,
            latched,
            codec,
            sends: _,
            srtp,
        } = start;
        let socket = fd::readable(socket)?;
        // RTP alone is enough for a call: RTCP is only a sign of life.
        let rtcp = rtcp.and_then(|s| fd::readable(s).ok());
        Ok(Leg {
            which,
            socket,
            rtcp,
            port,
            remote,
            latched,
            codec,
            srtp,
            // Jitter is counted on the leg's RTP clock.
            reception: Reception::new(f64::from(codec.audio.clock_rate())),
            opened: std::time::Instant::now(),
        })
    }

    /// Counts an RTP packet `receive` let through (its header). Key
    /// presses count for loss but not for jitter: an event's packets all
    /// carry the timestamp of its start.
    pub fn heard(&mut self, header: &rtp::Header) {
        if header.payload_type == self.codec.payload_type {
            let at = self.opened.elapsed();
            (self.reception).packet(header.sequence, header.timestamp, at);
        } else {
            self.reception.counted(header.sequence);
        }
    }

    pub fn quality(&self) -> LegQuality {
        LegQuality {
            local_port: self.port,
            remote: self.remote,
            received: self.reception.received(),
        }
    }

    pub fn codec(&self) -> LegCodec {
        self.codec
    }

    pub fn remote(&self) -> SocketAddr {
        self.remote
    }

    pub fn srtp(&self) -> Option<&Arc<SrtpLeg>> {
        self.srtp.as_ref()
    }

    /// Waits for the next datagram on the leg's RTP port and reads it into
    /// the shard's buffer (`with_received`), as it came: not checked yet
    /// (see `receive`). Its length and source.
    pub async fn datagram(&self) -> std::io::Result<(usize, SocketAddr)> {
        loop {
            let mut ready = self.socket.readable().await?;
            let read = ready
                .try_io(|inner| RECEIVED.with_borrow_mut(|buf| inner.get_ref().recv_from(buf)));
            if let Ok(result) = read {
                return result;
            }
        }
    }

    /// Takes in the datagram `buf[..n]` that came from `src` (the steps in
    /// the module doc). None when it is dropped; else the packet, plain,
    /// is `buf[..len]`.
    pub fn receive(
        &mut self,
        buf: &mut [u8],
        n: usize,
        src: SocketAddr,
        liveness: &Liveness,
        stats: &RelayStats,
    ) -> Option<Received> {
        if self.latched && src != self.remote {
            stats.dropped_foreign.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let len = match &self.srtp {
            None => n,
            Some(s) => match s.open(buf, n) {
                Some(len) => len,
                None => {
                    stats.srtp_failed.fetch_add(1, Ordering::Relaxed);
                    return None;
                }
            },
        };
        let mut moved_to = None;
        if !self.latched {
            // From now on, RTP from anyone else is dropped.
            self.latched = true;
            if src != self.remote {
                self.remote = src;
                moved_to = Some(src);
            }
        }
        liveness.heard(self.which);
        Some(Received { len, moved_to })
    }

    /// Waits for one RTCP packet on port + 1 (never, without that socket)
    /// and counts it as life when it comes from the peer's address. The
    /// packet itself is not read (a short buffer: the rest is discarded).
    pub async fn rtcp(&self, liveness: &Liveness) {
        let Some(fd) = &self.rtcp else {
            return std::future::pending().await;
        };
        let mut buf = [0u8; 16];
        if recv_from(fd, &mut buf)
            .await
            .is_ok_and(|(_, src)| src.ip() == self.remote.ip())
        {
            liveness.heard(self.which);
        }
    }

    /// Sends `packet` (plain RTP) to the peer, through the leg's SRTP.
    /// Non-blocking: a full send buffer drops the packet, as the network
    /// would.
    pub fn send(&self, packet: &[u8]) {
        srtp::send(
            self.socket.get_ref(),
            packet,
            self.remote,
            self.srtp.as_deref(),
        );
    }

    /// The leg as saved state.
    pub fn state(&self, liveness: &Liveness) -> LegState {
        LegState {
            port: self.port,
            remote: self.remote,
            latched: self.latched,
            codec: self.codec.into(),
            sends: liveness.sends(self.which),
        }
    }
}

/// The largest datagram a leg takes (RTP, SRTP's tag included, with room).
const DATAGRAM: usize = 2048;

thread_local! {
    /// The datagram a leg just received, one buffer per media shard's
    /// thread. Why not one per call: a call's task would hold two of them
    /// (caller and room) for its whole life, 4 KB of every call's memory.
    /// This one is filled by `Leg::datagram` and read by `with_received`
    /// right after, with no await between, and a shard's thread runs one
    /// task at a time, so nothing else writes it meanwhile.
    static RECEIVED: std::cell::RefCell<[u8; DATAGRAM]> =
        const { std::cell::RefCell::new([0; DATAGRAM]) };
}

/// Runs `f` on the buffer the last `Leg::datagram` on this thread filled.
pub(super) fn with_received<R>(f: impl FnOnce(&mut [u8]) -> R) -> R {
    RECEIVED.with_borrow_mut(|buf| f(&mut buf[..]))
}

async fn recv_from(fd: &RtpFd, buf: &mut [u8]) -> std::io::Result<(usize, SocketAddr)> {
    loop {
        let mut ready = fd.readable().await?;
        if let Ok(result) = ready.try_io(|inner| inner.get_ref().recv_from(buf)) {
            return result;
        }
    }
}
