//! The one door for new calls. `Admission::admit` decides, for every
//! INVITE the SIP layer hands over, whether it becomes a call: message
//! limits (513/400), a node that is stopping (503), the per-source rate
//! (503), a matching entry (404; a call on a registration's binding falls
//! back to the registration's entry), a place under `max_calls` (503), a
//! pacer that keeps up (503), the entry's allow list (403) and digest
//! credentials (407, or 403 for wrong ones) — on a registration's
//! binding, the registrar's address or else those rules (403: see
//! `registered`) — an offer we can answer (488, SRTP as the entry says
//! included), and an RTP port (503). What it admits carries everything
//! the call needs, its permit among them; what it refuses is a `Refusal`
//! to send. Every refusal is counted and logged
//! with its source and reason, never with what the caller sent as
//! credentials.

use crate::call::door::capacity::{Capacity, Permit};
use crate::call::door::entries::{Entry, EntryBook};
use crate::call::door::rate::RateLimiter;
use crate::call::door::registered::{Binding, Registered};
use crate::call::registry::node::NodeCalls;
use crate::media::{MediaEngine, RtpSocket};
use crate::sip::digest::{DigestAuth, Verdict};
use crate::sip::limits::MessageLimits;
use crate::sip::sdp::{self, PeerMedia};
use crate::sip::{InviteInfo, Refusal};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct AdmissionStats {
    pub rate_limited: AtomicU64,
    pub forbidden_ip: AtomicU64,
    pub challenged: AtomicU64,
    pub forbidden_credentials: AtomicU64,
    /// 503: `max_calls` reached.
    pub at_capacity: AtomicU64,
    /// 503: the hold-music pacer is not keeping up.
    pub pacer_overloaded: AtomicU64,
}

/// An INVITE let in, with what its call needs. Dropping it (a caller who
/// cancels before the answer) gives the place and the port back.
pub struct Admitted {
    pub entry: Arc<Entry>,
    pub offer: PeerMedia,
    pub socket: RtpSocket,
    /// SRTP on the caller's leg (None: plain RTP), see `secure`.
    pub srtp: Option<crate::call::door::secure::CallerSrtp>,
    /// The call's place under `max_calls`, held until it ends.
    pub permit: Permit,
    /// The registration whose binding the INVITE came through, if any.
    pub registration: Option<String>,
}

/// Admission control for the whole node.
pub struct Admission {
    limiter: Mutex<RateLimiter>,
    digest: DigestAuth,
    limits: MessageLimits,
    capacity: Capacity,
    entries: EntryBook,
    /// Whether the pacer keeps up, and a port for each call.
    media: Arc<MediaEngine>,
    /// Whether the node is stopping.
    node: Arc<NodeCalls>,
    registered: Registered,
    pub stats: Arc<AdmissionStats>,
}

/// What the door is configured with.
pub struct DoorConfig {
    pub invites_per_sec_per_ip: u32,
    /// Shown in digest challenges (the node's SIP host).
    pub realm: String,
    pub limits: MessageLimits,
    pub max_calls: usize,
    /// The contacts this node keeps at registrars.
    pub registered: Registered,
}

/// True when `ip` is inside `net/len`. IPv4-mapped IPv6 sources count as
/// IPv4.
/// 503 at `max_calls`: places free up as calls end.
fn full() -> Refusal {
    Refusal::busy(5, "max_calls reached")
}

/// 503 while no media shard takes calls: load moves in about a second.
fn overloaded() -> Refusal {
    Refusal::busy(1, "pacer overloaded")
}

pub fn cidr_contains((net, len): (IpAddr, u8), ip: IpAddr) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    };
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(a)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            u32::from(n) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(a)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            u128::from(n) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}

impl Admission {
    pub fn new(
        config: DoorConfig,
        entries: EntryBook,
        media: Arc<MediaEngine>,
        node: Arc<NodeCalls>,
    ) -> Self {
        Self {
            limiter: Mutex::new(RateLimiter::new(config.invites_per_sec_per_ip)),
            digest: DigestAuth::new(&config.realm),
            limits: config.limits,
            capacity: Capacity::new(config.max_calls),
            entries,
            media,
            node,
            registered: config.registered,
            stats: Arc::new(AdmissionStats::default()),
        }
    }

    /// A place for a call a restart takes over.
    pub fn resumed_permit(&self) -> Permit {
        self.capacity.acquire_anyway()
    }

    /// Calls holding a place now.
    pub fn calls(&self) -> usize {
        self.capacity.in_use()
    }

    /// Admitted calls still running (ringing, live, writing their record).
    pub fn running(&self) -> &crate::running::Running {
        self.capacity.taken()
    }

    /// What a new call would get now for want of room, if anything: the
    /// node's answer to a dispatcher's OPTIONS probe (see
    /// `Stack::set_busy_probe`). Draining is the SIP layer's own.
    pub fn busy(&self) -> Option<Refusal> {
        if self.capacity.full() {
            return Some(full());
        }
        self.media.overloaded().then(overloaded)
    }

