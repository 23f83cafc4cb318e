//! A leg rebuilt from its saved `LegState` in a new process (issue 11):
//! its dialog is registered with the layer again, so the peer's BYE,
//! re-INVITE, UPDATE, OPTIONS and INFO are answered as before, and our own
//! requests (BYE, REFER) reach the peer (see `target` for how).

use super::dialog::{Leg, LegSetup};
use super::dialogs::DialogKey;
use super::leg_state::{LegState, ResumeError, SipTransport};
use super::stack::Stack;
use super::target::Target;
use dashmap::mapref::entry::Entry;
use ezk_sip_types::uri::SipUri;
use tokio::sync::mpsc;

/// Added to the saved CSeq. State is saved at state changes only, so the
/// old process may have sent requests in the dialog after the last save
/// (a REFER, a BYE that never left the host…); the peer answers a request
/// whose CSeq is not above the last it saw with 500 (RFC 3261 §12.2.2).
/// Session refreshes we send as the refresher (a re-INVITE each half
/// interval, not saved) are the most: at the 90 s minimum that is 80 an
/// hour, so 100,000 covers 50 days of refreshes, far below the 2^31 limit.
const CSEQ_MARGIN: u32 = 100_000;

impl Stack {
    /// Rebuilds a leg saved by `Leg::state` (in this process or an earlier
    /// one on the same addresses) and registers its dialog. Over UDP the
    /// stack's own UDP socket is used; over TCP/TLS a connection is found
    /// when first needed (`target` says how).
    pub fn resume_leg(&self, state: LegState) -> Result<Leg, ResumeError> {
        let remote_target: SipUri =
            state
                .remote_target
                .parse()
                .map_err(|e| ResumeError::BadTarget {
                    uri: state.remote_target.clone(),
                    source: Box::new(e),
                })?;
        let listener = match state.transport {
            SipTransport::Udp => self.udp,
            SipTransport::Tcp => self.tcp,
            SipTransport::Tls => self.tls,
        };
        // Over UDP our requests can only leave from our UDP socket; over
        // TCP/TLS we connect out, so a missing listener only costs the
        // peer its own way back (it may reuse our connection).
        if state.transport == SipTransport::Udp && listener.is_none() {
            return Err(ResumeError::NoTransport {
                transport: state.transport,
            });
        }
        let key = DialogKey {
            call_id: state.call_id,
            local_tag: state.local_tag,
        };
        let (tx, rx) = mpsc::unbounded_channel();
        match self.shared.dialogs.entry(key.clone()) {
            Entry::Occupied(_) => {
                return Err(ResumeError::AlreadyLive {
                    call_id: key.call_id,
                });
            }
            Entry::Vacant(slot) => {
                slot.insert(tx);
            }
        }
        // Without a listener of its kind, the port the kind defaults to.
        let default_port = if state.transport == SipTransport::Tls {
            5061
        } else {
            5060
        };
        let via = self.sent_by(state.transport, default_port);
        Ok(Leg::new(LegSetup {
            endpoint: self.endpoint.clone(),
            shared: self.shared.clone(),
            key,
            local_from: state.local_from,
            remote_to: state.remote_to,
            remote_target,
            route_set: state.route_set,
            cseq: state.cseq.wrapping_add(CSEQ_MARGIN),
            remote_cseq: state.remote_cseq,
            target: Target::unresolved(state.transport, state.peer, via),
            contact: state.contact,
            local_sdp: state.local_sdp,
            // Deadlines start again from now: a refresh the peer sent
            // while we were down went unanswered, and it ends the call
            // itself if it cares.
            timer: state.session_timer,
            rx,
            // A fresh ladder: what the old process recorded is gone. The
            // call links its legs' traces (`Leg::set_trace`).
            trace: self.shared.new_trace(),
        }))
    }
}
