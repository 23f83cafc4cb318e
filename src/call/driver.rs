//! One task per call: answers the admitted INVITE, then runs the call's
//! machine — a thin loop: wait for the next fact (a SIP leg, a room
//! INVITE's outcome, a REFER answer, an API request) or for the machine's
//! own next deadline, feed it, perform the actions that come out, publish
//! the call's view and new events. The driver keeps no timers and takes
//! no decisions of its own.

use super::admission::Admitted;
use super::answer::{self, Answered, hold_music};
pub use super::ctx::Ctx;
use super::entries::Entry;
use super::events::EventSink;
use super::handle::{CallHandle, DriverMsg};
use super::machine::{Action, Input, Machine, Transfer};
use super::view::CallView;
use super::webhook_task;
use crate::media::{CallMedia, RtpSocket};
use crate::sip::{DialOutcome, Dialing, IncomingInvite, Leg, LegEvent, OutboundRequest, sdp};
use std::collections::VecDeque;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, watch};

/// Handles one admitted INVITE, from answer to end. The admission's
/// permit is held until this returns (or unwinds).
pub async fn run(ctx: Arc<Ctx>, admitted: Admitted, invite: IncomingInvite) {
    let Admitted {
        entry,
        offer,
        socket,
        permit: _permit,
    } = admitted;
    let answered = Box::pin(answer::answer(&ctx, &entry, offer, socket, invite)).await;
    let Some(Answered {
        caller,
        media,
        machine,
        caller_from,
    }) = answered
    else {
        return;
    };
    let id = super::CallId(machine.parties().call_id.clone());
    let (tx, rx) = mpsc::unbounded_channel();
    let (view_tx, view_rx) = watch::channel(Arc::new(machine.view()));
    // Leaves the registry when dropped, however this task ends.
    let enrolled = ctx
        .registry
        .enroll(id.clone(), CallHandle::new(tx.clone(), view_rx));
    let p = machine.parties();
    tracing::info!(call = %id, entry = %entry.name, from = %p.from, to = %p.to, "call held");
    #[cfg(test)]
    test_hooks::maybe_panic(&machine);
    let events = entry.events_url.as_ref().map(|url| {
        EventSink::start(
            ctx.events.clone(),
            url.clone(),
            entry.keys.clone(),
            id.0.clone(),
            ctx.call_domain.clone(),
        )
    });
    let mut call = Call {
        ctx: ctx.clone(),
        entry,
        machine,
        caller: Some(caller),
        room: None,
        dialing: None,
        refer: None,
        media,
        caller_from,
        tx,
        webhook_task: None,
        events,
        published: 0,
        view: view_tx,
    };
    call.post_webhook();
    call.publish();
    call.run(rx).await;
    if let Some(task) = call.webhook_task.take() {
        task.abort();
    }
    drop(enrolled); // the call is over: no longer live for the API
    record(&ctx, call.machine.view()).await;
    tracing::info!(call = %id, "call ended");
}

/// Writes the call's record (off the async threads: SQLite blocks).
async fn record(ctx: &Ctx, view: CallView) {
    let store = ctx.store.clone();
    let id = view.call_id.clone();
    let error = match tokio::task::spawn_blocking(move || store.record_call(&view.record())).await {
        Ok(Ok(())) => return,
        Ok(Err(e)) => e.to_string(),
        Err(e) => e.to_string(),
    };
    tracing::warn!(call = %id, %error, "call record not written");
}

struct Call {
    ctx: Arc<Ctx>,
    entry: Arc<Entry>,
    machine: Machine,
    caller: Option<Leg>,
    room: Option<Leg>,
    /// The room INVITE under way and the socket its SDP offers.
    dialing: Option<(Dialing, RtpSocket)>,
    /// The answer to the REFER under way.
    refer: Option<oneshot::Receiver<Option<u16>>>,
    media: CallMedia,
    caller_from: String,
    tx: mpsc::UnboundedSender<DriverMsg>,
    webhook_task: Option<tokio::task::JoinHandle<()>>,
    events: Option<EventSink>,
    /// Timeline entries already handed to `events`.
    published: usize,
    view: watch::Sender<Arc<CallView>>,
}

async fn next_leg_event(leg: &mut Option<Leg>) -> LegEvent {
    match leg {
        Some(l) => l.next_event().await,
        None => std::future::pending().await,
    }
}

