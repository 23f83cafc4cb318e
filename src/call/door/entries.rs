//! Dial-in entries ready for matching: by E.164 number and by the user part
//! of the static SIP URI, each with its signing keys, call policy, header
//! policy and hold-timeout announcement.
//!
//! Entries come from the config file (fixed for the process) and from the
//! provisioning API (stored, changed at runtime). `EntryBook` holds the
//! current set as an immutable snapshot that is swapped whole on a change:
//! the next INVITE sees the new set, and calls already held keep the
//! `Arc<Entry>` they were matched with.

use crate::call::door::header_policy::HeaderPolicy;
use crate::call::machine::{HoldTimeout, Policy};
use crate::config::{DialinEntry, HoldTimeoutAction};
use crate::confine::Origin;
use crate::media::{HoldLoop, PromptSet};
use crate::store::StoredEntry;
use crate::webhook::{
    SecretError, SigningKeys, decode_secret, load_or_create_secret, parse_secret,
};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// Longest a room may ring on one transfer attempt.
const RING_CAP: Duration = Duration::from_secs(30);

/// One entry, resolved.
#[derive(Debug)]
pub struct Entry {
    /// `config:<name_prefix>` for entries of the config file, else the
    /// provisioning API's id.
    pub id: String,
    pub name: String,
    pub phone_number: Option<String>,
    /// User part of the static SIP URI.
    pub sip_user: Option<String>,
    pub webhook_url: String,
    pub events_url: Option<String>,
    /// Who wrote the URLs: an API client's (a provisioned entry's) reach
    /// only the addresses `[api] allow_private_urls` allows.
    pub origin: Origin,
    /// Signing keys, for both webhooks.
    pub keys: SigningKeys,
    pub answer_delay: Duration,
    /// `answer = "early"`: hold in early media (183) for at most this
    /// long before answering; None answers at once.
    pub early_media: Option<Duration>,
    pub policy: Policy,
    pub headers: HeaderPolicy,
    /// Played before hanging up on a hold timeout.
    pub announcement: Option<Arc<HoldLoop>>,
    /// Played before a recording of the call starts (`record_announcement`).
    pub record_announcement: Option<Arc<HoldLoop>>,
    /// This entry's own hold music (else `[hold].music`).
    pub music: Option<Arc<HoldLoop>>,
    /// The prompt set of position announcements (`prompts_dir`; else the
    /// bundled English one).
    pub prompts: Option<Arc<PromptSet>>,
    /// Source ranges allowed to call (empty: any).
    pub allowed: Vec<(std::net::IpAddr, u8)>,
    /// Digest usernames and passwords (empty: no digest).
    pub credentials: Vec<(String, String)>,
    /// SRTP on the caller's leg (see `secure`).
    pub media_encryption: crate::config::MediaEncryption,
}

/// Why an entry could not be made ready.
#[derive(Debug, thiserror::Error)]
pub enum EntryError {
    /// A secret file could not be read or written.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// An audio file of the entry (hold music, announcement) is unusable.
    #[error("config key `{key}`: {source}")]
    Audio {
        key: String,
        #[source]
        source: crate::media::HoldError,
    },
    /// The entry's prompt set (`prompts_dir`) lacks a file or holds one
    /// that is no audio; the text names the key and the file.
    #[error("config key `{key}`: {source}")]
    Prompts {
        key: String,
        #[source]
        source: crate::media::PromptsError,
    },
    /// A stored secret does not decode.
    #[error("config key `{key}`: {source}")]
    StoredSecret {
        key: String,
        #[source]
        source: crate::webhook::BadSecret,
    },
    /// A stored entry clashes with one of the config file.
    #[error("config key `{key}`: {reason}")]
    Clash { key: String, reason: String },
}

impl Entry {
    /// Encodes the entry's own audio (music, announcement, prompts) for
    /// Opus now, so that its first Opus caller hears it from the start.
    pub fn prepare_opus(&self) {
        let clips = [&self.announcement, &self.music, &self.record_announcement];
        clips.into_iter().flatten().for_each(|c| c.prepare_opus());
        if let Some(p) = &self.prompts {
            p.prepare_opus();
        }
    }

