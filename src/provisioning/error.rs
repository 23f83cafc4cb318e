//! Why a provisioning call did not change anything.

use crate::call::EntryError;
use crate::cluster::ClusterError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// Another entry already has this number or SIP URI (its words).
    #[error("{0}")]
    Clash(String),
    /// The entry cannot be put in force (its announcement, its secrets).
    #[error(transparent)]
    BadEntry(EntryError),
    /// A URL or a file of the entry reaches where an API client's may
    /// not (see `confine`); `field` is the entry's key.
    #[error("{field}: {reason}")]
    Confined { field: &'static str, reason: String },
    /// No entry has this id.
    #[error("unknown entry")]
    Unknown,
    /// The entry comes from the config file: read-only here.
    #[error("entry of the config file")]
    ConfigFileEntry,
    /// The database refused.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The blocking task running the store call panicked or was cancelled.
    #[error("store task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// Redis could not take the entry (a cluster): nothing changed.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
}
