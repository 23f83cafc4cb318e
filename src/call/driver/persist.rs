//! What of a call outlives its driver: its state saved at each change for
//! a restart to resume (never per packet), and what it publishes as it
//! goes (its view, its queue place, its events). When it ends, the saved
//! state is dropped and the record written (`Ctx::forget`, `Ctx::record`).

use super::{Attempt, Call};
use crate::call::machine::{EndReason, Event, EventKind, Input};
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

/// How long a stop in resume mode waits for an early-media caller's
/// PRACK before it refuses the call instead of answering and saving it.
const SUSPEND_PRACK_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

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
        self.saved_lines = self.machine.timeline().len();
        // An INVITE in early media cannot be taken over by another
        // process: the call is saved from its answer on.
        if !self.machine.is_answered() {
            return false;
        }
        let saved = SavedCall {
            entry: self.entry.id.clone(),
            machine: self.machine.clone(),
            clock: self.ctx.clock.now(),
            caller_from: self.caller_from.clone(),
            caller: self.caller.as_ref().map(Leg::state),
            room: self.room.as_ref().map(Leg::state),
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

    /// Resume mode's stop: a room INVITE still unanswered is CANCELed
    /// (its transfer starts again after the restart, so the caller is
    /// never left without a leg); then the call is saved as it stands.
    pub(super) async fn suspend(&mut self) -> bool {
        if let Attempt::Dialing { mut dialing, .. } =
            std::mem::replace(&mut self.attempt, Attempt::Idle)
        {
            dialing.cancel();
        }
        // Answered first, so that the next start can take it over.
        let asked = !self.feed(Input::Suspending).is_empty();
        if asked || self.early.is_some() {
            // A stop does not wait long for a PRACK: a caller that cannot
            // be answered by then is refused (503) and not saved.
            let answered = match self.early.as_mut() {
                Some(early) => match early.answerable(SUSPEND_PRACK_WAIT).await {
                    // A REFER it would release is left to the next start
                    // (the machine's deadline fails it over to a bridge).
                    Ok(()) => {
                        let _ = self.answer_early().await;
                        self.caller.is_some()
                    }
                    Err(_) => false,
                },
                None => self.caller.is_some(),
            };
            if !answered {
                if let Some(early) = self.early.take() {
                    early.hang_up(Some(EndReason::Shutdown)).await;
                }
                return false;
            }
        }
        self.save().await
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
