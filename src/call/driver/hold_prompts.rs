//! A driver's prompts to its held caller: position announcements (the
//! machine says when, the registry's queue says what) and the play API's
//! prompts. They play in the pacer in the order given (see
//! `media::prompt`); this keeps, in the same order, who waits for each
//! one's end, so that the driver can tell the machine when a play-API
//! prompt is over.

use crate::call::CallId;
use crate::call::door::entries::Entry;
use crate::call::machine::PlayThen;
use crate::call::registry::Registry;
use crate::media::{CallMedia, Prompt, PromptSet};
use std::collections::VecDeque;
use tokio::sync::oneshot;

/// A play-API prompt that is over.
#[derive(Debug)]
pub(in crate::call) struct Finished {
    pub audio: String,
    pub then: PlayThen,
    /// Played to its end (else refused or cut short).
    pub played: bool,
}

struct Pending {
    done: oneshot::Receiver<()>,
    /// The play request's `audio` and `then`; None for an announcement.
    play: Option<(String, PlayThen)>,
}

/// Prompts handed to the call's media and not over yet.
#[derive(Default)]
pub(in crate::call) struct HoldPrompts {
    pending: VecDeque<Pending>,
}

impl HoldPrompts {
    /// Tells the caller its place in its entry's queue and the estimated
    /// wait; nothing when it is not in the queue (any more).
    pub fn announce(&mut self, media: &CallMedia, registry: &Registry, entry: &Entry, id: &CallId) {
        let Some((position, wait)) = registry.place(id) else {
            return;
        };
        let set = entry.prompts.clone().unwrap_or_else(PromptSet::bundled);
        let done = media.prompt(set.announcement(position, wait));
        self.pending.push_back(Pending { done, play: None });
    }

    /// Plays a prompt of the play API.
    pub fn play(&mut self, media: &CallMedia, prompt: Prompt, audio: String, then: PlayThen) {
        let done = media.prompt(prompt);
        self.pending.push_back(Pending {
            done,
            play: Some((audio, then)),
        });
    }

    /// The next play-API prompt that is over; announcements before it end
    /// silently on the way. Pending while none is playing. Cancel-safe:
    /// nothing is taken until a prompt's end is known. (It never returns
    /// for an announcement: a driver's `select!` arm that got nothing
    /// would be off until another arm fired, and a play-API prompt queued
    /// behind the announcement would be heard over long before the
    /// machine learnt of it.)
    pub async fn finished(&mut self) -> Finished {
        loop {
            let Some(first) = self.pending.front_mut() else {
                return std::future::pending().await;
            };
            let played = (&mut first.done).await.is_ok();
            if let Some(Pending {
                play: Some((audio, then)),
                ..
            }) = self.pending.pop_front()
            {
                return Finished {
                    audio,
                    then,
                    played,
                };
            }
        }
    }

    /// Whether an announcement is still to be heard (the next one then
    /// waits: they would pile up behind each other otherwise).
    pub fn announcing(&self) -> bool {
        self.pending.iter().any(|p| p.play.is_none())
    }
}