    /// Decides on one INVITE, at `now_ms` (Unix ms, for the rate and
    /// digest nonces).
    pub fn admit(&self, info: &InviteInfo, now_ms: u64) -> Result<Admitted, Refusal> {
        if let Err((code, phrase)) = crate::sip::limits::check(info, &self.limits) {
            return Err(Refusal::new(code, phrase).with_phrase(phrase));
        }
        if self.node.draining() {
            // A dispatcher in front moves the call to another node.
            return Err(Refusal::draining());
        }
        self.rate(info.source.ip(), now_ms)?;
        let user = info.to_user.as_deref().or(info.request_user.as_deref());
        let via = info
            .request_user
            .as_deref()
            .and_then(|u| self.registered.get(u));
        let entries = self.entries.snapshot();
        let found = user.and_then(|u| entries.find(u)).or_else(|| {
            let binding = via.as_ref()?;
            entries.by_id(&format!("config:{}", binding.entry))
        });
        let Some(entry) = found else {
            return Err(Refusal::new(404, "matches no dial-in entry"));
        };
        let Some(permit) = self.capacity.try_acquire() else {
            self.stats.at_capacity.fetch_add(1, Ordering::Relaxed);
            return Err(full());
        };
        if self.media.overloaded() {
            // The calls already held come first: their audio stays clean.
            self.stats.pacer_overloaded.fetch_add(1, Ordering::Relaxed);
            return Err(overloaded());
        }
        match &via {
            Some(binding) => self.through(binding, &entry, info, now_ms)?,
            None => self.entry(&entry, info, now_ms)?,
        }
        let offer = sdp::parse_for(&info.sdp, self.media.codecs()).map_err(|e| {
            // The parser's message may quote the offer: keep it one clean line.
            let text: String = e
                .to_string()
                .chars()
                .filter(|c| !c.is_control() && *c != '"')
                .take(120)
                .collect();
            Refusal::new(488, "offer unusable")
                .with_header("Warning", format!("399 pinless \"{text}\""))
        })?;
        let srtp =
            crate::call::door::secure::caller(entry.media_encryption, info.transport, &info.sdp)?;
        let socket = self.media.allocate().map_err(|e| {
            tracing::warn!(error = %e, "no RTP port for a new call");
            Refusal::busy(5, "no RTP port free")
        })?;
        Ok(Admitted {
            entry,
            offer,
            socket,
            srtp,
            permit,
            registration: via.map(|b| b.name),
        })
    }

    /// An INVITE on a registration's binding: from the registrar (or the
    /// outbound proxy), or as the entry's own rules allow; an entry open
    /// to anyone does not open the binding to anyone.
    fn through(
        &self,
        binding: &Binding,
        entry: &Entry,
        info: &InviteInfo,
        now_ms: u64,
    ) -> Result<(), Refusal> {
        let ip = info.source.ip().to_canonical();
        if binding.from.iter().any(|a| a.to_canonical() == ip) {
            return Ok(());
        }
        if entry.allowed.is_empty() && entry.credentials.is_empty() {
            self.stats.forbidden_ip.fetch_add(1, Ordering::Relaxed);
            return Err(Refusal::new(
                403,
                "source is not the registrar of this registration",
            ));
        }
        self.entry(entry, info, now_ms)
    }

    /// The per-source rate (after the message limits and a stop).
    fn rate(&self, source: IpAddr, now_ms: u64) -> Result<(), Refusal> {
        let allowed = self
            .limiter
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .allow(source, now_ms);
        if allowed {
            return Ok(());
        }
        self.stats.rate_limited.fetch_add(1, Ordering::Relaxed);
        Err(Refusal::busy(1, "over invites_per_sec_per_ip"))
    }

    /// The entry's own rules for this INVITE.
    fn entry(&self, entry: &Entry, info: &InviteInfo, now_ms: u64) -> Result<(), Refusal> {
        let ip = info.source.ip();
        if !entry.allowed.is_empty() && !entry.allowed.iter().any(|n| cidr_contains(*n, ip)) {
            self.stats.forbidden_ip.fetch_add(1, Ordering::Relaxed);
            return Err(Refusal::new(403, "source address not in allowed_cidrs"));
        }
        if entry.credentials.is_empty() {
            return Ok(());
        }
        let header = info
            .all_headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("proxy-authorization"))
            .map(|(_, v)| v.as_str());
        let password_of = |user: &str| {
            entry
                .credentials
                .iter()
                .find(|(u, _)| u == user)
                .map(|(_, p)| p.clone())
        };
        let request_user = info.request_user.as_deref();
        match self
            .digest
            .check("INVITE", header, request_user, password_of, now_ms)
        {
            Verdict::Ok { .. } => Ok(()),
            Verdict::Challenge { header, why } => {
                self.stats.challenged.fetch_add(1, Ordering::Relaxed);
                Err(Refusal::new(407, why).with_header("Proxy-Authenticate", header))
            }
            Verdict::Forbidden { why } => {
                self.stats
                    .forbidden_credentials
                    .fetch_add(1, Ordering::Relaxed);
                Err(Refusal::new(403, why))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::cidr_contains;

    #[test]
    fn cidr_matching() {
        let net = |s: &str| crate::config::parse_cidr(s).unwrap();
        let ip = |s: &str| s.parse().unwrap();
        assert!(cidr_contains(net("203.0.113.0/24"), ip("203.0.113.77")));
        assert!(!cidr_contains(net("203.0.113.0/24"), ip("203.0.114.1")));
        assert!(cidr_contains(net("0.0.0.0/0"), ip("8.8.8.8")));
        assert!(cidr_contains(net("127.0.0.1"), ip("127.0.0.1")));
        assert!(cidr_contains(net("10.0.0.0/8"), ip("::ffff:10.1.2.3")));
        assert!(cidr_contains(net("2001:db8::/32"), ip("2001:db8::1")));
        assert!(!cidr_contains(net("2001:db8::/32"), ip("10.0.0.1")));
    }
}
