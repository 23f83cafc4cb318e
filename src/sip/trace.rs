//! A call's SIP ladder: every message of its legs, recorded at our own
//! send and receive points (ezk has no tap of its own), bounded, and
//! read back as `GET /v1/calls/{callId}/sip` shows it.
//!
//! - Cost on the call path: one mutex push of a `Bytes` clone (ezk's own
//!   buffer) and a few words of meta; no formatting. Parsing and masking
//!   (`trace_parse`) happen when someone reads the trace.
//! - Bounds: at most `MAX_MESSAGES` messages and `MAX_BYTES` bytes per
//!   call. The first `HEAD` messages (the call's setup) are always kept;
//!   after them the most recent ones are, older ones between being
//!   dropped (`Ladder::truncated`). Each message is kept up to its head
//!   plus `MAX_BODY` bytes of body.
//! - Order: by the time each message was received (the transport's
//!   timestamp) or handed to the transport, not by when we got round to
//!   recording it (an ACK waits in its leg's queue a moment).
//!
//! A leaf of `sip` but for `leg_state` (the transport names) and
//! `trace_parse`; with `[hep]` on, each message also goes to the node's
//! HEP sender (`crate::hep`), whole, from the same two points.

use super::leg_state::SipTransport;
use super::trace_parse;
use crate::hep::{Hep, SipCapture};
use bytes::Bytes;
use ezk_sip_core::transport::{MessageTpInfo, OutgoingParts, OutgoingResponse};
use ezk_sip_types::Name;
use ezk_sip_types::print::AppendCtx;
use serde::Serialize;
use std::collections::VecDeque;
use std::fmt::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// Most messages kept per call.
pub const MAX_MESSAGES: usize = 256;
/// The first messages of a call, always kept.
pub const HEAD: usize = 32;
/// Most bytes kept per call (all messages together).
pub const MAX_BYTES: usize = 256 * 1024;
/// Most body bytes kept and shown per message.
pub const MAX_BODY: usize = 4096;

/// Which of the call's legs a message belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TraceLeg {
    /// The caller's INVITE and its dialog.
    Caller,
    /// An INVITE we sent to a room, answered or not, and its dialog.
    Room,
}

/// As seen by pinless.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    In,
    Out,
}

/// One message as captured: raw bytes and where they went.
#[derive(Debug, Clone)]
struct Captured {
    at: SystemTime,
    leg: TraceLeg,
    direction: Direction,
    peer: SocketAddr,
    transport: SipTransport,
    bytes: Bytes,
    /// Only a prefix of the message was kept.
    cut: bool,
}

/// The bounded store behind a `Trace`.
#[derive(Debug, Default)]
struct Store {
    head: Vec<Captured>,
    tail: VecDeque<Captured>,
    bytes: usize,
    dropped: usize,
}

impl Store {
    fn push(&mut self, c: Captured) {
        self.bytes += c.bytes.len();
        if self.head.len() < HEAD {
            self.head.push(c);
            return;
        }
        self.tail.push_back(c);
        while self.head.len() + self.tail.len() > MAX_MESSAGES
            || (self.bytes > MAX_BYTES && self.tail.len() > 1)
        {
            let Some(old) = self.tail.pop_front() else {
                break;
            };
            self.bytes -= old.bytes.len();
            self.dropped += 1;
        }
    }
}

/// A call's SIP messages. Cheap to clone: clones share one store; each
/// clone records as the leg it was made for. One pointer wide, as every
/// leg carries one.
#[derive(Debug, Clone)]
pub struct Trace {
    inner: Arc<Recorder>,
}

/// The store, the leg a `Trace` records as, and the node's HEP sender
/// when `[hep]` is on (each message is then also sent there, whole).
#[derive(Debug)]
struct Recorder {
    store: Arc<Mutex<Store>>,
    leg: TraceLeg,
    hep: Option<Hep>,
}

impl Default for Trace {
    fn default() -> Self {
        Self::new()
    }
}

/// The trace as the API shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Ladder {
    /// Messages were dropped (between the first ones and the last ones).
    pub truncated: bool,
    /// How many.
    pub dropped_messages: usize,
    pub messages: Vec<LadderMessage>,
}

/// One message of the ladder.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LadderMessage {
    /// Unix ms.
    pub at: u64,
    pub leg: TraceLeg,
    pub direction: Direction,
    pub peer: SocketAddr,
    pub transport: SipTransport,
    pub start_line: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub body_truncated: bool,
}

impl Trace {
    /// A new trace, recording as the caller's leg.
    pub fn new() -> Self {
        Self::with_hep(None)
    }

    /// A new trace, recording as the caller's leg, whose messages also go
    /// to `hep`.
    pub fn with_hep(hep: Option<Hep>) -> Self {
        Self::of(Arc::default(), TraceLeg::Caller, hep)
    }

    fn of(store: Arc<Mutex<Store>>, leg: TraceLeg, hep: Option<Hep>) -> Self {
        Self {
            inner: Arc::new(Recorder { store, leg, hep }),
        }
    }

