//! An established leg (a confirmed dialog), whichever side began it: it
//! answers what the peer sends inside the dialog and can hang up.

use super::dialogs::{DialogKey, Inbound, Shared};
use super::respond::reply;
use bytes::Bytes;
use ezk_sip_core::Endpoint;
use ezk_sip_core::transaction::Accepted;
use ezk_sip_core::transaction::consts::{T1, T2};
use ezk_sip_core::transport::TargetTransportInfo;
use ezk_sip_core::{IncomingRequest, Request};
use ezk_sip_types::uri::SipUri;
use ezk_sip_types::{Method, Name, StatusCode};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

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
    pub target: TargetTransportInfo,
    pub contact: String,
    /// What we answer a re-INVITE with: media stays as it is.
    pub local_sdp: String,
    pub rx: mpsc::UnboundedReceiver<Inbound>,
}

/// A confirmed dialog with a peer.
pub struct Leg {
    s: LegSetup,
    ack_tx: Option<oneshot::Sender<()>>,
    ended: bool,
}

impl Leg {
    pub(crate) fn new(setup: LegSetup) -> Self {
        Self {
            s: setup,
            ack_tx: None,
            ended: false,
        }
    }

    /// Call-ID of this leg's dialog.
    pub fn call_id(&self) -> &str {
        &self.s.key.call_id
    }

    /// A receiver that fires when the ACK of our 2xx arrives.
    pub(crate) fn expect_ack(&mut self) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        self.ack_tx = Some(tx);
        rx
    }

    /// Waits for the next event the owner must act on. Everything else in
    /// the dialog (ACK, re-INVITE refreshes, INFO, OPTIONS…) is answered
    /// here. After `Bye` or `AckTimeout` it never resolves again.
    pub async fn next_event(&mut self) -> LegEvent {
        loop {
            if self.ended {
                std::future::pending::<()>().await;
            }
            let Some(inbound) = self.s.rx.recv().await else {
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
            let cseq = request.base_headers.cseq.cseq;
            if request.line.method == Method::ACK {
                // An ACK carries its INVITE's CSeq; any other is not ours.
                if self.s.remote_cseq == 0 || cseq == self.s.remote_cseq {
                    if let Some(tx) = self.ack_tx.take() {
                        let _ = tx.send(());
                    }
                } else {
                    tracing::debug!(cseq, "ACK with another CSeq ignored");
                }
                continue;
            }
            let endpoint = &self.s.endpoint;
            // RFC 3261 §12.2.2: a request whose CSeq is not above the last
            // one is out of order: 500, and the dialog goes on.
            if self.s.remote_cseq != 0 && cseq <= self.s.remote_cseq {
                Box::pin(reply(endpoint, *request, 500, Some("CSeq Out Of Order"))).await;
                continue;
            }
            self.s.remote_cseq = cseq;
            match request.line.method {
                Method::BYE => {
                    self.ended = true;
                    Box::pin(reply(endpoint, *request, 200, None)).await;
                    return LegEvent::Bye;
                }
                Method::INVITE => Box::pin(self.answer_reinvite(*request)).await,
                Method::NOTIFY => {
                    let progress = refer_progress(&request);
                    Box::pin(reply(endpoint, *request, 200, None)).await;
                    if let Some(code) = progress {
                        return LegEvent::ReferProgress(code);
                    }
                }
                Method::INFO | Method::OPTIONS | Method::UPDATE => {
                    Box::pin(reply(endpoint, *request, 200, None)).await
                }
                _ => Box::pin(reply(endpoint, *request, 405, None)).await,
            }
        }
    }

    /// A re-INVITE (session refresh, hold/unhold): answer with the SDP we
    /// already gave; media keeps flowing where it flows.
    async fn answer_reinvite(&mut self, mut request: IncomingRequest) {
        let endpoint = self.s.endpoint.clone();
        let mut response = endpoint.create_response(&request, StatusCode::OK, None);
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
        match tsx.respond_success(response).await {
            Ok(accepted) => {
                let ack = self.expect_ack();
                if let Some(tx) = self.s.shared.dialogs.get(&self.s.key).map(|t| t.clone()) {
                    spawn_2xx_retransmit(accepted, reliable, ack, tx);
                }
            }
            Err(e) => tracing::debug!(error = %e, "re-INVITE answer not sent"),
        }
    }

    fn request(&mut self, method: Method) -> Request {
        self.s.cseq = self.s.cseq.wrapping_add(1);
        let mut request = Request::new(method.clone(), self.s.remote_target.clone());
        let h = &mut request.headers;
        h.insert(Name::FROM, self.s.local_from.clone());
        h.insert(Name::TO, self.s.remote_to.clone());
        h.insert(Name::CALL_ID, self.s.key.call_id.clone());
        h.insert(Name::CSEQ, format!("{} {method}", self.s.cseq));
        h.insert(Name::MAX_FORWARDS, "70");
        for route in &self.s.route_set {
            h.insert(Name::ROUTE, route.clone());
        }
        request
    }

    /// Asks the peer to call `target` itself (RFC 3515 REFER); `headers`
    /// ride in the Refer-To URI, for peers that copy them into their
    /// INVITE. Resolves to the REFER's final status (None: no answer).
    /// Progress then arrives as `LegEvent::ReferProgress`.
    pub fn refer(
        &mut self,
        target: &str,
        headers: &[(String, String)],
    ) -> oneshot::Receiver<Option<u16>> {
        let mut request = self.request(Method::REFER);
        let h = &mut request.headers;
        h.insert(
            Name::REFER_TO,
            format!("<{}>", uri_with_headers(target, headers)),
        );
        h.insert("Referred-By", self.s.local_from.clone());
        h.insert(Name::CONTACT, self.s.contact.clone());
        let endpoint = self.s.endpoint.clone();
        let mut target = TargetTransportInfo {
            via_host_port: self.s.target.via_host_port.clone(),
            transport: self.s.target.transport.clone(),
        };
        let (tx, rx) = oneshot::channel();
        tokio::spawn(async move {
            let code = match endpoint.send_request(request, &mut target).await {
                Ok(mut tsx) => match tsx.receive_final().await {
                    Ok(response) => Some(response.line.code.into_u16()),
                    Err(e) => {
                        tracing::debug!(error = %e, "REFER not answered");
                        None
                    }
                },
                Err(e) => {
                    tracing::debug!(error = %e, "REFER not sent");
                    None
                }
            };
            let _ = tx.send(code);
        });
        rx
    }

    /// Hangs up: sends BYE in the background and forgets the dialog. The
    /// BYE's own transaction retransmits it over UDP.
    pub fn hangup(mut self) {
        if self.ended {
            return;
        }
        self.ended = true;
        let request = self.request(Method::BYE);
        let endpoint = self.s.endpoint.clone();
        let mut target = TargetTransportInfo {
            via_host_port: self.s.target.via_host_port.clone(),
            transport: self.s.target.transport.clone(),
        };
        tokio::spawn(async move {
            match endpoint.send_request(request, &mut target).await {
                Ok(mut tsx) => {
                    if let Err(e) = tsx.receive_final().await {
                        tracing::debug!(error = %e, "BYE not answered");
                    }
                }
                Err(e) => tracing::debug!(error = %e, "BYE not sent"),
            }
        });
    }
}

