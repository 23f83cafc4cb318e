//! The door: what decides on a new INVITE before it becomes a call.
//!
//! - `admission`: the one door. Every INVITE the SIP layer hands over is
//!   admitted or refused here (stopping node, `rate`, `capacity`, the
//!   entry's own rules).
//! - `rate`: INVITEs per second per source address (token buckets).
//! - `capacity`: `limits.max_calls` as permits held until a call ends.
//! - `entries`: the `[[dialin]]` entries, matched by number or URI user;
//!   `header_policy` filters the caller's custom headers per entry.
//! - `secure`: whether a leg's media is SRTP, and with which keys.

pub mod admission;
pub mod capacity;
pub mod entries;
pub mod header_policy;
pub mod rate;
pub mod registered;
pub mod secure;
