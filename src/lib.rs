//! pinless: a pinless dial-in hold-and-transfer SIP gateway.
//!
//! Map of the crate. Imports go one way, top to bottom (`tests/it/layers.rs`
//! checks it): a module uses only modules below it, the five siblings of
//! the protocol layer know nothing of each other, and the files inside a
//! module import each other without cycles.
//!
//! - [`gateway`] (wiring): starts every layer and connects them;
//!   `Gateway::start` is the entry point that `main.rs` and the tests call.
//!   [`lifecycle`]: how a running node stops (drain, or save and resume).
//!   [`probe`]: `pinless probe`, a test caller for any SIP endpoint.
//! - [`api`] (warp): the HTTP API. Validates, authenticates, then reaches a
//!   call through its opaque handle; one error type renders every error.
//! - [`provisioning`]: entries provisioned at runtime: what creating,
//!   replacing, deleting or rotating one does (the API only reads requests
//!   and renders answers), how they are stored, and how a cluster's nodes
//!   keep them alike (Redis → SQLite → entry book). [`register`]
//!   (sibling): bindings at providers' registrars (`[[registration]]`),
//!   each a sans-IO machine driven by a thin task.
//! - [`call`]: the call core. A sans-IO machine holds a call's whole state
//!   and every deadline on the monotonic clock; one thin driver task per
//!   call feeds it facts and performs its actions; one admission door
//!   decides on every new INVITE; calls are saved at each state change and
//!   resumed after a restart.
//! - [`sip`], [`media`], [`stream`], [`webhook`], [`store`], [`cluster`]
//!   (siblings): SIP on ezk (dialogs, legs, SDP, digest, TLS); RTP, hold
//!   music, the pacer and the relay, on one shard (OS thread) per core,
//!   and call recording (a tap per call, one writer thread per node);
//!   voice bots over WebSocket (Twilio Media Streams); signing,
//!   message bodies and delivery of webhooks; SQLite
//!   (`state_dir/pinless.db`); Redis for a cluster of nodes (who is alive,
//!   which node owns each call, the provisioned entries), never in a
//!   call's path.
//! - [`config`]: the one configuration struct, parsed once into typed
//!   values and validated.
//! - Leaves: [`clock`] (the monotonic clock and wall time for display),
//!   [`confine`] (what an API client may make the gateway read or reach:
//!   files inside `media_dir`, URLs checked after resolution), [`codec`]
//!   (codec and DTMF types sip and media share), [`ct`] (constant-time
//!   comparison of secrets), [`hep`] (HEP3 capture to a Homer or sngrep
//!   collector: the encoding and the node's one sender task, fed by the
//!   SIP ladders and the calls' quality reports), [`running`] (a count of running calls or tasks
//!   a stop waits on), [`sdes`] (SRTP suites and master keys, which
//!   sip writes in SDP and media keys its contexts with).

pub mod api;
pub mod call;
pub mod clock;
pub mod cluster;
pub mod codec;
pub mod config;
pub mod confine;
pub mod ct;
pub mod gateway;
pub mod hep;
pub mod lifecycle;
pub mod media;
pub mod probe;
pub mod provisioning;
pub mod register;
pub mod running;
pub mod sdes;
pub mod sip;
pub mod store;
pub mod stream;
pub mod webhook;

pub use config::Config;
pub use gateway::{Gateway, StartError};