impl Drop for Leg {
    fn drop(&mut self) {
        self.s.shared.dialogs.remove(&self.s.key);
    }
}

/// Retransmits our 2xx over UDP (T1, doubling to T2) until the ACK comes;
/// after 64·T1 without one, tells the leg its dialog is dead.
pub(crate) fn spawn_2xx_retransmit(
    mut accepted: Accepted,
    reliable: bool,
    mut ack: oneshot::Receiver<()>,
    leg: mpsc::UnboundedSender<Inbound>,
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
                let _ = accepted.retransmit().await;
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

/// `target` with `headers` appended as URI headers (`?X-A=1&X-B=2`),
/// escaped as RFC 3261 §25.1 asks of `hname` and `hvalue`.
fn uri_with_headers(target: &str, headers: &[(String, String)]) -> String {
    fn escape(text: &str) -> String {
        let mut out = String::new();
        for b in text.bytes() {
            let c = b as char;
            if c.is_ascii_alphanumeric() || "-_.!~*'()[]/:+$".contains(c) {
                out.push(c);
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        out
    }
    if headers.is_empty() {
        return target.to_string();
    }
    let query: Vec<String> = headers
        .iter()
        .map(|(n, v)| format!("{}={}", escape(n), escape(v)))
        .collect();
    let sep = if target.contains('?') { '&' } else { '?' };
    format!("{target}{sep}{}", query.join("&"))
}

#[cfg(test)]
mod tests {
    use super::uri_with_headers;

    #[test]
    fn refer_to_carries_escaped_headers() {
        let h = vec![
            ("X-Lang".to_string(), "de".to_string()),
            ("X-Note".to_string(), "a b&c=d".to_string()),
        ];
        assert_eq!(
            uri_with_headers("sip:room@r:5070", &h),
            "sip:room@r:5070?X-Lang=de&X-Note=a%20b%26c%3Dd"
        );
        assert_eq!(uri_with_headers("sip:room@r", &[]), "sip:room@r");
    }
}
