//! SIP on top of ezk-sip-core's transports and transactions. Dialogs are
//! handled here rather than by ezk-sip-ua, so that pinless controls every
//! byte that matters for interop (To-tags, CANCEL branches, 2xx
//! retransmission and ACK), and so that the same code serves the gateway,
//! its tests' phones and rooms, and the examples.
//!
//! Files, each importing only those listed before it (no cycles; checked
//! by `tests/it/layers.rs`):
//!
//! - `refusal`: a final error answer as data (every 503 is built there).
//! - `headers`: custom (`X-…`, `User-to-User`) header handling.
//! - `leg_state`: a leg's dialog as data (saved, resumed after a restart).
//! - `trace_parse`: a captured message read for the ladder (start line,
//!   headers, bounded body), credentials and SRTP keys masked.
//! - `trace`: a call's SIP ladder: every message its legs send and
//!   receive, recorded at the points below, bounded.
//! - `dialogs`: the dialog registry and the types the files share (dialog
//!   key, what a leg receives, state shared by the layer and the legs).
//! - `respond`: answering a request on the spot (errors, To-tags).
//! - `timer`: RFC 4028 session timers (negotiation, deadlines).
//! - `target`: where a leg's requests go (transport, peer, our Via),
//!   found again after a restart.
//! - `stack`: the running endpoint, Contact and Via building, which legs use.
//! - `info`: DTMF in SIP INFO bodies (`application/dtmf-relay`, `…/dtmf`).
//! - `dialog`: an established leg either way (BYE out, BYE/re-INVITE in).
//! - `requests`: what a leg sends in its dialog (BYE, REFER, OPTIONS,
//!   UPDATE, re-INVITE).
//! - `resume`: a leg rebuilt from its `LegState` in a new process.
//! - `early`: an INVITE held in early media (183 with SDP, reliable per
//!   RFC 3262 when the caller requires 100rel, PRACK).
//! - `inbound`: an INVITE we received (ring, early media, reject, answer).
//! - `outbound`: an INVITE we send (progress, CANCEL, ACK).
//! - `layer`: routes each request outside a transaction: new INVITEs,
//!   CANCEL, OPTIONS, and in-dialog requests to the leg that owns them.
//! - `bind`: starts a stack: listening sockets, the layer, the INVITE queue.
//! - `sdp`: offers and answers for G.711 + telephone-event.
//! - `crypto`: SDES `a=crypto` lines (RFC 4568): reading a peer's, making
//!   our SDP secure (`RTP/SAVP` and our keys).
//! - `digest`: server-side digest authentication (407 challenges).
//! - `digest_client`: the client side (credentials after a 401 or 407).
//! - `register`: REGISTER to a provider's registrar, sent and its answer
//!   read; the CRLF keep-alive of its flow.
//! - `limits`: size limits on an INVITE (513 / 400).
//! - `tls`: rustls acceptor (our listener) and connector (TLS room legs).
//!
//! Outside `sip`, only leaves and `config` are imported: codec types from
//! `crate::codec`, URI and header syntax from `crate::config::syntax`.

mod bind;
pub mod crypto;
mod dialog;
mod dialogs;
pub mod digest;
pub mod digest_client;
mod early;
pub mod headers;
mod inbound;
mod info;
mod layer;
mod leg_state;
pub mod limits;
mod outbound;
mod refusal;
pub mod register;
mod requests;
mod respond;
mod resume;
pub mod sdp;
mod stack;
mod target;
mod timer;
pub mod tls;
mod trace;
mod trace_parse;

pub use bind::{StackConfig, StackError};
pub use dialog::{Leg, LegEvent};
pub use dialogs::{Answer, BusyProbe};
pub use early::{CallerLeft, EarlyNews};
pub use inbound::{IncomingInvite, InviteInfo};
pub use leg_state::{LegState, MIN_SESSION_EXPIRES_SECS, ResumeError, SessionTimer, SipTransport};
pub use outbound::{DialError, DialOutcome, Dialing, OutboundRequest, reaches_over_tls};
pub use refusal::{DRAINING_RETRY_AFTER_SECS, Refusal};
pub use stack::Stack;
pub use trace::{
    Direction, HEAD as TRACE_HEAD, Ladder, LadderMessage, MAX_BODY as TRACE_MAX_BODY,
    MAX_MESSAGES as TRACE_MAX_MESSAGES, Trace, TraceLeg,
};

/// The user part of a `sip:` / `sips:` URI string (`support` in
/// `sip:support@host`); config validation uses the same function.
pub use crate::config::syntax::uri_user;
