//! A live call as saved for the next start: the machine (state, timeline,
//! deadlines), both legs' dialogs, the media (ports, SSRC, sequence), and
//! where the events webhook stood. Its JSON form is versioned and read
//! back only by the same major form; the store keeps it as text.

use crate::call::machine::Machine;
use crate::clock::Instant;
use crate::media::MediaState;
use crate::sip::LegState;
use crate::store::LiveCall;
use serde::{Deserialize, Serialize};

/// The form written by this build.
const FORM: u32 = 1;

/// Why a saved call cannot be read back.
#[derive(Debug, thiserror::Error)]
pub enum SavedError {
    /// The JSON is not a saved call of any form we know.
    #[error("saved call {call_id} unreadable: {source}")]
    Unreadable {
        call_id: String,
        #[source]
        source: serde_json::Error,
    },
    /// Saved by a newer pinless.
    #[error("saved call {call_id} has form {found}, newer than this pinless understands ({FORM})")]
    Newer { call_id: String, found: u32 },
}

/// Everything the next start needs to take a call over.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedCall {
    /// The `[[dialin]]` entry's id (`config:<name>` or the API's).
    pub entry: String,
    pub machine: Machine,
    /// The monotonic clock at the save: the next start continues its
    /// clock from here plus the time it was down, so every deadline keeps
    /// its meaning (time before the stop counts).
    pub clock: Instant,
    /// The caller's From URI, used as From of our room INVITEs.
    pub caller_from: String,
    pub caller: Option<LegState>,
    pub room: Option<LegState>,
    pub media: Option<MediaState>,
    /// Timeline entries already handed to the events webhook.
    pub published: usize,
}

/// The stored JSON: the form, then the call.
#[derive(Serialize, Deserialize)]
struct Stored<T> {
    form: u32,
    call: T,
}

impl SavedCall {
    /// The store's row for this call, saved at `unix_ms`.
    pub fn to_live(&self, unix_ms: u64) -> Result<LiveCall, serde_json::Error> {
        let state = serde_json::to_string(&Stored {
            form: FORM,
            call: self,
        })?;
        Ok(LiveCall {
            call_id: self.machine.parties().call_id.clone(),
            saved_at: unix_ms,
            state,
        })
    }

    /// Reads a stored row back.
    pub fn from_live(live: &LiveCall) -> Result<SavedCall, SavedError> {
        let unreadable = |source| SavedError::Unreadable {
            call_id: live.call_id.clone(),
            source,
        };
        #[derive(Deserialize)]
        struct Form {
            form: u32,
        }
        let form: Form = serde_json::from_str(&live.state).map_err(unreadable)?;
        if form.form > FORM {
            return Err(SavedError::Newer {
                call_id: live.call_id.clone(),
                found: form.form,
            });
        }
        let stored: Stored<SavedCall> = serde_json::from_str(&live.state).map_err(unreadable)?;
        Ok(stored.call)
    }
}
