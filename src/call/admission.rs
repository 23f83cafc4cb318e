//! Who may place a call: first a per-source INVITE rate, then the matched
//! entry's IP allow list (`allowed_cidrs`, else 403) and digest
//! credentials (`credentials`, else 407 with a challenge, or 403 for wrong
//! ones). An entry with neither takes anyone, which the config only allows
//! when it says `open = true`. Every refusal is counted and logged with its
//! source and reason, never with what the caller sent as credentials.

use super::entries::Entry;
use super::rate::RateLimiter;
use crate::sip::InviteInfo;
use crate::sip::digest::{DigestAuth, Verdict};
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

/// What to answer an INVITE that may not go on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: u16,
    pub headers: Vec<(&'static str, String)>,
    pub why: &'static str,
}

/// Admission control for the whole node.
pub struct Admission {
    limiter: Mutex<RateLimiter>,
    digest: DigestAuth,
    pub stats: Arc<AdmissionStats>,
}

/// True when `ip` is inside `net/len`. IPv4-mapped IPv6 sources count as
/// IPv4.
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
    /// `realm` is shown in digest challenges (the node's SIP host).
    pub fn new(invites_per_sec_per_ip: u32, realm: &str) -> Self {
        Self {
            limiter: Mutex::new(RateLimiter::new(invites_per_sec_per_ip)),
            digest: DigestAuth::new(realm),
            stats: Arc::new(AdmissionStats::default()),
        }
    }

    /// The per-source rate, checked before anything else.
    pub fn rate(&self, source: IpAddr, now_ms: u64) -> Result<(), Refusal> {
        let allowed = self
            .limiter
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .allow(source, now_ms);
        if allowed {
            return Ok(());
        }
        self.stats.rate_limited.fetch_add(1, Ordering::Relaxed);
        Err(Refusal {
            code: 503,
            headers: vec![("Retry-After", "1".into())],
            why: "over invites_per_sec_per_ip",
        })
    }

    /// The entry's own rules for this INVITE.
    pub fn entry(&self, entry: &Entry, info: &InviteInfo, now_ms: u64) -> Result<(), Refusal> {
        let ip = info.source.ip();
        if !entry.allowed.is_empty() && !entry.allowed.iter().any(|n| cidr_contains(*n, ip)) {
            self.stats.forbidden_ip.fetch_add(1, Ordering::Relaxed);
            return Err(Refusal {
                code: 403,
                headers: vec![],
                why: "source address not in allowed_cidrs",
            });
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
                Err(Refusal {
                    code: 407,
                    headers: vec![("Proxy-Authenticate", header)],
                    why,
                })
            }
            Verdict::Forbidden { why } => {
                self.stats
                    .forbidden_credentials
                    .fetch_add(1, Ordering::Relaxed);
                Err(Refusal {
                    code: 403,
                    headers: vec![],
                    why,
                })
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
