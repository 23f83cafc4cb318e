//! Entry-change notices: a subscription to the entries' channel that
//! signals `changed` on every message, reconnecting after an outage. The
//! notice only speeds things up — nodes also poll the version — so a lost
//! message costs at most one poll period.

use super::client::Cluster;
use super::keys;
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, watch};

/// Pause before subscribing again after the subscription broke.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Runs until `stop` turns true.
pub async fn listen(cluster: Arc<Cluster>, changed: Arc<Notify>, mut stop: watch::Receiver<bool>) {
    loop {
        let subscribed = async {
            let mut pubsub =
                tokio::time::timeout(keys::REDIS_TIMEOUT, cluster.client().get_async_pubsub())
                    .await
                    .ok()?
                    .ok()?;
            tokio::time::timeout(
                keys::REDIS_TIMEOUT,
                pubsub.subscribe(keys::entries_channel()),
            )
            .await
            .ok()?
            .ok()?;
            Some(pubsub)
        };
        let pubsub = tokio::select! {
            p = subscribed => p,
            _ = stop.wait_for(|s| *s) => return,
        };
        if let Some(mut pubsub) = pubsub {
            // A (re)subscription may have missed changes: check at once.
            changed.notify_one();
            let mut messages = pubsub.on_message();
            loop {
                tokio::select! {
                    m = messages.next() => match m {
                        Some(_) => changed.notify_one(),
                        None => break,
                    },
                    _ = stop.wait_for(|s| *s) => return,
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(RETRY_AFTER) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}
