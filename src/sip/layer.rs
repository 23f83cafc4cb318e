//! Our ezk layer: every request that matches no running transaction comes
//! here and is routed to whoever owns it, or answered on the spot.

use super::dialogs::{DialogKey, Inbound, Shared};
use super::inbound::IncomingInvite;
use super::refusal::Refusal;
use super::respond::{refuse, reply, respond, with_to_tag};
use super::trace::Tap;
use bytesstr::BytesStr;
use ezk_sip_core::{Endpoint, IncomingRequest, Layer, MayTake};
use ezk_sip_types::{Method, Name, StatusCode};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::sync::mpsc;

pub(crate) struct PinlessLayer {
    shared: Arc<Shared>,
    /// New INVITEs, to the application (`Stack::start`'s receiver).
    invites: mpsc::Sender<IncomingInvite>,
}

impl PinlessLayer {
    pub fn new(shared: Arc<Shared>, invites: mpsc::Sender<IncomingInvite>) -> Self {
        Self { shared, invites }
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
            // In a dialog: DTMF as SIP INFO (see `info`).
            Method::INFO,
            Method::PRACK,
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
            (Method::OPTIONS, None) if self.shared.draining.load(Ordering::Relaxed) => {
                refuse(endpoint, request.take(), &Refusal::draining()).await;
            }
            (Method::OPTIONS, None) => {
                if let Some(busy) = self.busy_now() {
                    refuse(endpoint, request.take(), &busy).await;
                    return;
                }
                let mut response = endpoint.create_response(&request, StatusCode::OK, None);
                response.msg.headers.insert_named(endpoint.allowed());
                response.msg.headers.insert(Name::ACCEPT, "application/sdp");
                respond(endpoint, request.take(), with_to_tag(response), None).await;
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
                if self
                    .shared
                    .resuming
                    .load(std::sync::atomic::Ordering::Acquire)
                {
                    return; // the peer retransmits; the leg is about to be back
                }
                reply(endpoint, request, 481, None, None).await;
            }
            (_, None) => reply(endpoint, request.take(), 405, None, None).await,
        }
    }
}

impl PinlessLayer {
    /// Why the node would refuse a call now, if it would (`Shared::busy`).
    fn busy_now(&self) -> Option<Refusal> {
        self.shared.busy.get().and_then(|probe| probe())
    }

    async fn new_invite(&self, endpoint: &Endpoint, request: IncomingRequest) {
        if request.base_headers.from.tag.is_none() {
            reply(endpoint, request, 400, Some("Missing From tag"), None).await;
            return;
        }
        let invite = match IncomingInvite::new(endpoint.clone(), self.shared.clone(), request).await
        {
            Ok(invite) => invite,
            Err(request) => {
                reply(endpoint, *request, 400, Some("Malformed INVITE"), None).await;
                return;
            }
        };
        if let Err(e) = self.invites.try_send(invite) {
            let invite = match e {
                mpsc::error::TrySendError::Full(i) | mpsc::error::TrySendError::Closed(i) => i,
            };
            // The gateway is not keeping up with new calls.
            let busy = Refusal::busy(5, "INVITE queue full");
            invite.refuse(&busy).await;
        }
    }

    async fn cancel(&self, endpoint: &Endpoint, request: IncomingRequest) {
        let branch = request.tsx_key.branch().to_string();
        match self.shared.pending.remove(&branch) {
            Some((_, (cancel, trace))) => {
                // 200 to the CANCEL here; the INVITE's owner sends the 487.
                let _ = cancel.send(());
                let tap = Tap {
                    trace: &trace,
                    transport: self.shared.transport_kind(&request.tp_info.transport),
                };
                tap.received(&request.tp_info);
                reply(endpoint, request, 200, None, Some(tap)).await;
            }
            None => reply(endpoint, request, 481, None, None).await,
        }
    }
}

fn key_of(request: &IncomingRequest, tag: &BytesStr) -> DialogKey {
    DialogKey {
        call_id: request.base_headers.call_id.0.to_string(),
        local_tag: tag.to_string(),
    }
}
