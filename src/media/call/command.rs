//! What `CallMedia` asks of its task: each switch of what the caller
//! hears, a prompt, a snapshot. Every request that waits carries the
//! sender its answer goes to; a task that is gone drops it, which the
//! handle reads as a refusal.

use super::LegCodec;
use crate::media::bot::BotQueue;
use crate::media::hold::HoldLoop;
use crate::media::ports::RtpSocket;
use crate::media::prompt::Prompt;
use crate::media::record::Tap;
use crate::media::srtp::SrtpLeg;
use crate::media::state::MediaState;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// The task's inbox, sending end. Commands are boxed: tokio's unbounded
/// channel allocates its first block of 32 slots with the channel, so
/// every call pays 32 slots whether or not a command is sent (2.3 KiB a
/// call with `Command` inline, measured with heaptrack in `bench hold`).
pub(super) type CommandTx = mpsc::UnboundedSender<Box<Command>>;
/// The task's inbox, receiving end (see `CommandTx`).
pub(super) type CommandRx = mpsc::UnboundedReceiver<Box<Command>>;

pub(super) enum Command {
    /// Relay the caller to and from this room, from music, a bot or
    /// another room (a re-transfer).
    Bridge {
        room: RtpSocket,
        remote: SocketAddr,
        codec: LegCodec,
        sends: bool,
        srtp: Option<Arc<SrtpLeg>>,
        done: oneshot::Sender<()>,
    },
    /// Stop relaying; the pacer plays `source` to the caller again.
    Play {
        source: Arc<HoldLoop>,
        done: oneshot::Sender<()>,
    },
    /// Where the call's media stands, to save it.
    State { reply: oneshot::Sender<MediaState> },
    /// What each leg received, for the call's quality report.
    Quality {
        reply: oneshot::Sender<super::CallQuality>,
    },
    /// A voice bot: the pacer plays its queue to the caller, and the
    /// caller's audio goes to `to_bot` (see `bot`).
    Bot {
        queue: BotQueue,
        to_bot: mpsc::Sender<Vec<u8>>,
        done: oneshot::Sender<()>,
    },
    /// Record the call through `Tap` from now on (None: stop feeding the
    /// recording): what the caller sends, and what it hears whoever
    /// sends it (the pacer's music, prompts and bot audio, or a room).
    Record(Option<Tap>),
    /// A one-shot prompt in place of the music (held calls only).
    Prompt {
        prompt: Prompt,
        done: oneshot::Sender<()>,
    },
}
