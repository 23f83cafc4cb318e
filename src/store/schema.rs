//! Versioned schema migrations. Migration `i` takes the database from
//! version `i` to `i + 1` (`PRAGMA user_version`), each in its own
//! transaction. Append new ones; never edit a released one.

use super::error::StoreError;
use rusqlite::Connection;
use std::path::Path;

const MIGRATIONS: &[&str] = &[
    // 0 → 1: node identity, API-made dial-in entries, call records.
    "CREATE TABLE node (
         key   TEXT PRIMARY KEY,
         value TEXT NOT NULL
     );
     CREATE TABLE dialin_entries (
         id             TEXT PRIMARY KEY,
         config         TEXT NOT NULL,   -- JSON: the [[dialin]] fields but hmac
         hmac           TEXT NOT NULL,   -- base64 signing key
         previous_hmac  TEXT,            -- still signs until previous_until
         previous_until INTEGER,         -- Unix ms
         created_at     INTEGER NOT NULL,
         updated_at     INTEGER NOT NULL
     );
     CREATE TABLE call_records (
         call_id     TEXT PRIMARY KEY,
         entry       TEXT NOT NULL,
         from_party  TEXT NOT NULL,
         to_party    TEXT NOT NULL,
         created_at  INTEGER NOT NULL,
         ended_at    INTEGER NOT NULL,
         end_reason  TEXT,
         target      TEXT,
         hold_ms     INTEGER NOT NULL,
         talk_ms     INTEGER NOT NULL,
         record      TEXT NOT NULL      -- JSON, as GET /v1/calls/{id} shows it
     );
     CREATE INDEX call_records_by_end ON call_records (ended_at);",
    // 1 → 2: calls up on the wire, saved at each state change so that the
    // next start resumes them (`live`).
    "CREATE TABLE live_calls (
         call_id   TEXT PRIMARY KEY,
         saved_at  INTEGER NOT NULL,  -- Unix ms
         state     TEXT NOT NULL      -- JSON, written and read by `call`
     );",
    // 2 → 3: call recordings (`recordings`): one row per recording, from
    // its start; its file's summary once it is finished.
    "CREATE TABLE recordings (
         id           TEXT PRIMARY KEY,  -- {callId}-{n}
         call_id      TEXT NOT NULL,
         path         TEXT NOT NULL,     -- the local file
         started_at   INTEGER NOT NULL,  -- Unix ms
         state        TEXT NOT NULL,     -- recording | ready | failed
         ended_at     INTEGER,           -- Unix ms
         duration_ms  INTEGER,
         bytes        INTEGER,
         sha256       TEXT,
         sample_rate  INTEGER NOT NULL,
         channels     INTEGER NOT NULL,
         error        TEXT
     );
     CREATE INDEX recordings_by_start ON recordings (started_at);
     CREATE INDEX recordings_by_call ON recordings (call_id, started_at);",
];

/// The schema version this build writes.
pub const LATEST: i64 = MIGRATIONS.len() as i64;

/// Brings the database to `LATEST`; refuses a newer one.
pub fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found > LATEST {
        return Err(StoreError::NewerSchema {
            path: path.to_path_buf(),
            found,
            supported: LATEST,
        });
    }
    for (version, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", version as i64 + 1)?;
        tx.commit()?;
        tracing::info!(db = %path.display(), version = version + 1, "database schema migrated");
    }
    Ok(())
}
