//! Calls: the sans-IO state machine (`machine`, with its inputs and
//! actions in `steps`), the registry the API
//! reads (`registry`), and the per-call driver task that runs the machine
//! against SIP, media and webhooks (`driver`). `plan` is one transfer's
//! targets, retries and deadline; `entries` matches an INVITE to its
//! `[[dialin]]` entry, whose `header_policy` filters the caller's headers;
//! `events` posts the timeline to the entry's `events_url`; `admission`
//! (with `rate`) decides who may call.

pub mod admission;
pub mod driver;
pub mod entries;
pub mod events;
pub mod header_policy;
pub mod machine;
pub mod plan;
pub mod rate;
pub mod registry;
pub mod steps;

pub use entries::{Entries, Entry, EntryBook, EntryError, config_entries};
pub use machine::{Accepted, Machine, State, Transfer, UpdateRefused};
pub use plan::{Mode, TransferRequest};
pub use registry::{CallHandle, Registry};

/// Id of a held call (`callId` in the webhook and API): a UUID, not the
/// SIP Call-ID, so that it reveals nothing of the carrier's signalling.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
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
