//! Our ezk layer: every request that matches no running transaction comes
//! here and is routed to whoever owns it, or answered on the spot.

use super::inbound::IncomingInvite;
use bytesstr::BytesStr;
use dashmap::DashMap;
use ezk_sip_core::{Endpoint, IncomingRequest, Layer, MayTake};
use ezk_sip_types::{Method, Name, StatusCode};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// A dialog is ours to route by Call-ID and our own tag (To-tag of requests
/// the peer sends us). Our tags are random and unique, so this is enough.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct DialogKey {
    pub call_id: String,
    pub local_tag: String,
}

/// What a leg's owner receives from the layer.
#[derive(Debug)]
pub(crate) enum Inbound {
    /// Boxed: a request is over 1 KiB, and every dialog's channel holds a
    /// block of 32 slots sized for the largest variant (massif: 37 KiB of
    /// heap per held call before this).
    Request(Box<IncomingRequest>),
    /// Our 2xx was never acknowledged (RFC 3261 §13.3.1.4): end the dialog.
    AckTimeout,
}

/// State shared between the layer and the legs.
pub(crate) struct Shared {
    pub invites: mpsc::Sender<IncomingInvite>,
    pub dialogs: DashMap<DialogKey, mpsc::UnboundedSender<Inbound>>,
    /// INVITEs not yet answered, by top Via branch, for CANCEL.
    pub pending: DashMap<String, oneshot::Sender<()>>,
    /// Port of our TLS listener: connections bound to it are TLS (ezk does
    /// not tell TLS from TCP on a received message).
    pub tls_port: std::sync::OnceLock<u16>,
}

impl Shared {
    pub fn new(invites: mpsc::Sender<IncomingInvite>) -> Self {
        Self {
            invites,
            dialogs: DashMap::new(),
            pending: DashMap::new(),
            tls_port: std::sync::OnceLock::new(),
        }
    }

    /// "udp", "tcp" or "tls" for a message received on `transport`.
    pub fn transport_name(&self, transport: &ezk_sip_core::transport::TpHandle) -> &'static str {
        if transport.is_udp() {
            "udp"
        } else if self.tls_port.get() == Some(&transport.bound().port()) {
            "tls"
        } else {
            "tcp"
        }
    }
}

pub(crate) struct PinlessLayer {
    shared: Arc<Shared>,
}

impl PinlessLayer {
    pub fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }
}

#[async_trait::async_trait]
impl Layer for PinlessLayer {
    fn name(&self) -> &'static str {
        "pinless"
    }

    fn init(&mut self, endpoint: &mut ezk_sip_core::EndpointBuilder) {
        for m in [
            Method::INVITE,
            Method::ACK,
            Method::BYE,
            Method::CANCEL,
            Method::OPTIONS,
        ] {
            endpoint.add_allow(m);
        }
    }

    async fn receive(&self, endpoint: &Endpoint, request: MayTake<'_, IncomingRequest>) {
        let method = request.line.method.clone();
        let to_tag = request.base_headers.to.tag.clone();
        match (method, to_tag) {
            (Method::ACK, Some(tag)) => {
                // An ACK that matches nothing is dropped, as RFC 3261 says.
                let key = key_of(&request, &tag);
                if let Some(tx) = self.shared.dialogs.get(&key) {
                    let _ = tx.send(Inbound::Request(Box::new(request.take())));
                }
            }
            (Method::ACK, None) => {}
            (Method::CANCEL, _) => self.cancel(endpoint, request.take()).await,
            (Method::INVITE, None) => self.new_invite(endpoint, request.take()).await,
            (Method::OPTIONS, None) => {
                let mut response = endpoint.create_response(&request, StatusCode::OK, None);
                response.msg.headers.insert_named(endpoint.allowed());
                response.msg.headers.insert(Name::ACCEPT, "application/sdp");
                respond(endpoint, request.take(), with_to_tag(response)).await;
            }
            (_, Some(tag)) => {
                let key = key_of(&request, &tag);
                let request = request.take();
                let request = match self.shared.dialogs.get(&key) {
                    Some(tx) => match tx.send(Inbound::Request(Box::new(request))) {
                        Ok(()) => return,
                        Err(mpsc::error::SendError(Inbound::Request(r))) => *r,
                        Err(_) => return,
                    },
                    None => request,
                };
                reply(endpoint, request, 481, None).await;
            }
            (_, None) => reply(endpoint, request.take(), 405, None).await,
        }
    }
}

