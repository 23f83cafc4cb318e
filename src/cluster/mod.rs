//! Nodes in a cluster, through Redis (`[cluster] redis_url`).
//!
//! - `keys`: what lives in Redis, without I/O — key names, the JSON of a
//!   node's record and of a provisioned entry, TTLs and timeouts.
//! - `health`: whether Redis answers (each change logged once) and the
//!   counters `/metrics` shows.
//! - `error`: `ClusterError`, whose texts name what failed.
//! - `client`: `Cluster`, the node's handle: its Redis connection, every
//!   command under a short timeout; heartbeat writes, owner and node
//!   look-ups, the provisioned entries.
//! - `heartbeat`: the task that keeps the node's record and its calls'
//!   owner keys alive (`Ownership` is its sans-IO bookkeeping).
//! - `notices`: the pub/sub subscription announcing entry changes.
//! - `forward`: an API request passed to the node that owns the call.
//!
//! The cluster sits beside `sip`, `media`, `webhook` and `store`: it knows
//! calls only by their ids and entries only as records, so `api` and
//! `gateway` do the translating. Redis is never in a call's path: with
//! Redis down, calls go on and new ones are answered with the entries the
//! node holds; only forwards and provisioning writes wait for it.

mod client;
mod error;
mod forward;
pub mod health;
pub mod heartbeat;
pub mod keys;
pub mod notices;

pub use client::{Cluster, EntriesRead};
pub use error::ClusterError;
pub use forward::{Answer, Forward};
pub use health::ClusterStats;
pub use keys::{EntryRecord, FORWARDED_BY, NodeRecord, PreviousKey};
