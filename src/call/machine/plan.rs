//! One transfer request as it is carried out, without I/O: the targets in
//! turn, a room that is not ready yet (404/408/480/5xx or no answer) tried
//! again with backoff, all within a deadline. The update that started it
//! answered 200 long ago; absorbing the room's readiness race is ours.

use crate::clock::Instant;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How the caller is moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// pinless INVITEs the room and relays media (B2BUA).
    Bridge,
    /// pinless asks the caller's side to call the room itself (REFER),
    /// and falls back to the bridge when that is refused or fails.
    Refer,
}

/// What an update asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferRequest {
    /// Tried in order; never empty. For a stream, its one entry is the
    /// URL as shown (without query): the full URL is in `stream`.
    pub targets: Vec<String>,
    /// The update's own headers, added after the caller's.
    pub headers: Vec<(String, String)>,
    pub mode: Mode,
    /// A voice bot over WebSocket instead of a SIP room (`streamUrl`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    // Boxed: requests travel in `Input`s, most of which are small.
    pub stream: Option<Box<StreamTarget>>,
    /// The update's `mediaEncryption`: `require` makes the room leg SRTP
    /// whatever the URI's scheme (see `secure`); None or `disable`, SRTP
    /// for `sips:` URIs only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_encryption: Option<crate::config::MediaEncryption>,
    /// The update's `record`: record the call from this transfer's bridge
    /// on (true) or no longer (false); None leaves it as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<bool>,
}

/// A voice bot to stream the caller to (Twilio Media Streams).
///
/// Saved calls (pinless.db) keep only the URL as shown: its query and
/// user info, `streamParameters` and `streamHeaders` may hold the bot's
/// credentials, and a stream does not outlive the process anyway (a
/// restart abandons it). Read back, a target is `restored` and cannot be
/// connected again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamTarget {
    /// `ws://` or `wss://`, query included (it may carry the bot's token).
    #[serde(serialize_with = "shown_url")]
    pub url: String,
    /// `streamParameters`: added to the `start` message's `customParameters`.
    #[serde(skip)]
    pub parameters: Vec<(String, String)>,
    /// `streamHeaders`: sent on the WebSocket handshake.
    #[serde(skip)]
    pub headers: Vec<(String, String)>,
    /// Read back from a saved call: the secret parts above are gone.
    #[serde(skip_serializing, default = "read_back")]
    pub restored: bool,
}

/// Writes a stream URL without its query or user info.
fn shown_url<S: serde::Serializer>(url: &str, s: S) -> Result<S::Ok, S::Error> {
    let shown = crate::stream::StreamUrl::parse(url)
        .map(|u| u.shown())
        .unwrap_or_default();
    s.serialize_str(&shown)
}

fn read_back() -> bool {
    true
}

impl TransferRequest {
    /// Whether `other` asks for what this request asked for. A stream
    /// request read back from a saved call has lost its secret parts: its
    /// shown URL is all that is left to compare.
    pub fn same_as(&self, other: &TransferRequest) -> bool {
        match (&self.stream, &other.stream) {
            (Some(mine), Some(theirs)) if mine.restored || theirs.restored => {
                self.targets == other.targets && self.mode == other.mode
            }
            _ => self == other,
        }
    }
}

/// First wait after every target has failed once, doubled up to `MAX_BACKOFF`.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// What to do after an attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Try this target now.
    Try(String),
    /// Every target failed this round: wait, then start over.
    Wait(Duration),
    /// No target is left, or the deadline has passed.
    GiveUp(&'static str),
}

/// A transfer under way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub request: TransferRequest,
    /// Targets still worth trying (a hard refusal like 486 or 603 removes one).
    live: Vec<String>,
    /// Index in `live` of the target being tried.
    index: usize,
    /// After this no new attempt starts.
    pub deadline: Instant,
    backoff: Duration,
    /// Attempts made under this plan.
    pub attempts: u32,
    /// REFER was tried (or is not wanted): the next attempt is a bridge.
    pub refer_done: bool,
    /// When the backoff under way ends (waiting for a timer rather than
    /// for a room).
    pub retry_at: Option<Instant>,
}

/// SIP answers that mean "not ready yet" rather than "no".
pub fn retryable(code: Option<u16>) -> bool {
    match code {
        None => true,
        Some(c) => matches!(c, 404 | 408 | 480 | 500 | 502 | 503 | 504),
    }
}

