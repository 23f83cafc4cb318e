//! Dead peers (`[media] rtp_timeout_secs`, issue 11): a leg whose SDP says
//! it sends and from which nothing (RTP, or RTCP multiplexed on the port
//! or on port + 1) arrives for the timeout is reported, once, so the call ends with reason
//! `rtp_timeout`: a caller that vanished without a BYE must not hold a
//! port, a room leg and `max_calls` capacity for ever.
//!
//! No timer per call: a call's media task only raises a flag per packet
//! (one relaxed store, on the path it runs anyway), and one sweep per
//! shard, on the shard's thread, looks at each of its calls a few times
//! per timeout. The sweep notes when it saw a flag raised, so a report
//! comes at least `timeout` after the last packet (never early) and at
//! most two sweep periods late.
//! Time is the monotonic clock's: a wall clock stepped by NTP must neither
//! end calls nor spare them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// One leg of a call, as media sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaLeg {
    /// The caller's leg (held or bridged).
    Caller,
    /// The room's leg (bridged only).
    Room,
}

/// One call's liveness flags, shared by its media task and the sweep.
#[derive(Debug)]
pub(super) struct Liveness {
    caller: LegFlags,
    room: LegFlags,
    /// A room leg is up (bridged): only then is the room's silence looked at.
    bridged: AtomicBool,
}

#[derive(Debug)]
struct LegFlags {
    /// Something arrived since the sweep last looked.
    heard: AtomicBool,
    /// The peer's SDP says it sends.
    sends: AtomicBool,
}

impl LegFlags {
    fn new(sends: bool) -> Self {
        LegFlags {
            heard: AtomicBool::new(true),
            sends: AtomicBool::new(sends),
        }
    }
}

impl Liveness {
    /// A call whose caller leg is up (and, when `room` is given, whose room
    /// leg too, saying whether it sends); both count as heard now.
    pub fn new(caller_sends: bool, room: Option<bool>) -> Self {
        Liveness {
            caller: LegFlags::new(caller_sends),
            room: LegFlags::new(room.unwrap_or(false)),
            bridged: AtomicBool::new(room.is_some()),
        }
    }

    fn leg(&self, leg: MediaLeg) -> &LegFlags {
        match leg {
            MediaLeg::Caller => &self.caller,
            MediaLeg::Room => &self.room,
        }
    }

    /// A packet came from `leg`'s peer.
    pub fn heard(&self, leg: MediaLeg) {
        self.leg(leg).heard.store(true, Ordering::Relaxed);
    }

    /// `leg`'s peer now does (or does not) send. Counts as heard: the
    /// timeout runs from the change.
    pub fn set_sends(&self, leg: MediaLeg, sends: bool) {
        let l = self.leg(leg);
        l.sends.store(sends, Ordering::Relaxed);
        l.heard.store(true, Ordering::Relaxed);
    }

    /// A room leg is up (`Some(sends)`) or gone (`None`). A new room gets
    /// a whole timeout from now.
    pub fn set_room(&self, room: Option<bool>) {
        if let Some(sends) = room {
            self.set_sends(MediaLeg::Room, sends);
        }
        self.bridged.store(room.is_some(), Ordering::Relaxed);
    }

    pub fn sends(&self, leg: MediaLeg) -> bool {
        self.leg(leg).sends.load(Ordering::Relaxed)
    }
}

/// What the sweep keeps per call.
struct Tracked {
    call: Weak<Liveness>,
    caller_last: Instant,
    room_last: Instant,
    report: oneshot::Sender<MediaLeg>,
}

/// The engine's sweep over every call's liveness.
#[derive(Default)]
pub(super) struct Sweep {
    calls: Mutex<Vec<Tracked>>,
}

impl Sweep {
    /// How often the sweep looks, for a timeout: a quarter of it, within
    /// 100 ms and 1 s (a 30 s timeout costs a look per second).
    pub fn period(timeout: Duration) -> Duration {
        (timeout / 4).clamp(Duration::from_millis(100), Duration::from_secs(1))
    }

    /// Watches `call` until its media task lets go of it; `report` gets
    /// the first leg found silent.
    pub fn watch(&self, call: &Arc<Liveness>, report: oneshot::Sender<MediaLeg>, now: Instant) {
        let tracked = Tracked {
            call: Arc::downgrade(call),
            caller_last: now,
            room_last: now,
            report,
        };
        self.calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(tracked);
    }

    /// One look at every call at `now`: a leg silent for `timeout` is
    /// reported and its call no longer watched; calls whose media ended
    /// are dropped.
    pub fn check(&self, now: Instant, timeout: Duration) {
        let mut calls = self.calls.lock().unwrap_or_else(PoisonError::into_inner);
        let mut i = 0;
        while i < calls.len() {
            let t = &mut calls[i];
            let silent = match t.call.upgrade() {
                None => None,
                Some(call) => {
                    if call.caller.heard.swap(false, Ordering::Relaxed) {
                        t.caller_last = now;
                    }
                    if call.room.heard.swap(false, Ordering::Relaxed) {
                        t.room_last = now;
                    }
                    let quiet = |last: Instant| now.saturating_duration_since(last) >= timeout;
                    let bridged = call.bridged.load(Ordering::Relaxed);
                    if call.sends(MediaLeg::Caller) && quiet(t.caller_last) {
                        Some(Some(MediaLeg::Caller))
                    } else if bridged && call.sends(MediaLeg::Room) && quiet(t.room_last) {
                        Some(Some(MediaLeg::Room))
                    } else if t.report.is_closed() {
                        // Nobody listens (the handle is gone): stop watching.
                        None
                    } else {
                        Some(None)
                    }
                }
            };
            match silent {
                Some(None) => i += 1,
                Some(Some(leg)) => {
                    let t = calls.swap_remove(i);
                    let _ = t.report.send(leg);
                }
                None => {
                    calls.swap_remove(i);
                }
            }
        }
    }

