//! SRTP (RFC 3711) on one leg, keyed by SDES (RFC 4568): the leg's two
//! crypto contexts, ours for what we send and the peer's for what we
//! receive, each from the key in that side's `a=crypto` line. The
//! cryptography is the `rtc-srtp` crate's (ring underneath); this file
//! only keys it, feeds it packets and keeps what a restart needs.
//!
//! - The relay decrypts a packet with the leg it came from
//!   (`unprotect`) and encrypts it with the leg it goes to (`protect`);
//!   the pacer encrypts each music frame with the caller's leg.
//! - SRTCP muxed on the RTP port (RFC 5761) is checked (authenticated
//!   and decrypted) and taken as a sign of life, as plain RTCP is. SRTCP
//!   on port+1 is not read: as for plain RTCP there, any packet from the
//!   peer's address is life (see `call::leg`): a packet forged from that
//!   address keeps a silent leg counted as alive (it cannot put audio in
//!   the call). Like plain RTCP it is not relayed, and we send none, so
//!   no SRTCP index of ours needs keeping.
//! - What the peer sends reaches the crate only from the latched address
//!   (`Leg::receive` checks that first) and for at most `MAX_PEER_SSRCS`
//!   SSRCs: the crate keeps state for every SSRC it is shown, authentic
//!   or not. SRTCP without its E flag is refused here: the crate would
//!   return it unauthenticated.
//! - Resuming a saved call (`SrtpState`): a fresh context starts every
//!   stream at rollover counter 0, and the crate does not let us set it.
//!   Its encrypt and decrypt share one per-SSRC index, so `restore` walks
//!   that index up to the saved one by encrypting throw-away packets
//!   (never sent) in steps the crate's estimator follows (< 2^15): the
//!   next real packet, ours or the peer's, then carries the right
//!   counter. Without it a call resumed after a sequence wrap would be
//!   undecryptable for the peer and for us, and ours would reuse
//!   keystream. The state is saved at the call's changes of state only,
//!   so the walk goes past the saved index by the time since (`Gap`):
//!   exactly for our own stream (as its sequence number is moved), and
//!   by one packet per 20 ms for the peer's and the relayed one. A peer
//!   that sent much less than that meanwhile (more than 2^15 packets
//!   less: 11 minutes of silence suppression) is read with the wrong
//!   rollover counter and its audio is refused as not authentic; the
//!   crate cannot be told to try the next counters. A saved index past
//!   `MAX_RESTORED_INDEX` fails the resume (corrupt state).

use crate::sdes::MasterKey;
use rtc_srtp::context::Context;
use rtc_srtp::crypto::RTCCryptoProvider;
use rtc_srtp::option::{srtcp_replay_protection, srtp_replay_protection};
use rtc_srtp::protection_profile::ProtectionProfile;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

pub use crate::sdes::{LegKeys, Suite};

/// Packets of the replay window (RFC 3711 §3.3.2: at least 64).
const REPLAY_WINDOW: usize = 128;

/// Distinct SSRCs the peer's context may hold state for (RTP and SRTCP
/// each). The crate makes per-SSRC state (with its replay window) for a
/// packet before checking its tag, and never drops it: without a cap,
/// forged packets with random SSRCs would grow the call's memory without
/// end. A phone uses one SSRC, and a few more over re-INVITEs.
const MAX_PEER_SSRCS: usize = 4;

/// The same for what we send: our music SSRC and the other leg's, which
/// change less often but are not authenticated when that leg is plain.
const MAX_OWN_SSRCS: usize = 16;

/// The highest index `restore` takes, saved or projected: 2^32 packets
/// are 2.7 years of one stream at 50 a second, and the walk to it costs
/// about 143,000 throw-away encryptions. A corrupt index near 2^48 would
/// otherwise keep the resume busy for hours.
pub const MAX_RESTORED_INDEX: u64 = 1 << 32;

/// Steps of the index walk in `restore`: under 2^15, which the crate's
/// rollover estimator takes as "forward".
const WALK_STEP: u64 = 30_000;

/// A leg's SRTP as saved with the call (see `MediaState`): its keys, and
/// per SSRC the index (rollover counter × 2^16 + sequence number) of the
/// last packet each way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SrtpState {
    pub keys: LegKeys,
    #[serde(default)]
    pub sent: Vec<(u32, u64)>,
    #[serde(default)]
    pub received: Vec<(u32, u64)>,
}

