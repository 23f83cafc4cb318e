//! The node's live feed of call events, for `GET /v1/events`: every
//! published timeline entry of every call (the events webhook's JSON),
//! each with an id, in the order the calls published them. The last
//! `WINDOW` events are kept, so that a client that reconnects with
//! `Last-Event-ID` gets what it missed, if it was not too long ago.
//!
//! Ids are `<boot>-<seq>`: the node's start time (Unix ms) and a counter.
//! An id of an earlier run of the node, or one older than the window, is
//! told apart from a recent one, so the client learns it missed events.

use crate::call::machine::Event;
use crate::webhook::messages;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::{broadcast, watch};

/// Events kept for clients that reconnect (about 1.5 MB).
pub const WINDOW: usize = 4096;
/// Events a live subscriber may fall behind by before it is cut off (it
/// then reconnects and catches up from the window).
const LAG: usize = 1024;

/// One event of the feed.
#[derive(Debug)]
pub struct FeedEvent {
    pub seq: u64,
    /// `<boot>-<seq>`.
    pub id: String,
    pub call_id: String,
    /// The events webhook's JSON body.
    pub json: String,
}

/// Where a subscriber starts, and the events it missed.
pub struct Subscription {
    /// Events after the client's `Last-Event-ID`: none without an id (a
    /// new client starts from now), the whole window for an unknown one
    /// (then `gap` is set).
    pub backlog: Vec<Arc<FeedEvent>>,
    /// The id the client gave could not be found: it is of an earlier run
    /// of the node, older than the window, or not an id of ours.
    pub gap: bool,
    /// Later events, live.
    pub live: broadcast::Receiver<Arc<FeedEvent>>,
    /// Becomes true when the node stops: the stream then ends.
    pub closed: watch::Receiver<bool>,
}

/// The feed. Shared by the call drivers (publishing) and the API.
pub struct EventFeed {
    boot: u64,
    ring: Mutex<Ring>,
    tx: broadcast::Sender<Arc<FeedEvent>>,
    closed: watch::Sender<bool>,
}

#[derive(Default)]
struct Ring {
    next_seq: u64,
    events: VecDeque<Arc<FeedEvent>>,
}

impl EventFeed {
    /// A feed for a node started at `boot` (Unix ms).
    pub fn new(boot: u64) -> EventFeed {
        let (tx, _) = broadcast::channel(LAG);
        EventFeed {
            boot,
            ring: Mutex::new(Ring {
                next_seq: 1,
                events: VecDeque::new(),
            }),
            tx,
            closed: watch::Sender::new(false),
        }
    }

    /// Adds the published ones among `events` of one call.
    pub fn publish(&self, call_id: &str, call_domain: &str, events: &[Event]) {
        let mut ring = self.ring.lock().unwrap_or_else(PoisonError::into_inner);
        for e in events.iter().filter(|e| e.event.published()) {
            let body = messages::call_event(e.event.name(), e.at, call_id, call_domain, &e.detail);
            let seq = ring.next_seq;
            ring.next_seq += 1;
            let event = Arc::new(FeedEvent {
                seq,
                id: format!("{}-{seq}", self.boot),
                call_id: call_id.to_string(),
                // The body is built by serde_json: always UTF-8.
                json: String::from_utf8_lossy(&body).into_owned(),
            });
            if ring.events.len() == WINDOW {
                ring.events.pop_front();
            }
            ring.events.push_back(event.clone());
            // No subscriber is not an error.
            let _ = self.tx.send(event);
        }
    }

    /// Subscribes from after `last_id` (a client's `Last-Event-ID`).
    /// Taken under the ring's lock, so no event is missed or doubled
    /// between the backlog and the live part.
    pub fn subscribe(&self, last_id: Option<&str>) -> Subscription {
        let ring = self.ring.lock().unwrap_or_else(PoisonError::into_inner);
        let live = self.tx.subscribe();
        let oldest = ring.events.front().map_or(ring.next_seq, |e| e.seq);
        let after = last_id.map(|id| self.seq_of(id));
        let (from, gap) = match after {
            None => (ring.next_seq, false),
            // Everything after it is still here (or nothing came since).
            Some(Some(seq)) if seq.saturating_add(1) >= oldest && seq < ring.next_seq => {
                (seq + 1, false)
            }
            Some(_) => (oldest, true),
        };
        let backlog = ring
            .events
            .iter()
            .filter(|e| e.seq >= from)
            .cloned()
            .collect();
        Subscription {
            backlog,
            gap,
            live,
            closed: self.closed.subscribe(),
        }
    }

    /// The node stops: every stream ends (so that the HTTP server's
    /// graceful stop does not wait for them forever).
    pub fn close(&self) {
        self.closed.send_replace(true);
    }

    /// The sequence number in `id`, if it is an id of this run.
    fn seq_of(&self, id: &str) -> Option<u64> {
        let (boot, seq) = id.trim().split_once('-')?;
        if boot.parse::<u64>().ok()? != self.boot {
            return None;
        }
        seq.parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::machine::steps::EventKind;
    use serde_json::Value;

    fn events(kinds: &[EventKind]) -> Vec<Event> {
        kinds
            .iter()
            .map(|k| Event {
                at: 1,
                event: *k,
                detail: Value::Null,
            })
            .collect()
    }

    #[test]
    fn a_reconnect_gets_what_it_missed_and_only_that() {
        let feed = EventFeed::new(77);
        feed.publish(
            "c1",
            "d",
            &events(&[EventKind::Held, EventKind::WebhookAttempt]),
        );
        // A new client starts from now.
        assert!(feed.subscribe(None).backlog.is_empty());
        let first = feed.subscribe(Some("77-0"));
        assert_eq!(first.backlog.len(), 1, "unpublished kinds stay out");
        let seen = first.backlog[0].id.clone();
        assert_eq!(seen, "77-1");
        feed.publish("c1", "d", &events(&[EventKind::Bridged, EventKind::Ended]));
        let again = feed.subscribe(Some(&seen));
        assert!(!again.gap);
        let ids: Vec<&str> = again.backlog.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["77-2", "77-3"]);
        assert!(again.backlog[0].json.contains("\"type\":\"call.bridged\""));
        // Up to date: nothing to replay.
        let current = feed.subscribe(Some("77-3"));
        assert!(current.backlog.is_empty() && !current.gap);
    }

    #[test]
    fn an_id_of_another_run_or_too_old_is_a_gap() {
        let feed = EventFeed::new(5);
        for _ in 0..WINDOW + 10 {
            feed.publish("c", "d", &events(&[EventKind::Held]));
        }
        for stale in ["4-3", "5-3", "junk", "5-999999", "5-18446744073709551615"] {
            let s = feed.subscribe(Some(stale));
            assert!(s.gap, "{stale}");
            assert_eq!(s.backlog.len(), WINDOW, "{stale}");
        }
        let recent = feed.subscribe(Some(&format!("5-{}", WINDOW + 5)));
        assert!(!recent.gap);
        assert_eq!(recent.backlog.len(), 5);
    }

    #[tokio::test]
    async fn live_events_follow_the_backlog() {
        let feed = EventFeed::new(1);
        let mut s = feed.subscribe(None);
        feed.publish("c", "d", &events(&[EventKind::Held]));
        let e = s.live.recv().await.unwrap();
        assert_eq!(e.seq, 1);
        feed.close();
        assert!(*s.closed.borrow_and_update());
    }
}
