//! How a running node stops (SIGTERM, SIGINT; what `systemctl stop`, a
//! container stop or a deploy sends), in the mode `[node] shutdown` says:
//!
//! - `drain`: no new calls (INVITE and OPTIONS 503, `/readyz` 503); live
//!   calls keep full service until they end or `drain_secs` pass; then the
//!   rest are hung up (reason `shutdown`), their records written, exit.
//! - `resume`: no new calls; every live call is saved and the process
//!   exits at once, leaving the calls up on the wire for the next start
//!   with the same `state_dir` to resume.
//!
//! A second signal finishes the stop at once the way the mode says.

use crate::config::ShutdownMode;
use crate::gateway::Gateway;
use std::time::Duration;
use tokio::sync::mpsc;

/// Longest wait for hung-up calls to write their records before exit.
const RECORDS_WITHIN: Duration = Duration::from_secs(10);

/// Voice bots' streams of ended calls: `stop`, close, the bot's answer
/// (each step of a stream is bounded by a few seconds itself).
const STREAMS_WITHIN: Duration = Duration::from_secs(3);

/// For the gateway's own tasks to end after the stop: the API answers
/// the requests it has (event streams are closed), the cluster's tasks
/// leave Redis.
const TASKS_WITHIN: Duration = Duration::from_secs(2);

/// After the last call: time for the BYEs and CANCELs sent in the
/// background (a room whose 2xx crossed a caller's hang-up still gets its
/// ACK and BYE) to go out and be answered, UDP retransmissions included.
const SIGNALLING_GRACE: Duration = Duration::from_secs(1);

/// What a stop did, for the exit status and the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// Every call ended by itself, or was hung up and recorded.
    Drained { hung_up: usize },
    /// The calls still up were saved for the next start.
    Suspended { saved: usize },
}

/// Runs until the first stop signal on `signals`, then stops `gateway`
/// the way `mode` says; a second signal hurries it.
pub async fn run_until_stopped(
    gateway: &Gateway,
    mode: ShutdownMode,
    drain: Duration,
    mut signals: mpsc::Receiver<&'static str>,
) -> Stopped {
    let first = signals.recv().await.unwrap_or("signals closed");
    gateway.stop_taking_calls();
    let live = gateway.registry.len();
    tracing::info!(signal = first, ?mode, live, "stopping: no new calls");
    // A drain takes the node out of its registrars' routes first; a
    // resume stop keeps the bindings, which the next start refreshes.
    let unregister = mode == ShutdownMode::Drain;
    if !gateway.stop_registrations(unregister).await {
        tracing::warn!("some registrations did not end in time");
    }
    let stopped = match mode {
        ShutdownMode::Drain => {
            let drained = tokio::select! {
                done = gateway.calls_done(drain) => done,
                s = signals.recv() => {
                    tracing::info!(signal = s.unwrap_or("-"), "second signal: hanging up now");
                    false
                }
            };
            let hung_up = if drained {
                0
            } else {
                let n = gateway.registry.len();
                tracing::info!(calls = n, "hanging up the calls still up");
                gateway.hang_up_all();
                n
            };
            if !gateway.calls_done(RECORDS_WITHIN).await {
                tracing::warn!("some calls did not finish in time; their records may be missing");
            }
            // Each ended call's bot gets its `stop` and a close before
            // the process exits (they run on tasks of their own).
            if !gateway.streams_done(STREAMS_WITHIN).await {
                tracing::warn!("some voice bot streams did not close in time");
            }
            tokio::time::sleep(SIGNALLING_GRACE).await;
            Stopped::Drained { hung_up }
        }
        ShutdownMode::Resume => {
            let saved = gateway.suspend_all().await;
            Stopped::Suspended { saved }
        }
    };
    gateway.shutdown();
    if !gateway.tasks_done(TASKS_WITHIN).await {
        tracing::warn!("the API or the cluster's tasks did not stop in time");
    }
    tracing::info!(?stopped, "stopped");
    stopped
}

/// SIGTERM and SIGINT, as they come, on a channel.
pub fn stop_signals() -> std::io::Result<mpsc::Receiver<&'static str>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        loop {
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            };
            if tx.send(name).await.is_err() {
                return;
            }
        }
    });
    Ok(rx)
}