/// How far a saved leg's streams moved on while the call was down: the
/// state is saved at the call's changes of state only, so it may be
/// minutes older than the crash, and every stream went on meanwhile.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Gap {
    /// Packets a stream carried in that time, at one per 20 ms: what the
    /// peer's streams (and the other leg's, relayed) are taken to have
    /// moved. The crate's estimate follows from there within 2^15
    /// packets either way.
    pub packets: u64,
    /// Our own stream on this leg (its SSRC) and how far its sequence
    /// number moves (see `StreamPosition::project`): known exactly, so
    /// its index lands exactly where our next packet is.
    pub ours: Option<(u32, u64)>,
}

/// Why a leg's SRTP could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SrtpError {
    /// A saved index (or where the gap moved it) is past what a call can
    /// reach (`MAX_RESTORED_INDEX`): the saved state is corrupt.
    #[error("saved SRTP index {index} of SSRC {ssrc} is past {MAX_RESTORED_INDEX}")]
    Index {
        /// The stream.
        ssrc: u32,
        /// Its index, the gap included.
        index: u64,
    },
    /// The crate refused the key (length, or no provider for the suite).
    #[error("SRTP context for {suite}: {reason}")]
    Context {
        /// The suite's SDP name.
        suite: &'static str,
        /// The crate's words (never the key).
        reason: String,
    },
}

/// One direction: a context and the index of each SSRC it has seen.
struct Direction {
    ctx: Context,
    index: HashMap<u32, u64>,
    /// SSRCs handed to the crate (RTP, then SRTCP), authentic or not:
    /// each has state there (see `MAX_PEER_SSRCS`).
    rtp_ssrcs: Vec<u32>,
    rtcp_ssrcs: Vec<u32>,
    /// How many of each it may hold.
    cap: usize,
}

/// Whether `ssrc` may reach the crate: known already, or room for one
/// more (then it is noted).
fn admit(known: &mut Vec<u32>, cap: usize, ssrc: u32) -> bool {
    if known.contains(&ssrc) {
        return true;
    }
    if known.len() >= cap {
        return false;
    }
    known.push(ssrc);
    true
}

impl Direction {
    fn new(ctx: Context, cap: usize) -> Direction {
        Direction {
            ctx,
            index: HashMap::new(),
            rtp_ssrcs: Vec::new(),
            rtcp_ssrcs: Vec::new(),
            cap,
        }
    }

    /// Notes that `ssrc` carried `seq`; the extended index follows it
    /// over wraps (RFC 3550 A.1 style: the candidate nearest the last).
    fn track(&mut self, ssrc: u32, seq: u16) {
        let next = match self.index.get(&ssrc) {
            None => u64::from(seq),
            Some(&last) => {
                let base = (last & !0xFFFF) | u64::from(seq);
                let candidates = [base.wrapping_sub(0x1_0000), base, base + 0x1_0000];
                let nearest = candidates
                    .into_iter()
                    .filter(|c| *c < 1 << 48)
                    .min_by_key(|c| c.abs_diff(last))
                    .unwrap_or(base);
                nearest.max(last)
            }
        };
        self.index.insert(ssrc, next);
    }

    fn saved(&self) -> Vec<(u32, u64)> {
        let mut v: Vec<_> = self.index.iter().map(|(s, i)| (*s, *i)).collect();
        v.sort_unstable();
        v
    }
}

/// SRTP for one leg. Shared (`Arc`) between the call's media task, which
/// relays, and its shard's pacer, which plays music: each direction has
/// its own lock, never held across anything but one packet.
pub struct SrtpLeg {
    keys: LegKeys,
    outbound: Mutex<Direction>,
    inbound: Mutex<Direction>,
}

fn profile(suite: Suite) -> ProtectionProfile {
    match suite {
        Suite::AesCm128HmacSha1_80 => ProtectionProfile::Aes128CmHmacSha1_80,
        Suite::AesCm128HmacSha1_32 => ProtectionProfile::Aes128CmHmacSha1_32,
        Suite::AeadAes128Gcm => ProtectionProfile::AeadAes128Gcm,
    }
}

/// The crate's built-in (ring) provider, made once.
fn provider() -> Result<&'static Arc<dyn RTCCryptoProvider>, String> {
    static PROVIDER: OnceLock<Result<Arc<dyn RTCCryptoProvider>, String>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| rtc_srtp::crypto::default_provider().map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| e.clone())
}

