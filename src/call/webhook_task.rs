//! The incoming-call webhook of one call, posted with retries in a task
//! of its own; each attempt and a final give-up are reported to the
//! call's driver, which writes them to the timeline.

use super::entries::Entry;
use super::handle::DriverMsg;
use super::machine::{Input, Parties};
use crate::webhook::{self, AttemptOutcome, Delivery, messages};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Posts the webhook for `p`, reporting to `driver`.
pub(super) async fn send(
    sender: webhook::Sender,
    entry: Arc<Entry>,
    p: Parties,
    driver: mpsc::UnboundedSender<DriverMsg>,
) {
    let body = messages::incoming_call(
        &p.to,
        &p.from,
        &p.call_id,
        &p.call_domain,
        &p.caller_headers,
    );
    let id = messages::message_id();
    let result = sender
        .deliver(&entry.webhook_url, &entry.keys, &id, &body, |a| {
            let (status, error) = match &a.outcome {
                AttemptOutcome::Status(s) => (Some(*s), None),
                AttemptOutcome::Error(e) => (None, Some(e.to_string())),
            };
            let report = Input::WebhookAttempt {
                number: a.number,
                status,
                error,
            };
            let _ = driver.send(DriverMsg::Report(report));
        })
        .await;
    if let Delivery::Failed { attempts, last } = result {
        tracing::warn!(call = %p.call_id, attempts, ?last, "webhook not delivered; caller stays on hold");
        let _ = driver.send(DriverMsg::Report(Input::WebhookGaveUp));
    }
}
