//! An INVITE held in early media: the early dialog our 183 Session
//! Progress (with SDP) sets up, until the INVITE gets its final answer.
//!
//! - When the caller's INVITE has `Require: 100rel` the 183 is sent
//!   reliably (RFC 3262): `Require: 100rel` and `RSeq`, retransmitted from
//!   T1 doubling until a PRACK with the matching `RAck` arrives (answered
//!   200 here), for at most 64·T1; without one the caller is presumed gone
//!   and the INVITE is to be answered 5xx (§3). A caller that only
//!   *supports* 100rel gets a plain 183: fewer round trips, and every UAC
//!   must take an unreliable 183.
//! - Requests in the early dialog (PRACK, BYE, UPDATE, INFO, OPTIONS) are
//!   answered here; a BYE ends the call like a CANCEL.
//!
//! Why here and not ezk: ezk-sip-core's server INVITE transaction sends a
//! provisional response once and never again, and ezk-sip-ua's 100rel
//! (its `InviteAcceptor`) lives inside ezk's own dialog layer, which
//! pinless does not use (see `sip/mod.rs`). So the retransmission, the
//! PRACK matching and the early dialog's routing are ours.

use super::dialogs::{DialogKey, Inbound, Shared};
use super::leg_state::SipTransport;
use super::respond::reply;
use super::trace::{Tap, Trace};
use ezk_sip_core::transaction::consts::T1;
use ezk_sip_core::transport::OutgoingResponse;
use ezk_sip_core::{Endpoint, IncomingRequest};
use ezk_sip_types::header::typed::RAck;
use ezk_sip_types::{Method, Name};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};

/// How long a reliable 183 is retransmitted without a PRACK (RFC 3262 §3).
const PRACK_WAIT: Duration = Duration::from_millis(500 * 64);

/// Why the caller of an INVITE in early media is gone before its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallerLeft {
    /// A CANCEL came: the INVITE gets 487.
    Cancelled,
    /// A BYE came in the early dialog: the INVITE gets 487.
    Bye,
    /// Our reliable 183 was never PRACKed: the INVITE gets 5xx.
    NoPrack,
}

/// The caller's INVITE asks for reliable provisional responses
/// (`Require: 100rel`).
pub(crate) fn requires_100rel(request: &IncomingRequest) -> bool {
    request
        .headers
        .get_raw(&Name::REQUIRE)
        .flat_map(|v| v.split(','))
        .any(|ext| ext.trim().eq_ignore_ascii_case("100rel"))
}

/// A random RSeq to start from (RFC 3262 §3: 1 to 2**31 - 1).
pub(crate) fn first_rseq() -> u32 {
    rand::random::<u32>() % 0x7fff_ffff + 1
}

/// The early dialog of an INVITE we answered 183: owned by the INVITE
/// until its final answer.
pub(crate) struct EarlyDialog {
    /// Became true when the reliable 183 was PRACKed (always true for an
    /// unreliable one).
    pracked: watch::Receiver<bool>,
    /// The caller left through the early dialog (BYE) or never PRACKed.
    left: oneshot::Receiver<CallerLeft>,
    task: tokio::task::JoinHandle<()>,
}

/// What the early dialog's task needs.
pub(crate) struct EarlySetup {
    pub endpoint: Endpoint,
    pub shared: Arc<Shared>,
    /// The call's trace, and what the INVITE came on.
    pub trace: Trace,
    pub transport: SipTransport,
    pub key: DialogKey,
    /// The 183 as sent; `Some(rseq)` when it was sent reliably.
    pub response: OutgoingResponse,
    pub rseq: Option<u32>,
    /// CSeq of the INVITE, which a PRACK's RAck names.
    pub invite_cseq: u32,
}

impl EarlyDialog {
    /// Registers the early dialog (so that PRACK and the rest reach it)
    /// and starts answering in it; the 183 itself is already sent.
    pub(crate) fn start(setup: EarlySetup) -> EarlyDialog {
        let (tx, rx) = mpsc::unbounded_channel();
        setup.shared.dialogs.insert(setup.key.clone(), tx);
        let (pracked_tx, pracked) = watch::channel(setup.rseq.is_none());
        let (left_tx, left) = oneshot::channel();
        let task = tokio::spawn(run(setup, rx, pracked_tx, left_tx));
        EarlyDialog {
            pracked,
            left,
            task,
        }
    }

