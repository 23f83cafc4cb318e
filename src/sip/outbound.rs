//! An INVITE we send (the room leg, or a test phone): follows its
//! responses to a final one, ACKs a 2xx (and its retransmissions), and can
//! CANCEL it, with the CANCEL built from the INVITE itself (same Via
//! branch, RFC 3261 §9.1) rather than as a new transaction.

use super::dialog::{Leg, LegSetup};
use super::dialogs::{DialogKey, Inbound, Shared, random_tag};
use super::leg_state::SipTransport;
use super::stack::Stack;
use super::target::Target;
use super::trace::Trace;
use bytes::Bytes;
use ezk_sip_core::transaction::consts::T1;
use ezk_sip_core::transaction::{ClientInvTsx, TsxKey, TsxResponse};
use ezk_sip_core::transport::{OutgoingParts, OutgoingRequest, TargetTransportInfo, TpHandle};
use ezk_sip_core::{Endpoint, Request};
use ezk_sip_types::header::typed::{Contact, Routing};
use ezk_sip_types::host::HostPort;
use ezk_sip_types::msg::RequestLine;
use ezk_sip_types::print::AppendCtx;
use ezk_sip_types::uri::SipUri;
use ezk_sip_types::{Headers, Method, Name};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// What to send.
#[derive(Debug, Clone)]
pub struct OutboundRequest {
    /// Request-URI, e.g. `sip:room@127.0.0.1:5070;transport=tcp`.
    pub target: String,
    /// Our From URI, e.g. `sip:+15551234@gateway`.
    pub from: String,
    /// Extra headers (`X-…`, `User-to-User`), in order.
    pub headers: Vec<(String, String)>,
    pub sdp: String,
    /// Give up (and CANCEL) if no final answer comes in this long. None:
    /// the owner times it (a call's machine does) and gives up by dropping
    /// the `Dialing`.
    pub ring_timeout: Option<Duration>,
    /// The call's SIP ladder, which this INVITE and its dialog join as a
    /// room leg; None: a trace of its own.
    pub trace: Option<Trace>,
}

/// Why an INVITE could not even be sent, or failed on its way.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    /// The target is not a SIP URI we can parse.
    #[error("not a valid SIP URI: {uri}")]
    BadUri {
        uri: String,
        /// The parser's account (nom's, as ezk's `SipUri` reports it).
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// No transport could reach the target, or the transaction failed.
    #[error("cannot send INVITE: {0}")]
    Send(#[source] ezk_sip_core::Error),
    /// The task following the INVITE ended without an outcome (the
    /// runtime is shutting down).
    #[error("cannot send INVITE: dialing task ended")]
    TaskEnded,
}

/// How an INVITE ended.
// One is made per room attempt and moved once or twice: boxing the leg
// would cost an allocation per call to save a copy of ~500 bytes.
#[allow(clippy::large_enum_variant)]
pub enum DialOutcome {
    /// 2xx: the leg is up; `sdp` is the answer.
    Answered { leg: Leg, sdp: Bytes },
    /// A final error response (code and reason phrase).
    Rejected { code: u16, reason: String },
    /// No final response in time (we CANCELled it).
    TimedOut,
    /// We CANCELled it on request.
    Cancelled,
    /// It could not be sent or the transport failed.
    Failed(DialError),
}

impl std::fmt::Debug for DialOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DialOutcome::Answered { .. } => write!(f, "Answered"),
            DialOutcome::Rejected { code, reason } => write!(f, "Rejected({code} {reason})"),
            DialOutcome::TimedOut => write!(f, "TimedOut"),
            DialOutcome::Cancelled => write!(f, "Cancelled"),
            DialOutcome::Failed(e) => write!(f, "Failed({e})"),
        }
    }
}

/// An INVITE under way. Dropping it CANCELs the INVITE.
pub struct Dialing {
    cancel: Option<oneshot::Sender<()>>,
    outcome: oneshot::Receiver<DialOutcome>,
    /// Provisional response codes as they arrive.
    pub progress: mpsc::UnboundedReceiver<u16>,
}

