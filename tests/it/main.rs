//! The integration tests: one binary, so the crate is linked once and the
//! shared harness (`support`, `media_support`) is compiled once.
//!
//! Each module is one area, over real protocols on loopback (real UDP and
//! TCP SIP, RTP packets, an HTTP webhook receiver). The modules under
//! "Peers written by others" drive sipp, baresip, Kamailio, redis-server,
//! Chromium or pipecat: they build with `--features interop` (which
//! `.ci/run` enables after installing the peers) and fail, never skip,
//! when a peer is missing. Run one area with `cargo test --test it call_flow`.

mod media_support;
mod support;

mod call_flow;
mod chaining;
mod confine;
mod console_page;
mod crash;
mod docs;
mod draining;
mod dtmf;
mod early_media;
mod events_stream;
mod g722;
mod hep;
mod hold_queue;
mod ladder;
mod layers;
mod lifecycle;
mod media_bind;
mod media_resume;
mod media_timeout;
mod nat;
mod openapi;
mod opus;
mod play;
mod probe;
mod properties;
mod provisioning;
mod recording;
mod restart;
mod resume;
mod security;
mod session_timer;
mod shards;
mod srtp;
mod srtp_resume;
mod stream_bot;
mod tls;
mod transfers;
mod webhook_route;

// Peers written by others.
#[cfg(feature = "interop")]
mod cluster;
#[cfg(feature = "interop")]
mod console;
#[cfg(feature = "interop")]
mod interop_baresip;
#[cfg(feature = "interop")]
mod interop_baresip_codecs;
#[cfg(feature = "interop")]
mod interop_early;
#[cfg(feature = "interop")]
mod interop_hep;
#[cfg(feature = "interop")]
mod interop_kamailio;
#[cfg(feature = "interop")]
mod interop_pipecat;
#[cfg(feature = "interop")]
mod interop_registration;
#[cfg(feature = "interop")]
mod interop_restart;
#[cfg(feature = "interop")]
mod interop_security;
#[cfg(feature = "interop")]
mod interop_sipp;
#[cfg(feature = "interop")]
mod interop_sipp_dtmf;
#[cfg(feature = "interop")]
mod interop_srtp;