    /// Resolves when the caller leaves through the early dialog.
    pub(crate) async fn left(&mut self) -> CallerLeft {
        match (&mut self.left).await {
            Ok(why) => why,
            Err(_) => std::future::pending().await,
        }
    }

    /// Before the final answer: waits for the PRACK of a reliable 183
    /// (RFC 3262 §3 holds the final response until then; a 2xx may
    /// follow a 183 with SDP anyway, so after `PRACK_WAIT` it goes out
    /// regardless), then stops answering in the early dialog: the final
    /// answer's owner takes the dialog over.
    pub(crate) async fn finish(mut self) {
        let wait = self.pracked.wait_for(|done| *done);
        let _ = tokio::time::timeout(PRACK_WAIT, wait).await;
        self.task.abort();
    }
}

impl Drop for EarlyDialog {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn run(
    mut s: EarlySetup,
    mut rx: mpsc::UnboundedReceiver<Inbound>,
    pracked: watch::Sender<bool>,
    left: oneshot::Sender<CallerLeft>,
) {
    let mut left = Some(left);
    let started = tokio::time::Instant::now();
    let mut interval = T1;
    let mut next = s.rseq.map(|_| started + interval);
    loop {
        let wake = async {
            match next {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            got = rx.recv() => match got {
                Some(Inbound::Request(request)) => {
                    if let Some(why) = Box::pin(answer(&s, *request, &pracked)).await
                        && let Some(tx) = left.take()
                    {
                        let _ = tx.send(why);
                    }
                    if *pracked.borrow() {
                        next = None;
                    }
                }
                Some(Inbound::AckTimeout) => {}
                // The final answer's owner replaced us in the registry.
                None => return,
            },
            _ = wake => {
                if started.elapsed() >= PRACK_WAIT {
                    next = None;
                    tracing::info!("reliable 183 never PRACKed");
                    if let Some(tx) = left.take() {
                        let _ = tx.send(CallerLeft::NoPrack);
                    }
                    continue;
                }
                let at = std::time::SystemTime::now();
                match s.endpoint.send_outgoing_response(&mut s.response).await {
                    Ok(()) => s.trace.sent(at, &s.response.parts, s.transport),
                    Err(e) => tracing::debug!(error = %e, "183 retransmission not sent"),
                }
                interval *= 2;
                next = Some(tokio::time::Instant::now() + interval);
            }
        }
    }
}

/// Answers one request in the early dialog; `Some` when it ends the call.
async fn answer(
    s: &EarlySetup,
    request: IncomingRequest,
    pracked: &watch::Sender<bool>,
) -> Option<CallerLeft> {
    let endpoint = &s.endpoint;
    let tap = Tap {
        trace: &s.trace,
        transport: s.shared.transport_kind(&request.tp_info.transport),
    };
    tap.received(&request.tp_info);
    let tap = Some(tap);
    match request.line.method {
        Method::PRACK => {
            let rack = request.headers.get_named::<RAck>().ok();
            let ours = rack.is_some_and(|r| {
                Some(r.rack) == s.rseq && r.cseq == s.invite_cseq && r.method == Method::INVITE
            });
            if ours {
                pracked.send_replace(true);
                reply(endpoint, request, 200, None, tap).await;
            } else {
                // RFC 3262 §3: a PRACK that matches no unacknowledged
                // reliable response is answered 481.
                reply(endpoint, request, 481, None, tap).await;
            }
            None
        }
        Method::BYE => {
            reply(endpoint, request, 200, None, tap).await;
            Some(CallerLeft::Bye)
        }
        Method::UPDATE | Method::INFO | Method::OPTIONS => {
            reply(endpoint, request, 200, None, tap).await;
            None
        }
        _ => {
            reply(endpoint, request, 405, None, tap).await;
            None
        }
    }
}
