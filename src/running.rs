//! A count of running things (calls, stream tasks) that a stop can wait
//! on: each holds an `Entered` while it runs, and `idle` returns once the
//! last one is dropped. No polling: the last drop wakes the waiters.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::Notify;

/// The things running now; clones share the count.
#[derive(Debug, Clone, Default)]
pub struct Running(Arc<Inner>);

#[derive(Debug, Default)]
struct Inner {
    count: AtomicUsize,
    idle: Notify,
}

/// One running thing, counted until dropped (however its task ends, a
/// panic included).
#[derive(Debug)]
pub struct Entered(Arc<Inner>);

impl Running {
    /// Counts one more.
    pub fn enter(&self) -> Entered {
        self.0.count.fetch_add(1, Ordering::AcqRel);
        Entered(self.0.clone())
    }

    /// Counts one more unless `max` already run.
    pub fn try_enter(&self, max: usize) -> Option<Entered> {
        (self.0.count)
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| Entered(self.0.clone()))
    }

    /// How many run now.
    pub fn count(&self) -> usize {
        self.0.count.load(Ordering::Acquire)
    }

    /// Returns once none runs (at once if none does).
    pub async fn idle(&self) {
        loop {
            // Registered before the count is read, so that a drop in
            // between still wakes this wait.
            let woken = self.0.idle.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            if self.count() == 0 {
                return;
            }
            woken.await;
        }
    }

    /// `idle`, for at most `within` (a huge one: as long as it takes);
    /// true when none runs.
    pub async fn idle_within(&self, within: Duration) -> bool {
        match tokio::time::Instant::now().checked_add(within) {
            Some(deadline) => tokio::time::timeout_at(deadline, self.idle()).await.is_ok(),
            None => {
                self.idle().await;
                true
            }
        }
    }
}

impl Drop for Entered {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_more_than_max_and_a_drop_gives_back() {
        let r = Running::default();
        let a = r.try_enter(2);
        let b = r.try_enter(2);
        assert!(a.is_some() && b.is_some());
        assert!(r.try_enter(2).is_none());
        drop(a);
        assert_eq!(r.count(), 1);
        assert!(r.try_enter(2).is_some());
    }

    #[tokio::test]
    async fn idle_waits_for_the_last_one_and_no_longer() {
        let r = Running::default();
        assert!(r.idle_within(Duration::ZERO).await, "none runs: at once");
        let a = r.enter();
        let b = r.enter();
        let waiter = tokio::spawn({
            let r = r.clone();
            async move { r.idle().await }
        });
        tokio::task::yield_now().await;
        drop(a);
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "one still runs");
        assert!(!r.idle_within(Duration::from_millis(20)).await);
        drop(b);
        let woke = tokio::time::timeout(Duration::from_secs(1), waiter).await;
        assert!(woke.is_ok(), "the last drop wakes the wait");
        assert!(r.idle_within(Duration::MAX).await);
    }
}
