//! What the rest of the gateway shares with call drivers: the SIP stack,
//! media, webhook senders, the store, the registry and the clock.

use crate::call::machine::view::CallView;
use crate::call::registry::Registry;
use crate::call::registry::feed::EventFeed;
use crate::call::registry::node::NodeCalls;
use crate::clock::Clock;
use crate::media::MediaEngine;
use crate::sip::Stack;
use crate::store::{Store, StoreError};
use crate::webhook;
use std::sync::Arc;

/// What the rest of the gateway shares with call drivers.
pub struct Ctx {
    pub stack: Stack,
    /// Where finished calls are recorded.
    pub store: Arc<Store>,
    pub media: Arc<MediaEngine>,
    /// Incoming-call webhooks.
    pub webhooks: webhook::Sender,
    /// Call events (shorter retries).
    pub events: webhook::Sender,
    pub registry: Registry,
    pub call_domain: String,
    /// The monotonic clock every call's deadlines are on.
    pub clock: Clock,
    /// Whether the node is stopping; how calls ended.
    pub node: Arc<NodeCalls>,
    /// Every call's published events, for `GET /v1/events`.
    pub feed: Arc<EventFeed>,
    /// TLS for voice bots' `wss://` streams: the web PKI roots and
    /// `sip.tls_ca`, the trust of TLS room legs.
    pub stream_tls: tokio_rustls::TlsConnector,
    /// Voice bots' stream tasks, waited for by a stopping node (their
    /// `stop`), and how long a bot may be silent (`rtp_timeout_secs`).
    pub streams: crate::stream::Upkeep,
    /// Which addresses voice bots' `streamUrl`s may reach.
    pub urls: crate::confine::UrlPolicy,
    /// Where call recordings' files go (`[recording] dir`).
    pub recordings_dir: std::path::PathBuf,
}

/// Why a store write of a call's did not happen.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// SQLite refused it.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The blocking task that ran it did not finish (a panic, or the
    /// runtime stopping).
    #[error("store task: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl Ctx {
    /// Runs one store write off the async threads (SQLite blocks).
    pub async fn store_write(
        &self,
        write: impl FnOnce(&Store) -> Result<(), StoreError> + Send + 'static,
    ) -> Result<(), WriteError> {
        let store = self.store.clone();
        Ok(tokio::task::spawn_blocking(move || write(&store)).await??)
    }

    /// Removes an ended call's saved state.
    pub async fn forget(&self, call_id: &str) {
        let id = call_id.to_string();
        if let Err(error) = self.store_write(move |store| store.remove_live(&id)).await {
            tracing::warn!(call = %call_id, %error, "saved state of an ended call not removed");
        }
    }

    /// Writes the call's record (off the async threads: SQLite blocks).
    pub async fn record(&self, view: CallView) {
        let id = view.call_id.clone();
        let record = view.record();
        if let Err(error) = self
            .store_write(move |store| store.record_call(&record))
            .await
        {
            tracing::warn!(call = %id, %error, "call record not written");
        }
    }
}