fn context(key: &MasterKey, inbound: bool) -> Result<Context, SrtpError> {
    let fail = |reason: String| SrtpError::Context {
        suite: key.suite.name(),
        reason,
    };
    let provider = provider().map_err(fail)?;
    let (k, s) = key.key_and_salt();
    // Replay protection on what we receive (RFC 3711 §3.3.2); what we send
    // is ours and needs none.
    let (rtp, rtcp) = if inbound {
        (
            Some(srtp_replay_protection(REPLAY_WINDOW)),
            Some(srtcp_replay_protection(REPLAY_WINDOW)),
        )
    } else {
        (None, None)
    };
    Context::new(&k, &s, profile(key.suite), rtp, rtcp, provider.crypto())
        .map_err(|e| fail(e.to_string()))
}

/// RTP or RTCP, told apart by the second byte (RFC 5761 §4: 192-223 is
/// RTCP's packet type range).
pub fn is_rtcp(packet: &[u8]) -> bool {
    packet.len() >= 2 && (192..=223).contains(&packet[1])
}

/// Sequence number and SSRC of an RTP packet (header already checked by
/// the crate or by us).
fn seq_ssrc(packet: &[u8]) -> Option<(u16, u32)> {
    if packet.len() < 12 {
        return None;
    }
    let seq = u16::from_be_bytes([packet[2], packet[3]]);
    let ssrc = u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]);
    Some((seq, ssrc))
}

/// Walks `ctx`'s index for `ssrc` from nothing up to `target` (see the
/// module doc): throw-away packets, encrypted and dropped.
fn walk(ctx: &mut Context, ssrc: u32, target: u64) {
    let mut packet = [0u8; 13];
    packet[0] = 0x80;
    packet[8..12].copy_from_slice(&ssrc.to_be_bytes());
    let mut at = if target < 0x1_0000 { target } else { 0 };
    loop {
        packet[2..4].copy_from_slice(&(at as u16).to_be_bytes());
        let _ = ctx.encrypt_rtp(&packet);
        if at >= target {
            break;
        }
        at = (at + WALK_STEP).min(target);
    }
}

impl SrtpLeg {
    /// A leg starting afresh with `keys`.
    pub fn new(keys: LegKeys) -> Result<SrtpLeg, SrtpError> {
        Ok(SrtpLeg {
            outbound: Mutex::new(Direction::new(context(&keys.local, false)?, MAX_OWN_SSRCS)),
            inbound: Mutex::new(Direction::new(context(&keys.remote, true)?, MAX_PEER_SSRCS)),
            keys,
        })
    }

    /// A leg taken up again from its saved state: same keys, every
    /// stream's index where it stood.
    pub fn restore(state: &SrtpState) -> Result<SrtpLeg, SrtpError> {
        SrtpLeg::restore_after(state, Gap::default())
    }

    /// A leg taken up again from a state saved `gap` ago: every stream's
    /// index moved on by the gap (in 64 bits: past a wrap, the rollover
    /// counter moves too), so that nothing we send reuses an index (and
    /// keystream) the old process used after its last save, and the
    /// peer's packets are read with the right rollover counter.
    pub fn restore_after(state: &SrtpState, gap: Gap) -> Result<SrtpLeg, SrtpError> {
        let leg = SrtpLeg::new(state.keys.clone())?;
        for (outbound, dir, saved) in [
            (true, &leg.outbound, &state.sent),
            (false, &leg.inbound, &state.received),
        ] {
            let mut d = dir.lock().unwrap_or_else(|e| e.into_inner());
            for &(ssrc, saved_index) in saved {
                let ahead = match gap.ours {
                    Some((own, n)) if outbound && own == ssrc => n,
                    _ => gap.packets,
                };
                let index = saved_index.saturating_add(ahead);
                if saved_index > MAX_RESTORED_INDEX || index > MAX_RESTORED_INDEX {
                    return Err(SrtpError::Index { ssrc, index });
                }
                let cap = d.cap;
                if !admit(&mut d.rtp_ssrcs, cap, ssrc) {
                    continue;
                }
                walk(&mut d.ctx, ssrc, index);
                d.index.insert(ssrc, index);
            }
        }
        Ok(leg)
    }

    /// The leg's suite (ours and the peer's are the same).
    pub fn suite(&self) -> Suite {
        self.keys.local.suite
    }

