//! INVITEs per second per source address: one token bucket per IP, without
//! I/O (time comes in). Buckets of addresses gone quiet are dropped, and
//! the table is bounded, so a spray of source addresses cannot grow it
//! without limit.

use std::collections::HashMap;
use std::net::IpAddr;

/// Addresses tracked at most; beyond, idle buckets are swept first.
const MAX_SOURCES: usize = 65_536;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Tokens, in thousandths.
    milli: u64,
    last_ms: u64,
}

/// Per-address token buckets: `per_sec` INVITEs a second, bursts of as many.
#[derive(Debug)]
pub struct RateLimiter {
    per_sec: u64,
    buckets: HashMap<IpAddr, Bucket>,
}

impl RateLimiter {
    pub fn new(per_sec: u32) -> Self {
        Self {
            per_sec: u64::from(per_sec.max(1)),
            buckets: HashMap::new(),
        }
    }

    /// Takes one token for `ip` at `now_ms`; false when the address is over
    /// its rate.
    pub fn allow(&mut self, ip: IpAddr, now_ms: u64) -> bool {
        let full = self.per_sec * 1000;
        if self.buckets.len() >= MAX_SOURCES && !self.buckets.contains_key(&ip) {
            // A bucket idle for a second is full again: forgetting it is free.
            self.buckets
                .retain(|_, b| now_ms.saturating_sub(b.last_ms) < 1000);
            if self.buckets.len() >= MAX_SOURCES {
                return false;
            }
        }
        let b = self.buckets.entry(ip).or_insert(Bucket {
            milli: full,
            last_ms: now_ms,
        });
        let elapsed = now_ms.saturating_sub(b.last_ms);
        b.milli = (b.milli + elapsed * self.per_sec).min(full);
        b.last_ms = now_ms;
        if b.milli >= 1000 {
            b.milli -= 1000;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_then_refills_at_the_rate() {
        let mut r = RateLimiter::new(5);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert_eq!((0..8).filter(|_| r.allow(a, 0)).count(), 5);
        assert!(r.allow(b, 0), "another address has its own bucket");
        assert!(!r.allow(a, 100));
        assert!(r.allow(a, 200), "one token per 200 ms at 5/s");
        assert!(!r.allow(a, 250));
        assert_eq!(
            (0..8).filter(|_| r.allow(a, 10_000)).count(),
            5,
            "full after quiet"
        );
    }
}
