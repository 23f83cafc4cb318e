//! The SIP ladders of live and recently ended calls, for
//! `GET /v1/calls/{callId}/sip`. Kept beside the registry's ended-call
//! memory, with the same bound: a call's trace is readable after its end
//! for as long as its view is, and dropped with it.

use crate::call::CallId;
use crate::sip::Trace;
use dashmap::DashMap;
use std::collections::VecDeque;
use std::sync::Mutex;

/// Live calls' traces, and those of recently ended calls.
#[derive(Default)]
pub(in crate::call) struct Traces {
    live: DashMap<CallId, Trace>,
    ended: Mutex<VecDeque<(CallId, Trace)>>,
}

impl Traces {
    /// A live call's trace.
    pub(in crate::call) fn keep(&self, id: &CallId, trace: Trace) {
        self.live.insert(id.clone(), trace);
    }

    /// The call ended: its trace joins the last `kept` ended ones.
    pub(in crate::call) fn finish(&self, id: &CallId, kept: usize) {
        let Some((id, trace)) = self.live.remove(id) else {
            return;
        };
        let mut ended = self.ended.lock().unwrap_or_else(|e| e.into_inner());
        while ended.len() >= kept.max(1) {
            ended.pop_front();
        }
        ended.push_back((id, trace));
    }

    /// A live or recently ended call's trace.
    pub(in crate::call) fn get(&self, id: &CallId) -> Option<Trace> {
        if let Some(t) = self.live.get(id) {
            return Some(t.clone());
        }
        let ended = self.ended.lock().unwrap_or_else(|e| e.into_inner());
        ended
            .iter()
            .rev()
            .find(|(i, _)| i == id)
            .map(|(_, t)| t.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ended_traces_are_bounded_like_ended_calls() {
        let traces = Traces::default();
        for n in 0..3 {
            let id = CallId(format!("c{n}"));
            traces.keep(&id, Trace::new());
            assert!(traces.get(&id).is_some());
            traces.finish(&id, 2);
            assert!(traces.get(&id).is_some(), "readable after the end");
        }
        assert!(traces.get(&CallId("c0".into())).is_none());
        assert!(traces.get(&CallId("c2".into())).is_some());
    }
}