    /// `packet` (plain RTP) encrypted and authenticated for the peer;
    /// None if the crate refuses it (not RTP, or the key is worn out).
    pub fn protect(&self, packet: &[u8]) -> Option<bytes::BytesMut> {
        let (seq, ssrc) = seq_ssrc(packet)?;
        let mut d = self.outbound.lock().unwrap_or_else(|e| e.into_inner());
        let cap = d.cap;
        if !admit(&mut d.rtp_ssrcs, cap, ssrc) {
            return None;
        }
        let out = d.ctx.encrypt_rtp(packet).ok()?;
        d.track(ssrc, seq);
        Some(out)
    }

    /// Decrypts an SRTP packet from the peer in place; its plain length,
    /// or None when it is not authentic (wrong key, tampered, replayed).
    pub fn unprotect(&self, buf: &mut [u8], len: usize) -> Option<usize> {
        let packet = buf.get(..len)?;
        let (seq, ssrc) = seq_ssrc(packet)?;
        let mut d = self.inbound.lock().unwrap_or_else(|e| e.into_inner());
        let cap = d.cap;
        if !admit(&mut d.rtp_ssrcs, cap, ssrc) {
            return None;
        }
        let plain = d.ctx.decrypt_rtp(packet).ok()?;
        d.track(ssrc, seq);
        drop(d);
        let n = plain.len();
        buf.get_mut(..n)?.copy_from_slice(&plain);
        Some(n)
    }

    /// Whether an SRTCP packet from the peer is authentic (and not a
    /// replay). Its contents are not used.
    pub fn check_rtcp(&self, packet: &[u8]) -> bool {
        // The sender's SSRC follows the RTCP header (RFC 3550 §6.4).
        let Some(ssrc) = packet.get(4..8) else {
            return false;
        };
        let ssrc = u32::from_be_bytes([ssrc[0], ssrc[1], ssrc[2], ssrc[3]]);
        // The E flag (RFC 3711 §3.4) must say encrypted: we never agree to
        // UNENCRYPTED_SRTCP, and the crate returns a packet without it
        // as it is, its tag unchecked.
        let flag_at = packet
            .len()
            .checked_sub(profile(self.suite()).rtcp_auth_tag_len() + 4);
        let encrypted = flag_at
            .and_then(|i| packet.get(i))
            .is_some_and(|b| b & 0x80 != 0);
        if !encrypted {
            return false;
        }
        let mut d = self.inbound.lock().unwrap_or_else(|e| e.into_inner());
        let cap = d.cap;
        if !admit(&mut d.rtcp_ssrcs, cap, ssrc) {
            return false;
        }
        d.ctx.decrypt_rtcp(packet).is_ok()
    }

    /// SSRCs the peer's context holds state for (RTP, SRTCP).
    #[cfg(test)]
    fn peer_ssrcs(&self) -> (usize, usize) {
        let d = self.inbound.lock().unwrap_or_else(|e| e.into_inner());
        (d.rtp_ssrcs.len(), d.rtcp_ssrcs.len())
    }

    /// Reads what came in on the leg (`buf[..len]`): RTP is decrypted in
    /// place (its plain length returned), authentic SRTCP is left as it is
    /// (length unchanged: the relay drops RTCP); None for anything not
    /// authentic.
    pub fn open(&self, buf: &mut [u8], len: usize) -> Option<usize> {
        if is_rtcp(buf.get(..len)?) {
            return self.check_rtcp(&buf[..len]).then_some(len);
        }
        self.unprotect(buf, len)
    }

    /// What a restart needs to take the leg up again.
    pub fn state(&self) -> SrtpState {
        let sent = self
            .outbound
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .saved();
        let received = self
            .inbound
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .saved();
        SrtpState {
            keys: self.keys.clone(),
            sent,
            received,
        }
    }
}

/// Sends `packet` on `socket` to `to`, through `srtp` when the leg has
/// it. Non-blocking; false when nothing left (a full buffer, or a packet
/// SRTP refused).
pub fn send(
    socket: &std::net::UdpSocket,
    packet: &[u8],
    to: std::net::SocketAddr,
    srtp: Option<&SrtpLeg>,
) -> bool {
    match srtp {
        None => socket.send_to(packet, to).is_ok(),
        Some(leg) => match leg.protect(packet) {
            Some(p) => socket.send_to(&p, to).is_ok(),
            None => false,
        },
    }
}

#[cfg(test)]
mod tests;
