//! The call registry: live calls by `callId`, and a bounded memory of
//! recently ended ones so `GET /v1/calls/{id}` can still tell how a call
//! ended. Methods are synchronous and return owned values: no map guard
//! ever lives across an `.await`.

use super::CallId;
use super::driver::DriverMsg;
use super::machine::Machine;
use dashmap::DashMap;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::mpsc;

/// How many ended calls are remembered for the API.
const ENDED_KEPT: usize = 1000;

/// A live call as the API sees it.
#[derive(Clone)]
pub struct CallHandle {
    pub tx: mpsc::UnboundedSender<DriverMsg>,
    pub machine: Arc<Mutex<Machine>>,
}

/// Locks a call's machine; a poisoned lock (a panic elsewhere) still
/// yields the data, which stays consistent step by step.
pub fn lock(m: &Mutex<Machine>) -> MutexGuard<'_, Machine> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Live and recently ended calls.
#[derive(Clone, Default)]
pub struct Registry {
    live: Arc<DashMap<CallId, CallHandle>>,
    ended: Arc<Mutex<VecDeque<Machine>>>,
}

impl Registry {
    pub fn insert(&self, id: CallId, handle: CallHandle) {
        self.live.insert(id, handle);
    }

    pub fn get(&self, id: &CallId) -> Option<CallHandle> {
        self.live.get(id).map(|h| h.clone())
    }

    /// Number of live calls.
    pub fn len(&self) -> usize {
        self.live.len()
    }

    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    /// Moves a call from live to ended; returns its final state.
    pub fn finish(&self, id: &CallId) -> Option<Machine> {
        let (_, handle) = self.live.remove(id)?;
        let snapshot = lock(&handle.machine).clone();
        let mut ended = self.ended.lock().unwrap_or_else(|e| e.into_inner());
        if ended.len() >= ENDED_KEPT {
            ended.pop_front();
        }
        ended.push_back(snapshot.clone());
        Some(snapshot)
    }

    /// A copy of a call's state, live or recently ended.
    pub fn snapshot(&self, id: &CallId) -> Option<Machine> {
        if let Some(h) = self.get(id) {
            return Some(lock(&h.machine).clone());
        }
        let ended = self.ended.lock().unwrap_or_else(|e| e.into_inner());
        ended.iter().rev().find(|m| m.call_id == id.0).cloned()
    }

    /// Copies of every live call.
    pub fn live_snapshots(&self) -> Vec<Machine> {
        let handles: Vec<CallHandle> = self.live.iter().map(|e| e.value().clone()).collect();
        handles.iter().map(|h| lock(&h.machine).clone()).collect()
    }
}