    /// The same trace, recording as a room leg.
    pub fn room(&self) -> Trace {
        let hep = self.inner.hep.clone();
        Self::of(self.inner.store.clone(), TraceLeg::Room, hep)
    }

    /// Whether both record into the same store (the same call).
    pub fn same(&self, other: &Trace) -> bool {
        Arc::ptr_eq(&self.inner.store, &other.inner.store)
    }

    /// A message received (request or response), as ezk's transport
    /// handed it over.
    pub(crate) fn received(&self, tp: &MessageTpInfo, transport: SipTransport) {
        // A stream transport's buffer shares the connection's read buffer:
        // copy it rather than keep that alive.
        let copy = transport != SipTransport::Udp;
        self.record(
            tp.timestamp,
            Direction::In,
            (tp.source, tp.transport.bound()),
            transport,
            &tp.buffer,
            copy,
        );
    }

    /// A message sent, printed into `parts.buffer` by ezk or `print`.
    pub(crate) fn sent(&self, at: SystemTime, parts: &OutgoingParts, transport: SipTransport) {
        self.record(
            at,
            Direction::Out,
            (parts.destination, parts.transport.bound()),
            transport,
            &parts.buffer,
            false,
        );
    }

    /// Keeps one message; `(peer, local)` are its two ends.
    fn record(
        &self,
        at: SystemTime,
        direction: Direction,
        (peer, local): (SocketAddr, SocketAddr),
        transport: SipTransport,
        bytes: &Bytes,
        copy: bool,
    ) {
        if bytes.is_empty() {
            return; // not printed: it was never sent
        }
        if let Some(hep) = &self.inner.hep {
            let (src, dst) = match direction {
                Direction::In => (peer, local),
                Direction::Out => (local, peer),
            };
            hep.sip(SipCapture {
                at,
                tcp: transport != SipTransport::Udp,
                src,
                dst,
                message: bytes.clone(),
            });
        }
        let keep = kept_len(bytes);
        let cut = keep < bytes.len();
        let bytes = if copy || cut {
            Bytes::copy_from_slice(&bytes[..keep])
        } else {
            bytes.clone()
        };
        let c = Captured {
            at,
            leg: self.inner.leg,
            direction,
            peer,
            transport,
            bytes,
            cut,
        };
        self.inner
            .store
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(c);
    }

    /// The messages, parsed and masked, in the order they were sent or
    /// received.
    pub fn ladder(&self) -> Ladder {
        let (mut head, mut tail, dropped) = {
            let s = self.inner.store.lock().unwrap_or_else(|e| e.into_inner());
            (s.head.clone(), Vec::from(s.tail.clone()), s.dropped)
        };
        // Stable: messages of one instant keep the order they were recorded.
        head.sort_by_key(|c| c.at);
        tail.sort_by_key(|c| c.at);
        let messages = head
            .iter()
            .chain(tail.iter())
            .map(|c| {
                let p = trace_parse::parse(&c.bytes, MAX_BODY, c.cut);
                LadderMessage {
                    at: unix_ms(c.at),
                    leg: c.leg,
                    direction: c.direction,
                    peer: c.peer,
                    transport: c.transport,
                    start_line: p.start_line,
                    headers: p.headers,
                    body: p.body,
                    body_truncated: p.body_truncated,
                }
            })
            .collect();
        Ladder {
            truncated: dropped > 0,
            dropped_messages: dropped,
            messages,
        }
    }
}

/// How much of a message is kept: its head and `MAX_BODY` of its body
/// (and never more than a head's worth plus that, in case it has no
/// empty line).
fn kept_len(bytes: &[u8]) -> usize {
    const MAX_HEAD: usize = 16 * 1024;
    let head_end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
        .unwrap_or(bytes.len());
    (head_end.min(MAX_HEAD) + MAX_BODY).min(bytes.len())
}

fn unix_ms(at: SystemTime) -> u64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A trace and the transport of the message at hand: what the code
/// that answers a request needs to record both.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tap<'a> {
    pub trace: &'a Trace,
    pub transport: SipTransport,
}

impl Tap<'_> {
    pub(crate) fn received(&self, tp: &MessageTpInfo) {
        self.trace.received(tp, self.transport);
    }

    pub(crate) fn sent(&self, at: SystemTime, parts: &OutgoingParts) {
        self.trace.sent(at, parts, self.transport);
    }
}

/// Traces of INVITEs we just challenged (401/407), by Call-ID, so that
/// the retry with credentials (same Call-ID, RFC 3261 §22.2) continues the
/// ladder that shows the challenge. Bounded in time and number: a flood of
/// unanswered challenges cannot grow it.
#[derive(Default)]
pub(crate) struct Challenged {
    map: dashmap::DashMap<String, (Trace, Instant)>,
}

/// How long a challenged INVITE's trace waits for the retry.
const CHALLENGE_KEPT: Duration = Duration::from_secs(32);
/// Most challenged traces waiting at once.
const CHALLENGED_MAX: usize = 4096;

