//! `CallMedia`, the handle a call's driver holds on the call's media, and
//! `Presses`, the caller's key presses apart from it. Each method is a
//! `Command` to the call's task (see `task`); the handle keeps only what
//! it answers without asking the task (the caller's codec, the liveness
//! flags, the receivers of what the task reports).

use super::LegCodec;
use super::command::{Command, CommandTx};
use super::start::Start;
use super::task;
use crate::codec::DtmfPress;
use crate::media::bot::BotQueue;
use crate::media::hold::HoldLoop;
use crate::media::liveness::{Liveness, MediaLeg};
use crate::media::ports::RtpSocket;
use crate::media::prompt::Prompt;
use crate::media::record::Tap;
use crate::media::srtp::{LegKeys, SrtpLeg};
use crate::media::state::MediaState;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// The handle the call driver holds. Dropping it stops the call's media
/// within a pacer slot (1 ms) and frees its ports.
pub struct CallMedia {
    tx: CommandTx,
    liveness: Arc<Liveness>,
    /// Gets the first leg found silent (see `liveness`); None once read.
    silent: Option<oneshot::Receiver<MediaLeg>>,
    /// The caller's key presses (RFC 4733), until `presses` takes them.
    dtmf: Option<mpsc::UnboundedReceiver<DtmfPress>>,
    /// What the caller's leg speaks (fixed for the call).
    caller_codec: LegCodec,
}

/// The caller's key presses sent as RFC 4733 telephone-events, held or
/// bridged, once per press however many packets carry it (see `dtmf`).
/// Apart from `CallMedia` so that a driver can wait on both at once.
pub struct Presses(Option<mpsc::UnboundedReceiver<DtmfPress>>);

impl Presses {
    /// The next press. Never resolves once the media task is gone (or
    /// for a second taker). Cancel-safe.
    pub async fn next(&mut self) -> DtmfPress {
        if let Some(rx) = self.0.as_mut()
            && let Some(press) = rx.recv().await
        {
            return press;
        }
        self.0 = None;
        std::future::pending().await
    }
}

/// Starts a call's media task on `rt` (its shard's runtime) and returns
/// its handle; `silent` gets the first leg found silent (a closed channel
/// when the timeout is off).
pub fn spawn(
    rt: &tokio::runtime::Handle,
    s: Start,
    silent: oneshot::Receiver<MediaLeg>,
) -> std::io::Result<CallMedia> {
    // The pacer sends the caller's music from the caller's own port.
    let sender = Arc::new(s.caller.socket.socket.try_clone()?);
    let liveness = s.liveness.clone();
    let (tx, rx) = mpsc::unbounded_channel();
    let (dtmf_tx, dtmf) = mpsc::unbounded_channel();
    let caller_codec = s.caller.codec;
    rt.spawn(task::run(s, sender, rx, dtmf_tx));
    Ok(CallMedia {
        tx,
        liveness,
        silent: Some(silent),
        dtmf: Some(dtmf),
        caller_codec,
    })
}

impl CallMedia {
    fn send(&self, command: Command) -> Result<(), ()> {
        self.tx.send(Box::new(command)).map_err(|_| ())
    }

    /// What the caller's leg speaks: a room offer puts it first, so that
    /// a room that speaks it too is relayed untouched, not transcoded.
    pub fn caller_codec(&self) -> LegCodec {
        self.caller_codec
    }

    /// Switches the caller from music to the room: the pacer lets go of the
    /// stream and relaying starts. `sends`: the room's SDP says it sends
    /// (its silence then ends the call, see `silent`). Resolves once the
    /// switch is done.
    pub async fn bridge(
        &self,
        room: RtpSocket,
        remote: SocketAddr,
        codec: LegCodec,
        sends: bool,
    ) -> bool {
        self.bridge_secure(room, remote, codec, sends, None).await
    }

