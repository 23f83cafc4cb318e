//! How the rest of the gateway reaches a live call: an opaque handle with
//! a method per request, and the view its driver publishes. The driver
//! owns the machine; nobody else locks or changes it.

use crate::call::machine::PlayThen;
use crate::call::machine::plan::TransferRequest;
use crate::call::machine::recording::{RecordRequest, RecordingNow};
use crate::call::machine::steps::{Accepted, Input, UpdateRefused};
use crate::call::machine::view::CallView;
use crate::media::Prompt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};

/// How long a request waits for the driver's answer. The driver answers
/// at once; silence means it is ending.
const ANSWER_WITHIN: Duration = Duration::from_secs(2);

/// Why a request to a live call was not carried out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The call ended before it could take the request.
    #[error("call is ended")]
    Gone,
    /// The machine refused it in its current state (409).
    #[error(transparent)]
    Refused(#[from] UpdateRefused),
}

/// A driver's inbox, sending end. Each message is boxed: tokio's unbounded
/// channel allocates its first block of 32 slots with the channel, so every
/// call pays 32 slots whether or not anything is ever sent (3 KiB a call
/// with `DriverMsg` inline, measured with heaptrack in `bench hold`; 0.3
/// KiB boxed). A call gets a handful of messages, so the box each costs
/// nothing measurable.
pub(in crate::call) type DriverTx = mpsc::UnboundedSender<Box<DriverMsg>>;
/// A driver's inbox, receiving end (see `DriverTx`).
pub(in crate::call) type DriverRx = mpsc::UnboundedReceiver<Box<DriverMsg>>;

/// Messages to a call's driver.
pub(in crate::call) enum DriverMsg {
    Update {
        request: TransferRequest,
        /// The `Idempotency-Key` header, if any.
        key: Option<String>,
        reply: oneshot::Sender<Result<Accepted, UpdateRefused>>,
    },
    /// `POST /v1/calls/{id}/hold`.
    Hold {
        reply: oneshot::Sender<Result<(), UpdateRefused>>,
    },
    /// `POST /v1/calls/{id}/play`: `prompt` is the decoded `audio`.
    Play {
        prompt: Prompt,
        audio: String,
        then: PlayThen,
        reply: oneshot::Sender<Result<(), UpdateRefused>>,
    },
    /// `POST /v1/calls/{id}/recording`.
    Record {
        request: RecordRequest,
        reply: oneshot::Sender<Result<RecordingNow, UpdateRefused>>,
    },
    Hangup,
    /// The node is stopping: hang up (drain mode).
    Shutdown,
    /// The node is stopping and will resume its calls: save this one and
    /// stop driving it, leaving its legs up (resume mode).
    Suspend {
        done: oneshot::Sender<bool>,
    },
    /// A fact from one of the driver's own helper tasks (webhook delivery).
    Report(Input),
}

/// A live call.
#[derive(Clone)]
pub struct CallHandle {
    tx: DriverTx,
    view: watch::Receiver<Arc<CallView>>,
}

impl CallHandle {
    pub(in crate::call) fn new(tx: DriverTx, view: watch::Receiver<Arc<CallView>>) -> Self {
        Self { tx, view }
    }

    /// `pinlessCallUpdate`: start a transfer (or recognise a repeat).
    pub async fn update(
        &self,
        request: TransferRequest,
        key: Option<String>,
    ) -> Result<Accepted, CallError> {
        let answer = self
            .ask(|reply| DriverMsg::Update {
                request,
                key,
                reply,
            })
            .await?;
        Ok(answer?)
    }

    /// Back to hold music from wherever the call is.
    pub async fn hold(&self) -> Result<(), CallError> {
        Ok(self.ask(|reply| DriverMsg::Hold { reply }).await??)
    }

    /// Plays `prompt` (decoded from `audio`) to the held caller; answers
    /// as soon as it starts. Refused unless the call is held.
    pub async fn play(
        &self,
        prompt: Prompt,
        audio: String,
        then: PlayThen,
    ) -> Result<(), CallError> {
        let answer = self
            .ask(|reply| DriverMsg::Play {
                prompt,
                audio,
                then,
                reply,
            })
            .await?;
        Ok(answer?)
    }

    /// Starts, stops, pauses or resumes the call's recording; where it
    /// stands then.
    pub async fn record(&self, request: RecordRequest) -> Result<RecordingNow, CallError> {
        Ok(self
            .ask(|reply| DriverMsg::Record { request, reply })
            .await??)
    }

    /// Hangs up both legs; false when the call is already gone.
    pub fn hangup(&self) -> bool {
        self.tx.send(Box::new(DriverMsg::Hangup)).is_ok()
    }

    /// Hangs up both legs because the node is stopping; false when the
    /// call is already gone.
    pub fn shutdown(&self) -> bool {
        self.tx.send(Box::new(DriverMsg::Shutdown)).is_ok()
    }

    /// Saves the call for the next start and stops driving it, leaving it
    /// up on the wire; true when it was saved.
    pub async fn suspend(&self) -> bool {
        self.ask(|done| DriverMsg::Suspend { done })
            .await
            .unwrap_or(false)
    }

    /// The call as its driver last published it.
    pub fn snapshot(&self) -> Arc<CallView> {
        self.view.borrow().clone()
    }

    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> DriverMsg,
    ) -> Result<T, CallError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Box::new(make(reply)))
            .map_err(|_| CallError::Gone)?;
        match tokio::time::timeout(ANSWER_WITHIN, answer).await {
            Ok(Ok(v)) => Ok(v),
            _ => Err(CallError::Gone),
        }
    }
}
