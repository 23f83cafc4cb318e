//! Time as the call core sees it: a monotonic clock in whole milliseconds.
//!
//! The call machine keeps every deadline as an [`Instant`] on this clock,
//! so NTP stepping the wall clock moves none of them, and a call's state is
//! plain data (a number per deadline) that can be saved and restored.
//! Wall-clock time ([`unix_ms`]) is read only where it is shown: the API,
//! webhooks and records.
//!
//! A leaf: imports nothing of the crate.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A point on the monotonic clock, in milliseconds since the clock's start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Instant(u64);

impl Instant {
    /// The instant `ms` milliseconds after the clock's start (tests and
    /// restored state build instants this way).
    pub const fn from_millis(ms: u64) -> Instant {
        Instant(ms)
    }

    /// Milliseconds since the clock's start.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// How long after `earlier` this is; zero if it is not after it.
    pub fn since(self, earlier: Instant) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

impl std::ops::Add<Duration> for Instant {
    type Output = Instant;

    /// Saturates rather than wraps: a deadline "never" stays in the future.
    fn add(self, d: Duration) -> Instant {
        let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        Instant(self.0.saturating_add(ms))
    }
}

/// The process's monotonic clock. Built on tokio's clock, so tests that
/// pause tokio's time move it too.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    origin: tokio::time::Instant,
    /// What `now()` reads at `origin`.
    offset: u64,
}

impl Clock {
    /// A clock whose start is now.
    pub fn start() -> Clock {
        Clock::starting_at(Instant(0))
    }

    /// A clock that reads `at` now: a restarted node continues the clock
    /// its saved calls' deadlines are on.
    pub fn starting_at(at: Instant) -> Clock {
        Clock {
            origin: tokio::time::Instant::now(),
            offset: at.0,
        }
    }

    /// The current instant.
    pub fn now(&self) -> Instant {
        let ms = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
        Instant(self.offset.saturating_add(ms))
    }

    /// The tokio instant at which `at` is reached, for sleeping until it
    /// (now, if it has passed).
    pub fn to_tokio(&self, at: Instant) -> tokio::time::Instant {
        self.origin + Duration::from_millis(at.0.saturating_sub(self.offset))
    }

    /// Sleeps until a machine's deadline `at`; for ever when it has none
    /// (the one `select!` arm of a driver that wakes its machine).
    pub async fn sleep_until(&self, at: Option<Instant>) {
        match at {
            Some(at) => tokio::time::sleep_until(self.to_tokio(at)).await,
            None => std::future::pending().await,
        }
    }
}

/// Wall-clock time as Unix milliseconds, for what is shown to people and
/// other programs. Never used for deadlines.
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_saturate_instead_of_wrapping() {
        let far = Instant::from_millis(u64::MAX - 5);
        assert_eq!(far + Duration::from_secs(1), Instant::from_millis(u64::MAX));
        assert!(Instant::from_millis(3) + Duration::MAX > far);
    }

    #[test]
    fn since_is_never_negative() {
        let (a, b) = (Instant::from_millis(10), Instant::from_millis(25));
        assert_eq!(b.since(a), Duration::from_millis(15));
        assert_eq!(a.since(b), Duration::ZERO);
    }

    #[tokio::test]
    async fn a_continued_clock_goes_on_from_where_it_was() {
        let clock = Clock::starting_at(Instant::from_millis(5_000_000));
        assert!(clock.now() >= Instant::from_millis(5_000_000));
        // A deadline that passed while the node was down is due at once.
        let past = clock.to_tokio(Instant::from_millis(10));
        assert!(past <= tokio::time::Instant::now());
    }

    #[tokio::test]
    async fn follows_tokio_time() {
        let clock = Clock::start();
        let t0 = clock.now();
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert!(clock.now().since(t0) >= Duration::from_millis(30));
        // A deadline maps back to the tokio instant it stands for (to the ms).
        let at = clock.now() + Duration::from_millis(500);
        let wake = clock.to_tokio(at);
        let ahead = wake.duration_since(tokio::time::Instant::now());
        assert!(ahead <= Duration::from_millis(500) && ahead >= Duration::from_millis(498));
    }
}