async fn dial_outcome(d: &mut Option<(Dialing, RtpSocket)>) -> DialOutcome {
    match d {
        Some((dialing, _)) => dialing.outcome().await,
        None => std::future::pending().await,
    }
}

async fn refer_answer(r: &mut Option<oneshot::Receiver<Option<u16>>>) -> Option<u16> {
    match r {
        // A dropped sender means no answer came.
        Some(rx) => rx.await.unwrap_or(None),
        None => std::future::pending().await,
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl Call {
    async fn run(&mut self, mut rx: mpsc::UnboundedReceiver<DriverMsg>) {
        loop {
            let wake = self
                .machine
                .poll_timeout()
                .map(|at| self.ctx.clock.to_tokio(at));
            let actions = tokio::select! {
                event = next_leg_event(&mut self.caller) => self.caller_event(event),
                event = next_leg_event(&mut self.room) => {
                    self.room = None;
                    tracing::debug!(?event, "room leg ended");
                    self.feed(Input::RoomHungUp)
                }
                outcome = dial_outcome(&mut self.dialing) => {
                    let input = Box::pin(self.room_outcome(outcome)).await;
                    self.feed(input)
                }
                code = refer_answer(&mut self.refer) => {
                    self.refer = None;
                    self.feed(Input::ReferAnswered(code))
                }
                msg = rx.recv() => match msg {
                    Some(msg) => self.message(msg),
                    None => self.feed(Input::HangupRequested),
                },
                _ = sleep_until(wake) => {
                    let now = self.ctx.clock.now();
                    self.machine.handle_timeout(now)
                }
            };
            let finished = self.perform(actions).await;
            self.publish();
            if finished {
                return;
            }
        }
    }

    fn feed(&mut self, input: Input) -> Vec<Action> {
        let now = self.ctx.clock.now();
        self.machine.handle(input, now)
    }

    fn message(&mut self, msg: DriverMsg) -> Vec<Action> {
        let now = self.ctx.clock.now();
        match msg {
            DriverMsg::Update {
                request,
                key,
                reply,
            } => {
                let (answer, actions) = match self.machine.request_transfer(request, key, now) {
                    Ok((accepted, actions)) => (Ok(accepted), actions),
                    Err(e) => (Err(e), vec![]),
                };
                let _ = reply.send(answer);
                actions
            }
            DriverMsg::Hold { reply } => {
                let (answer, actions) = match self.machine.request_hold(now) {
                    Ok(actions) => (Ok(()), actions),
                    Err(e) => (Err(e), vec![]),
                };
                let _ = reply.send(answer);
                actions
            }
            DriverMsg::Hangup => self.feed(Input::HangupRequested),
            DriverMsg::Report(input) => self.feed(input),
        }
    }

    fn caller_event(&mut self, event: LegEvent) -> Vec<Action> {
        match event {
            LegEvent::ReferProgress(code) => self.feed(Input::ReferNotified(code)),
            LegEvent::Bye | LegEvent::AckTimeout => {
                self.caller = None; // its dialog is over either way
                tracing::debug!(?event, "caller leg ended");
                self.feed(Input::CallerHungUp)
            }
            LegEvent::SessionExpired => {
                // The caller is presumed gone; say BYE in case it is not.
                // (A reason of its own, `session_expired`, is the lead's.)
                if let Some(leg) = self.caller.take() {
                    leg.hangup();
                }
                tracing::debug!(?event, "caller leg ended");
                self.feed(Input::CallerHungUp)
            }
        }
    }

    /// Performs actions (and those their failures lead to); true when the
    /// call is finished.
    async fn perform(&mut self, actions: Vec<Action>) -> bool {
        let mut queue = VecDeque::from(actions);
        let mut finished = false;
        while let Some(action) = queue.pop_front() {
            match action {
                Action::Dial(t) => {
                    self.refer = None;
                    if let Err(input) = self.start_dial(t) {
                        queue.extend(self.feed(input));
                    }
                }
                Action::Refer(t) => match self.caller.as_mut() {
                    Some(leg) => self.refer = Some(leg.refer(&t.target, &t.headers)),
                    None => queue.extend(self.feed(Input::ReferAnswered(None))),
                },
                // Dropping `Dialing` CANCELs the INVITE; its task ACKs and
                // BYEs a 2xx that crosses the CANCEL.
                Action::CancelTransfer => {
                    self.dialing = None;
                    self.refer = None;
                }
                Action::HangupCaller => {
                    if let Some(l) = self.caller.take() {
                        l.hangup();
                    }
                }
                Action::HangupRoom => {
                    if let Some(l) = self.room.take() {
                        l.hangup();
                    }
                }
                Action::ResumeHold => {
                    self.media.play(hold_music(&self.ctx, &self.entry)).await;
                }
                Action::PostWebhook => self.post_webhook(),
                // The machine ends the call when the announcement is over;
                // an entry without one never asks for it.
                Action::PlayAnnouncement => {
                    if let Some(a) = self.entry.announcement.clone() {
                        self.media.play(a).await;
                    }
                }
                Action::Finish => finished = true,
            }
        }
        finished
    }

    /// Starts a room INVITE; on failure, the input to feed the machine.
    fn start_dial(&mut self, t: Transfer) -> Result<(), Input> {
        let socket = self.ctx.media.allocate().map_err(|e| Input::RoomFailed {
            code: None,
            reason: e.to_string(),
        })?;
        let request = OutboundRequest {
            target: t.target,
            from: self.caller_from.clone(),
            headers: t.headers,
            sdp: sdp::offer(self.ctx.media.public_ip(), socket.port),
            ring_timeout: t.ring_timeout,
        };
        tracing::info!(target = %request.target, "transferring");
        self.dialing = Some((Dialing::start(&self.ctx.stack, request), socket));
        Ok(())
    }

    /// Sets up media for a room that answered; the fact to feed.
    async fn room_outcome(&mut self, outcome: DialOutcome) -> Input {
        let failed = |code: Option<u16>, reason: String| Input::RoomFailed { code, reason };
        let Some((_, socket)) = self.dialing.take() else {
            return failed(None, "no transfer under way".into());
        };
        let input = match outcome {
            DialOutcome::Answered { leg, sdp: body } => match sdp::parse(&body) {
                Ok(answer) => {
                    if self
                        .media
                        .bridge(socket, answer.addr, answer.choose())
                        .await
                    {
                        // Make before break: the caller is on the new room
                        // already; only now does the old one go.
                        if let Some(old) = self.room.replace(leg) {
                            old.hangup();
                        }
                        Input::RoomAnswered
                    } else {
                        leg.hangup();
                        failed(None, "media relay unavailable".into())
                    }
                }
                Err(e) => {
                    leg.hangup();
                    failed(Some(488), format!("room answer unusable: {e}"))
                }
            },
            DialOutcome::Rejected { code, reason } => failed(Some(code), reason),
            DialOutcome::TimedOut => failed(Some(408), "no answer from room".into()),
            DialOutcome::Cancelled => failed(None, "cancelled".into()),
            DialOutcome::Failed(e) => failed(None, e.to_string()),
        };
        if let Input::RoomFailed { code, reason } = &input {
            tracing::info!(?code, %reason, "transfer attempt failed");
        }
        input
    }

    /// Posts the incoming-call webhook (again, after a room hung up on a
    /// caller whose entry returns it to hold).
    fn post_webhook(&mut self) {
        if let Some(old) = self.webhook_task.take() {
            old.abort();
        }
        self.webhook_task = Some(tokio::spawn(webhook_task::send(
            self.ctx.webhooks.clone(),
            self.entry.clone(),
            self.machine.parties().clone(),
            self.tx.clone(),
        )));
    }

    /// Publishes the call's view, and hands new timeline entries to the
    /// events webhook.
    fn publish(&mut self) {
        self.view.send_replace(Arc::new(self.machine.view()));
        let timeline = self.machine.timeline();
        if let Some(sink) = &self.events {
            if self.published < timeline.len() {
                sink.publish(&timeline[self.published..]);
            }
        }
        self.published = timeline.len();
    }
}

/// Test-only faults, to check what a driver bug leaves behind.
#[cfg(test)]
pub(crate) mod test_hooks {
    /// The caller header that makes the driver panic right after answering.
    pub const PANIC_HEADER: &str = "X-Pinless-Test-Panic";

    pub fn maybe_panic(m: &super::Machine) {
        let wanted = m.parties().caller_headers.iter();
        if wanted
            .into_iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(PANIC_HEADER))
        {
            panic!("test hook: driver panics after answering");
        }
    }
}
