//! Calls.
//!
//! - The core, without I/O: `machine` (a call's whole state, its
//!   transitions and its deadlines on the monotonic clock), its inputs,
//!   actions and timeline types in `steps`, and `plan` (one transfer's
//!   targets, retries and deadline).
//! - The one door: `admission` decides on every new INVITE (with `rate`,
//!   and `capacity`'s permits for `max_calls`).
//! - Running a call: `driver`, one task per call, a thin loop that feeds
//!   the machine and performs its actions; `answer` takes an admitted
//!   INVITE to a held call (`early`: one held in early media, answered
//!   later); `webhook_task` posts the incoming-call
//!   webhook; `events` posts the timeline to the entry's `events_url`;
//!   `ctx` is what every driver shares; `node` whether the node takes
//!   calls and how calls ended.
//! - Restarts: `saved` is a live call as saved at each state change;
//!   `resume` takes the saved calls over at start.
//! - Reaching a call: `registry` (live and recently ended calls), `handle`
//!   (the opaque handle the API uses) and `view` (what the API shows);
//!   `queue`, the hold queues the registry keeps (positions, waits).
//! - Hold prompts: `prompts` plays position announcements and the play
//!   API's prompts for a driver, and tells it when they are over.
//!   `traces` keeps each call's SIP ladder beside the registry.
//! - Entries: `entries` matches an INVITE to its `[[dialin]]` entry, whose
//!   `header_policy` filters the caller's headers.
//! - `secure`: whether a leg is SRTP (the entry's `media_encryption`, the
//!   INVITE's transport, the room's URI) and with which keys.
//!
//! Inside the module, imports go from the drivers down to the machine:
//! resume → driver → (admission, answer, webhook_task, events, handle,
//! registry, ctx, saved) → early → machine → (steps, plan, view); `tests/layers.rs`
//! checks that no file cycle forms.

pub mod admission;
mod answer;
pub mod capacity;
mod ctx;
pub mod driver;
mod early;
pub mod entries;
pub mod events;
pub mod feed;
mod handle;
pub mod header_policy;
pub mod machine;
mod node;
pub mod plan;
mod prompts;
pub mod queue;
pub mod rate;
pub mod registry;
mod resume;
pub mod route;
mod saved;
pub mod secure;
pub mod steps;
mod traces;
mod view;
mod webhook_task;

pub use entries::{Entries, Entry, EntryBook, EntryError, config_entries};
pub use feed::EventFeed;
pub use handle::{CallError, CallHandle};
pub use machine::{Accepted, Machine, PlayThen, State, Transfer, UpdateRefused};
pub use node::NodeCalls;
pub use plan::{Mode, TransferRequest};
pub use queue::{QueueView, QueuedCall};
pub use registry::{NotLive, Registry};
pub use resume::Saved;
pub use steps::EndReason;
pub use view::CallView;

/// Id of a held call (`callId` in the webhook and API): a UUID, not the
/// SIP Call-ID, so that it reveals nothing of the carrier's signalling.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct CallId(pub String);

impl CallId {
    pub fn new() -> Self {
        CallId(uuid::Uuid::new_v4().to_string())
    }
}

impl Default for CallId {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Display for CallId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
