//! At start, the calls an earlier run left up on the wire (saved at their
//! last state change, by a stop in resume mode or before a crash) are
//! taken over: the same RTP ports and SSRC, the same dialogs, the
//! machine with its timeline and deadlines. A call that cannot be taken
//! over is logged with the reason, counted, and forgotten.

use crate::call::door::admission::Admission;
use crate::call::door::entries::EntryBook;
use crate::call::driver::answer::hold_music;
use crate::call::driver::ctx::Ctx;
use crate::call::driver::{self, Parts};
use crate::call::restart::saved::SavedCall;
use crate::clock::Instant;
use crate::sip::{Leg, LegState};
use crate::store::{LiveCall, Store, StoreError};
use std::sync::Arc;

/// The saved calls, read before the clock starts.
pub struct SavedCalls {
    calls: Vec<(
        LiveCall,
        Result<SavedCall, crate::call::restart::saved::SavedError>,
    )>,
}

impl SavedCalls {
    /// Reads every saved call from the store.
    pub fn load(store: &Store) -> Result<SavedCalls, StoreError> {
        let calls = store
            .live_calls()?
            .into_iter()
            .map(|live| {
                let saved = SavedCall::from_live(&live);
                (live, saved)
            })
            .collect();
        Ok(SavedCalls { calls })
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
                    let id = live.call_id.clone();
                    if let Err(error) = ctx.store_write(move |store| store.remove_live(&id)).await {
                        tracing::warn!(call = %live.call_id, %error, "saved call not forgotten");
                    }
                }
            }
        }
        (resumed, failed)
    }
}

/// Takes one saved call over; why not, as text for the log. A call that
/// cannot be taken over is hung up on whatever legs could be rebuilt, so
/// that nobody is left on a dead call.
async fn resume_one(
    ctx: &Arc<Ctx>,
    entries: &EntryBook,
    admission: &Admission,
    saved: SavedCall,
) -> Result<(), String> {
    let call_id = saved.machine.parties().call_id.clone();
    let leg = |state: Option<LegState>, which: &str| match state {
        Some(state) => ctx
            .stack
            .resume_leg(state)
            .map(Some)
            .map_err(|e| format!("{which}'s dialog: {e}")),
        None => Ok(None),
    };
    let caller = leg(saved.caller.clone(), "caller");
    let room = leg(saved.room.clone(), "room");
    let give_up = |caller: Result<Option<Leg>, String>, room: Result<Option<Leg>, String>| {
        for leg in [caller, room].into_iter().flatten().flatten() {
            leg.hangup();
        }
    };
    let (caller_leg, room_leg) = match (caller, room) {
        (Ok(Some(c)), Ok(r)) => (c, r),
        (Ok(None), room) => {
            give_up(Ok(None), room);
            return Err("no caller leg was saved".into());
        }
        (Err(e), room) => {
            give_up(Ok(None), room);
            return Err(e);
        }
        (caller, Err(e)) => {
            give_up(caller, Ok(None));
            return Err(e);
        }
    };
    let Some(entry) = entries.snapshot().by_id(&saved.entry) else {
        // Nothing to play or sign with: end the call cleanly.
        give_up(Ok(Some(caller_leg)), Ok(room_leg));
        return Err(format!(
            "its dial-in entry {} no longer exists",
            saved.entry
        ));
    };
    let media = match saved.media.as_ref() {
        Some(state) => ctx.media.resume(state, hold_music(ctx, &entry)),
        None => {
            give_up(Ok(Some(caller_leg)), Ok(room_leg));
            return Err("no media state was saved".into());
        }
    };
    let media = match media {
        Ok(m) => m,
        Err(e) => {
            give_up(Ok(Some(caller_leg)), Ok(room_leg));
            return Err(format!("media: {e}"));
        }
    };
    let mut machine = saved.machine;
    let pending = machine.interrupted(ctx.clock.now());
    // The app never got the incoming-call webhook (the stop cut its
    // retries short): post it again, as the first run would have.
    let repost = !machine.webhook_settled();
    tracing::info!(call = %call_id, state = machine.state().name(), repost, "call resumed");
    let parts = Box::new(Parts {
        machine,
        caller: Some(caller_leg),
        early: None,
        room: room_leg,
        media,
        caller_from: saved.caller_from,
        published: saved.published,
        pending,
    });
    let permit = admission.resumed_permit();
    tokio::spawn(driver::drive(ctx.clone(), entry, parts, permit, repost));
    Ok(())
}
