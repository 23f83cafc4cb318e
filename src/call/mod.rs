//! Calls, grouped by job. Each folder's `mod.rs` says what its files do.
//!
//! - `machine/`: the core, without I/O. `mod.rs` holds a call's whole
//!   state, its transitions and every deadline on the monotonic clock;
//!   `steps` its inputs, actions, states and timeline; `plan` one
//!   transfer's targets, retries and deadline; `route` a transfer target
//!   read from JSON (update or webhook answer); `view` what the API shows;
//!   `room` the shape of a room attempt (codec order, SRTP only over TLS)
//!   and whether its answer can be bridged; `ringing` the ring before an
//!   answer (`answer_delay_ms`). The rest are the machine's parts:
//!   `transfer`, `announce`, `play`, `dtmf`, `early_media`, `suspend` (a
//!   stop in resume mode).
//! - `door/`: what decides on a new INVITE: `admission` (the one door),
//!   `rate`, `capacity`, `entries` (with `header_policy`), `secure`,
//!   `registered` (calls that come through a registration's binding).
//! - `driver/`: one task per call, a thin loop that feeds the machine and
//!   performs its actions (`actions`, `bot`, `persist`); `answer` takes an
//!   admitted INVITE to a held call, `early_caller` keeps one held in
//!   early media, `hold_prompts` plays prompts and announcements,
//!   `webhook_task` posts the incoming-call webhook, `events` the timeline
//!   to `events_url`; `ctx` is what every driver shares.
//! - `registry/`: reaching calls. `mod.rs` keeps live and recently ended
//!   calls; `handle` (the opaque handle the API uses), `queue` (the hold
//!   queues), `feed` (the node's live event feed), `traces` (SIP ladders),
//!   `node` (whether the node takes calls, how calls ended).
//! - `restart/`: `saved` (a live call as saved at each state change) and
//!   `resume` (the saved calls taken over at start).
//!
//! Imports go from the drivers down to the machine: restart → driver →
//! (door, registry) → machine; `tests/it/layers.rs` checks that no file
//! cycle forms.

pub mod door;
pub mod driver;
pub mod machine;
pub mod registry;
pub mod restart;

pub use door::entries::{Entries, Entry, EntryBook, EntryError, config_entries};
pub use machine::plan::{Mode, TransferRequest};
pub use machine::steps::EndReason;
pub use machine::view::CallView;
pub use machine::{Accepted, Machine, PlayThen, State, Transfer, UpdateRefused};
pub use registry::feed::EventFeed;
pub use registry::handle::{CallError, CallHandle};
pub use registry::node::NodeCalls;
pub use registry::queue::{QueueView, QueuedCall};
pub use registry::{NotLive, Registry};
pub use restart::resume::SavedCalls;

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
