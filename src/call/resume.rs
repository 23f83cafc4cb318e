//! At start, the calls an earlier run left up on the wire (saved at their
//! last state change, by a stop in resume mode or before a crash) are
//! taken over: the same RTP ports and SSRC, the same dialogs, the
//! machine with its timeline and deadlines. A call that cannot be taken
//! over is logged with the reason, counted, and forgotten.

use super::admission::Admission;
use super::answer::hold_music;
use super::ctx::Ctx;
use super::driver::{self, Parts};
use super::entries::EntryBook;
use super::saved::SavedCall;
use crate::clock::Instant;
use crate::store::{LiveCall, Store, StoreError};
use std::sync::Arc;

/// The saved calls, read before the clock starts.
pub struct Saved {
    calls: Vec<(LiveCall, Result<SavedCall, super::saved::SavedError>)>,
}

impl Saved {
    /// Reads every saved call from the store.
    pub fn load(store: &Store) -> Result<Saved, StoreError> {
        let calls = store
            .live_calls()?
            .into_iter()
            .map(|live| {
                let saved = SavedCall::from_live(&live);
                (live, saved)
            })
            .collect();
        Ok(Saved { calls })
    }

    /// Where the node's monotonic clock goes on from: the latest saved
    /// clock reading plus the wall time since that save (the time the
    /// node was down counts towards every deadline).
    pub fn clock_start(&self, unix_now: u64) -> Instant {
        self.calls
            .iter()
            .filter_map(|(live, saved)| {
                let saved = saved.as_ref().ok()?;
                let down = std::time::Duration::from_millis(unix_now.saturating_sub(live.saved_at));
                Some(saved.clock + down)
            })
            .max()
            .unwrap_or(Instant::from_millis(0))
    }

    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    /// Takes every saved call over; returns (resumed, not resumed).
    pub async fn resume(
        self,
        ctx: &Arc<Ctx>,
        entries: &EntryBook,
        admission: &Admission,
    ) -> (usize, usize) {
        let (mut resumed, mut failed) = (0, 0);
        for (live, saved) in self.calls {
            let result = match saved {
                Ok(saved) => resume_one(ctx, entries, admission, saved).await,
                Err(e) => Err(e.to_string()),
            };
            match result {
                Ok(()) => {
                    resumed += 1;
                    ctx.node.resume_outcome(true);
                }
                Err(why) => {
                    ctx.node.resume_outcome(false);
                    failed += 1;
                    tracing::warn!(call = %live.call_id, %why, "saved call not resumed");
                    let store = ctx.store.clone();
                    let id = live.call_id.clone();
                    let _ = tokio::task::spawn_blocking(move || store.remove_live(&id)).await;
                }
            }
        }
        (resumed, failed)
    }
}

/// Takes one saved call over; why not, as text for the log.
async fn resume_one(
    ctx: &Arc<Ctx>,
    entries: &EntryBook,
    admission: &Admission,
    saved: SavedCall,
) -> Result<(), String> {
    let call_id = saved.machine.parties().call_id.clone();
    let caller = match saved.caller.clone() {
        Some(state) => ctx
            .stack
            .resume_leg(state)
            .map_err(|e| format!("caller's dialog: {e}"))?,
        None => return Err("no caller leg was saved".into()),
    };
    let Some(entry) = entries.snapshot().by_id(&saved.entry) else {
        // Nothing to play or sign with: end the call cleanly.
        caller.hangup();
        return Err(format!(
            "its dial-in entry {} no longer exists",
            saved.entry
        ));
    };
    let room = match saved.room.clone() {
        Some(state) => match ctx.stack.resume_leg(state) {
            Ok(leg) => Some(leg),
            Err(e) => {
                caller.hangup();
                return Err(format!("room's dialog: {e}"));
            }
        },
        None => None,
    };
    let Some(media_state) = saved.media.as_ref() else {
        caller.hangup();
        return Err("no media state was saved".into());
    };
    let media = match ctx.media.resume(media_state, hold_music(ctx, &entry)) {
        Ok(m) => m,
        Err(e) => {
            caller.hangup();
            if let Some(room) = room {
                room.hangup();
            }
            return Err(format!("media: {e}"));
        }
    };
    let mut machine = saved.machine;
    let pending = machine.interrupted(ctx.clock.now());
    tracing::info!(call = %call_id, state = machine.state().name(), "call resumed");
    let parts = Parts {
        machine,
        caller: Some(caller),
        room,
        media,
        caller_from: saved.caller_from,
        published: saved.published,
        pending,
    };
    let permit = admission.resumed_permit();
    tokio::spawn(driver::drive(ctx.clone(), entry, parts, permit, false));
    Ok(())
}