    /// `bridge`, with SRTP on the room's leg when `srtp` has its keys.
    /// False, as for a media task that is gone, when they cannot be used.
    pub async fn bridge_secure(
        &self,
        room: RtpSocket,
        remote: SocketAddr,
        codec: LegCodec,
        sends: bool,
        srtp: Option<LegKeys>,
    ) -> bool {
        let srtp = match srtp.map(SrtpLeg::new).transpose() {
            Ok(s) => s.map(Arc::new),
            Err(e) => {
                tracing::warn!(error = %e, "room leg SRTP unusable");
                return false;
            }
        };
        let (done, rx) = oneshot::channel();
        let sent = self.send(Command::Bridge {
            room,
            remote,
            codec,
            sends,
            srtp,
            done,
        });
        sent.is_ok() && rx.await.is_ok()
    }

    /// Plays `source` (looped) to the caller from where its stream stands,
    /// whether it was hearing music, another source, or a room (which is
    /// let go). Resolves once the pacer has the stream.
    pub async fn play(&self, source: Arc<HoldLoop>) -> bool {
        let (done, rx) = oneshot::channel();
        let sent = self.send(Command::Play { source, done });
        sent.is_ok() && rx.await.is_ok()
    }

    /// Switches the caller to a voice bot, from music or a room (which is
    /// let go): the caller's stream goes on, paced, with the bot's queued
    /// audio (silence when there is none); the caller's audio goes to
    /// `to_bot` in 20 ms μ-law chunks. Resolves once the switch is done.
    pub async fn bot(&self, queue: BotQueue, to_bot: mpsc::Sender<Vec<u8>>) -> bool {
        let (done, rx) = oneshot::channel();
        let sent = self.send(Command::Bot {
            queue,
            to_bot,
            done,
        });
        sent.is_ok() && rx.await.is_ok()
    }

    /// Plays `prompt` to a held caller in place of the music, on the same
    /// stream, after any prompt already playing; the music then resumes
    /// where it stopped. The receiver gets `Ok` once the prompt's last
    /// frame has left, and an error when it was refused (the caller is
    /// with a room, not on music) or cut short (bridged or ended while
    /// it played).
    pub fn prompt(&self, prompt: Prompt) -> oneshot::Receiver<()> {
        let (done, rx) = oneshot::channel();
        // A media task that is gone drops `done`: refused.
        let _ = self.send(Command::Prompt { prompt, done });
        rx
    }

    /// Feeds the call's audio to a recording from now on (None: no
    /// longer). Takes effect within a pacer slot.
    pub fn record(&self, tap: Option<Tap>) {
        let _ = self.send(Command::Record(tap));
    }

    /// Resolves, once, when a leg whose SDP says it sends has sent nothing
    /// (RTP, or RTCP on the RTP port) for `[media] rtp_timeout_secs`: the
    /// caller's leg, held or bridged, or the room's while bridged. The
    /// call should then end with reason `rtp_timeout`. Never resolves when
    /// the timeout is off, or again after it did. Cancel-safe (for
    /// `select!`).
    pub async fn silent(&mut self) -> MediaLeg {
        if let Some(rx) = self.silent.as_mut() {
            let got = rx.await;
            self.silent = None;
            if let Ok(leg) = got {
                return leg;
            }
        }
        std::future::pending().await
    }

    /// The caller's key presses; the first call takes them, later ones
    /// get none.
    pub fn presses(&mut self) -> Presses {
        Presses(self.dtmf.take())
    }

    /// `leg`'s peer now does (or does not) send, as a re-INVITE's SDP
    /// says; the timeout runs from now.
    pub fn set_sends(&self, leg: MediaLeg, sends: bool) {
        self.liveness.set_sends(leg, sends);
    }

    /// The call's media as data, for `MediaEngine::resume` in a later
    /// process; `None` if the media task is gone.
    pub async fn state(&self) -> Option<MediaState> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::State { reply }).ok()?;
        rx.await.ok()
    }

    /// What the legs received so far; None when the task is gone.
    pub async fn quality(&self) -> Option<super::CallQuality> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Quality { reply }).ok()?;
        rx.await.ok()
    }
}
