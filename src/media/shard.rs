//! A media shard: one OS thread ("pinless-media-N") running a
//! current-thread tokio runtime that owns a share of the node's calls:
//! their sockets (both legs of a call are registered on this thread's
//! reactor, since the room's socket is attached inside the call's task),
//! the hold music of the held ones and the relay of the bridged ones.
//! Nothing of a call crosses threads after it is placed, so shards scale
//! like separate processes without being ones (rtpengine's poller per
//! thread, webrtc-rs's pool of current-thread runtimes).
//!
//! An idle shard (no call at all) does not tick: it waits for a pacer
//! command, which every new call on it sends, so idle shards cost nothing
//! on a many-core machine (about 2 % of a core each when they ticked).
//!
//! One tick per shard, no timer per call: a task that waits for each 1 ms
//! slot deadline (absolute, so lateness never accumulates), applies the
//! pacer commands that came in meanwhile, sends the slot's music and feeds
//! the shard's load gauge. It waits on a periodic timerfd registered on
//! the shard's own reactor, not on tokio's timer: tokio parks for whole
//! milliseconds counted from a floored "now", so each wake-up lands up to
//! 1 ms after the deadline, by an amount that drifts from tick to tick —
//! measured, 0.53 ms median and 1.63 ms p99 of interval deviation at the
//! callers, against ≈0.1 / 0.35 ms for the kernel's high-resolution timer
//! (see `SlotTimer`).

use super::fd::{self, Timer};
use super::liveness::Sweep;
use super::load::LoadGauge;
use super::pacer::{Command, Pacer, Slots, slot_deadline};
use super::stats::ShardStats;
use super::thread::{STOP_WAIT, ShardThread};
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::io::unix::AsyncFd;
use tokio::runtime::RuntimeMetrics;
use tokio::sync::mpsc;

const SLOT: Duration = Duration::from_millis(1);

/// A running shard. Dropping it stops its runtime, and waits (a bounded
/// while) for its thread: every call's media task on it ends and frees
/// its ports.
pub(super) struct Shard {
    /// Where the shard's calls' media tasks are spawned.
    pub runtime: tokio::runtime::Handle,
    pub pacer: Pacer,
    pub stats: Arc<ShardStats>,
    /// Watches the shard's calls for silence; None when the timeout is off.
    pub sweep: Option<Arc<Sweep>>,
    thread: ShardThread,
}

impl Shard {
    /// Starts shard `index`: its thread, its tick and (when `rtp_timeout`
    /// is set) its liveness sweep. `busy_limit`: see `load`.
    pub fn start(
        index: usize,
        busy_limit: f64,
        rtp_timeout: Option<Duration>,
    ) -> std::io::Result<Shard> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let runtime = rt.handle().clone();
        let stats = Arc::new(ShardStats::default());
        let (pacer, commands) = Pacer::channel();
        let timer = {
            // The timerfd registers with the reactor of the runtime it is
            // made in: the shard's.
            let _in_shard = runtime.enter();
            SlotTimer::new()?
        };
        runtime.spawn(tick(
            timer,
            commands,
            stats.clone(),
            LoadGauge::new(busy_limit),
            runtime.metrics(),
            index,
        ));
        let sweep = rtp_timeout.map(|timeout| {
            let sweep = Arc::new(Sweep::default());
            runtime.spawn(sweep.clone().run(timeout));
            sweep
        });
        let thread = ShardThread::spawn(format!("pinless-media-{index}"), rt)?;
        Ok(Shard {
            runtime,
            pacer,
            stats,
            sweep,
            thread,
        })
    }
}

/// Stops every shard and waits for their threads, at most `STOP_WAIT` in
/// all: each is told first, so that they stop side by side (see `thread`).
pub(super) fn stop_all(shards: &mut [Shard]) {
    for shard in shards.iter_mut() {
        shard.thread.stop();
    }
    let deadline = Instant::now() + STOP_WAIT;
    for shard in shards.iter_mut() {
        shard.thread.join(deadline);
    }
}

/// What the gauge is told a slot cost: the shard thread's busy time since
/// the last slot (music, relay, sweep, the tick itself), when the shard
/// had anything to do; an idle slot costs nothing worth counting. Tokio
/// publishes the busy time each time the thread parks or yields to its
/// driver, so the figure lags a slot or so, which a 100-slot window
/// absorbs.
struct Busy {
    metrics: RuntimeMetrics,
    busy: Duration,
    relayed: u64,
    sent_before: bool,
}

impl Busy {
    fn new(metrics: RuntimeMetrics, stats: &ShardStats) -> Self {
        Busy {
            busy: metrics.worker_total_busy_duration(0),
            metrics,
            relayed: stats.relay.relayed.load(Ordering::Relaxed),
            sent_before: false,
        }
    }

    /// The work of the slot just sent (`sent`: it held streams).
    fn slot(&mut self, stats: &ShardStats, sent: bool) -> Duration {
        let busy = self.metrics.worker_total_busy_duration(0);
        let since = busy.saturating_sub(self.busy);
        self.busy = busy;
        let relayed = stats.relay.relayed.load(Ordering::Relaxed);
        let relaying = relayed != self.relayed;
        self.relayed = relayed;
        // The previous slot's sends show in this slot's figure (the lag).
        let active = sent || relaying || self.sent_before;
        self.sent_before = sent;
        if active { since } else { Duration::ZERO }
    }
}