    /// Resolves `c`; `key` names its fields in errors (`dialin[0]`, `config`).
    /// `max_hold` is `[hold].max_hold_secs`, which an entry may override.
    pub fn resolve(
        id: String,
        c: &DialinEntry,
        keys: SigningKeys,
        max_hold: Duration,
        key: &str,
    ) -> Result<Entry, EntryError> {
        let load = |field: &str, path: &Option<std::path::PathBuf>| match path {
            Some(p) => HoldLoop::load(p)
                .map(|h| Some(Arc::new(h)))
                .map_err(|source| EntryError::Audio {
                    key: format!("{key}.{field}"),
                    source,
                }),
            None => Ok(None),
        };
        let announcement = load("timeout_announcement", &c.timeout_announcement)?;
        let music = load("hold_music", &c.hold_music)?;
        let record_announcement = load("record_announcement", &c.record_announcement)?;
        let prompts = match &c.prompts_dir {
            Some(dir) => Some(Arc::new(PromptSet::load(dir).map_err(|source| {
                EntryError::Prompts {
                    key: format!("{key}.prompts_dir"),
                    source,
                }
            })?)),
            // Decoded now (once per process), not by the first call's
            // driver on the async threads.
            None if !c.announce_position_every.is_zero() => Some(PromptSet::bundled()),
            None => None,
        };
        let on_hold_timeout = match (&c.hold_timeout_action, &c.timeout_sip_uri) {
            (HoldTimeoutAction::Transfer, Some(uri)) => HoldTimeout::Transfer(uri.clone()),
            _ => HoldTimeout::Hangup {
                announcement: announcement
                    .as_ref()
                    .map(|a| Duration::from_millis(u64::from(a.frames()) * 20)),
            },
        };
        Ok(Entry {
            id,
            name: c.name_prefix.clone(),
            phone_number: c.phone_number.clone(),
            sip_user: c
                .sip_uri
                .as_deref()
                .and_then(crate::sip::uri_user)
                .map(String::from),
            webhook_url: c.room_creation_api.clone(),
            events_url: c.events_url.clone(),
            origin: Origin::Operator,
            keys,
            answer_delay: c.answer_delay,
            early_media: (c.answer == crate::config::AnswerMode::Early)
                .then_some(c.early_media_max),
            policy: Policy {
                transfer_timeout: c.transfer_timeout,
                max_hold: c.max_hold.unwrap_or(max_hold),
                on_room_hangup: c.on_room_hangup,
                on_hold_timeout,
                ring_cap: RING_CAP,
                dtmf_transfer: c.dtmf_transfer.clone(),
                announce_every: (!c.announce_position_every.is_zero())
                    .then_some(c.announce_position_every),
                record: c.record,
                consent: record_announcement
                    .as_ref()
                    .map(|a| Duration::from_millis(u64::from(a.frames()) * 20)),
            },
            headers: HeaderPolicy::new(&c.header_policy),
            announcement,
            record_announcement,
            music,
            prompts,
            // Validated at load; an unparsable range cannot reach here.
            allowed: c
                .allowed_cidrs
                .iter()
                .filter_map(|n| crate::config::parse_cidr(n))
                .collect(),
            credentials: c
                .credentials
                .iter()
                .map(|cr| (cr.username.clone(), cr.password.clone()))
                .collect(),
            media_encryption: c.media_encryption,
        })
    }

    /// Resolves an API-made entry with its stored secrets.
    pub fn from_stored(s: &StoredEntry, max_hold: Duration) -> Result<Entry, EntryError> {
        let entry = Entry::resolve(s.id.clone(), &s.config, stored_keys(s)?, max_hold, "config")?;
        Ok(Entry {
            origin: Origin::ApiClient,
            ..entry
        })
    }
}

/// An API-made entry's signing keys, decoded (no other field is touched).
pub fn stored_keys(s: &StoredEntry) -> Result<SigningKeys, EntryError> {
    let bad = |source| EntryError::StoredSecret {
        key: format!("entry {}: hmac", s.id),
        source,
    };
    let current = parse_secret(&s.keys.hmac).map_err(bad)?;
    let previous = match &s.keys.previous {
        Some((text, until)) => Some((parse_secret(text).map_err(bad)?, *until)),
        None => None,
    };
    Ok(SigningKeys { current, previous })
}

/// Resolves the config file's entries; secrets missing from the file are
/// generated once into `state_dir` (the log names the file).
pub fn config_entries(
    config: &[DialinEntry],
    state_dir: &Path,
    max_hold: Duration,
) -> Result<Vec<Arc<Entry>>, EntryError> {
    let mut out = Vec::new();
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
        let id = format!("config:{}", c.name_prefix);
        let entry = Entry::resolve(
            id,
            c,
            SigningKeys::single(key),
            max_hold,
            &format!("dialin[{i}]"),
        )?;
        out.push(Arc::new(entry));
    }
    Ok(out)
}

/// One set of entries, indexed for matching an INVITE.
#[derive(Debug, Default)]
pub struct Entries {
    by_number: HashMap<String, Arc<Entry>>,
    by_user: HashMap<String, Arc<Entry>>,
}

