//! A started stream at work: one small task moves frames between the
//! WebSocket and the call's media. The caller's 20 ms chunks go out as
//! `media`, played marks as `mark`, key presses as `dtmf`; the bot's
//! `media`, `mark` and `clear` go to a `BotSink` (the call's paced bot
//! audio, which this layer knows only through that trait). Dropping the
//! `StreamLink` sends `stop` and closes the socket; the bot closing it
//! (or the connection dying) is reported by `StreamLink::closed`.
//!
//! A bot that stops reading must not hold the call: each write has
//! `SEND_LIMIT`, the bot is pinged every `PING_EVERY` and, with
//! `Upkeep::idle` set, a bot silent that long (no message, no pong) ends
//! the stream. `StreamTasks` counts the running tasks so that a stopping
//! node can let each say `stop` before the process exits.

use super::open::Opened;
use super::proto::Incoming;
use crate::running::{Entered, Running};
use futures_util::{SinkExt, StreamExt};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// Where the bot's messages go: the audio it wants the caller to hear.
pub trait BotSink: Send + Sync + 'static {
    /// μ-law 8 kHz audio, any length, to play after what is queued.
    fn audio(&self, mulaw: &[u8]);
    /// Report `name` once the audio queued before it has been played.
    fn mark(&self, name: String);
    /// Drop the audio not played yet; pending marks are reported at once.
    fn clear(&self);
}

/// What the call's media hands the stream.
pub struct Feeds {
    /// The caller's audio: 20 ms (160 bytes) of μ-law per item.
    pub caller: mpsc::Receiver<Vec<u8>>,
    /// Names of the bot's marks whose audio has been played (or cleared).
    pub played: mpsc::UnboundedReceiver<String>,
}

/// Longest wait for one write to the bot: a bot that does not read for
/// this long is stalled, and its stream ends.
const SEND_LIMIT: Duration = Duration::from_secs(2);
/// How often the bot is pinged (its pongs show it is alive when it has
/// nothing to say).
const PING_EVERY: Duration = Duration::from_secs(5);
/// After the link is dropped, the task's `stop` and close get this long
/// (each step has its own shorter limit); then it is aborted.
const STOP_GRACE: Duration = Duration::from_secs(6);

/// How a stream's task looks after itself.
#[derive(Clone, Default)]
pub struct Upkeep {
    /// End the stream when the bot sent nothing (not even a pong) for
    /// this long: `[media] rtp_timeout_secs`, none when that is 0.
    pub idle: Option<Duration>,
    /// Where the task is counted while it runs.
    pub tasks: StreamTasks,
}

/// The node's running stream tasks.
#[derive(Clone, Default)]
pub struct StreamTasks(Running);

impl StreamTasks {
    fn enter(&self) -> Entered {
        self.0.enter()
    }

    /// Stream tasks still running (sending `stop`, closing, or live).
    pub fn running(&self) -> usize {
        self.0.count()
    }

    /// Waits until no stream task runs, or `within` passes; true when
    /// none is left.
    pub async fn done(&self, within: Duration) -> bool {
        self.0.idle_within(within).await
    }
}

enum Command {
    Dtmf(String),
}

/// The call's handle on its stream. Dropping it stops the stream: `stop`,
/// then a normal close (aborted if that takes longer than `STOP_GRACE`).
pub struct StreamLink {
    tx: mpsc::UnboundedSender<Command>,
    closed: Option<oneshot::Receiver<String>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for StreamLink {
    fn drop(&mut self) {
        let Some(task) = self.task.take() else {
            return;
        };
        if task.is_finished() {
            return;
        }
        // Dropping `tx` (after this) starts the task's `stop`; a bot that
        // reads nothing must not keep the task, its socket and queue.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                tokio::time::sleep(STOP_GRACE).await;
                task.abort();
            });
        }
    }
}

impl StreamLink {
    /// Sends the caller's key press as a `dtmf` message.
    pub fn dtmf(&self, digit: &str) {
        let _ = self.tx.send(Command::Dtmf(digit.to_string()));
    }

    /// Resolves when the bot closed the stream (or it died), with why.
    /// Cancel-safe; never resolves a second time.
    pub async fn closed(&mut self) -> String {
        let Some(rx) = self.closed.as_mut() else {
            return std::future::pending().await;
        };
        let why = rx.await.unwrap_or_else(|_| "stream task ended".to_string());
        self.closed = None;
        why
    }
}

impl Opened {
    /// Starts moving frames; the returned link controls the stream.
    pub fn run(self, sink: Arc<dyn BotSink>, feeds: Feeds, upkeep: Upkeep) -> StreamLink {
        let (tx, rx) = mpsc::unbounded_channel();
        let (closed_tx, closed) = oneshot::channel();
        let counted = upkeep.tasks.enter();
        let task = tokio::spawn(async move {
            let _counted = counted;
            pump(self, sink, feeds, upkeep.idle, rx, closed_tx).await;
        });
        StreamLink {
            tx,
            closed: Some(closed),
            task: Some(task),
        }
    }
}