/// The kernel's periodic timer, firing every slot (1 ms) while armed.
/// Its expirations keep their absolute cadence however late they are
/// read, as the slot deadlines do.
struct SlotTimer {
    fd: AsyncFd<Timer>,
    /// Set while armed. If arming fails, tokio's coarser timer stands in
    /// (a timerfd that cannot be created at all fails the shard's start,
    /// and with it the node's: a clear error at start, not worse audio).
    armed: bool,
}

impl SlotTimer {
    /// The timer, unarmed; must run inside the shard's runtime.
    fn new() -> std::io::Result<SlotTimer> {
        let timer = TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )?;
        let fd = fd::readable(Timer::new(timer))?;
        Ok(SlotTimer { fd, armed: false })
    }

    /// Starts firing every slot; returns the start of slot 0, taken
    /// before arming so that every deadline (`start + n` ms) falls at or
    /// before the expiration meant for it.
    fn arm(&mut self) -> Instant {
        let slot = TimeSpec::from_duration(SLOT);
        let start = Instant::now();
        let set = self.fd.get_ref().get().set(
            Expiration::IntervalDelayed(slot, slot),
            TimerSetTimeFlags::empty(),
        );
        self.armed = set.is_ok();
        if let Err(e) = set {
            tracing::warn!(error = %e, "media shard timer: falling back to tokio's (1 ms late)");
        }
        start
    }

    /// Stops firing (the shard is idle).
    fn disarm(&mut self) {
        let _ = self.fd.get_ref().get().unset();
        self.armed = false;
    }

    /// Returns once `deadline` has passed.
    async fn until(&self, deadline: Instant) {
        if !self.armed {
            tokio::time::sleep_until(deadline.into()).await;
            return;
        }
        while Instant::now() < deadline {
            let Ok(mut ready) = self.fd.readable().await else {
                // The reactor is going away (the shard stops): tokio's
                // coarser timer does until then.
                tokio::time::sleep_until(deadline.into()).await;
                return;
            };
            // One read takes every expiration so far; nothing is left to
            // read until the next, whether it worked or would block.
            let _ = ready.get_inner().get().wait();
            ready.clear_ready();
        }
    }
}

/// The shard's one tick; ends when every `Pacer` handle is gone.
async fn tick(
    mut timer: SlotTimer,
    mut commands: mpsc::UnboundedReceiver<Command>,
    stats: Arc<ShardStats>,
    gauge: LoadGauge,
    metrics: RuntimeMetrics,
    index: usize,
) {
    let mut slots = Slots::default();
    // Idle until the first call; then ticking until the shard has no call
    // left; then idle again.
    while let Some(first) = commands.recv().await {
        slots.apply(first);
        let start = timer.arm();
        let mut load = gauge.clone();
        let mut busy = Busy::new(metrics.clone(), &stats);
        for tick in 0u64.. {
            loop {
                match commands.try_recv() {
                    Ok(command) => slots.apply(command),
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => return,
                }
            }
            stats
                .pacer
                .streams
                .store(slots.len() as u64, Ordering::Relaxed);
            // No call left (a call is counted before its first command is
            // sent, so none can slip in unseen).
            if slots.len() == 0 && stats.streams() == 0 {
                break;
            }
            let deadline = slot_deadline(start, tick);
            let now = Instant::now();
            if deadline > now {
                timer.until(deadline).await;
            } else {
                if now - deadline > Duration::from_millis(5) {
                    stats.pacer.late_slots.fetch_add(1, Ordering::Relaxed);
                }
                // Behind: catch up slot after slot, but let the shard's
                // relay tasks in between, or an overloaded shard would
                // relay nothing.
                if now - deadline >= SLOT {
                    tokio::task::yield_now().await;
                }
            }
            let sent_at = Instant::now();
            let lateness = sent_at.saturating_duration_since(deadline);
            let sent = slots.send(tick, sent_at, &stats.pacer) > 0;
            let work = busy.slot(&stats, sent);
            if let Some(v) = load.slot(lateness, work) {
                verdict(&stats, index, v.overloaded, v.busy, v.late);
            }
        }
        timer.disarm();
        // An empty shard is neither busy nor overloaded.
        verdict(&stats, index, false, 0.0, 0);
    }
}

/// Publishes the load gauge's verdict (logged when it changes).
fn verdict(stats: &ShardStats, index: usize, overloaded: bool, busy: f64, late: u32) {
    let was = stats.pacer.overloaded.swap(overloaded, Ordering::Relaxed);
    if was != overloaded {
        tracing::warn!(
            shard = index,
            overloaded,
            busy = format!("{:.0}%", busy * 100.0),
            late_slots = late,
            "media shard load changed: it {} new calls",
            if overloaded { "refuses" } else { "takes" }
        );
    }
    stats
        .pacer
        .busy_permille
        .store((busy * 1000.0) as u64, Ordering::Relaxed);
}
