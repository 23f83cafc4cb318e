//! A media shard: one OS thread ("pinless-media-N") running a
//! current-thread tokio runtime that owns a share of the node's calls:
//! their sockets (both legs of a call are registered on this thread's
//! reactor, since the room's socket is attached inside the call's task),
//! the hold music of the held ones and the relay of the bridged ones.
//! Nothing of a call crosses threads after it is placed, so shards scale
//! like separate processes without being ones (rtpengine's poller per
//! thread, webrtc-rs's pool of current-thread runtimes).
//!
//! One tick per shard, no timer per call: a task that sleeps to each 1 ms
//! slot deadline (absolute, so lateness never accumulates), applies the
//! pacer commands that came in meanwhile, sends the slot's music and feeds
//! the shard's load gauge. Tokio's timer has 1 ms resolution, which is the
//! slot length: a slot is sent within about a millisecond of its deadline
//! and the next one is still aimed at its own.

use super::liveness::Sweep;
use super::load::LoadGauge;
use super::pacer::{Command, Pacer, Slots, slot_deadline};
use super::stats::ShardStats;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::runtime::RuntimeMetrics;
use tokio::sync::{mpsc, oneshot};

const SLOT: Duration = Duration::from_millis(1);

/// A running shard. Dropping it stops its runtime: every call's media
/// task on it ends and frees its ports.
pub(super) struct Shard {
    /// Where the shard's calls' media tasks are spawned.
    pub runtime: tokio::runtime::Handle,
    pub pacer: Pacer,
    pub stats: Arc<ShardStats>,
    /// Watches the shard's calls for silence; None when the timeout is off.
    pub sweep: Option<Arc<Sweep>>,
    _stop: oneshot::Sender<()>,
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
        runtime.spawn(tick(
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
        let (stop, stopped) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name(format!("pinless-media-{index}"))
            .spawn(move || {
                // Returns when the shard is dropped (the sender with it);
                // the runtime is then dropped here, off any async context.
                let _ = rt.block_on(stopped);
            })?;
        Ok(Shard {
            runtime,
            pacer,
            stats,
            sweep,
            _stop: stop,
        })
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

/// The shard's one tick; ends when every `Pacer` handle is gone.
async fn tick(
    mut commands: mpsc::UnboundedReceiver<Command>,
    stats: Arc<ShardStats>,
    mut load: LoadGauge,
    metrics: RuntimeMetrics,
    index: usize,
) {
    let mut slots = Slots::default();
    let mut busy = Busy::new(metrics, &stats);
    let start = Instant::now();
    let mut tick: u64 = 0;
    loop {
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

        let deadline = slot_deadline(start, tick);
        let now = Instant::now();
        if deadline > now {
            tokio::time::sleep_until(deadline.into()).await;
        } else {
            if now - deadline > Duration::from_millis(5) {
                stats.pacer.late_slots.fetch_add(1, Ordering::Relaxed);
            }
            // Behind: catch up slot after slot, but let the shard's relay
            // tasks in between, or an overloaded shard would relay nothing.
            if now - deadline >= SLOT {
                tokio::task::yield_now().await;
            }
        }
        let sent_at = Instant::now();
        let lateness = sent_at.saturating_duration_since(deadline);
        let sent = slots.send(tick, sent_at, &stats.pacer) > 0;
        let work = busy.slot(&stats, sent);
        if let Some(v) = load.slot(lateness, work) {
            let was = stats.pacer.overloaded.swap(v.overloaded, Ordering::Relaxed);
            if was != v.overloaded {
                tracing::warn!(
                    shard = index,
                    overloaded = v.overloaded,
                    busy = format!("{:.0}%", v.busy * 100.0),
                    late_slots = v.late,
                    "media shard load changed: it {} new calls",
                    if v.overloaded { "refuses" } else { "takes" }
                );
            }
            stats
                .pacer
                .busy_permille
                .store((v.busy * 1000.0) as u64, Ordering::Relaxed);
        }
        tick += 1;
    }
}
