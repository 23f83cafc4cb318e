//! An established leg (a confirmed dialog), whichever side began it: it
//! answers what the peer sends inside the dialog (what it sends itself,
//! BYE and the rest, is `requests`).

use super::dialogs::{Answer, DialogKey, Inbound, Shared};
use super::info;
use super::leg_state::SipTransport;
use super::leg_state::{LegState, SessionTimer};
use super::respond::{reply, reply_sdp, reply_with};
use super::target::Target;
use super::timer;
use super::trace::{Tap, Trace, print};
use crate::codec::DtmfPress;
use bytes::Bytes;
use ezk_sip_core::Endpoint;
use ezk_sip_core::IncomingRequest;
use ezk_sip_core::transaction::Accepted;
use ezk_sip_core::transaction::consts::{T1, T2};
use ezk_sip_core::transport::OutgoingParts;
use ezk_sip_types::print::AppendCtx;
use ezk_sip_types::uri::SipUri;
use ezk_sip_types::{Method, Name, StatusCode};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

/// What happened on a leg that its owner must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LegEvent {
    /// The peer hung up (its BYE was answered 200).
    Bye,
    /// Our 2xx was never acknowledged: the dialog is dead.
    AckTimeout,
    /// A NOTIFY about our REFER: the status line of the sipfrag (RFC 3515),
    /// i.e. how the peer's call to the target is going.
    ReferProgress(u16),
    /// The dialog's RFC 4028 session timer ran out without a refresh: the
    /// peer is presumed gone. The owner hangs up (BYE) and ends the call.
    SessionExpired,
    /// A re-INVITE changed whether the peer sends audio (hold with
    /// `a=inactive`/`recvonly`, or back): `true` when it sends now.
    Sends(bool),
    /// The peer pressed a key, said in a SIP INFO (`application/dtmf-relay`
    /// or `application/dtmf`; answered 200). RFC 4733 presses come
    /// through the media instead.
    Dtmf(DtmfPress),
}

pub(crate) struct LegSetup {
    pub endpoint: Endpoint,
    pub shared: Arc<Shared>,
    pub key: DialogKey,
    /// Our side, printed (`<sip:…>;tag=…`): From of our requests.
    pub local_from: String,
    /// Their side, printed with tag: To of our requests.
    pub remote_to: String,
    pub remote_target: SipUri,
    pub route_set: Vec<String>,
    /// Last CSeq we used.
    pub cseq: u32,
    /// Last CSeq the peer used (its INVITE's for a leg it began; 0 when
    /// unknown): a later request with one not above it is out of order.
    pub remote_cseq: u32,
    pub target: Target,
    pub contact: String,
    /// What we answer a re-INVITE with: media stays as it is.
    pub local_sdp: String,
    /// RFC 4028 session timer, when negotiated.
    pub timer: Option<SessionTimer>,
    pub rx: mpsc::UnboundedReceiver<Inbound>,
    /// The call's SIP ladder, as this leg (caller or room) records into it.
    pub trace: Trace,
}

/// A confirmed dialog with a peer. What it sends is in `requests`.
pub struct Leg {
    pub(super) s: LegSetup,
    ack_tx: Option<oneshot::Sender<()>>,
    /// False from our 2xx until its ACK: a REFER waits for it (`requests`).
    acked: watch::Sender<bool>,
    pub(super) ended: bool,
    /// Session timer: when the session counts as expired, when we send
    /// our next refresh, and the refresh under way.
    expires_at: Option<Instant>,
    refresh_at: Option<Instant>,
    refreshing: Option<Answer>,
    /// Whether the peer's last offer says it sends audio; a re-INVITE
    /// that changes it is reported (`LegEvent::Sends`), a refresh is not.
    peer_sends: bool,
}

impl Leg {
    pub(crate) fn new(setup: LegSetup) -> Self {
        let mut leg = Self {
            s: setup,
            ack_tx: None,
            acked: watch::Sender::new(true),
            ended: false,
            expires_at: None,
            refresh_at: None,
            refreshing: None,
            peer_sends: true,
        };
        leg.arm_timer();
        leg
    }

