//! An INVITE held in early media: the early dialog our 183 Session
//! Progress (with SDP) sets up, until the INVITE gets its final answer.
//!
//! - When the caller's INVITE has `Require: 100rel` the 183 is sent
//!   reliably (RFC 3262): `Require: 100rel` and `RSeq`, retransmitted from
//!   T1 doubling until a PRACK with the matching `RAck` arrives (answered
//!   200 here), for at most 64·T1 from the first 183; without one the
//!   caller is presumed gone and the INVITE is to be answered 5xx (§3). No
//!   2xx goes out before that PRACK: §3 forbids a 2xx while a reliable
//!   provisional with SDP is unacknowledged. A caller that only
//!   *supports* 100rel gets a plain 183: fewer round trips, and every UAC
//!   must take an unreliable 183.
//! - A plain 183 is sent again after `RESEND_FIRST` (a lost datagram would
//!   leave the caller without our SDP) and then every `RESEND_EVERY` (RFC
//!   3261 §13.3.1.1: keeps proxies from cancelling the INVITE).
//! - Requests in the early dialog (PRACK, BYE, UPDATE, INFO, OPTIONS) are
//!   answered here; a BYE ends the call like a CANCEL; an INFO with DTMF
//!   is a key press for the owner, as on an answered leg; an UPDATE with
//!   an SDP offer gets 488 (the session stays as our 183 set it up).
//! - The owner hears all of it through `news`: the caller left, the
//!   answer it asked for may go out, a key press. Waiting for a PRACK is
//!   part of that, never a blocking call.
//!
//! Why here and not ezk: ezk-sip-core's server INVITE transaction sends a
//! provisional response once and never again, and ezk-sip-ua's 100rel
//! (its `InviteAcceptor`) lives inside ezk's own dialog layer, which
//! pinless does not use (see `sip/mod.rs`). So the retransmission, the
//! PRACK matching and the early dialog's routing are ours.

use super::dialogs::{DialogKey, Inbound, Shared};
use super::info;
use super::leg_state::SipTransport;
use super::respond::reply;
use super::trace::{Tap, Trace};
use crate::codec::DtmfPress;
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

/// When a plain (unreliable) 183 is sent a second time: soon enough that
/// a caller whose first 183 was lost hears the music after a second or
/// two, late enough that a caller who got it is not flooded.
const RESEND_FIRST: Duration = Duration::from_millis(1_500);

/// Then a plain 183 is sent again every minute (RFC 3261 §13.3.1.1), as
/// long as the INVITE is unanswered.
const RESEND_EVERY: Duration = Duration::from_secs(60);

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

/// What an INVITE held in early media tells its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EarlyNews {
    /// The caller gave up before its answer (CANCEL, early BYE, no PRACK).
    Left(CallerLeft),
    /// The 2xx that was asked for may go out now: the reliable 183 was
    /// PRACKed (at once for a plain 183).
    Answerable,
    /// The caller pressed a key, said in a SIP INFO in the early dialog.
    Dtmf(DtmfPress),
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
    /// What `left` said, once it did: the caller stays gone.
    gone: Option<CallerLeft>,
    /// Key presses sent in INFO requests of the early dialog.
    presses: mpsc::UnboundedReceiver<DtmfPress>,
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

/// The early dialog task's ways to its owner.
struct ToOwner {
    pracked: watch::Sender<bool>,
    left: Option<oneshot::Sender<CallerLeft>>,
    presses: mpsc::UnboundedSender<DtmfPress>,
}

impl EarlyDialog {
    /// Registers the early dialog (so that PRACK and the rest reach it)
    /// and starts answering in it; the 183 itself is already sent.
    pub(crate) fn start(setup: EarlySetup) -> EarlyDialog {
        let (tx, rx) = mpsc::unbounded_channel();
        setup.shared.dialogs.insert(setup.key.clone(), tx);
        let (pracked_tx, pracked) = watch::channel(setup.rseq.is_none());
        let (left_tx, left) = oneshot::channel();
        let (presses_tx, presses) = mpsc::unbounded_channel();
        let owner = ToOwner {
            pracked: pracked_tx,
            left: Some(left_tx),
            presses: presses_tx,
        };
        let task = tokio::spawn(run(setup, rx, owner));
        EarlyDialog {
            pracked,
            left,
            gone: None,
            presses,
            task,
        }
    }

