//! What of a call outlives its driver: its state saved at each change for
//! a restart to resume (never per packet), and what it publishes as it
//! goes (its view, its queue place, its events). When it ends, the saved
//! state is dropped and the record written (`Ctx::forget`, `Ctx::record`).

use super::Call;
use crate::call::machine::{Event, EventKind};
use crate::call::restart::saved::SavedCall;
use crate::sip::Leg;
use std::sync::Arc;

/// A timeline line that changes what a restart must do: a state change,
/// or the incoming-call webhook delivered (or given up on), so that a
/// resumed call posts it again only when the app never got it.
fn worth_a_save(e: &Event) -> bool {
    // A key press is published but changes nothing a restart needs: it
    // rides along with the next save rather than cost a write per press.
    let state_change = e.event.published() && e.event != EventKind::Dtmf;
    state_change || e.settles_webhook()
}

impl Call {
    /// True when the call changed state since its last save: a published
    /// event (held, transfer started or failed, bridged, back to hold…)
    /// was logged. Webhook attempts and refused updates are not worth a
    /// write of their own; they ride along with the next save.
    pub(super) fn changed_since_save(&self) -> bool {
        let timeline = self.machine.timeline();
        timeline
            .get(self.saved_lines..)
            .is_some_and(|new| new.iter().any(worth_a_save))
    }

    /// Saves the call as it is now, for a restart to resume (at every
    /// state change; never per packet). A failure is logged: the call goes
    /// on, it only could not be resumed from this point.
    pub(super) async fn save(&mut self) -> bool {
        // An INVITE in early media cannot be taken over by another
        // process: the call is saved from its 200 OK on (the changes
        // until then stay unsaved, so the first turn after it saves).
        if self.early.is_some() || !self.machine.is_answered() {
            return false;
        }
        self.saved_lines = self.machine.timeline().len();
        let saved = SavedCall {
            entry: self.entry.id.clone(),
            machine: self.machine.clone(),
            clock: self.ctx.clock.now(),
            caller_from: self.caller_from.clone(),
            caller: self.caller.as_ref().map(Leg::state),
            room: self.room.as_deref().map(Leg::state),
            media: self.media.state().await,
            published: self.published,
        };
        let live = match saved.to_live(crate::clock::unix_ms()) {
            Ok(live) => live,
            Err(error) => {
                tracing::warn!(%error, "call state not saved: not encodable");
                return false;
            }
        };
        let written = (self.ctx)
            .store_write(move |store| store.save_live(&live))
            .await;
        if let Err(error) = &written {
            tracing::warn!(%error, "call state not saved");
        }
        written.is_ok()
    }

    /// Publishes the call's view, and hands new timeline entries to the
    /// events webhook and the node's event feed.
    pub(super) fn publish(&mut self) {
        self.view.send_replace(Arc::new(self.machine.view()));
        // The queue follows the machine: waiting or not, after each step.
        let id = crate::call::CallId(self.machine.parties().call_id.clone());
        let bridged = self.machine.state() == crate::call::machine::State::Bridged;
        let entry = &self.machine.parties().entry;
        (self.ctx.registry).set_waiting(&id, entry, self.machine.waiting(), bridged);
        let timeline = self.machine.timeline();
        if let Some(new) = timeline.get(self.published..).filter(|n| !n.is_empty()) {
            if let Some(sink) = &self.events {
                sink.publish(new);
            }
            let p = self.machine.parties();
            self.ctx.feed.publish(&p.call_id, &p.call_domain, new);
        }
        self.published = timeline.len();
    }
}
