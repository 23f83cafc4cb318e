//! The hold queues, without I/O: per entry, its waiting calls in arrival
//! order, and how long its recently bridged calls waited.
//!
//! - A call *waits* while it hears hold music and is not with a room:
//!   state `held`, and `transferring` from hold (the app routed it, but
//!   until the room answers the caller still waits; if every target
//!   fails, it is still in its place). A call back on hold after a room
//!   (room hung up, `POST …/hold`) joins at the end: it was served once.
//! - Its position is 1-based among its entry's waiting calls, by arrival.
//!   Arrival numbers are kept in a `BTreeMap`, so joining and leaving are
//!   O(log n) and a position is O(position): a count of the calls ahead.
//! - The estimated wait (`estimate_wait`) follows Little's law: an entry
//!   with L calls waiting whose bridged calls waited W on average serves
//!   about L / W calls per unit of time, so the caller at position p is
//!   served in about p × W / L.
//!
//! The registry owns one `Queues` behind a lock; drivers tell it when
//! their call starts or stops waiting, the API and the announcements read
//! it. Per node: in a cluster each node queues its own calls. Times are
//! the process's monotonic clock: a queue is not saved across restarts
//! (a resumed call joins at the end).

use crate::call::CallId;
use crate::media::Wait;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

/// Bridged calls whose waits make an entry's average.
pub const RECENT: usize = 20;

/// Every entry's queue.
#[derive(Debug, Default)]
pub struct Queues {
    entries: HashMap<String, EntryQueue>,
    /// Where each waiting call is: its entry and arrival number.
    calls: HashMap<CallId, (String, u64)>,
    next: u64,
}

#[derive(Debug, Default)]
struct EntryQueue {
    /// Waiting calls by arrival number.
    waiting: BTreeMap<u64, (CallId, Instant)>,
    /// How long the last `RECENT` bridged calls waited, oldest first (ms).
    recent: VecDeque<u64>,
}

/// One entry's queue as `GET /v1/queues` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueView {
    pub entry: String,
    /// Calls waiting.
    pub held: usize,
    /// How long the first in line has waited (ms); null when none waits.
    pub oldest_wait_ms: Option<u64>,
    /// The mean wait of the last `RECENT` bridged calls (ms); null when
    /// none was bridged yet.
    pub average_wait_ms: Option<u64>,
    pub calls: Vec<QueuedCall>,
}

/// A waiting call in its queue.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueuedCall {
    pub call_id: String,
    pub position: u64,
    pub waited_ms: u64,
}

impl Queues {
    /// `call` of `entry` waits from `now`, at the end of its entry's
    /// queue; a call already waiting keeps its place.
    pub fn join(&mut self, call: &CallId, entry: &str, now: Instant) {
        if self.calls.contains_key(call) {
            return;
        }
        let n = self.next;
        self.next += 1;
        self.calls.insert(call.clone(), (entry.to_string(), n));
        let q = self.entries.entry(entry.to_string()).or_default();
        q.waiting.insert(n, (call.clone(), now));
    }

    /// `call` no longer waits; `bridged`: because a room answered, so its
    /// wait counts towards the entry's average.
    pub fn leave(&mut self, call: &CallId, now: Instant, bridged: bool) {
        let Some((entry, n)) = self.calls.remove(call) else {
            return;
        };
        let Some(q) = self.entries.get_mut(&entry) else {
            return;
        };
        if let Some((_, since)) = q.waiting.remove(&n)
            && bridged
        {
            if q.recent.len() >= RECENT {
                q.recent.pop_front();
            }
            q.recent
                .push_back(millis(now.saturating_duration_since(since)));
        }
    }

    /// `call`'s 1-based place in its entry's queue; None when it is not
    /// waiting.
    pub fn position(&self, call: &CallId) -> Option<u64> {
        let (entry, n) = self.calls.get(call)?;
        let q = self.entries.get(entry)?;
        Some(q.waiting.range(..*n).count() as u64 + 1)
    }

    /// Every waiting call's position, in one pass over the queues (a list
    /// of all calls asking `position` of each would cost n² steps).
    pub fn positions(&self) -> HashMap<CallId, u64> {
        let queues = self.entries.values();
        queues
            .flat_map(|q| q.waiting.values().zip(1..))
            .map(|((id, _), position)| (id.clone(), position))
            .collect()
    }

    /// `call`'s position and its estimated wait (see `estimate_wait`).
    pub fn place(&self, call: &CallId) -> Option<(u64, Option<Wait>)> {
        let position = self.position(call)?;
        let (entry, _) = self.calls.get(call)?;
        let q = self.entries.get(entry)?;
        let wait = estimate_wait(position, q.waiting.len() as u64, q.average());
        Some((position, wait))
    }

