//! The incoming-call webhook of one call, posted with retries in a task
//! of its own; each attempt, a final give-up, and a route named in the
//! app's answer are reported to the call's driver, which writes them to
//! the timeline (and starts the transfer the answer asks for).

use crate::call::door::entries::Entry;
use crate::call::machine::route::{self, WebhookAnswer};
use crate::call::machine::{Input, Parties};
use crate::call::registry::handle::{DriverMsg, DriverTx};
use crate::webhook::{self, AttemptOutcome, Delivery, messages};
use std::sync::Arc;

/// Posts the webhook for `p`, reporting to `driver`.
pub(in crate::call) async fn send(
    sender: webhook::Sender,
    entry: Arc<Entry>,
    p: Parties,
    driver: DriverTx,
) {
    let body = messages::incoming_call(
        &p.to,
        &p.from,
        &p.call_id,
        &p.call_domain,
        &p.caller_headers,
        p.registration.as_deref(),
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
            let _ = driver.send(Box::new(DriverMsg::Report(report)));
        })
        .await;
    let report = match result {
        Delivery::Failed { attempts, last } => {
            tracing::warn!(call = %p.call_id, attempts, ?last, "webhook not delivered; caller stays on hold");
            Input::WebhookGaveUp
        }
        // The app may route the call in its answer (as TwiML does).
        Delivery::Delivered {
            answer: Some(body), ..
        } => match route::webhook_answer(&body) {
            WebhookAnswer::Hold => return,
            WebhookAnswer::Route(request) => Input::WebhookRouted(Ok(request)),
            WebhookAnswer::Unusable(e) => {
                tracing::info!(call = %p.call_id, error = %e, "webhook answer names an unusable route; caller stays on hold");
                Input::WebhookRouted(Err(e))
            }
        },
        Delivery::Delivered { answer: None, .. } => return,
    };
    let _ = driver.send(Box::new(DriverMsg::Report(report)));
}