    /// Looks every `period(timeout)` for as long as its shard runs.
    pub async fn run(self: Arc<Self>, timeout: Duration) {
        let mut tick = tokio::time::interval(Self::period(timeout));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.check(Instant::now(), timeout);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(30);

    fn watched(sweep: &Sweep, call: &Arc<Liveness>, t0: Instant) -> oneshot::Receiver<MediaLeg> {
        let (tx, rx) = oneshot::channel();
        sweep.watch(call, tx, t0);
        rx
    }

    fn secs(t0: Instant, s: u64) -> Instant {
        t0 + Duration::from_secs(s)
    }

    #[test]
    fn a_caller_that_keeps_sending_is_never_reported() {
        let (sweep, t0) = (Sweep::default(), Instant::now());
        let call = Arc::new(Liveness::new(true, None));
        let mut rx = watched(&sweep, &call, t0);
        for s in 1..=120 {
            call.heard(MediaLeg::Caller);
            sweep.check(secs(t0, s), TIMEOUT);
        }
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn a_silent_caller_is_reported_once_after_the_timeout_never_before() {
        let (sweep, t0) = (Sweep::default(), Instant::now());
        let call = Arc::new(Liveness::new(true, None));
        let mut rx = watched(&sweep, &call, t0);
        call.heard(MediaLeg::Caller);
        sweep.check(secs(t0, 5), TIMEOUT);
        sweep.check(secs(t0, 34), TIMEOUT);
        assert!(rx.try_recv().is_err(), "29 s after the last packet");
        sweep.check(secs(t0, 35), TIMEOUT);
        assert_eq!(rx.try_recv(), Ok(MediaLeg::Caller));
        assert!(sweep.calls.lock().unwrap().is_empty(), "reported once");
    }

    #[test]
    fn a_leg_that_does_not_send_is_not_held_to_the_timeout() {
        let (sweep, t0) = (Sweep::default(), Instant::now());
        let call = Arc::new(Liveness::new(false, None));
        let mut rx = watched(&sweep, &call, t0);
        sweep.check(secs(t0, 100), TIMEOUT);
        assert!(rx.try_recv().is_err());
        // It starts sending (a re-INVITE): the timeout runs from then.
        call.set_sends(MediaLeg::Caller, true);
        sweep.check(secs(t0, 101), TIMEOUT);
        sweep.check(secs(t0, 130), TIMEOUT);
        assert!(rx.try_recv().is_err());
        sweep.check(secs(t0, 131), TIMEOUT);
        assert_eq!(rx.try_recv(), Ok(MediaLeg::Caller));
    }

    #[test]
    fn a_silent_room_is_reported_only_while_bridged() {
        let (sweep, t0) = (Sweep::default(), Instant::now());
        let call = Arc::new(Liveness::new(true, None));
        let mut rx = watched(&sweep, &call, t0);
        let talk = |s: u64| {
            call.heard(MediaLeg::Caller);
            sweep.check(secs(t0, s), TIMEOUT);
        };
        talk(10);
        call.set_room(Some(true));
        talk(20);
        call.set_room(None);
        for s in 21..=80 {
            talk(s);
        }
        assert!(rx.try_recv().is_err(), "no room, no room timeout");
        call.set_room(Some(true));
        for s in 81..=110 {
            talk(s);
        }
        assert!(rx.try_recv().is_err(), "a new room gets a whole timeout");
        talk(111);
        assert_eq!(rx.try_recv(), Ok(MediaLeg::Room));
    }

    #[test]
    fn calls_whose_media_ended_are_let_go() {
        let (sweep, t0) = (Sweep::default(), Instant::now());
        let call = Arc::new(Liveness::new(true, None));
        let _rx = watched(&sweep, &call, t0);
        let other = Arc::new(Liveness::new(true, None));
        drop(watched(&sweep, &other, t0));
        drop(call);
        sweep.check(secs(t0, 1), TIMEOUT);
        assert!(sweep.calls.lock().unwrap().is_empty());
    }

    #[test]
    fn the_sweep_looks_a_few_times_per_timeout() {
        assert_eq!(
            Sweep::period(Duration::from_secs(30)),
            Duration::from_secs(1)
        );
        assert_eq!(
            Sweep::period(Duration::from_secs(2)),
            Duration::from_millis(500)
        );
        assert_eq!(
            Sweep::period(Duration::from_secs(1)),
            Duration::from_millis(250)
        );
        assert_eq!(
            Sweep::period(Duration::from_millis(1)),
            Duration::from_millis(100)
        );
    }
}
