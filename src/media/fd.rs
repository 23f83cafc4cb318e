//! Registering a descriptor with the current runtime's reactor for
//! reading only: the one way media does it, for the calls' RTP and RTCP
//! sockets and for a shard's slot timer.
//!
//! Why read interest alone: tokio's own `UdpSocket` also asks for
//! writability, and on Linux every datagram sent on a socket (the pacer
//! sends 50 a second per call from the very port the call's task reads)
//! then wakes the shard for nothing. Measured with `cargo run --release
//! --example bench -- hold --calls 1000`: 46.7 % of a core per 1,000 held
//! calls with both interests, 29.3 % with read interest alone (sipp's
//! player: 27-28 %). Sends stay plain non-blocking `send_to` calls.
//!
//! Why the deprecated safe call (`AsyncFd::with_interest`) and not its
//! `unsafe` successor (`register_with_interest`): tokio deprecated the safe
//! one (tokio PR 8587) because an arbitrary `AsRawFd` type might close its
//! descriptor, or hand out another one, while the reactor still has it
//! registered, and the reactor would then watch (and deregister) whatever
//! file took the number. That cannot happen with the types registered
//! here (`Registrable`): each owns exactly one descriptor from creation
//! to drop, returns that one from `as_raw_fd`, and is owned by the
//! `AsyncFd`, which deregisters before it drops it. Nothing in media calls
//! `AsyncFd::get_mut`, through which the owned value could be swapped. So
//! the call is sound here, and the crate keeps no `unsafe` of its own.

use nix::sys::timerfd::TimerFd;
use std::net::UdpSocket;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// What may be registered: a type that owns one descriptor for its whole
/// life and never swaps it (see the module doc for why this matters).
/// Implement it for nothing else.
pub(super) trait Registrable: AsRawFd {}

/// A std UDP socket owns its descriptor and closes it only on drop.
impl Registrable for UdpSocket {}

/// A kernel timer as the reactor wants it (by raw descriptor): `TimerFd`
/// owns its descriptor, and this wrapper's field is private, so the
/// timer in it is never replaced.
pub(super) struct Timer(TimerFd);

impl Timer {
    pub fn new(timer: TimerFd) -> Timer {
        Timer(timer)
    }

    pub fn get(&self) -> &TimerFd {
        &self.0
    }
}

impl AsRawFd for Timer {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

impl Registrable for Timer {}

/// `inner`, registered for reading only with the reactor of the runtime
/// this runs in (a shard's: call it on the shard).
pub(super) fn readable<T: Registrable>(inner: T) -> std::io::Result<AsyncFd<T>> {
    // Sound for `Registrable` types: see the module doc.
    #[allow(deprecated)]
    AsyncFd::with_interest(inner, Interest::READABLE)
}
