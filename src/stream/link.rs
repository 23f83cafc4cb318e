//! A started stream at work: one small task moves frames between the
//! WebSocket and the call's media. The caller's 20 ms chunks go out as
//! `media`, played marks as `mark`, key presses as `dtmf`; the bot's
//! `media`, `mark` and `clear` go to a `BotSink` (the call's paced bot
//! audio, which this layer knows only through that trait). Dropping the
//! `StreamLink` sends `stop` and closes the socket; the bot closing it
//! (or the connection dying) is reported by `StreamLink::closed`.

use super::open::Opened;
use super::proto::Incoming;
use futures_util::{SinkExt, StreamExt};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
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

enum Command {
    Dtmf(String),
}

/// The call's handle on its stream. Dropping it stops the stream: `stop`,
/// then a normal close.
pub struct StreamLink {
    tx: mpsc::UnboundedSender<Command>,
    closed: Option<oneshot::Receiver<String>>,
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
    pub fn run(self, sink: Arc<dyn BotSink>, feeds: Feeds) -> StreamLink {
        let (tx, rx) = mpsc::unbounded_channel();
        let (closed_tx, closed) = oneshot::channel();
        tokio::spawn(pump(self, sink, feeds, rx, closed_tx));
        StreamLink {
            tx,
            closed: Some(closed),
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

async fn pump(
    mut o: Opened,
    sink: Arc<dyn BotSink>,
    feeds: Feeds,
    mut commands: mpsc::UnboundedReceiver<Command>,
    closed: oneshot::Sender<String>,
) {
    let mut caller = Some(feeds.caller);
    let mut played = Some(feeds.played);
    let why = loop {
        let out = tokio::select! {
            msg = o.ws.next() => match msg {
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
                    let _ = o.ws.flush().await;
                    break match frame {
                        Some(f) => format!("closed by the bot ({} {})", u16::from(f.code), f.reason),
                        None => "closed by the bot".to_string(),
                    };
                }
                // Pings are answered by tungstenite itself.
                Some(Ok(_)) => None,
                Some(Err(e)) => break format!("stream failed: {e}"),
                None => break "closed by the bot".to_string(),
            },
            chunk = next(&mut caller) => {
                let at = u64::try_from(o.started.elapsed().as_millis()).unwrap_or(u64::MAX);
                Some(o.outbox.media(&chunk, at))
            },
            name = next(&mut played) => Some(o.outbox.mark(&name)),
            command = commands.recv() => match command {
                Some(Command::Dtmf(digit)) => Some(o.outbox.dtmf(&digit)),
                None => {
                    // The call is done with the stream: stop, then close.
                    let stop = o.outbox.stop();
                    let _ = o.ws.send(Message::Text(stop)).await;
                    let _ = o.ws.close(Some(CloseFrame {
                        code: CloseCode::Normal,
                        reason: "".into(),
                    })).await;
                    // Read to the bot's close answer, briefly.
                    let drain = async { while let Some(Ok(_)) = o.ws.next().await {} };
                    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), drain).await;
                    return;
                }
            },
        };
        if let Some(text) = out
            && let Err(e) = o.ws.send(Message::Text(text)).await
        {
            break format!("stream failed: {e}");
        }
    };
    let _ = closed.send(why);
}