impl Plan {
    pub fn new(request: TransferRequest, now: Instant, timeout: Duration) -> Plan {
        Plan {
            live: request.targets.clone(),
            refer_done: request.mode == Mode::Bridge,
            request,
            index: 0,
            deadline: now + timeout,
            backoff: FIRST_BACKOFF,
            attempts: 0,
            retry_at: None,
        }
    }

    /// The target being tried (or about to be).
    pub fn current(&self) -> &str {
        self.live
            .get(self.index)
            .or(self.request.targets.first())
            .map(String::as_str)
            .unwrap_or("")
    }

    /// How long the next room may ring: what is left before the deadline,
    /// at most `cap`, at least one second.
    pub fn ring_timeout(&self, now: Instant, cap: Duration) -> Duration {
        let left = self.deadline.since(now);
        left.min(cap).max(Duration::from_secs(1))
    }

    /// The attempt at `current()` failed with `code` at `now`.
    pub fn failed(&mut self, code: Option<u16>, now: Instant) -> Next {
        // A bot's server that is starting, or whose token is not valid
        // yet, answers anything: every failure is "not ready yet".
        let again = retryable(code) || self.request.stream.is_some();
        self.next(again, now)
    }

    /// The attempt at `current()` cannot work however often it is made
    /// (a stream whose URL or headers cannot be sent): it is dropped.
    pub fn unusable(&mut self, now: Instant) -> Next {
        self.next(false, now)
    }

    fn next(&mut self, again: bool, now: Instant) -> Next {
        if again {
            self.index += 1;
        } else if self.index < self.live.len() {
            self.live.remove(self.index);
        }
        if self.live.is_empty() {
            return Next::GiveUp("every target refused the call");
        }
        if now >= self.deadline {
            return Next::GiveUp("transfer_timeout_secs reached");
        }
        if self.index < self.live.len() {
            return Next::Try(self.live[self.index].clone());
        }
        self.index = 0;
        let wait = self.backoff;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        if now + wait >= self.deadline {
            return Next::GiveUp("transfer_timeout_secs reached");
        }
        self.retry_at = Some(now + wait);
        Next::Wait(wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    fn plan(targets: &[&str]) -> Plan {
        Plan::new(
            TransferRequest {
                targets: targets.iter().map(|t| t.to_string()).collect(),
                headers: vec![],
                mode: Mode::Bridge,
                stream: None,
                media_encryption: None,
                record: None,
            },
            at(0),
            Duration::from_secs(30),
        )
    }

    #[test]
    fn a_room_not_ready_is_retried_with_growing_backoff() {
        let mut p = plan(&["sip:a@r"]);
        assert_eq!(
            p.failed(Some(480), at(10)),
            Next::Wait(Duration::from_millis(250))
        );
        assert_eq!(p.current(), "sip:a@r");
        assert_eq!(
            p.failed(Some(404), at(300)),
            Next::Wait(Duration::from_millis(500))
        );
        assert_eq!(p.failed(None, at(900)), Next::Wait(Duration::from_secs(1)));
        assert_eq!(
            p.failed(Some(503), at(2000)),
            Next::Wait(Duration::from_secs(2))
        );
        assert_eq!(
            p.failed(Some(503), at(4100)),
            Next::Wait(Duration::from_secs(2))
        );
        assert_eq!(
            p.failed(Some(408), at(28_500)),
            Next::GiveUp("transfer_timeout_secs reached")
        );
    }

    #[test]
    fn targets_are_tried_in_turn_and_a_hard_no_removes_one() {
        let mut p = plan(&["sip:a@r", "sip:b@r", "sip:c@r"]);
        assert_eq!(p.failed(Some(480), at(1)), Next::Try("sip:b@r".into()));
        assert_eq!(p.failed(Some(486), at(2)), Next::Try("sip:c@r".into()));
        assert!(matches!(p.failed(Some(503), at(3)), Next::Wait(_)));
        assert_eq!(p.current(), "sip:a@r");
        assert_eq!(p.failed(Some(603), at(300)), Next::Try("sip:c@r".into()));
        assert_eq!(
            p.failed(Some(403), at(301)),
            Next::GiveUp("every target refused the call")
        );
    }

    #[test]
    fn ring_timeout_is_bounded_by_the_deadline() {
        let p = plan(&["sip:a@r"]);
        let cap = Duration::from_secs(20);
        assert_eq!(p.ring_timeout(at(0), cap), cap);
        assert_eq!(p.ring_timeout(at(25_000), cap), Duration::from_secs(5));
        assert_eq!(p.ring_timeout(at(40_000), cap), Duration::from_secs(1));
    }
}
