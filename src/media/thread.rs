//! A shard's OS thread, stopped and waited for when the engine goes.
//!
//! Why wait: the thread's runtime owns the shard's calls' sockets, which
//! close only once it is dropped. Waiting for the thread means that when
//! `MediaEngine`'s drop returns, its ports are free, and a new engine (a
//! restart resuming saved calls, a test) binds them at once.
//!
//! Why the wait is bounded, and skipped for the thread itself: the engine
//! may be dropped on a tokio worker (the gateway's runtime shutting down),
//! which must not hang on a shard stuck in a task; and it may be dropped
//! by a task of one of its own shards, which cannot wait for its own
//! thread to end (that thread ends once the task returns).

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;
use tokio::sync::oneshot;

/// The longest an engine's drop waits for its shards, all together.
/// Stopping is the shards' runtimes dropping their calls' tasks and
/// sockets: measured on the shared 2-vCPU development machine, two
/// shards stop in 2 ms empty, 13 ms with 1,000 held calls, 27 ms with
/// 2,000. The bound is for a shard stuck in a task that never yields,
/// which is then left to end on its own.
pub(super) const STOP_WAIT: Duration = Duration::from_millis(500);

/// A running shard thread.
pub(super) struct ShardThread {
    /// Dropped to tell the thread to stop.
    stop: Option<oneshot::Sender<()>>,
    /// Taken once the thread is joined (or given up on).
    handle: Option<JoinHandle<()>>,
    exited: Arc<Exited>,
}

impl ShardThread {
    /// Runs `rt` on a new thread named `name` until told to stop.
    pub fn spawn(name: String, rt: Runtime) -> std::io::Result<ShardThread> {
        let (stop, stopped) = oneshot::channel::<()>();
        let exited = Arc::new(Exited::default());
        let signal = ExitSignal(exited.clone());
        let handle = std::thread::Builder::new().name(name).spawn(move || {
            // Locals drop in reverse order: the runtime first, then the
            // signal, which thus says that the sockets are closed (even
            // if the runtime panicked).
            let _signal = signal;
            let rt = rt;
            // Returns when told to stop (or when the `ShardThread` is
            // gone); the runtime is then dropped here, off any async
            // context, ending every task and closing every socket on it.
            let _ = rt.block_on(stopped);
        })?;
        Ok(ShardThread {
            stop: Some(stop),
            handle: Some(handle),
            exited,
        })
    }

    /// Tells the thread to stop; returns at once.
    pub fn stop(&mut self) {
        self.stop = None;
    }

    /// Tells the thread to stop if it was not told yet, and waits for it
    /// to end until `deadline`. True once it has ended; false when it
    /// could not be waited for (it is the current thread, or it overran
    /// the deadline), and it is then left to end on its own.
    pub fn join(&mut self, deadline: Instant) -> bool {
        self.stop();
        let Some(handle) = self.handle.take() else {
            return true;
        };
        if handle.thread().id() == std::thread::current().id() {
            // Dropped by a task of this very shard: the thread stops once
            // the task yields, and waiting here would wait for ourselves.
            return false;
        }
        if !self.exited.wait_until(deadline) {
            tracing::warn!(
                thread = handle.thread().name().unwrap_or("?"),
                "media shard did not stop in time; left to end on its own"
            );
            return false;
        }
        // Its runtime is gone: what is left of the thread is returning.
        handle.join().is_ok()
    }
}

impl Drop for ShardThread {
    fn drop(&mut self) {
        self.join(Instant::now() + STOP_WAIT);
    }
}

/// Set by a shard thread once its runtime is dropped; a `JoinHandle`
/// alone cannot be waited on with a deadline.
#[derive(Default)]
struct Exited {
    done: Mutex<bool>,
    changed: Condvar,
}

impl Exited {
    fn set(&self) {
        *self.done.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.changed.notify_all();
    }

    /// Waits until set or `deadline`; true when set.
    fn wait_until(&self, deadline: Instant) -> bool {
        let done = self.done.lock().unwrap_or_else(PoisonError::into_inner);
        let timeout = deadline.saturating_duration_since(Instant::now());
        let (done, _) = self
            .changed
            .wait_timeout_while(done, timeout, |done| !*done)
            .unwrap_or_else(PoisonError::into_inner);
        *done
    }
}

/// Sets its `Exited` when dropped, however the thread ends.
struct ExitSignal(Arc<Exited>);

impl Drop for ExitSignal {
    fn drop(&mut self) {
        self.0.set();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;

    fn runtime() -> Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn a_joined_thread_has_closed_its_runtime_s_sockets() {
        let rt = runtime();
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = socket.local_addr().unwrap();
        rt.spawn(async move {
            let _held = socket;
            std::future::pending::<()>().await
        });
        let mut thread = ShardThread::spawn("test-shard".into(), rt).unwrap();
        assert!(thread.join(Instant::now() + STOP_WAIT));
        UdpSocket::bind(addr).expect("the port is free once joined");
    }

    #[test]
    fn a_stuck_thread_is_given_up_on_at_the_deadline() {
        let rt = runtime();
        let (stuck, release) = std::sync::mpsc::channel::<()>();
        rt.spawn(async move {
            // Blocks the shard's only thread: it cannot see the stop.
            let _ = release.recv();
        });
        let mut thread = ShardThread::spawn("test-stuck".into(), rt).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        let started = Instant::now();
        assert!(!thread.join(Instant::now() + Duration::from_millis(50)));
        assert!(started.elapsed() < Duration::from_secs(1));
        drop(stuck);
    }

    #[test]
    fn a_shard_dropping_itself_does_not_wait_for_itself() {
        let rt = runtime();
        let handle = rt.handle().clone();
        let own = Arc::new(Mutex::new(None::<ShardThread>));
        let (done_tx, done) = std::sync::mpsc::channel();
        let slot = own.clone();
        *own.lock().unwrap() = Some(ShardThread::spawn("test-self".into(), rt).unwrap());
        handle.spawn(async move {
            // The last owner of the thread drops it from the thread.
            let thread = slot.lock().unwrap().take();
            drop(thread);
            let _ = done_tx.send(());
        });
        done.recv_timeout(Duration::from_secs(5))
            .expect("dropped without waiting for itself");
    }
}