impl Dialing {
    /// Sends the INVITE now and follows it in a task of its own.
    pub fn start(stack: &Stack, request: OutboundRequest) -> Dialing {
        let (cancel_tx, cancel_rx) = oneshot::channel();
        let (outcome_tx, outcome_rx) = oneshot::channel();
        let (progress_tx, progress_rx) = mpsc::unbounded_channel();
        let stack = stack.clone();
        tokio::spawn(async move {
            let outcome = run(&stack, request, cancel_rx, progress_tx).await;
            if let Err(DialOutcome::Answered { leg, .. }) = outcome_tx.send(outcome) {
                // Nobody is waiting for the leg any more: hang it up.
                leg.hangup();
            }
        });
        Dialing {
            cancel: Some(cancel_tx),
            outcome: outcome_rx,
            progress: progress_rx,
        }
    }

    /// CANCELs the INVITE if no final response has come yet.
    pub fn cancel(&mut self) {
        if let Some(c) = self.cancel.take() {
            let _ = c.send(());
        }
    }

    /// Waits for the final outcome.
    pub async fn outcome(&mut self) -> DialOutcome {
        (&mut self.outcome)
            .await
            .unwrap_or(DialOutcome::Failed(DialError::TaskEnded))
    }
}

impl Drop for Dialing {
    /// A 2xx that arrived but was never taken (the caller hung up as the
    /// room answered) would leave the room's leg up: hang it up. A 2xx
    /// still to come is handled by the task, which finds nobody waiting.
    fn drop(&mut self) {
        if let Ok(DialOutcome::Answered { leg, .. }) = self.outcome.try_recv() {
            leg.hangup();
        }
    }
}

struct Sent {
    call_id: String,
    local_from: String,
    tsx: ClientInvTsx,
    kind: SipTransport,
    /// Our Via sent-by, for the ACK and the leg's requests too.
    via: HostPort,
}

async fn send(
    stack: &Stack,
    r: &OutboundRequest,
    local_tag: &str,
    trace: &Trace,
) -> Result<Sent, DialError> {
    let target = tls_for_sips(&r.target);
    let uri: SipUri = target.parse().map_err(|e| DialError::BadUri {
        uri: r.target.clone(),
        source: Box::new(e),
    })?;
    let call_id = uuid::Uuid::new_v4().to_string();
    let local_from = format!("<{}>;tag={local_tag}", r.from);
    let mut request = Request::new(Method::INVITE, uri.clone());
    let h = &mut request.headers;
    h.insert(Name::FROM, local_from.clone());
    h.insert(Name::TO, format!("<{}>", strip_uri_params(&r.target)));
    h.insert(Name::CALL_ID, call_id.clone());
    h.insert(Name::CSEQ, "1 INVITE");
    h.insert(Name::MAX_FORWARDS, "70");
    h.insert(Name::CONTACT, stack.contact_for_uri(&r.target));
    h.insert(Name::CONTENT_TYPE, "application/sdp");
    for (name, value) in &r.headers {
        h.insert(name.clone(), value.clone());
    }
    request.body = Bytes::from(r.sdp.clone().into_bytes());
    // The transport is chosen here rather than inside `send_invite`, so
    // that the Via names our public host and listener port (ezk would
    // write the socket's bound address).
    let (handle, destination) = stack
        .endpoint
        .select_transport(&uri)
        .await
        .map_err(DialError::Send)?;
    let kind = kind_of(&handle, &target);
    let via = stack.sent_by(kind, handle.bound().port());
    let mut target = TargetTransportInfo {
        via_host_port: Some(via.clone()),
        transport: Some((handle, destination)),
    };
    let at = std::time::SystemTime::now();
    let tsx = stack
        .endpoint
        .send_invite(request, &mut target)
        .await
        .map_err(DialError::Send)?;
    trace.sent(at, &tsx.request().parts, kind);
    Ok(Sent {
        call_id,
        local_from,
        tsx,
        kind,
        via,
    })
}

/// `sips:` with `;transport=tls` added when it names no transport: ezk
/// picks TLS only from that parameter (or DNS), and would send a bare
/// `sips:` URI over UDP.
pub(super) fn tls_for_sips(target: &str) -> std::borrow::Cow<'_, str> {
    let is_sips = target
        .get(..5)
        .is_some_and(|s| s.eq_ignore_ascii_case("sips:"));
    if !is_sips || target.to_ascii_lowercase().contains(";transport=") {
        return target.into();
    }
    // URI parameters go before any `?headers`.
    let at = target.find('?').unwrap_or(target.len());
    format!("{};transport=tls{}", &target[..at], &target[at..]).into()
}

