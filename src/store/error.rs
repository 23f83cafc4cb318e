//! Why the store could not be used: one error type for the module, a leaf
//! that the files of `store` share.

use std::path::PathBuf;

/// Why the store could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The state directory could not be created.
    #[error("database {path}: cannot open: {source}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file could not be opened or created.
    #[error("database {path}: cannot open: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    /// The file is not a usable SQLite database. It is left as it is.
    #[error(
        "database {path} is corrupt or not a pinless database ({source}); it was left untouched: restore a backup or move it away"
    )]
    Corrupt {
        path: PathBuf,
        #[source]
        source: Corruption,
    },
    /// Written by a newer pinless; this one does not know its schema.
    #[error(
        "database {path} has schema version {found}, newer than this pinless understands ({supported}); run a newer pinless or restore a backup"
    )]
    NewerSchema {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    /// A query failed.
    #[error("database: {0}")]
    Sql(#[from] rusqlite::Error),
    /// A value could not be written as JSON, or stored JSON not read back.
    #[error("database: {what}: {source}")]
    Json {
        /// What was being written or read, e.g. `stored record unreadable`.
        what: String,
        #[source]
        source: serde_json::Error,
    },
    /// A call record written by a newer pinless, in a form this one does
    /// not know.
    #[error(
        "database: call record {call_id} has form version {found}, newer than this pinless understands ({supported})"
    )]
    NewerRecord {
        call_id: String,
        found: u64,
        supported: u64,
    },
}

/// How a database file showed itself to be unusable.
#[derive(Debug, thiserror::Error)]
pub enum Corruption {
    /// SQLite could not read it (say, not a database at all).
    #[error(transparent)]
    Unreadable(#[from] rusqlite::Error),
    /// SQLite's integrity check reported damage, in these words.
    #[error("{0}")]
    FailedCheck(String),
}