    /// The session was refreshed (or set up) now: the next deadlines.
    fn arm_timer(&mut self) {
        let now = Instant::now();
        let timer = self.s.timer;
        self.expires_at = timer.map(|t| now + timer::expires_in(&t));
        self.refresh_at = timer.and_then(|t| timer::refresh_in(&t)).map(|d| now + d);
    }

    /// A re-INVITE or UPDATE of the peer's, answered 2xx, refreshes the
    /// session and may change the timer (or turn it off: RFC 4028 §9).
    fn peer_refreshed(&mut self, request: &IncomingRequest) {
        let min_se = self.s.shared.min_se.load(Ordering::Relaxed);
        self.s.timer = timer::negotiate(request, min_se);
        self.arm_timer();
    }

    /// The call's SIP ladder this leg records into.
    pub fn trace(&self) -> Trace {
        self.s.trace.clone()
    }

    /// Records into `trace` from now on: a leg rebuilt after a restart
    /// starts with a trace of its own, which its call then links.
    pub fn set_trace(&mut self, trace: Trace) {
        self.s.trace = trace;
    }

    /// Call-ID of this leg's dialog.
    pub fn call_id(&self) -> &str {
        &self.s.key.call_id
    }

    /// The dialog as data, to save and give to `Stack::resume_leg` in a
    /// later process (issue 11). Cheap; call it at each state change.
    pub fn state(&self) -> LegState {
        let s = &self.s;
        LegState {
            call_id: s.key.call_id.clone(),
            local_tag: s.key.local_tag.clone(),
            local_from: s.local_from.clone(),
            remote_to: s.remote_to.clone(),
            remote_target: s.remote_target.default_print_ctx().to_string(),
            route_set: s.route_set.clone(),
            cseq: s.cseq,
            remote_cseq: s.remote_cseq,
            transport: s.target.kind,
            peer: s.target.peer(),
            contact: s.contact.clone(),
            local_sdp: s.local_sdp.clone(),
            session_timer: s.timer,
        }
    }

