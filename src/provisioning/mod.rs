//! Provisioned dial-in entries beyond the HTTP layer: how an entry is
//! stored and shared (`record`: SQLite's `StoredEntry` and Redis's
//! `EntryRecord`, translated both ways) and how a cluster's nodes keep the
//! same entries (`sync`: Redis → this node's database → its entry book).
//! The provisioning API (`api::provision`) writes through these.

pub mod record;
pub mod sync;

/// Serialises entry writes on this node (the API's and the sync loop's),
/// so that two writers cannot both pass the conflict check for the same
/// number.
pub static WRITES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
