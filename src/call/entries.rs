//! `[[dialin]]` entries ready for matching: by E.164 number and by the
//! user part of the static SIP URI, with each entry's signing key, call
//! policy, header policy and hold-timeout announcement.

use super::header_policy::HeaderPolicy;
use super::machine::{HoldTimeout, Policy};
use crate::config::{DialinEntry, HoldTimeoutAction};
use crate::media::HoldLoop;
use crate::webhook::{SecretError, decode_secret, load_or_create_secret};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Longest a room may ring on one transfer attempt.
const RING_CAP: Duration = Duration::from_secs(30);

/// One entry, resolved.
#[derive(Debug)]
pub struct Entry {
    pub name: String,
    pub webhook_url: String,
    pub events_url: Option<String>,
    /// HMAC key (decoded), for both webhooks.
    pub key: Vec<u8>,
    pub answer_delay: Duration,
    pub policy: Policy,
    pub headers: HeaderPolicy,
    /// Played before hanging up on a hold timeout.
    pub announcement: Option<Arc<HoldLoop>>,
}

/// Why the entries could not be made ready.
#[derive(Debug, thiserror::Error)]
pub enum EntryError {
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// The announcement file could not be decoded.
    #[error("config key `{key}`: {reason}")]
    Announcement { key: String, reason: String },
}

/// All entries, indexed for matching an INVITE.
#[derive(Debug, Default)]
pub struct Entries {
    by_number: HashMap<String, Arc<Entry>>,
    by_user: HashMap<String, Arc<Entry>>,
}

impl Entries {
    /// Resolves configured entries; secrets missing from the config are
    /// generated once into `state_dir` (the log names the file).
    /// `max_hold` is `[hold].max_hold_secs`, which an entry may override.
    pub fn load(
        config: &[DialinEntry],
        state_dir: &Path,
        max_hold: Duration,
    ) -> Result<Entries, EntryError> {
        let mut entries = Entries::default();
        for (i, c) in config.iter().enumerate() {
            let key = match &c.hmac {
                // Validated at config load; a failure here cannot happen.
                Some(text) => decode_secret(text).unwrap_or_default(),
                None => {
                    let (text, path) = load_or_create_secret(state_dir, &c.name_prefix)?;
                    tracing::info!(entry = %c.name_prefix, file = %path.display(), "webhook secret kept in file");
                    decode_secret(&text).unwrap_or_default()
                }
            };
            let announcement = match &c.timeout_announcement {
                Some(path) => Some(Arc::new(HoldLoop::load(path).map_err(|e| {
                    EntryError::Announcement {
                        key: format!("dialin[{i}].timeout_announcement"),
                        reason: e.to_string(),
                    }
                })?)),
                None => None,
            };
            let on_hold_timeout = match (&c.hold_timeout_action, &c.timeout_sip_uri) {
                (HoldTimeoutAction::Transfer, Some(uri)) => HoldTimeout::Transfer(uri.clone()),
                _ => HoldTimeout::Hangup {
                    announce: announcement.is_some(),
                },
            };
            let entry = Arc::new(Entry {
                name: c.name_prefix.clone(),
                webhook_url: c.room_creation_api.clone(),
                events_url: c.events_url.clone(),
                key,
                answer_delay: Duration::from_millis(c.answer_delay_ms),
                policy: Policy {
                    transfer_timeout: Duration::from_secs(c.transfer_timeout_secs),
                    max_hold: c.max_hold_secs.map(Duration::from_secs).unwrap_or(max_hold),
                    on_room_hangup: c.on_room_hangup,
                    on_hold_timeout,
                    ring_cap: RING_CAP,
                },
                headers: HeaderPolicy::new(&c.header_policy),
                announcement,
            });
            if let Some(n) = &c.phone_number {
                entries.by_number.insert(n.clone(), entry.clone());
            }
            if let Some(user) = c.sip_uri.as_deref().and_then(crate::sip::uri_user) {
                entries.by_user.insert(user.to_string(), entry.clone());
            }
        }
        Ok(entries)
    }

    /// The entry for a call to `user` (To user part, else Request-URI's).
    /// Numbers match with or without the leading `+`.
    pub fn find(&self, user: &str) -> Option<Arc<Entry>> {
        if let Some(e) = self.by_user.get(user) {
            return Some(e.clone());
        }
        let number = if user.starts_with('+') {
            user.to_string()
        } else {
            format!("+{user}")
        };
        self.by_number.get(&number).cloned()
    }
}
