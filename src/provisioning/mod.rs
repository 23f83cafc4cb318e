//! Provisioned dial-in entries beyond the HTTP layer: what creating,
//! replacing, deleting and rotating an entry does (`service`, with its
//! `error`), how an entry is stored and shared (`record`: SQLite's
//! `StoredEntry` and Redis's `EntryRecord`, translated both ways) and how
//! a cluster's nodes keep the same entries (`sync`: Redis → this node's
//! database → its entry book), and what an entry written by an API client
//! may point at (`confine`: its URLs and files). The provisioning API (`api::provision`)
//! reads requests into `service` calls and renders their results.

mod confine;
pub mod error;
pub mod record;
pub mod service;
pub mod sync;

pub use error::ProvisionError;
pub use service::{Created, Found, Provisioning, Rotated, Verification};

/// Serialises entry writes on this node (the API's and the sync loop's),
/// so that two writers cannot both pass the conflict check for the same
/// number.
pub static WRITES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
