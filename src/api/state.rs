//! What every API handler shares: the `Api` state.
//! A leaf of `api`: the handlers import it, and `mod.rs` routes to them.

use crate::call::door::admission::AdmissionStats;
use crate::call::{EventFeed, NodeCalls, Registry};
use crate::cluster::Cluster;
use crate::media::MediaStats;
use crate::provisioning::Provisioning;
use std::sync::Arc;

/// What the API handlers share.
pub struct Api {
    pub registry: Registry,
    pub call_domain: String,
    pub tokens: Vec<String>,
    /// Hold music and relay, per media shard and for the node.
    pub media: MediaStats,
    pub admission: Arc<AdmissionStats>,
    pub provisioning: Provisioning,
    /// Whether the node is stopping (`/readyz`), and how calls ended.
    pub node: Arc<NodeCalls>,
    /// The cluster this node is part of (`[cluster] redis_url`), if any.
    pub cluster: Option<Arc<Cluster>>,
    /// The node's call events, for `GET /v1/events`.
    pub feed: Arc<EventFeed>,
    /// Decoded audio of the play API, by file or URL.
    pub audio: super::audio::AudioCache,
    /// The node's bindings at registrars.
    pub registrations: Arc<crate::register::Registrations>,
    /// Which addresses URLs of API requests may reach (`streamUrl`).
    pub urls: crate::confine::UrlPolicy,
    /// What the HEP sender sent and dropped (`[hep]` on).
    pub hep: Option<Arc<crate::hep::HepStats>>,
}
