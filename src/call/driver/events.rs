//! The events webhook: the call's timeline, as it grows, posted signed to
//! the entry's `events_url`, one event after another and in order (a
//! receiver never sees `call.ended` before `call.bridged`). Each event has
//! its own `webhook-id`, kept across its retries.

use crate::call::machine::Event;
use crate::webhook::{self, Delivery, SigningKeys, messages};
use tokio::sync::mpsc;

/// Where a call's events go. Dropping it lets the queue drain, then the
/// delivery task ends.
pub struct EventSink {
    tx: mpsc::UnboundedSender<Vec<u8>>,
    call_id: String,
    call_domain: String,
}

impl EventSink {
    /// Starts the delivery task for one call.
    pub fn start(
        sender: webhook::Sender,
        url: String,
        keys: SigningKeys,
        call_id: String,
        call_domain: String,
    ) -> EventSink {
        let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
        let call = call_id.clone();
        tokio::spawn(async move {
            while let Some(body) = rx.recv().await {
                let id = messages::message_id();
                let result = sender.deliver(&url, &keys, &id, &body, |_| {}).await;
                if let Delivery::Failed { attempts, last } = result {
                    tracing::warn!(%call, attempts, ?last, "call event not delivered");
                }
            }
        });
        EventSink {
            tx,
            call_id,
            call_domain,
        }
    }

    /// Queues the published ones among `events`.
    pub fn publish(&self, events: &[Event]) {
        for e in events.iter().filter(|e| e.event.published()) {
            let body = messages::call_event(
                e.event.name(),
                e.at,
                &self.call_id,
                &self.call_domain,
                &e.detail,
            );
            let _ = self.tx.send(body);
        }
    }
}