impl Challenged {
    /// Keeps `trace` for a retry of `call_id`.
    pub(crate) fn keep(&self, call_id: &str, trace: Trace) {
        if self.map.len() >= CHALLENGED_MAX {
            self.map.retain(|_, (_, at)| at.elapsed() < CHALLENGE_KEPT);
            if self.map.len() >= CHALLENGED_MAX {
                return;
            }
        }
        self.map
            .insert(call_id.to_string(), (trace, Instant::now()));
    }

    /// The trace of an earlier challenged INVITE of `call_id`, if recent.
    pub(crate) fn take(&self, call_id: &str) -> Option<Trace> {
        let (_, (trace, at)) = self.map.remove(call_id)?;
        (at.elapsed() < CHALLENGE_KEPT).then_some(trace)
    }
}

/// Prints `response` into its buffer exactly as ezk would when sending
/// it, for the responses ezk's transactions take by value (and keep): the
/// transaction then sends these very bytes, and the trace has them.
pub(crate) fn print(response: &mut OutgoingResponse) {
    if !response.parts.buffer.is_empty() {
        return;
    }
    let msg = &mut response.msg;
    msg.headers
        .insert(Name::CONTENT_LENGTH, msg.body.len().to_string());
    let mut text = String::new();
    if write!(
        text,
        "{}\r\n{}\r\n",
        msg.line.default_print_ctx(),
        msg.headers
    )
    .is_err()
    {
        // Left empty: ezk prints (and fails) the same way on sending.
        return;
    }
    let mut buffer = text.into_bytes();
    buffer.extend_from_slice(&msg.body);
    response.parts.buffer = Bytes::from(buffer);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(n: usize, size: usize) -> Captured {
        let mut text =
            format!("OPTIONS sip:{n}@x SIP/2.0\r\nCSeq: {n} OPTIONS\r\n\r\n").into_bytes();
        text.resize(text.len().max(size), b'x');
        Captured {
            at: SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(n as u64),
            leg: TraceLeg::Caller,
            direction: Direction::In,
            peer: "127.0.0.1:5060".parse().unwrap(),
            transport: SipTransport::Udp,
            bytes: Bytes::from(text),
            cut: false,
        }
    }

    fn trace_with(store: Store) -> Trace {
        Trace::of(Arc::new(Mutex::new(store)), TraceLeg::Caller, None)
    }

    #[test]
    fn many_messages_keep_the_first_and_the_last() {
        let mut s = Store::default();
        for n in 0..1000 {
            s.push(msg(n, 0));
        }
        let ladder = trace_with(s).ladder();
        assert!(ladder.truncated);
        assert_eq!(ladder.messages.len(), MAX_MESSAGES);
        assert_eq!(ladder.dropped_messages, 1000 - MAX_MESSAGES);
        let cseq = |i: usize| ladder.messages[i].headers[0].1.clone();
        assert_eq!(cseq(0), "0 OPTIONS");
        assert_eq!(cseq(HEAD - 1), format!("{} OPTIONS", HEAD - 1));
        // Then the most recent ones, in order.
        assert_eq!(
            cseq(HEAD),
            format!("{} OPTIONS", 1000 - (MAX_MESSAGES - HEAD))
        );
        assert_eq!(cseq(MAX_MESSAGES - 1), "999 OPTIONS");
    }

    #[test]
    fn few_messages_are_all_kept() {
        let mut s = Store::default();
        for n in 0..40 {
            s.push(msg(n, 0));
        }
        let ladder = trace_with(s).ladder();
        assert!(!ladder.truncated);
        assert_eq!(ladder.messages.len(), 40);
    }

    #[test]
    fn bytes_are_bounded_too() {
        let mut s = Store::default();
        for n in 0..200 {
            s.push(msg(n, 4000));
        }
        assert!(s.bytes <= MAX_BYTES + 4000);
        let ladder = trace_with(s).ladder();
        assert!(ladder.truncated);
        assert!(ladder.messages.len() < 200);
    }

    #[test]
    fn a_long_body_is_cut_when_recorded() {
        let t = Trace::new();
        let mut raw = b"SIP/2.0 200 OK\r\nCSeq: 1 INFO\r\n\r\n".to_vec();
        raw.extend(std::iter::repeat_n(b'y', 10_000));
        let tp_peer: SocketAddr = "127.0.0.1:5070".parse().unwrap();
        t.room().record(
            SystemTime::now(),
            Direction::In,
            (tp_peer, "127.0.0.1:5060".parse().unwrap()),
            SipTransport::Tcp,
            &Bytes::from(raw),
            true,
        );
        let ladder = t.ladder();
        let m = &ladder.messages[0];
        assert_eq!(m.leg, TraceLeg::Room);
        assert_eq!(m.body.len(), MAX_BODY);
        assert!(m.body_truncated);
        let json = serde_json::to_value(&ladder).unwrap();
        assert_eq!(json["messages"][0]["transport"], "tcp");
        assert_eq!(json["messages"][0]["direction"], "in");
        assert_eq!(json["messages"][0]["peer"], "127.0.0.1:5070");
        assert_eq!(json["messages"][0]["startLine"], "SIP/2.0 200 OK");
        assert_eq!(json["messages"][0]["bodyTruncated"], true);
    }
}
