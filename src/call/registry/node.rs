//! What the node as a whole knows of its calls: whether it is stopping
//! (then the door refuses new calls, `/readyz` says so and OPTIONS gets
//! 503), and how calls ended or were resumed, for `/metrics`.

use crate::call::machine::steps::EndReason;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::watch;

impl Default for NodeCalls {
    fn default() -> Self {
        Self {
            draining: watch::Sender::new(false),
            ended: Default::default(),
            resumed: AtomicU64::new(0),
            not_resumed: AtomicU64::new(0),
        }
    }
}

/// Shared by admission, the call drivers, the API and the gateway.
#[derive(Debug)]
pub struct NodeCalls {
    /// Set once, when a stop begins; calls still ringing watch it.
    draining: watch::Sender<bool>,
    ended: [AtomicU64; EndReason::ALL.len()],
    resumed: AtomicU64,
    not_resumed: AtomicU64,
}

impl NodeCalls {
    /// From now on no new call is taken.
    pub fn start_draining(&self) {
        self.draining.send_replace(true);
    }

    pub fn draining(&self) -> bool {
        *self.draining.borrow()
    }

    /// Resolves once a stop has begun (at once if it has).
    pub async fn stopping(&self) {
        let mut rx = self.draining.subscribe();
        let _ = rx.wait_for(|d| *d).await;
    }

    /// A call ended for `reason`.
    pub fn ended(&self, reason: EndReason) {
        if let Some(i) = EndReason::ALL.iter().position(|r| *r == reason) {
            self.ended[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Calls ended, per reason, since the start.
    pub fn ended_counts(&self) -> Vec<(EndReason, u64)> {
        EndReason::ALL
            .iter()
            .zip(&self.ended)
            .map(|(r, n)| (*r, n.load(Ordering::Relaxed)))
            .collect()
    }

    /// A call saved by an earlier run was resumed (`true`) or could not be.
    pub fn resume_outcome(&self, resumed: bool) {
        let counter = if resumed {
            &self.resumed
        } else {
            &self.not_resumed
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn resumed(&self) -> u64 {
        self.resumed.load(Ordering::Relaxed)
    }

    pub fn not_resumed(&self) -> u64 {
        self.not_resumed.load(Ordering::Relaxed)
    }
}
