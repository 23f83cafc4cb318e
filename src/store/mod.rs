//! Durable state in one SQLite file, `state_dir/pinless.db` (operators can
//! read it with `sqlite3`): the node's `call_domain`, dial-in entries made
//! through the API with their secrets, a record of every finished call,
//! and an index of call recordings.
//!
//! Crash safety: WAL journal with `synchronous = FULL`, so a change is on
//! disk before the API acknowledges it and `kill -9` loses nothing
//! acknowledged. The schema is versioned (`PRAGMA user_version`, see
//! `schema`); a database from a newer pinless, or one that fails SQLite's
//! integrity check, is refused at start-up, never replaced.

mod call_record;
mod entries;
mod error;
mod live;
mod record_form;
mod recordings;
mod records;
mod schema;

pub use call_record::{CallRecord, RecordEvent};
pub use entries::{StoredEntry, StoredKeys};
pub use error::{Corruption, StoreError};
pub use live::LiveCall;
pub use recordings::{RecordingRow, RecordingState};
pub use records::RecordQuery;

use rusqlite::{Connection, OptionalExtension};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// File name of the database inside `state_dir`.
pub const FILE: &str = "pinless.db";

/// The database handle. Statements are short; callers on the async
/// runtime use `tokio::task::spawn_blocking` for writes on hot paths.
pub struct Store {
    conn: Mutex<Connection>,
    /// A second connection for live-call state, written at every call's
    /// state change: `synchronous = NORMAL`, which in WAL mode survives a
    /// crash of the process (what resume needs) without an fsync per
    /// write; only a power loss may lose the last changes.
    live: Mutex<Connection>,
    path: PathBuf,
}

impl Store {
    /// Opens (or creates) `state_dir/pinless.db`, checks it and brings its
    /// schema up to date.
    pub fn open(state_dir: &Path) -> Result<Store, StoreError> {
        let path = state_dir.join(FILE);
        std::fs::create_dir_all(state_dir).map_err(|source| StoreError::CreateDir {
            path: path.clone(),
            source,
        })?;
        let conn = Connection::open(&path).map_err(|source| StoreError::Open {
            path: path.clone(),
            source,
        })?;
        let corrupt = |e: rusqlite::Error| StoreError::Corrupt {
            path: path.clone(),
            source: Corruption::Unreadable(e),
        };
        // The first read tells a non-database file (SQLITE_NOTADB).
        let check: String = conn
            .query_row("PRAGMA quick_check", [], |r| r.get(0))
            .map_err(corrupt)?;
        if check != "ok" {
            return Err(StoreError::Corrupt {
                path,
                source: Corruption::FailedCheck(check),
            });
        }
        // A page cache of 256 KiB per connection, not SQLite's default of
        // 2 MiB: the cache fills as calls are saved and stays full, 2 KiB
        // of every held call's memory at 1,000 calls (heaptrack in `bench
        // hold`), while a call's save touches a few pages that the OS's
        // own page cache holds anyway.
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             PRAGMA busy_timeout = 5000;
             PRAGMA cache_size = -256;",
        )
        .map_err(corrupt)?;
        let mut conn = conn;
        schema::migrate(&mut conn, &path)?;
        let live = Connection::open(&path).map_err(|source| StoreError::Open {
            path: path.clone(),
            source,
        })?;
        live.execute_batch(
            "PRAGMA synchronous = NORMAL;
             PRAGMA busy_timeout = 5000;
             PRAGMA cache_size = -256;",
        )?;
        Ok(Store {
            conn: Mutex::new(conn),
            live: Mutex::new(live),
            path,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A value of the `node` table.
    pub fn node_value(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn()
            .query_row("SELECT value FROM node WHERE key = ?1", [key], |r| r.get(0))
            .optional()?)
    }

    /// Sets a value of the `node` table, replacing any.
    pub fn set_node_value(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO node (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = ?2",
            [key, value],
        )?;
        Ok(())
    }

    /// Sets a value of the `node` table unless it is already set; returns
    /// the value that is kept.
    pub fn node_value_or_insert(&self, key: &str, value: &str) -> Result<String, StoreError> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO node (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING",
            [key, value],
        )?;
        Ok(conn.query_row("SELECT value FROM node WHERE key = ?1", [key], |r| r.get(0))?)
    }
}

#[cfg(test)]
mod tests;
