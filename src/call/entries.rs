//! `[[dialin]]` entries ready for matching: by E.164 number and by the
//! user part of the static SIP URI, with each entry's signing key.

use crate::config::DialinEntry;
use crate::webhook::{SecretError, decode_secret, load_or_create_secret};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// One entry, resolved.
#[derive(Debug)]
pub struct Entry {
    pub name: String,
    pub webhook_url: String,
    /// HMAC key (decoded).
    pub key: Vec<u8>,
    pub answer_delay: Duration,
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
    pub fn load(config: &[DialinEntry], state_dir: &Path) -> Result<Entries, SecretError> {
        let mut entries = Entries::default();
        for c in config {
            let key = match &c.hmac {
                // Validated at config load; a failure here cannot happen.
                Some(text) => decode_secret(text).unwrap_or_default(),
                None => {
                    let (text, path) = load_or_create_secret(state_dir, &c.name_prefix)?;
                    tracing::info!(entry = %c.name_prefix, file = %path.display(), "webhook secret kept in file");
                    decode_secret(&text).unwrap_or_default()
                }
            };
            let entry = Arc::new(Entry {
                name: c.name_prefix.clone(),
                webhook_url: c.room_creation_api.clone(),
                key,
                answer_delay: Duration::from_millis(c.answer_delay_ms),
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
