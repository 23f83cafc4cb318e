//! Dial-in entries provisioned at runtime, without HTTP: create, list,
//! read, replace, delete and rotate a secret. An entry is stored before
//! the answer and applies to the next INVITE; calls already held keep the
//! entry they were matched with. In a cluster an entry is written to Redis
//! first (a Redis outage changes nothing anywhere), then to this node's
//! copy; `sync` brings it to the other nodes. The API (`api::provision`)
//! reads requests into these calls and renders what they return.

use super::WRITES;
use super::confine::confine_entry;
use super::error::ProvisionError;
use super::record::to_record;
use crate::call::door::entries::stored_keys;
use crate::call::{Entry, EntryBook};
use crate::clock::unix_ms;
use crate::cluster::Cluster;
use crate::config::DialinEntry;
use crate::confine::{MediaDir, UrlPolicy};
use crate::store::{Store, StoreError, StoredEntry, StoredKeys};
use crate::webhook::{self, AttemptOutcome, Delivery, messages};
use base64::Engine;
use rand::RngCore;
use std::sync::Arc;

/// What the provisioning calls share.
pub struct Provisioning {
    pub store: Arc<Store>,
    pub entries: EntryBook,
    /// The config file's entries: listed, never changed through the API.
    pub config_entries: Vec<DialinEntry>,
    /// Posts the `{"Test":"test"}` verification (one attempt).
    pub verifier: webhook::Sender,
    /// Host (and port) of static SIP URIs handed out.
    pub sip_host: String,
    /// Where entries are shared with the other nodes, in a cluster.
    pub cluster: Option<Arc<Cluster>>,
    /// Where an entry's audio files must be (`[api] media_dir`).
    pub files: MediaDir,
    /// Which addresses an entry's webhook URLs may reach.
    pub urls: UrlPolicy,
}

/// How the entry's webhook took the `{"Test":"test"}` post: its status,
/// or none and why. It never undoes the save.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    pub status: Option<u16>,
    pub error: Option<String>,
}

/// An entry just created: as stored, the secret if it was generated (shown
/// this once), and its webhook's verification.
#[derive(Debug)]
pub struct Created {
    pub stored: StoredEntry,
    pub generated_hmac: Option<String>,
    pub verification: Verification,
}

/// One entry, where it comes from.
#[derive(Debug)]
pub enum Found<'a> {
    /// From the config file (id `config:<name_prefix>`), read-only.
    Config(&'a DialinEntry),
    /// Provisioned through the API.
    Stored(Box<StoredEntry>),
}

/// A secret rotated: the entry, the new secret (shown this once) and
/// until when the old one still signs (Unix ms).
#[derive(Debug)]
pub struct Rotated {
    pub stored: StoredEntry,
    pub hmac: String,
    pub previous_until: u64,
}

/// Runs a store call off the async runtime (SQLite blocks).
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, ProvisionError> {
    Ok(tokio::task::spawn_blocking(f).await??)
}

fn new_secret() -> String {
    let mut key = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut key);
    base64::engine::general_purpose::STANDARD.encode(key)
}

impl Provisioning {
    fn config_entry(&self, id: &str) -> Option<&DialinEntry> {
        let name = id.strip_prefix("config:")?;
        self.config_entries.iter().find(|c| c.name_prefix == name)
    }

    /// Makes `stored` ready (announcement, secrets) and checks it against
    /// every other entry.
    fn check(&self, stored: &StoredEntry) -> Result<(), ProvisionError> {
        let snapshot = self.entries.snapshot();
        if let Some(clash) = snapshot.conflict(&stored.config, Some(&stored.id)) {
            return Err(ProvisionError::Clash(clash));
        }
        Entry::from_stored(stored, self.entries.max_hold())
            .map(|_| ())
            .map_err(ProvisionError::BadEntry)
    }

    /// In a cluster, stores `s` in Redis for every node (before this
    /// node's copy: if Redis is down, nothing changes anywhere).
    async fn share(&self, s: &StoredEntry) -> Result<(), ProvisionError> {
        if let Some(cluster) = &self.cluster {
            cluster.put_entry(&to_record(s)).await?;
        }
        Ok(())
    }

    /// Runs a store write that reports whether the entry existed, then
    /// puts the stored entries in force.
    async fn write(
        &self,
        op: impl FnOnce(&Store) -> Result<bool, StoreError> + Send + 'static,
    ) -> Result<(), ProvisionError> {
        let store = self.store.clone();
        if !blocking(move || op(&store)).await? {
            return Err(ProvisionError::Unknown);
        }
        self.apply().await
    }

    /// Re-reads the stored entries into the set in force.
    async fn apply(&self) -> Result<(), ProvisionError> {
        let store = self.store.clone();
        let stored = blocking(move || store.entries()).await?;
        // `check` refused this change if it could not apply; another
        // entry that cannot (logged by the book) does not undo it.
        self.entries.rebuild(&stored);
        Ok(())
    }

    /// Posts `{"Test":"test"}` signed to the entry's webhook.
    async fn verify(&self, s: &StoredEntry) -> Verification {
        // Only the secrets: resolving the whole entry would decode its
        // audio files again.
        let keys = match stored_keys(s) {
            Ok(k) => k,
            Err(e) => {
                return Verification {
                    status: None,
                    error: Some(e.to_string()),
                };
            }
        };
        let id = messages::message_id();
        let body = messages::verification();
        let url = &s.config.room_creation_api;
        let (status, error) = match self.verifier.deliver(url, &keys, &id, &body, |_| {}).await {
            Delivery::Delivered { .. } => (Some(200), None),
            Delivery::Failed {
                last: AttemptOutcome::Status(code),
                ..
            } => (Some(code), None),
            Delivery::Failed {
                last: AttemptOutcome::Error(e),
                ..
            } => (None, Some(e.to_string())),
        };
        Verification { status, error }
    }

