//! The driver's side of voice bots: a stream opened as a transfer
//! attempt (the caller keeps its music or room meanwhile), the caller's
//! media switched to the bot once `start` is sent, the caller's key
//! presses passed on, and the bot's paced queue as the stream's sink.

use super::{Attempt, Call};
use crate::call::machine::{Connect, Input};
use crate::media::BotQueue;
use crate::stream::{self, BotSink, Feeds, OpenError, OpenRequest, Opened, StartInfo};
use std::sync::Arc;
use tokio::sync::mpsc;

/// The caller's 20 ms chunks waiting for a bot that reads slowly (2 s);
/// beyond, chunks are dropped rather than delaying the relay.
const CALLER_BACKLOG: usize = 100;

impl BotSink for BotQueue {
    fn audio(&self, mulaw: &[u8]) {
        self.push(mulaw);
    }

    fn mark(&self, name: String) {
        BotQueue::mark(self, name);
    }

    fn clear(&self) {
        BotQueue::clear(self);
    }
}

impl Call {
    /// Starts opening a bot's stream (the machine's `Connect`).
    pub(super) fn start_connect(&mut self, c: Connect) {
        let request = OpenRequest {
            url: c.stream.url,
            headers: c.stream.headers,
            start: StartInfo {
                call_sid: self.machine.parties().call_id.clone(),
                parameters: c.parameters,
            },
            tls: self.ctx.stream_tls.clone(),
            urls: self.ctx.urls,
            // The machine times the attempt (its `CancelTransfer` drops
            // the opening).
            timeout: None,
        };
        let shown = stream::StreamUrl::parse(&request.url).map(|u| u.shown());
        tracing::info!(target = %shown.unwrap_or_default(), "connecting a voice bot");
        self.attempt = Attempt::Opening(Box::pin(stream::open(request)));
    }

    /// The stream opened (or not): switch the caller to it; the fact to feed.
    pub(super) async fn stream_outcome(&mut self, result: Result<Opened, OpenError>) -> Input {
        let opened = match result {
            Ok(opened) => opened,
            Err(e) => {
                tracing::info!(error = %e, "voice bot attempt failed");
                if !e.retryable() {
                    return Input::StreamUnusable(e.to_string());
                }
                return Input::RoomFailed {
                    code: e.status(),
                    reason: e.to_string(),
                };
            }
        };
        let (queue, played) = BotQueue::new();
        let (to_bot, caller) = mpsc::channel(CALLER_BACKLOG);
        let switched = self.media.bot(queue.clone(), to_bot).await;
        // Running even when the switch failed, so that dropping the link
        // says `stop` to the bot rather than cutting the socket.
        let upkeep = self.ctx.streams.clone();
        let link = opened.run(Arc::new(queue), Feeds { caller, played }, upkeep);
        if !switched {
            return Input::RoomFailed {
                code: None,
                reason: "media unavailable".into(),
            };
        }
        // Make before break: the caller hears the bot already; only now
        // does the old room (or bot) go.
        if let Some(old) = self.room.take() {
            old.hangup();
        }
        self.bot = Some(link);
        Input::RoomAnswered
    }
}
