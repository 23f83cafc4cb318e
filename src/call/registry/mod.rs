//! The call registry: live calls by `callId`, and a bounded memory of
//! recently ended ones so `GET /v1/calls/{id}` can still tell how a call
//! ended. Methods are synchronous and return owned values: no map guard
//! ever lives across an `.await`. It also keeps the hold queues (see
//! `queue`): which live calls wait, in what order.

pub mod feed;
pub(in crate::call) mod handle;
pub mod node;
pub mod queue;
pub(in crate::call) mod traces;

use crate::call::CallId;
use crate::call::machine::steps::{EndReason, State};
use crate::call::machine::view::CallView;
use crate::call::registry::handle::CallHandle;
use crate::call::registry::queue::{QueueView, Queues};
use crate::call::registry::traces::Traces;
use dashmap::DashMap;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// How many ended calls are remembered for the API.
const ENDED_KEPT: usize = 1000;

/// Why a call cannot take a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotLive {
    /// Never seen (or long forgotten).
    #[error("unknown callId")]
    Unknown,
    /// It ended; this was its last state.
    #[error("call is {}", .0.name())]
    Ended(State),
}

/// Live and recently ended calls.
#[derive(Clone, Default)]
pub struct Registry {
    live: Arc<DashMap<CallId, CallHandle>>,
    ended: Arc<Mutex<VecDeque<Arc<CallView>>>>,
    /// Signalled when a call enters or leaves: a cluster node writes a new
    /// call's owner at once, before its app can ask another node for it.
    changed: Arc<tokio::sync::Notify>,
    queues: Arc<Mutex<Queues>>,
    /// Each call's SIP ladder, kept as long as its view.
    traces: Arc<Traces>,
}

/// A call's place in the registry, held by its driver. Dropping it —
/// at the end of the call, or when its driver panics — moves the call to
/// the ended memory.
pub struct Enrolled {
    registry: Registry,
    id: CallId,
}

impl Drop for Enrolled {
    fn drop(&mut self) {
        self.registry.finish(&self.id);
    }
}

impl Registry {
    /// Adds a live call until the returned guard is dropped.
    pub fn enroll(&self, id: CallId, handle: CallHandle) -> Enrolled {
        self.live.insert(id.clone(), handle);
        self.changed.notify_one();
        Enrolled {
            registry: self.clone(),
            id,
        }
    }

    /// A live call's handle.
    pub fn get(&self, id: &CallId) -> Result<CallHandle, NotLive> {
        if let Some(h) = self.live.get(id) {
            return Ok(h.clone());
        }
        match self.ended_view(id) {
            Some(v) => Err(NotLive::Ended(v.state)),
            None => Err(NotLive::Unknown),
        }
    }

    /// Number of live calls.
    pub fn len(&self) -> usize {
        self.live.len()
    }

    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    /// Moves a call from live to ended. A call whose driver stopped
    /// without ending it (a bug: it panicked) is shown as ended by the
    /// gateway.
    fn finish(&self, id: &CallId) {
        self.queues().leave(id, std::time::Instant::now(), false);
        let Some((_, handle)) = self.live.remove(id) else {
            return;
        };
        self.traces.finish(id, ENDED_KEPT);
        self.changed.notify_one();
        let mut view = handle.snapshot();
        if view.state != State::Ended {
            let mut v = (*view).clone();
            v.state = State::Ended;
            v.end_reason = Some(EndReason::GatewayError);
            v.ended_at = Some(crate::clock::unix_ms());
            view = Arc::new(v);
        }
        let mut ended = self.ended.lock().unwrap_or_else(|e| e.into_inner());
        if ended.len() >= ENDED_KEPT {
            ended.pop_front();
        }
        ended.push_back(view);
    }

    fn ended_view(&self, id: &CallId) -> Option<Arc<CallView>> {
        let ended = self.ended.lock().unwrap_or_else(|e| e.into_inner());
        ended.iter().rev().find(|v| v.call_id == id.0).cloned()
    }

    /// A call as last published, live or recently ended.
    pub fn snapshot(&self, id: &CallId) -> Option<Arc<CallView>> {
        match self.live.get(id) {
            Some(h) => Some(h.snapshot()),
            None => self.ended_view(id),
        }
    }

    /// Keeps a live call's SIP ladder (until it leaves the ended memory).
    pub fn keep_trace(&self, id: &CallId, trace: crate::sip::Trace) {
        self.traces.keep(id, trace);
    }

    /// A live or recently ended call's SIP ladder.
    pub fn trace(&self, id: &CallId) -> Option<crate::sip::Trace> {
        self.traces.get(id)
    }

    /// Handles of every live call.
    pub fn live_handles(&self) -> Vec<CallHandle> {
        self.live.iter().map(|e| e.value().clone()).collect()
    }

    /// The ids of every live call.
    pub fn live_ids(&self) -> Vec<CallId> {
        self.live.iter().map(|e| e.key().clone()).collect()
    }

    /// Signalled (one stored permit) whenever a call enters or leaves.
    pub fn changed(&self) -> Arc<tokio::sync::Notify> {
        self.changed.clone()
    }

    fn queues(&self) -> std::sync::MutexGuard<'_, Queues> {
        self.queues.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `id` (a call of `entry`) waits in its entry's queue now:
    /// it joins at the end, or keeps its place; it leaves, its wait
    /// counted as served when `bridged`.
    pub fn set_waiting(&self, id: &CallId, entry: &str, waiting: bool, bridged: bool) {
        let now = std::time::Instant::now();
        let mut queues = self.queues();
        if waiting {
            queues.join(id, entry, now);
        } else {
            queues.leave(id, now, bridged);
        }
    }

    /// A waiting call's 1-based place in its entry's queue.
    pub fn position(&self, id: &CallId) -> Option<u64> {
        self.queues().position(id)
    }

    /// Every waiting call's position (for a list of calls).
    pub fn positions(&self) -> std::collections::HashMap<CallId, u64> {
        self.queues().positions()
    }

    /// A waiting call's place and estimated wait (see `queue`).
    pub fn place(&self, id: &CallId) -> Option<(u64, Option<crate::media::Wait>)> {
        self.queues().place(id)
    }

    /// Every entry's queue (`GET /v1/queues`).
    pub fn queue_views(&self) -> Vec<QueueView> {
        self.queues().views(std::time::Instant::now())
    }

    /// Every live call as last published.
    pub fn live_snapshots(&self) -> Vec<Arc<CallView>> {
        let handles: Vec<CallHandle> = self.live.iter().map(|e| e.value().clone()).collect();
        handles.iter().map(CallHandle::snapshot).collect()
    }
}