    /// A new entry from `config` (its secret generated unless given, its
    /// static SIP URI made up unless given).
    pub async fn create(&self, config: DialinEntry) -> Result<Created, ProvisionError> {
        let mut config = confine_entry(config, &self.files, self.urls).await?;
        let generated = config.hmac.is_none();
        let hmac = config.hmac.take().unwrap_or_else(new_secret);
        let id = uuid::Uuid::new_v4().to_string();
        if config.sip_uri.is_none() {
            let tag = &id[..8];
            config.sip_uri = Some(format!(
                "sip:{}-{tag}@{}",
                config.name_prefix, self.sip_host
            ));
        }
        let now = unix_ms();
        let stored = StoredEntry {
            id,
            config,
            keys: StoredKeys {
                hmac: hmac.clone(),
                previous: None,
            },
            created_at: now,
            updated_at: now,
        };
        let write = WRITES.lock().await;
        self.check(&stored)?;
        self.share(&stored).await?;
        let (store, row) = (self.store.clone(), stored.clone());
        blocking(move || store.insert_entry(&row)).await?;
        self.apply().await?;
        drop(write);
        tracing::info!(entry = %stored.id, name = %stored.config.name_prefix, "dial-in entry created");
        let verification = self.verify(&stored).await;
        Ok(Created {
            stored,
            generated_hmac: generated.then_some(hmac),
            verification,
        })
    }

    /// Every entry: the config file's first, then the provisioned ones.
    pub async fn list(&self) -> Result<(&[DialinEntry], Vec<StoredEntry>), ProvisionError> {
        let store = self.store.clone();
        let stored = blocking(move || store.entries()).await?;
        Ok((&self.config_entries, stored))
    }

    async fn stored(&self, id: &str) -> Result<StoredEntry, ProvisionError> {
        let (store, key) = (self.store.clone(), id.to_string());
        blocking(move || store.entry(&key))
            .await?
            .ok_or(ProvisionError::Unknown)
    }

    /// One entry by id.
    pub async fn get(&self, id: &str) -> Result<Found<'_>, ProvisionError> {
        if let Some(c) = self.config_entry(id) {
            return Ok(Found::Config(c));
        }
        Ok(Found::Stored(Box::new(self.stored(id).await?)))
    }

    /// Entries of the config file are read-only through the API.
    pub fn refuse_file_entry(&self, id: &str) -> Result<(), ProvisionError> {
        match self.config_entry(id) {
            Some(_) => Err(ProvisionError::ConfigFileEntry),
            None => Ok(()),
        }
    }

    /// Replaces entry `id` with `config`. A secret changes only when one
    /// is given, and then at once; the SIP URI stays unless given.
    pub async fn replace(
        &self,
        id: &str,
        config: DialinEntry,
    ) -> Result<(StoredEntry, Verification), ProvisionError> {
        self.refuse_file_entry(id)?;
        let mut config = confine_entry(config, &self.files, self.urls).await?;
        let write = WRITES.lock().await;
        let mut stored = self.stored(id).await?;
        let new_hmac = config.hmac.take().filter(|h| *h != stored.keys.hmac);
        if config.sip_uri.is_none() {
            config.sip_uri = stored.config.sip_uri.clone();
        }
        let now = unix_ms();
        stored.config = config;
        stored.updated_at = now;
        if let Some(h) = &new_hmac {
            stored.keys = StoredKeys {
                hmac: h.clone(),
                previous: None,
            };
        }
        self.check(&stored)?;
        self.share(&stored).await?;
        let (row, key) = (stored.clone(), new_hmac.clone());
        self.write(move |store| {
            let found = store.update_entry(&row.id, &row.config, now)?;
            if let Some(h) = key {
                store.rotate_entry(&row.id, &h, now, now)?;
            }
            Ok(found)
        })
        .await?;
        drop(write);
        let verification = self.verify(&stored).await;
        Ok((stored, verification))
    }

    /// Deletes entry `id`.
    pub async fn delete(&self, id: &str) -> Result<(), ProvisionError> {
        self.refuse_file_entry(id)?;
        let _write = WRITES.lock().await;
        if let Some(cluster) = &self.cluster {
            self.stored(id).await?;
            cluster.delete_entry(id).await?;
        }
        let key = id.to_string();
        self.write(move |store| store.delete_entry(&key)).await
    }

    /// A new secret for entry `id`; the old one keeps signing for
    /// `grace_secs`.
    pub async fn rotate(&self, id: &str, grace_secs: u64) -> Result<Rotated, ProvisionError> {
        self.refuse_file_entry(id)?;
        let write = WRITES.lock().await;
        let hmac = new_secret();
        let now = unix_ms();
        let until = now + grace_secs * 1000;
        if self.cluster.is_some() {
            let mut s = self.stored(id).await?;
            let old = std::mem::replace(&mut s.keys.hmac, hmac.clone());
            s.keys.previous = Some((old, until));
            s.updated_at = now;
            self.share(&s).await?;
        }
        let (key, secret) = (id.to_string(), hmac.clone());
        self.write(move |store| store.rotate_entry(&key, &secret, until, now))
            .await?;
        drop(write);
        tracing::info!(entry = %id, grace_secs, "webhook secret rotated");
        Ok(Rotated {
            stored: self.stored(id).await?,
            hmac,
            previous_until: until,
        })
    }
}