/// Whether an INVITE to `target` goes over TLS (after `tls_for_sips`):
/// what may carry SDES keys (RFC 4568 §8.3). ezk picks TLS for a URI only
/// through `;transport=tls`; a target it cannot reach over TLS fails.
pub fn reaches_over_tls(target: &str) -> bool {
    tls_for_sips(target)
        .to_ascii_lowercase()
        .contains(";transport=tls")
}

/// The transport of a connection we chose for `uri`: ezk does not say TLS
/// from TCP on a handle, the URI does.
fn kind_of(handle: &TpHandle, uri: &str) -> SipTransport {
    let lower = uri.to_ascii_lowercase();
    if handle.is_udp() {
        SipTransport::Udp
    } else if lower.contains(";transport=tls") {
        // `tls_for_sips` has made a bare `sips:` say so; `sips:…;transport=tcp`
        // is TCP whatever its scheme.
        SipTransport::Tls
    } else {
        SipTransport::Tcp
    }
}

/// `sip:room@host;transport=tcp` → `sip:room@host` for the To header.
fn strip_uri_params(uri: &str) -> &str {
    match uri.find(';') {
        Some(i) => &uri[..i],
        None => uri,
    }
}

async fn run(
    stack: &Stack,
    r: OutboundRequest,
    mut cancel_rx: oneshot::Receiver<()>,
    progress: mpsc::UnboundedSender<u16>,
) -> DialOutcome {
    let local_tag = random_tag();
    let trace = r
        .trace
        .as_ref()
        .map_or_else(|| stack.shared.new_trace().room(), Trace::room);
    let Sent {
        call_id,
        local_from,
        mut tsx,
        kind,
        via,
    } = match send(stack, &r, &local_tag, &trace).await {
        Ok(s) => s,
        Err(e) => return DialOutcome::Failed(e),
    };
    // Register now: a BYE can follow the 2xx faster than we process it.
    let key = DialogKey {
        call_id: call_id.clone(),
        local_tag,
    };
    let (leg_tx, leg_rx) = mpsc::unbounded_channel();
    stack.shared.dialogs.insert(key.clone(), leg_tx);
    let unregister = |shared: &Arc<Shared>| {
        shared.dialogs.remove(&key);
    };

    let give_up_at = r.ring_timeout.map(|d| Instant::now() + d);
    // None until we CANCEL; then the CANCEL and when to resend it.
    let mut cancel: Option<(OutgoingRequest, Instant, Duration)> = None;
    let mut why_cancelled = DialOutcome::Cancelled;
    loop {
        let resend_at = cancel.as_ref().map(|(_, at, _)| *at);
        tokio::select! {
            got = tsx.receive() => {
                let response = match got {
                    Ok(Some(response)) => response,
                    Ok(None) | Err(ezk_sip_core::Error::RequestTimedOut) => {
                        unregister(&stack.shared);
                        return if cancel.is_some() { why_cancelled } else { DialOutcome::TimedOut };
                    }
                    Err(e) => {
                        unregister(&stack.shared);
                        return DialOutcome::Failed(DialError::Send(e));
                    }
                };
                trace.received(&response.tp_info, kind);
                let code = response.line.code.into_u16();
                match code {
                    100..=199 => { let _ = progress.send(code); }
                    200..=299 => {
                        let dialog = NewDialog { key: key.clone(), local_from: local_from.clone(), kind, via: via.clone(), trace: trace.clone() };
                        let (leg, ack) = answered(stack, &tsx, &response, dialog, &r, leg_rx).await;
                        keep_acking(tsx, &stack.endpoint, ack, (trace.clone(), kind));
                        if cancel.is_some() {
                            // The room answered as our CANCEL crossed it.
                            leg.hangup();
                            return why_cancelled;
                        }
                        return DialOutcome::Answered { leg, sdp: response.body.clone() };
                    }
                    _ => {
                        unregister(&stack.shared);
                        if cancel.is_some() {
                            return why_cancelled;
                        }
                        let reason = response.line.reason.as_ref().map(|r| r.to_string()).unwrap_or_default();
                        return DialOutcome::Rejected { code, reason };
                    }
                }
            }
            _ = &mut cancel_rx, if cancel.is_none() => {
                cancel = send_cancel(&stack.endpoint, &tsx, (&trace, kind)).await;
            }
            _ = sleep_until_opt(give_up_at), if cancel.is_none() => {
                why_cancelled = DialOutcome::TimedOut;
                cancel = send_cancel(&stack.endpoint, &tsx, (&trace, kind)).await;
            }
            _ = sleep_until_opt(resend_at) => {
                if let Some((req, at, every)) = cancel.as_mut() {
                    let sent_at = std::time::SystemTime::now();
                    if stack.endpoint.send_outgoing_request(req).await.is_ok() {
                        trace.sent(sent_at, &req.parts, kind);
                    }
                    *every = (*every * 2).min(Duration::from_secs(4));
                    *at = Instant::now() + *every;
                }
            }
        }
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Builds and sends the CANCEL for the INVITE in `tsx`: same Request-URI,
/// top Via (branch), From, To, Call-ID and CSeq number (RFC 3261 §9.1).
/// Over UDP it is resent until the INVITE gets its final answer. (Its
/// 200 is not in the trace: sent outside a transaction of ezk's, it comes
/// back as a response ezk matches to nothing and drops.)
async fn send_cancel(
    endpoint: &Endpoint,
    tsx: &ClientInvTsx,
    (trace, kind): (&Trace, SipTransport),
) -> Option<(OutgoingRequest, Instant, Duration)> {
    let invite = tsx.request();
    let mut headers = Headers::with_capacity(7);
    if let Some(via) = invite.msg.headers.get_raw(&Name::VIA).next() {
        headers.insert(Name::VIA, via.clone());
    }
    for name in [Name::FROM, Name::TO, Name::CALL_ID, Name::ROUTE] {
        let _ = invite.msg.headers.clone_into(&mut headers, name);
    }
    let cseq = invite
        .msg
        .headers
        .get_named::<ezk_sip_types::header::typed::CSeq>()
        .map(|c| c.cseq)
        .unwrap_or(1);
    headers.insert(Name::CSEQ, format!("{cseq} CANCEL"));
    headers.insert(Name::MAX_FORWARDS, "70");
    let mut cancel = OutgoingRequest {
        msg: Request {
            line: RequestLine {
                method: Method::CANCEL,
                uri: invite.msg.line.uri.clone(),
            },
            headers,
            body: Bytes::new(),
        },
        parts: OutgoingParts {
            transport: invite.parts.transport.clone(),
            destination: invite.parts.destination,
            buffer: Default::default(),
        },
    };
    let at = std::time::SystemTime::now();
    match endpoint.send_outgoing_request(&mut cancel).await {
        Ok(()) => trace.sent(at, &cancel.parts, kind),
        Err(e) => tracing::debug!(error = %e, "CANCEL not sent"),
    }
    let every = if invite.parts.transport.is_udp() {
        T1
    } else {
        Duration::from_secs(3600)
    };
    Some((cancel, Instant::now() + every, every))
}

/// Builds the ACK for a 2xx: a new transaction (new branch), sent to the
/// same place as the INVITE.
fn build_ack(
    endpoint: &Endpoint,
    tsx: &ClientInvTsx,
    response: &TsxResponse,
    sent_by: HostPort,
) -> OutgoingRequest {
    let invite = tsx.request();
    let target = response
        .headers
        .get_named::<Contact>()
        .map(|c| c.uri.uri)
        .unwrap_or_else(|_| invite.msg.line.uri.clone());
    let mut headers = Headers::with_capacity(7);
    let via = endpoint.create_via(
        &invite.parts.transport,
        &TsxKey::client(&Method::ACK),
        Some(sent_by),
    );
    headers.insert_named(&via);
    let _ = invite.msg.headers.clone_into(&mut headers, Name::FROM);
    let _ = response.headers.clone_into(&mut headers, Name::TO);
    let _ = invite.msg.headers.clone_into(&mut headers, Name::CALL_ID);
    headers.insert(
        Name::CSEQ,
        format!("{} ACK", response.base_headers.cseq.cseq),
    );
    headers.insert(Name::MAX_FORWARDS, "70");
    for route in route_set(response) {
        headers.insert(Name::ROUTE, route);
    }
    OutgoingRequest {
        msg: Request {
            line: RequestLine {
                method: Method::ACK,
                uri: target,
            },
            headers,
            body: Bytes::new(),
        },
        parts: OutgoingParts {
            transport: invite.parts.transport.clone(),
            destination: invite.parts.destination,
            buffer: Default::default(),
        },
    }
}

/// Route set of the UAC: the 2xx's Record-Route, reversed.
fn route_set(response: &TsxResponse) -> Vec<String> {
    let mut routes: Vec<String> = response
        .headers
        .get::<Vec<Routing>>(Name::RECORD_ROUTE)
        .unwrap_or_default()
        .iter()
        .map(|r| r.default_print_ctx().to_string())
        .collect();
    routes.reverse();
    routes
}

/// What the INVITE fixed of the dialog-to-be.
struct NewDialog {
    key: DialogKey,
    local_from: String,
    kind: SipTransport,
    via: HostPort,
    trace: Trace,
}

async fn answered(
    stack: &Stack,
    tsx: &ClientInvTsx,
    response: &TsxResponse,
    dialog: NewDialog,
    r: &OutboundRequest,
    rx: mpsc::UnboundedReceiver<Inbound>,
) -> (Leg, OutgoingRequest) {
    let NewDialog {
        key,
        local_from,
        kind,
        via,
        trace,
    } = dialog;
    let mut ack = build_ack(&stack.endpoint, tsx, response, via.clone());
    let at = std::time::SystemTime::now();
    match stack.endpoint.send_outgoing_request(&mut ack).await {
        Ok(()) => trace.sent(at, &ack.parts, kind),
        Err(e) => tracing::debug!(error = %e, "ACK not sent"),
    }
    let invite = tsx.request();
    let leg = Leg::new(LegSetup {
        endpoint: stack.endpoint.clone(),
        shared: stack.shared.clone(),
        key,
        local_from,
        remote_to: response.base_headers.to.default_print_ctx().to_string(),
        remote_target: ack.msg.line.uri.clone(),
        route_set: route_set(response),
        cseq: 1,
        remote_cseq: 0,
        target: Target::new(
            kind,
            invite.parts.transport.clone(),
            invite.parts.destination,
            via,
        ),
        contact: stack.contact_for_uri(&r.target),
        // With SDES, only the key the room took stays ours for the dialog.
        local_sdp: super::crypto::settle(&r.sdp, &response.body),
        timer: super::timer::from_answer(
            &response.headers,
            stack
                .shared
                .min_se
                .load(std::sync::atomic::Ordering::Relaxed),
        ),
        rx,
        trace,
    });
    (leg, ack)
}

/// 2xx retransmissions (the peer did not see our ACK) come back through
/// the INVITE transaction for a while: answer each with the same ACK.
fn keep_acking(
    mut tsx: ClientInvTsx,
    endpoint: &Endpoint,
    mut ack: OutgoingRequest,
    (trace, kind): (Trace, SipTransport),
) {
    let endpoint = endpoint.clone();
    tokio::spawn(async move {
        while let Ok(Some(r)) = tsx.receive().await {
            trace.received(&r.tp_info, kind);
            if r.line.code.into_u16() / 100 == 2 {
                let at = std::time::SystemTime::now();
                if endpoint.send_outgoing_request(&mut ack).await.is_ok() {
                    trace.sent(at, &ack.parts, kind);
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sips_targets_without_a_transport_get_tls() {
        assert_eq!(tls_for_sips("sips:a@h:5061"), "sips:a@h:5061;transport=tls");
        assert_eq!(
            tls_for_sips("SIPS:a@h?X-A=1"),
            "SIPS:a@h;transport=tls?X-A=1"
        );
        assert_eq!(
            tls_for_sips("sips:a@h;transport=tcp"),
            "sips:a@h;transport=tcp"
        );
        assert_eq!(tls_for_sips("sip:a@h"), "sip:a@h");
        assert!(reaches_over_tls("sips:a@h"));
        assert!(reaches_over_tls("sip:a@h;Transport=TLS"));
        assert!(!reaches_over_tls("sips:a@h;transport=udp"));
        assert!(!reaches_over_tls("sip:a@h"));
    }
}