    /// Every entry that has had a waiting call, by name.
    pub fn views(&self, now: Instant) -> Vec<QueueView> {
        let mut views: Vec<QueueView> = self
            .entries
            .iter()
            .map(|(entry, q)| QueueView {
                entry: entry.clone(),
                held: q.waiting.len(),
                oldest_wait_ms: q
                    .waiting
                    .values()
                    .next()
                    .map(|(_, since)| millis(now.saturating_duration_since(*since))),
                average_wait_ms: q.average().map(millis),
                calls: q
                    .waiting
                    .values()
                    .zip(1..)
                    .map(|((id, since), position)| QueuedCall {
                        call_id: id.0.clone(),
                        position,
                        waited_ms: millis(now.saturating_duration_since(*since)),
                    })
                    .collect(),
            })
            .collect();
        views.sort_by(|a, b| a.entry.cmp(&b.entry));
        views
    }
}

impl EntryQueue {
    fn average(&self) -> Option<Duration> {
        let n = self.recent.len() as u64;
        (n > 0).then(|| Duration::from_millis(self.recent.iter().sum::<u64>() / n))
    }
}

/// The wait of the caller at `position` among `waiting` calls, when
/// bridged calls waited `average`: `position × average / waiting`
/// (Little's law), said as "less than one minute" under 60 s, else
/// "about N minutes" rounded to the nearest minute. None without an
/// average (nothing bridged yet: better silence than a guess).
pub fn estimate_wait(position: u64, waiting: u64, average: Option<Duration>) -> Option<Wait> {
    let average = average?;
    let waiting = waiting.max(position).max(1);
    let secs = average.as_secs_f64() * position as f64 / waiting as f64;
    if secs < 60.0 {
        return Some(Wait::UnderAMinute);
    }
    Some(Wait::AboutMinutes((secs / 60.0).round().max(1.0) as u64))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> CallId {
        CallId(s.into())
    }

    fn at(ms: u64) -> Instant {
        static BASE: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        *BASE.get_or_init(Instant::now) + Duration::from_millis(ms)
    }

    #[test]
    fn positions_follow_arrival_per_entry_and_close_up() {
        let mut q = Queues::default();
        q.join(&id("a"), "support", at(0));
        q.join(&id("x"), "sales", at(5));
        q.join(&id("b"), "support", at(10));
        q.join(&id("c"), "support", at(20));
        let pos = |q: &Queues, c| q.position(&id(c));
        assert_eq!(
            [pos(&q, "a"), pos(&q, "b"), pos(&q, "c"), pos(&q, "x")],
            [Some(1), Some(2), Some(3), Some(1)]
        );
        // Joining again (a transfer starting) keeps the place.
        q.join(&id("a"), "support", at(30));
        assert_eq!(pos(&q, "a"), Some(1));
        q.leave(&id("a"), at(40), true);
        assert_eq!(
            [pos(&q, "a"), pos(&q, "b"), pos(&q, "c")],
            [None, Some(1), Some(2)]
        );
        // Back on hold after a room: the end of the line.
        q.join(&id("a"), "support", at(50));
        assert_eq!(
            [pos(&q, "b"), pos(&q, "c"), pos(&q, "a")],
            [Some(1), Some(2), Some(3)]
        );
    }

    #[test]
    fn the_view_shows_waits_and_the_average_of_bridged_calls_only() {
        let mut q = Queues::default();
        q.join(&id("a"), "support", at(0));
        q.join(&id("b"), "support", at(1_000));
        q.join(&id("c"), "support", at(2_000));
        let v = &q.views(at(5_000))[0];
        assert_eq!(
            (v.held, v.oldest_wait_ms, v.average_wait_ms),
            (3, Some(5_000), None)
        );
        q.leave(&id("a"), at(60_000), true); // waited 60 s
        q.leave(&id("b"), at(61_000), false); // hung up: not counted
        q.leave(&id("c"), at(122_000), true); // waited 120 s
        q.join(&id("d"), "support", at(130_000));
        let v = &q.views(at(131_000))[0];
        assert_eq!(v.average_wait_ms, Some(90_000));
        assert_eq!(
            v.calls,
            [QueuedCall {
                call_id: "d".into(),
                position: 1,
                waited_ms: 1_000
            }]
        );
        assert_eq!(q.place(&id("d")), Some((1, Some(Wait::AboutMinutes(2)))));
        // Only the last RECENT bridged calls count.
        for i in 0..RECENT as u64 {
            q.join(&id(&format!("r{i}")), "support", at(200_000));
            q.leave(&id(&format!("r{i}")), at(210_000), true);
        }
        assert_eq!(q.views(at(210_000))[0].average_wait_ms, Some(10_000));
    }

    #[test]
    fn the_estimate_is_position_times_average_over_waiting() {
        let min = Duration::from_secs(60);
        assert_eq!(estimate_wait(1, 1, None), None);
        assert_eq!(estimate_wait(1, 4, Some(min * 2)), Some(Wait::UnderAMinute));
        assert_eq!(
            estimate_wait(2, 4, Some(min * 2)),
            Some(Wait::AboutMinutes(1))
        );
        assert_eq!(
            estimate_wait(4, 4, Some(min * 2)),
            Some(Wait::AboutMinutes(2))
        );
        assert_eq!(
            estimate_wait(3, 3, Some(min * 10)),
            Some(Wait::AboutMinutes(10))
        );
        // A position past the count (a race) counts as the last.
        assert_eq!(
            estimate_wait(5, 2, Some(min * 5)),
            Some(Wait::AboutMinutes(5))
        );
    }
}