/// The next item of a channel that may be gone (then: never).
async fn next<T>(rx: &mut Option<impl Receiving<T>>) -> T {
    if let Some(r) = rx.as_mut()
        && let Some(item) = r.next_item().await
    {
        return item;
    }
    *rx = None;
    std::future::pending().await
}

/// The two kinds of tokio receivers, alike for `next`.
trait Receiving<T> {
    async fn next_item(&mut self) -> Option<T>;
}

impl<T> Receiving<T> for mpsc::Receiver<T> {
    async fn next_item(&mut self) -> Option<T> {
        self.recv().await
    }
}

impl<T> Receiving<T> for mpsc::UnboundedReceiver<T> {
    async fn next_item(&mut self) -> Option<T> {
        self.recv().await
    }
}

/// One write to the bot, within `SEND_LIMIT`.
async fn send(o: &mut Opened, message: Message) -> Result<(), String> {
    match tokio::time::timeout(SEND_LIMIT, o.ws.send(message)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("stream failed: {e}")),
        Err(_) => Err(format!(
            "stream stalled: the bot read nothing for {SEND_LIMIT:?}"
        )),
    }
}

async fn pump(
    mut o: Opened,
    sink: Arc<dyn BotSink>,
    feeds: Feeds,
    idle: Option<Duration>,
    mut commands: mpsc::UnboundedReceiver<Command>,
    closed: oneshot::Sender<String>,
) {
    let mut caller = Some(feeds.caller);
    let mut played = Some(feeds.played);
    // Often enough that a silent bot is found within 1.5 times `idle`.
    let every = idle.map_or(PING_EVERY, |i| {
        PING_EVERY.min(i / 2).max(Duration::from_millis(100))
    });
    let mut ping = tokio::time::interval_at(Instant::now() + every, every);
    let mut heard = Instant::now();
    let why = loop {
        let out = tokio::select! {
            msg = o.ws.next() => {
                heard = Instant::now();
                match msg {
                Some(Ok(Message::Text(text))) => {
                    match Incoming::parse(&text) {
                        Ok(Incoming::Media(audio)) => sink.audio(&audio),
                        Ok(Incoming::Mark(name)) => sink.mark(name),
                        Ok(Incoming::Clear) => sink.clear(),
                        Ok(Incoming::Other(_)) => {}
                        // One bad message is the bot's bug, not a reason
                        // to drop the caller.
                        Err(e) => tracing::debug!(error = %e, "bot message ignored"),
                    }
                    None
                }
                Some(Ok(Message::Close(frame))) => {
                    // tungstenite answers the close on the next flush.
                    let _ = tokio::time::timeout(SEND_LIMIT, o.ws.flush()).await;
                    break match frame {
                        Some(f) => format!("closed by the bot ({} {})", u16::from(f.code), f.reason),
                        None => "closed by the bot".to_string(),
                    };
                }
                // Pings are answered by tungstenite itself.
                Some(Ok(_)) => None,
                Some(Err(e)) => break format!("stream failed: {e}"),
                None => break "closed by the bot".to_string(),
                }
            },
            _ = ping.tick() => {
                if let Some(idle) = idle
                    && heard.elapsed() >= idle
                {
                    break format!("no message or pong from the bot in {idle:?}");
                }
                Some(Message::Ping(Vec::new()))
            },
            chunk = next(&mut caller) => {
                let at = u64::try_from(o.started.elapsed().as_millis()).unwrap_or(u64::MAX);
                Some(Message::Text(o.outbox.media(&chunk, at)))
            },
            name = next(&mut played) => Some(Message::Text(o.outbox.mark(&name))),
            command = commands.recv() => match command {
                Some(Command::Dtmf(digit)) => Some(Message::Text(o.outbox.dtmf(&digit))),
                None => {
                    // The call is done with the stream: stop, then close.
                    let stop = o.outbox.stop();
                    if send(&mut o, Message::Text(stop)).await.is_err() {
                        return;
                    }
                    let close = o.ws.close(Some(CloseFrame {
                        code: CloseCode::Normal,
                        reason: "".into(),
                    }));
                    let _ = tokio::time::timeout(SEND_LIMIT, close).await;
                    // Read to the bot's close answer, briefly.
                    let drain = async { while let Some(Ok(_)) = o.ws.next().await {} };
                    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), drain).await;
                    return;
                }
            },
        };
        if let Some(message) = out
            && let Err(why) = send(&mut o, message).await
        {
            break why;
        }
    };
    let _ = closed.send(why);
}
