//! SIP on top of ezk-sip-core's transports and transactions. Dialogs are
//! handled here rather than by ezk-sip-ua, so that pinless controls every
//! byte that matters for interop (To-tags, CANCEL branches, 2xx
//! retransmission and ACK), and so that the same code serves the gateway,
//! its tests' phones and rooms, and the examples.
//!
//! - `stack`: the endpoint, listening sockets, Contact building.
//! - `layer`: routes each request outside a transaction: new INVITEs,
//!   CANCEL, OPTIONS, and in-dialog requests to the leg that owns them.
//! - `inbound`: an INVITE we received (ring, reject, answer).
//! - `outbound`: an INVITE we send (progress, CANCEL, ACK).
//! - `dialog`: an established leg either way (BYE out, BYE/re-INVITE in).
//! - `sdp`: offers and answers for G.711 + telephone-event.
//! - `headers`: custom (`X-…`, `User-to-User`) header handling.
//! - `digest`: server-side digest authentication (407 challenges).
//! - `limits`: size limits on an INVITE (513 / 400).
//! - `tls`: rustls acceptor (our listener) and connector (TLS room legs).

mod dialog;
pub mod digest;
pub mod headers;
mod inbound;
mod layer;
pub mod limits;
mod outbound;
pub mod sdp;
mod stack;
pub mod tls;

pub use dialog::{Leg, LegEvent};
pub use inbound::{IncomingInvite, InviteInfo};
pub use outbound::{DialError, DialOutcome, Dialing, OutboundRequest};
pub use stack::{Stack, StackConfig, StackError};

/// The user part of a `sip:` / `sips:` URI string (`support` in
/// `sip:support@host`); config validation uses the same function.
pub use crate::config::syntax::uri_user;