impl PinlessLayer {
    async fn new_invite(&self, endpoint: &Endpoint, request: IncomingRequest) {
        if request.base_headers.from.tag.is_none() {
            reply(endpoint, request, 400, Some("Missing From tag")).await;
            return;
        }
        let invite = match IncomingInvite::new(endpoint.clone(), self.shared.clone(), request).await
        {
            Ok(invite) => invite,
            Err(request) => {
                reply(endpoint, *request, 400, Some("Malformed INVITE")).await;
                return;
            }
        };
        if let Err(e) = self.shared.invites.try_send(invite) {
            let invite = match e {
                mpsc::error::TrySendError::Full(i) | mpsc::error::TrySendError::Closed(i) => i,
            };
            // The gateway is not keeping up with new calls.
            let busy = super::refusal::Refusal::busy(5, "INVITE queue full");
            invite.refuse(&busy).await;
        }
    }

    async fn cancel(&self, endpoint: &Endpoint, request: IncomingRequest) {
        let branch = request.tsx_key.branch().to_string();
        match self.shared.pending.remove(&branch) {
            Some((_, cancel)) => {
                // 200 to the CANCEL here; the INVITE's owner sends the 487.
                let _ = cancel.send(());
                reply(endpoint, request, 200, None).await;
            }
            None => reply(endpoint, request, 481, None).await,
        }
    }
}

fn key_of(request: &IncomingRequest, tag: &BytesStr) -> DialogKey {
    DialogKey {
        call_id: request.base_headers.call_id.0.to_string(),
        local_tag: tag.to_string(),
    }
}

/// Answers `request` with `code` (statelessly as far as we are concerned:
/// ezk's server transaction still absorbs retransmissions).
pub(crate) async fn reply(
    endpoint: &Endpoint,
    request: IncomingRequest,
    code: u16,
    reason: Option<&'static str>,
) {
    let response = endpoint.create_response(
        &request,
        StatusCode::from(code),
        reason.map(BytesStr::from_static),
    );
    respond(endpoint, request, with_to_tag(response)).await;
}

/// RFC 3261 §8.2.6.2: every response but 100 carries a To-tag; ezk copies
/// the request's To as it is, so add one when it has none.
pub(crate) fn with_to_tag(
    mut response: ezk_sip_core::transport::OutgoingResponse,
) -> ezk_sip_core::transport::OutgoingResponse {
    if response.msg.line.code != StatusCode::TRYING {
        let _ =
            response
                .msg
                .headers
                .edit(Name::TO, |to: &mut ezk_sip_types::header::typed::FromTo| {
                    if to.tag.is_none() {
                        to.tag = Some(super::dialog::random_tag().into());
                    }
                });
    }
    response
}

async fn respond(
    endpoint: &Endpoint,
    mut request: IncomingRequest,
    response: ezk_sip_core::transport::OutgoingResponse,
) {
    let result = if request.line.method == Method::INVITE {
        // A final error to an INVITE waits for the ACK (up to 32 s over
        // UDP); do that off the receive path.
        let tsx = endpoint.create_server_inv_tsx(&mut request);
        tokio::spawn(async move {
            if let Err(e) = tsx.respond_failure(response).await {
                tracing::debug!(error = %e, "INVITE error response not acknowledged");
            }
        });
        Ok(())
    } else {
        endpoint
            .create_server_tsx(&mut request)
            .respond(response)
            .await
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "response not delivered");
    }
}