    /// The next thing the owner must act on. `answer_wanted`: the owner
    /// is waiting to send the 2xx, so `Answerable` is news to it. A
    /// caller who left wins over everything else, so that no 2xx goes to
    /// a caller already gone.
    pub(crate) async fn news(&mut self, answer_wanted: bool) -> EarlyNews {
        if let Some(why) = self.gone {
            return EarlyNews::Left(why);
        }
        let Self {
            pracked,
            left,
            presses,
            ..
        } = self;
        let left = async {
            match left.await {
                Ok(why) => why,
                Err(_) => std::future::pending().await,
            }
        };
        let answerable = async {
            if !answer_wanted || pracked.wait_for(|done| *done).await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        let press = async {
            match presses.recv().await {
                Some(press) => press,
                None => std::future::pending().await,
            }
        };
        let news = tokio::select! {
            biased;
            why = left => EarlyNews::Left(why),
            press = press => EarlyNews::Dtmf(press),
            _ = answerable => EarlyNews::Answerable,
        };
        if let EarlyNews::Left(why) = news {
            self.gone = Some(why);
        }
        news
    }

    /// Whether the 2xx may go out now, without waiting: `Err` when the
    /// caller left (or never PRACKed) or the reliable 183 is still
    /// unacknowledged (RFC 3262 §3 forbids the 2xx then).
    pub(crate) fn ready(&mut self) -> Result<(), CallerLeft> {
        if let Ok(why) = self.left.try_recv() {
            self.gone = Some(why);
        }
        match self.gone {
            Some(why) => Err(why),
            None if *self.pracked.borrow() => Ok(()),
            None => Err(CallerLeft::NoPrack),
        }
    }

    /// Stops answering in the early dialog: the final answer's owner
    /// takes the dialog over.
    pub(crate) fn finish(self) {
        self.task.abort();
    }
}

impl Drop for EarlyDialog {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn run(mut s: EarlySetup, mut rx: mpsc::UnboundedReceiver<Inbound>, mut owner: ToOwner) {
    let started = tokio::time::Instant::now();
    let mut interval = T1;
    let first = if s.rseq.is_some() { T1 } else { RESEND_FIRST };
    let mut next = Some(started + first);
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
                    Box::pin(answer(&s, *request, &mut owner)).await;
                    if s.rseq.is_some() && *owner.pracked.borrow() {
                        next = None;
                    }
                }
                Some(Inbound::AckTimeout) => {}
                // The final answer's owner replaced us in the registry.
                None => return,
            },
            _ = wake => {
                if s.rseq.is_some() && started.elapsed() >= PRACK_WAIT {
                    next = None;
                    tracing::info!("reliable 183 never PRACKed");
                    owner.gone(CallerLeft::NoPrack);
                    continue;
                }
                let at = std::time::SystemTime::now();
                match s.endpoint.send_outgoing_response(&mut s.response).await {
                    Ok(()) => s.trace.sent(at, &s.response.parts, s.transport),
                    Err(e) => tracing::debug!(error = %e, "183 retransmission not sent"),
                }
                let wait = if s.rseq.is_some() {
                    interval *= 2;
                    interval
                } else {
                    RESEND_EVERY
                };
                next = Some(tokio::time::Instant::now() + wait);
            }
        }
    }
}

impl ToOwner {
    /// The caller left (said once; later news of it is moot).
    fn gone(&mut self, why: CallerLeft) {
        if let Some(tx) = self.left.take() {
            let _ = tx.send(why);
        }
    }
}

/// Answers one request in the early dialog, and tells the owner what it
/// must know of it.
async fn answer(s: &EarlySetup, request: IncomingRequest, owner: &mut ToOwner) {
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
                // The PRACK's 200 first: the INVITE's 200, which the owner
                // sends once it hears of the PRACK, must not overtake it.
                reply(endpoint, request, 200, None, tap).await;
                owner.pracked.send_replace(true);
            } else {
                // RFC 3262 §3: a PRACK that matches no unacknowledged
                // reliable response is answered 481.
                reply(endpoint, request, 481, None, tap).await;
            }
        }
        Method::BYE => {
            reply(endpoint, request, 200, None, tap).await;
            owner.gone(CallerLeft::Bye);
        }
        // As on an answered leg (`dialog.rs`): a key press goes to the
        // owner, other bodies get 200.
        Method::INFO => {
            let kind = request.headers.get_raw(&Name::CONTENT_TYPE).next();
            match info::dtmf(kind.map(|k| &**k), &request.body) {
                Ok(press) => {
                    reply(endpoint, request, 200, None, tap).await;
                    if let Some(press) = press {
                        let _ = owner.presses.send(press);
                    }
                }
                Err(()) => reply(endpoint, request, 400, Some(info::BAD_DTMF), tap).await,
            }
        }
        // An UPDATE with an offer would need an SDP answer (RFC 3311 §5.2);
        // 488 keeps the session our 183 set up, which the 200 OK repeats.
        // One without a body (a keep-alive) is fine.
        Method::UPDATE if !request.body.is_empty() => {
            reply(endpoint, request, 488, None, tap).await;
        }
        Method::UPDATE | Method::OPTIONS => {
            reply(endpoint, request, 200, None, tap).await;
        }
        _ => {
            reply(endpoint, request, 405, None, tap).await;
        }
    }
}
