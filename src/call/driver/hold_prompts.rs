//! A driver's prompts to its held caller: position announcements (the
//! machine says when, the registry's queue says what), the play API's
//! prompts and the entry's recording announcement. They play in the pacer in the order given (see
//! `media::prompt`); this keeps, in the same order, who waits for each
//! one's end, so that the driver can tell the machine when each is over.

use crate::call::CallId;
use crate::call::door::entries::Entry;
use crate::call::machine::{PlayThen, PromptEnd};
use crate::call::registry::Registry;
use crate::media::{CallMedia, Prompt, PromptSet};
use std::collections::VecDeque;
use tokio::sync::oneshot;

struct Pending {
    done: oneshot::Receiver<()>,
    kind: Kind,
}

/// Which prompt it is, as the machine is told of its end.
enum Kind {
    Announcement,
    /// The play request's `audio` and `then`.
    Play(String, PlayThen),
    Consent,
}

/// Prompts handed to the call's media and not over yet.
#[derive(Default)]
pub(in crate::call) struct HoldPrompts {
    pending: VecDeque<Pending>,
}

impl HoldPrompts {
    /// Tells the caller its place in its entry's queue and the estimated
    /// wait; nothing (false) when it is not in the queue (any more).
    pub fn announce(
        &mut self,
        media: &CallMedia,
        registry: &Registry,
        entry: &Entry,
        id: &CallId,
    ) -> bool {
        let Some((position, wait)) = registry.place(id) else {
            return false;
        };
        let set = entry.prompts.clone().unwrap_or_else(PromptSet::bundled);
        let done = media.prompt(set.announcement(position, wait));
        self.pending.push_back(Pending {
            done,
            kind: Kind::Announcement,
        });
        true
    }

    /// Plays the entry's recording announcement; nothing (false) when
    /// the entry has none.
    pub fn consent(&mut self, media: &CallMedia, entry: &Entry) -> bool {
        let Some(clip) = entry.record_announcement.clone() else {
            return false;
        };
        let done = media.prompt(Prompt::new(vec![clip]));
        self.pending.push_back(Pending {
            done,
            kind: Kind::Consent,
        });
        true
    }

    /// Plays a prompt of the play API.
    pub fn play(&mut self, media: &CallMedia, prompt: Prompt, audio: String, then: PlayThen) {
        let done = media.prompt(prompt);
        self.pending.push_back(Pending {
            done,
            kind: Kind::Play(audio, then),
        });
    }

    /// The next prompt that is over, in the order they were handed over.
    /// Pending while none is playing. Cancel-safe: nothing is taken until
    /// a prompt's end is known.
    pub async fn finished(&mut self) -> PromptEnd {
        let Some(first) = self.pending.front_mut() else {
            return std::future::pending().await;
        };
        let played = (&mut first.done).await.is_ok();
        match self.pending.pop_front().map(|p| p.kind) {
            Some(Kind::Play(audio, then)) => PromptEnd::Play {
                audio,
                then,
                played,
            },
            Some(Kind::Consent) => PromptEnd::Consent { played },
            Some(Kind::Announcement) | None => PromptEnd::Announcement,
        }
    }
}