impl Entries {
    pub fn new(all: Vec<Arc<Entry>>) -> Entries {
        let mut entries = Entries::default();
        for e in all {
            entries.push(e);
        }
        entries
    }

    /// Adds one entry (a later one with the same number or URI user wins
    /// the match; callers check `conflict` first).
    fn push(&mut self, e: Arc<Entry>) {
        if let Some(n) = &e.phone_number {
            self.by_number.insert(n.clone(), e.clone());
        }
        if let Some(u) = &e.sip_user {
            self.by_user.insert(u.clone(), e);
        }
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

    /// The entry with this id (`config:<name>` or the API's id).
    pub fn by_id(&self, id: &str) -> Option<Arc<Entry>> {
        self.by_user
            .values()
            .chain(self.by_number.values())
            .find(|e| e.id == id)
            .cloned()
    }

    /// What makes `c` clash with an entry other than `except`: the same
    /// phone number or the same static SIP URI user.
    pub fn conflict(&self, c: &DialinEntry, except: Option<&str>) -> Option<String> {
        let other = |e: &&Arc<Entry>| Some(e.id.as_str()) != except;
        let number = c.phone_number.as_deref();
        if let Some(e) = number.and_then(|n| self.by_number.get(n)).filter(other) {
            return Some(format!(
                "phone_number {} is taken by entry {}",
                number.unwrap_or(""),
                e.id
            ));
        }
        let user = c.sip_uri.as_deref().and_then(crate::sip::uri_user);
        if let Some(e) = user.and_then(|u| self.by_user.get(u)).filter(other) {
            return Some(format!(
                "sip_uri user {} is taken by entry {}",
                user.unwrap_or(""),
                e.id
            ));
        }
        None
    }
}

/// A stored entry left out of the set in force, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub id: String,
    pub reason: String,
}

/// The entries in force, swapped whole when the provisioning API changes
/// one. Cheap to clone.
#[derive(Clone)]
pub struct EntryBook {
    fixed: Arc<Vec<Arc<Entry>>>,
    current: Arc<RwLock<Arc<Entries>>>,
    max_hold: Duration,
    /// The entries skipped at the last rebuild: each is logged when it
    /// starts being skipped, not at every rebuild.
    skipped: Arc<Mutex<Vec<Skipped>>>,
}

impl EntryBook {
    /// The config file's entries plus `stored` (from the database). A
    /// stored entry that cannot be put in force is skipped (and logged):
    /// one bad entry must not keep the node from starting.
    pub fn new(fixed: Vec<Arc<Entry>>, stored: &[StoredEntry], max_hold: Duration) -> EntryBook {
        let book = EntryBook {
            fixed: Arc::new(fixed),
            current: Arc::new(RwLock::new(Arc::new(Entries::default()))),
            max_hold,
            skipped: Arc::default(),
        };
        book.rebuild(stored);
        book
    }

    /// The set in force now.
    pub fn snapshot(&self) -> Arc<Entries> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn max_hold(&self) -> Duration {
        self.max_hold
    }

    /// Replaces the API-made part of the set with `stored`, leaving out
    /// (and returning) each entry that cannot be put in force: one that
    /// clashes with the config file or with an earlier stored entry (in
    /// `stored`'s order: the older one keeps the number), or whose secret
    /// or audio file is unusable on this node. The rest go in force.
    pub fn rebuild(&self, stored: &[StoredEntry]) -> Vec<Skipped> {
        let mut entries = Entries::new(self.fixed.iter().cloned().collect());
        let mut skipped = Vec::new();
        for s in stored {
            // The API refuses clashes; one here means the config file
            // changed under a stored entry, or two nodes of a cluster made
            // the same number at once.
            if let Some(clash) = entries.conflict(&s.config, None) {
                skipped.push(Skipped {
                    id: s.id.clone(),
                    reason: format!("{clash}; change the config file or delete the entry"),
                });
                continue;
            }
            match Entry::from_stored(s, self.max_hold) {
                Ok(e) => entries.push(Arc::new(e)),
                Err(e) => skipped.push(Skipped {
                    id: s.id.clone(),
                    reason: e.to_string(),
                }),
            }
        }
        let entries = Arc::new(entries);
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = entries;
        self.log_skipped(&skipped);
        skipped
    }

    /// Warns of each entry newly skipped (same id, same reason: once).
    fn log_skipped(&self, now: &[Skipped]) {
        let mut before = self.skipped.lock().unwrap_or_else(|e| e.into_inner());
        for s in now {
            if !before.contains(s) {
                tracing::warn!(entry = %s.id, reason = %s.reason, "provisioned entry not in force on this node; the others are");
            }
        }
        *before = now.to_vec();
    }
}

#[cfg(test)]
mod tests;