    /// A receiver that fires when the ACK of our 2xx arrives.
    pub(crate) fn expect_ack(&mut self) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        self.ack_tx = Some(tx);
        self.acked.send_replace(false);
        rx
    }

    /// Resolves once the ACK of our last 2xx came (at once when none is
    /// awaited); never when the leg is gone first.
    pub(super) fn acked(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut acked = self.acked.subscribe();
        async move {
            if acked.wait_for(|a| *a).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// Waits for the next event the owner must act on. Everything else in
    /// the dialog (ACK, re-INVITE refreshes, INFO, OPTIONS…) is answered
    /// here, and so are session refreshes (RFC 4028) when we are the
    /// refresher. After `Bye`, `AckTimeout` or `SessionExpired` it never
    /// resolves again.
    pub async fn next_event(&mut self) -> LegEvent {
        loop {
            if self.ended {
                std::future::pending::<()>().await;
            }
            let wake = match (self.expires_at, self.refresh_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let got = tokio::select! {
                got = self.s.rx.recv() => got,
                _ = sleep_until(wake) => {
                    let now = Instant::now();
                    if self.expires_at.is_some_and(|at| at <= now) {
                        // Not `ended`: the owner's hang-up must still send
                        // a BYE, in case the peer is only silent.
                        self.expires_at = None;
                        self.refresh_at = None;
                        return LegEvent::SessionExpired;
                    }
                    if self.refresh_at.is_some_and(|at| at <= now) {
                        self.refresh_at = None;
                        self.refreshing = Some(self.reinvite());
                    }
                    continue;
                }
                code = answer_of(&mut self.refreshing) => {
                    self.refreshing = None;
                    if code.is_some_and(|c| (200..300).contains(&c)) {
                        self.arm_timer();
                    } else {
                        // The session expires at `expires_at` unless the
                        // peer refreshes it meanwhile.
                        tracing::debug!(?code, "our session refresh failed");
                    }
                    continue;
                }
            };
            let Some(inbound) = got else {
                std::future::pending::<()>().await;
                continue;
            };
            let request = match inbound {
                Inbound::AckTimeout => {
                    self.ended = true;
                    return LegEvent::AckTimeout;
                }
                Inbound::Request(r) => r,
            };
            // Answering goes through boxed futures: the answering states
            // (several KiB) then live on the heap only while a request is
            // being answered, not in every idle call's task, which waits
            // here for its whole life (the per-call memory figure).
            let transport = self.s.shared.transport_kind(&request.tp_info.transport);
            self.s.trace.received(&request.tp_info, transport);
            let cseq = request.base_headers.cseq.cseq;
            if request.line.method == Method::ACK {
                // An ACK carries its INVITE's CSeq; any other is not ours.
                if self.s.remote_cseq == 0 || cseq == self.s.remote_cseq {
                    if let Some(tx) = self.ack_tx.take() {
                        let _ = tx.send(());
                    }
                    self.acked.send_replace(true);
                } else {
                    tracing::debug!(cseq, "ACK with another CSeq ignored");
                }
                continue;
            }
            // Over TCP/TLS after a restart, the peer's new connection is
            // the way back to it.
            self.s
                .target
                .adopt(&request.tp_info.transport, request.tp_info.source);
            let endpoint = &self.s.endpoint;
            let tap = Some(Tap {
                trace: &self.s.trace,
                transport,
            });
            // RFC 3261 §12.2.2: a request whose CSeq is not above the last
            // one is out of order: 500, and the dialog goes on.
            if self.s.remote_cseq != 0 && cseq <= self.s.remote_cseq {
                Box::pin(reply(
                    endpoint,
                    *request,
                    500,
                    Some("CSeq Out Of Order"),
                    tap,
                ))
                .await;
                continue;
            }
            self.s.remote_cseq = cseq;
            match request.line.method {
                Method::BYE => {
                    self.ended = true;
                    Box::pin(reply(endpoint, *request, 200, None, tap)).await;
                    return LegEvent::Bye;
                }
                Method::INVITE => {
                    // An offer that says whether the peer still sends (a
                    // hold re-INVITE does not): the owner's media must know.
                    let sends = super::sdp::parse(&request.body).ok().map(|o| o.sends);
                    Box::pin(self.answer_reinvite(*request, transport)).await;
                    if let Some(sends) = sends.filter(|s| *s != self.peer_sends) {
                        self.peer_sends = sends;
                        return LegEvent::Sends(sends);
                    }
                }
                Method::NOTIFY => {
                    let progress = refer_progress(&request);
                    Box::pin(reply(endpoint, *request, 200, None, tap)).await;
                    if let Some(code) = progress {
                        return LegEvent::ReferProgress(code);
                    }
                }
                Method::UPDATE => {
                    self.peer_refreshed(&request);
                    let headers = self.s.timer.as_ref().map(timer::answer_headers);
                    let headers = headers.as_ref().map_or(&[][..], |h| &h[..]);
                    let tap = Some(Tap {
                        trace: &self.s.trace,
                        transport,
                    });
                    // An UPDATE with an offer (RFC 3311) gets our SDP as
                    // its answer, the one the call already has, as a
                    // re-INVITE does; media keeps flowing where it flows.
                    if super::sdp::parse(&request.body).is_ok() {
                        let mut with_contact = headers.to_vec();
                        with_contact.push((Name::CONTACT, self.s.contact.to_string()));
                        let sdp = &self.s.local_sdp;
                        Box::pin(reply_sdp(
                            &self.s.endpoint,
                            *request,
                            &with_contact,
                            sdp,
                            tap,
                        ))
                        .await
                    } else {
                        Box::pin(reply_with(&self.s.endpoint, *request, 200, headers, tap)).await
                    }
                }
                // Other INFO bodies get 200 as before: legacy INFO (RFC 2976)
                // has no way to say "not understood" that senders act on,
                // and a 415 would be read by some as a failed dialog.
                Method::INFO => {
                    let kind = request.headers.get_raw(&Name::CONTENT_TYPE).next();
                    match info::dtmf(kind.map(|k| &**k), &request.body) {
                        Ok(press) => {
                            Box::pin(reply(endpoint, *request, 200, None, tap)).await;
                            if let Some(press) = press {
                                return LegEvent::Dtmf(press);
                            }
                        }
                        Err(()) => {
                            Box::pin(reply(endpoint, *request, 400, Some(info::BAD_DTMF), tap))
                                .await
                        }
                    }
                }
                Method::OPTIONS => Box::pin(reply(endpoint, *request, 200, None, tap)).await,
                // Our reliable 183 was acknowledged before the call was
                // answered: a PRACK now matches nothing (RFC 3262 §3).
                Method::PRACK => Box::pin(reply(endpoint, *request, 481, None, tap)).await,
                _ => Box::pin(reply(endpoint, *request, 405, None, tap)).await,
            }
        }
    }

    /// A re-INVITE (session refresh, hold/unhold): answer with the SDP we
    /// already gave; media keeps flowing where it flows.
    async fn answer_reinvite(&mut self, mut request: IncomingRequest, transport: SipTransport) {
        self.peer_refreshed(&request);
        let endpoint = self.s.endpoint.clone();
        let mut response = endpoint.create_response(&request, StatusCode::OK, None);
        for (name, value) in self
            .s
            .timer
            .as_ref()
            .map(timer::answer_headers)
            .into_iter()
            .flatten()
        {
            response.msg.headers.insert(name, value);
        }
        response
            .msg
            .headers
            .insert(Name::CONTACT, self.s.contact.clone());
        response
            .msg
            .headers
            .insert(Name::CONTENT_TYPE, "application/sdp");
        response.msg.body = Bytes::from(self.s.local_sdp.clone().into_bytes());
        let reliable = !request.tp_info.transport.is_udp();
        let tsx = endpoint.create_server_inv_tsx(&mut request);
        print(&mut response);
        let at = std::time::SystemTime::now();
        let parts = response.parts.clone();
        match tsx.respond_success(response).await {
            Ok(accepted) => {
                self.s.trace.sent(at, &parts, transport);
                let ack = self.expect_ack();
                if let Some(tx) = self.s.shared.dialogs.get(&self.s.key).map(|t| t.clone()) {
                    let retransmits = (self.s.trace.clone(), transport, parts);
                    spawn_2xx_retransmit(accepted, reliable, ack, tx, retransmits);
                }
            }
            Err(e) => tracing::debug!(error = %e, "re-INVITE answer not sent"),
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The answer to our refresh, when one is under way.
async fn answer_of(answer: &mut Option<Answer>) -> Option<u16> {
    match answer {
        Some(rx) => rx.await.unwrap_or(None),
        None => std::future::pending().await,
    }
}

impl Drop for Leg {
    fn drop(&mut self) {
        self.s.shared.dialogs.remove(&self.s.key);
    }
}

/// Retransmits our 2xx over UDP (T1, doubling to T2) until the ACK comes;
/// after 64·T1 without one, tells the leg its dialog is dead. Each
/// retransmission goes into the trace (`parts`: the 2xx as first sent).
pub(crate) fn spawn_2xx_retransmit(
    mut accepted: Accepted,
    reliable: bool,
    mut ack: oneshot::Receiver<()>,
    leg: mpsc::UnboundedSender<Inbound>,
    (trace, transport, parts): (Trace, SipTransport, OutgoingParts),
) {
    tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + T1 * 64;
        let mut interval = T1;
        loop {
            let wait = if reliable { T1 * 64 } else { interval };
            tokio::select! {
                // The ACK came, or the leg is gone and nobody waits for it.
                _ = &mut ack => return,
                _ = tokio::time::sleep(wait) => {}
            }
            if tokio::time::Instant::now() >= deadline {
                let _ = leg.send(Inbound::AckTimeout);
                return;
            }
            if !reliable {
                let at = std::time::SystemTime::now();
                if accepted.retransmit().await.is_ok() {
                    trace.sent(at, &parts, transport);
                }
                interval = (interval * 2).min(T2);
            }
        }
    });
}

/// The sipfrag status code of a NOTIFY for a REFER subscription, if it is one.
fn refer_progress(request: &IncomingRequest) -> Option<u16> {
    let event = request.headers.get_raw(&Name::EVENT).next()?;
    if !event.trim().to_ascii_lowercase().starts_with("refer") {
        return None;
    }
    let body = std::str::from_utf8(&request.body).ok()?;
    let line = body.lines().next()?.trim();
    let rest = line.strip_prefix("SIP/2.0 ")?;
    rest.get(..3)?.parse().ok()
}
