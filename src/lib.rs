//! pinless: a pinless dial-in hold-and-transfer SIP gateway.
//!
//! Map of the crate, one direction of dependency, top to bottom:
//!
//! - [`gateway`]: wires everything together; `Gateway::start` is the entry
//!   point that `main.rs` and the tests call.
//! - [`api`] (warp): the HTTP API. Validates, authenticates, then calls
//!   into `call`.
//! - [`webhook`]: signing (pure) and delivery with retries.
//! - [`call`]: the call registry, the sans-IO call state machine and
//!   transfer plan (retries, targets, idempotency), who may call
//!   (admission: rate, allow lists, digest), entries and their header
//!   policy, the events webhook; one driver task per call runs the machine
//!   and performs its actions.
//! - [`sip`]: the SIP stack on ezk: incoming INVITEs, outgoing room legs,
//!   dialogs and REFER, SDP, digest, message limits, TLS.
//! - [`media`]: hold music, the RTP pacer thread, the relay.
//! - [`store`]: durable state in SQLite (`state_dir/pinless.db`): the
//!   node's id, API-made dial-in entries and their secrets, call records.
//! - [`config`]: the one configuration struct, loaded and validated once.
//! - [`ct`]: constant-time comparison of secrets, used wherever one is checked.

pub mod api;
pub mod call;
pub mod clock;
pub mod codec;
pub mod config;
pub mod ct;
pub mod gateway;
pub mod media;
pub mod sip;
pub mod store;
pub mod webhook;

pub use config::Config;
pub use gateway::{Gateway, StartError};
