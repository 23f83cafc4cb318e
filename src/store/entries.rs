//! Dial-in entries made through the provisioning API, with their secrets.

use super::{Store, StoreError};
use crate::config::DialinEntry;
use rusqlite::{OptionalExtension, Row, params};

/// An entry's signing secrets (base64), as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKeys {
    pub hmac: String,
    /// The secret before the last rotation, and until when (Unix ms) it
    /// still signs.
    pub previous: Option<(String, u64)>,
}

/// One API-made entry.
#[derive(Debug, Clone)]
pub struct StoredEntry {
    pub id: String,
    /// The `[[dialin]]` fields; `hmac` is always None here (see `keys`).
    pub config: DialinEntry,
    pub keys: StoredKeys,
    pub created_at: u64,
    pub updated_at: u64,
}

#[cfg(test)]
impl StoredEntry {
    /// TEST ONLY: `config` stored as `id`, with a fixed test key and no
    /// previous one, created at 1 and changed at `updated_at`.
    pub fn for_tests(id: &str, config: DialinEntry, updated_at: u64) -> Self {
        Self {
            id: id.into(),
            config,
            keys: StoredKeys {
                hmac: "c2VjcmV0LWtleS1mb3ItdGVzdHMtMDEyMzQ1Njc4OQ==".into(),
                previous: None,
            },
            created_at: 1,
            updated_at,
        }
    }
}

fn row_to_entry(row: &Row<'_>) -> rusqlite::Result<(String, String, StoredKeys, u64, u64)> {
    let previous: Option<String> = row.get(3)?;
    let until: Option<i64> = row.get(4)?;
    Ok((
        row.get(0)?,
        row.get(1)?,
        StoredKeys {
            hmac: row.get(2)?,
            previous: previous.zip(until.map(|u| u as u64)),
        },
        row.get::<_, i64>(5)? as u64,
        row.get::<_, i64>(6)? as u64,
    ))
}

const COLUMNS: &str = "id, config, hmac, previous_hmac, previous_until, created_at, updated_at";

fn decode(
    (id, config, keys, created_at, updated_at): (String, String, StoredKeys, u64, u64),
) -> Result<StoredEntry, StoreError> {
    let config: DialinEntry = serde_json::from_str(&config).map_err(|source| StoreError::Json {
        what: format!("entry {id}: stored config unreadable"),
        source,
    })?;
    Ok(StoredEntry {
        id,
        config,
        keys,
        created_at,
        updated_at,
    })
}

fn encode(config: &DialinEntry) -> Result<String, StoreError> {
    let mut c = config.clone();
    c.hmac = None;
    serde_json::to_string(&c).map_err(|source| StoreError::Json {
        what: "entry config not encodable".into(),
        source,
    })
}

impl Store {
    pub fn insert_entry(&self, e: &StoredEntry) -> Result<(), StoreError> {
        let (prev, until) = match &e.keys.previous {
            Some((k, u)) => (Some(k.clone()), Some(*u as i64)),
            None => (None, None),
        };
        self.conn().execute(
            &format!("INSERT INTO dialin_entries ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"),
            params![
                e.id,
                encode(&e.config)?,
                e.keys.hmac,
                prev,
                until,
                e.created_at as i64,
                e.updated_at as i64
            ],
        )?;
        Ok(())
    }

    /// Replaces an entry's fields (not its secrets). False if it does not exist.
    pub fn update_entry(
        &self,
        id: &str,
        config: &DialinEntry,
        now: u64,
    ) -> Result<bool, StoreError> {
        let n = self.conn().execute(
            "UPDATE dialin_entries SET config = ?2, updated_at = ?3 WHERE id = ?1",
            params![id, encode(config)?, now as i64],
        )?;
        Ok(n == 1)
    }

    /// Stores a new secret, keeping the current one valid until `until`.
    /// False if the entry does not exist.
    pub fn rotate_entry(
        &self,
        id: &str,
        new_hmac: &str,
        until: u64,
        now: u64,
    ) -> Result<bool, StoreError> {
        let n = self.conn().execute(
            "UPDATE dialin_entries
                SET previous_hmac = hmac, previous_until = ?3, hmac = ?2, updated_at = ?4
              WHERE id = ?1",
            params![id, new_hmac, until as i64, now as i64],
        )?;
        Ok(n == 1)
    }

    /// False if it did not exist.
    pub fn delete_entry(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self
            .conn()
            .execute("DELETE FROM dialin_entries WHERE id = ?1", [id])?
            == 1)
    }

    pub fn entry(&self, id: &str) -> Result<Option<StoredEntry>, StoreError> {
        let row = self
            .conn()
            .query_row(
                &format!("SELECT {COLUMNS} FROM dialin_entries WHERE id = ?1"),
                [id],
                row_to_entry,
            )
            .optional()?;
        row.map(decode).transpose()
    }

    /// Every API-made entry, oldest first.
    pub fn entries(&self) -> Result<Vec<StoredEntry>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {COLUMNS} FROM dialin_entries ORDER BY created_at, id"
        ))?;
        let rows = stmt
            .query_map([], row_to_entry)?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter().map(decode).collect()
    }
}
