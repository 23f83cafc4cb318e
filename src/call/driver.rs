//! One task per call: answers the admitted INVITE, then runs the call's
//! machine — a thin loop: wait for the next fact (a SIP leg, a room
//! INVITE's outcome, a REFER answer, an API request) or for the machine's
//! own next deadline, feed it, perform the actions that come out, publish
//! the call's view and new events, save the call when its state changed.
//! The driver keeps no timers; what to do is the machine's, the driver
//! only carries it out on the legs and the media (which leg object a BYE
//! goes to, which Reason header it carries).

use super::admission::Admitted;
use super::answer::{self, Answered, hold_music};
use super::capacity::Permit;
pub use super::ctx::Ctx;
use super::early::{self, EarlyCaller};
use super::entries::Entry;
use super::events::EventSink;
use super::handle::{CallHandle, DriverMsg};
use super::machine::{Action, EndReason, Event, EventKind, Input, Machine, Silent, Transfer};
use super::prompts::HoldPrompts;
use super::saved::SavedCall;
use super::view::CallView;
use super::webhook_task;
use crate::media::{CallMedia, MediaLeg, RtpSocket};
use crate::sip::{
    DialOutcome, Dialing, EarlyNews, IncomingInvite, Leg, LegEvent, OutboundRequest, Trace, sdp,
};
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
        permit,
    } = admitted;
    let answered = Box::pin(answer::answer(&ctx, &entry, offer, socket, invite)).await;
    let Some(Answered {
        caller,
        early,
        media,
        machine,
        caller_from,
    }) = answered
    else {
        return;
    };
    let p = machine.parties();
    tracing::info!(call = %p.call_id, entry = %entry.name, from = %p.from, to = %p.to, "call held");
    #[cfg(test)]
    test_hooks::maybe_panic(&machine);
    let parts = Parts {
        machine,
        caller,
        early,
        room: None,
        media,
        caller_from,
        published: 0,
        pending: vec![],
    };
    drive(ctx, entry, parts, permit, true).await;
}

/// A call up on the wire: what `drive` runs, from an answer or from a
/// call saved by an earlier run.
pub(super) struct Parts {
    pub machine: Machine,
    pub caller: Option<Leg>,
    /// The caller's INVITE while it is held in early media.
    pub early: Option<Box<EarlyCaller>>,
    pub room: Option<Leg>,
    pub media: CallMedia,
    pub caller_from: String,
    /// Timeline entries already handed to the events webhook.
    pub published: usize,
    /// Actions to perform first (a resumed transfer's next attempt).
    pub pending: Vec<Action>,
}

/// Runs a call until it ends (or is suspended for the next start), with
/// its place under `max_calls` held throughout. `post_webhook`: the
/// incoming-call webhook is still to be posted (a call just answered, or a
/// resumed one whose app never got it).
pub(super) async fn drive(
    ctx: Arc<Ctx>,
    entry: Arc<Entry>,
    parts: Parts,
    _permit: Permit,
    post_webhook: bool,
) {
    let id = super::CallId(parts.machine.parties().call_id.clone());
    let (tx, rx) = mpsc::unbounded_channel();
    let (view_tx, view_rx) = watch::channel(Arc::new(parts.machine.view()));
    let mut parts = parts;
    let trace = link_trace(&mut parts);
    // Leaves the registry when dropped, however this task ends.
    let enrolled = ctx
        .registry
        .enroll(id.clone(), CallHandle::new(tx.clone(), view_rx));
    if let Some(t) = &trace {
        ctx.registry.keep_trace(&id, t.clone());
    }
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
        machine: parts.machine,
        caller: parts.caller,
        early: parts.early,
        room: parts.room,
        dialing: None,
        refer: None,
        refer_due: None,
        media: parts.media,
        caller_from: parts.caller_from,
        tx,
        webhook_task: None,
        events,
        published: parts.published,
        view: view_tx,
        saved_lines: 0,
        prompts: HoldPrompts::default(),
        trace,
    };
    if post_webhook {
        call.post_webhook();
    }
    let outcome = if call.perform(parts.pending).await {
        Outcome::Finished
    } else {
        call.publish();
        call.save().await;
        call.run(rx).await
    };
    call.publish();
    if let Some(task) = call.webhook_task.take() {
        task.abort();
    }
    if outcome == Outcome::Suspended {
        // Saved, and the process is about to exit: keep the legs, the
        // media and the registry entry as they are until then. A request
        // from either side now gets no answer (not 481) and is
        // retransmitted to the next start.
        tracing::info!(call = %id, "call saved for the next start");
        std::future::pending::<()>().await;
        return;
    }
    // Music and relay stop now, not after the store writes below.
    drop(call.media);
    drop(enrolled); // no longer live for the API
    if let Some(reason) = call.machine.end_reason() {
        ctx.node.ended(reason);
    }
    forget(&ctx, &id.0).await;
    record(&ctx, call.machine.view()).await;
    tracing::info!(call = %id, "call ended");
}

/// A timeline line that changes what a restart must do: a state change,
/// or the incoming-call webhook delivered (or given up on), so that a
/// resumed call posts it again only when the app never got it.
fn worth_a_save(e: &Event) -> bool {
    // A key press is published but changes nothing a restart needs: it
    // rides along with the next save rather than cost a write per press.
    let state_change = e.event.published() && e.event != EventKind::Dtmf;
    state_change || e.settles_webhook()
}

/// How a driver's loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// The call is over.
    Finished,
    /// The call was saved and left up for the next start.
    Suspended,
}

/// Removes an ended call's saved state.
async fn forget(ctx: &Ctx, call_id: &str) {
    let id = call_id.to_string();
    if let Err(error) = ctx.store_write(move |store| store.remove_live(&id)).await {
        tracing::warn!(call = %call_id, %error, "saved state of an ended call not removed");
    }
}

/// Writes the call's record (off the async threads: SQLite blocks).
async fn record(ctx: &Ctx, view: CallView) {
    let id = view.call_id.clone();
    let record = view.record();
    if let Err(error) = ctx
        .store_write(move |store| store.record_call(&record))
        .await
    {
        tracing::warn!(call = %id, %error, "call record not written");
    }
}

/// How long a stop in resume mode waits for an early-media caller's
/// PRACK before it refuses the call instead of answering and saving it.
const SUSPEND_PRACK_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// The Reason (RFC 3326) on the BYEs of a drain's hang-ups.
const SHUTDOWN_REASON: &str = "SIP;cause=503;text=\"shutting down\"";

struct Call {
    ctx: Arc<Ctx>,
    entry: Arc<Entry>,
    machine: Machine,
    caller: Option<Leg>,
    /// The caller's INVITE while it is held in early media (no 200 yet).
    early: Option<Box<EarlyCaller>>,
    room: Option<Leg>,
    /// The room INVITE under way and the socket its SDP offers.
    dialing: Option<(Dialing, RtpSocket)>,
    /// The answer to the REFER under way.
    refer: Option<oneshot::Receiver<Option<u16>>>,
    /// A REFER waiting for the early-media caller's 200 OK (its PRACK).
    refer_due: Option<Transfer>,
    media: CallMedia,
    caller_from: String,
    tx: mpsc::UnboundedSender<DriverMsg>,
    webhook_task: Option<tokio::task::JoinHandle<()>>,
    events: Option<EventSink>,
    /// Timeline entries already handed to `events`.
    published: usize,
    view: watch::Sender<Arc<CallView>>,
    /// Timeline length at the last save.
    saved_lines: usize,
    /// Announcements and play-API prompts not over yet.
    prompts: HoldPrompts,
    /// The call's SIP ladder, which room legs join.
    trace: Option<Trace>,
}

/// The call's SIP ladder: the one its INVITE began. A call resumed after
/// a restart has legs rebuilt with fresh traces of their own: the room's
/// then records into the caller's, so the call has one ladder again.
fn link_trace(parts: &mut Parts) -> Option<Trace> {
    let trace = match (&parts.caller, &parts.early) {
        (Some(leg), _) => leg.trace(),
        (None, Some(early)) => early.trace(),
        (None, None) => return None,
    };
    if let Some(room) = parts.room.as_mut()
        && !room.trace().same(&trace)
    {
        room.set_trace(trace.room());
    }
    Some(trace)
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
    async fn run(&mut self, mut rx: mpsc::UnboundedReceiver<DriverMsg>) -> Outcome {
        let mut presses = self.media.presses();
        loop {
            let wake = self
                .machine
                .poll_timeout()
                .map(|at| self.ctx.clock.to_tokio(at));
            let actions = tokio::select! {
                event = next_leg_event(&mut self.caller) => self.caller_event(event),
                news = early::news(&mut self.early) => Box::pin(self.early_news(news)).await,
                event = next_leg_event(&mut self.room) => self.room_event(event),
                outcome = dial_outcome(&mut self.dialing) => {
                    let input = Box::pin(self.room_outcome(outcome)).await;
                    self.feed(input)
                }
                leg = self.media.silent() => {
                    tracing::info!(?leg, "no RTP from a leg for rtp_timeout_secs");
                    let leg = match leg {
                        MediaLeg::Caller => Silent::Caller,
                        MediaLeg::Room => Silent::Room,
                    };
                    self.feed(Input::PeerSilent(leg))
                }
                press = presses.next() => self.feed(Input::Dtmf(press)),
                f = self.prompts.finished() => {
                    let now = self.ctx.clock.now();
                    self.machine.play_finished(&f.audio, f.then, f.played, now)
                }
                code = refer_answer(&mut self.refer) => {
                    self.refer = None;
                    self.feed(Input::ReferAnswered(code))
                }
                msg = rx.recv() => match msg {
                    Some(DriverMsg::Suspend { done }) => {
                        let saved = self.suspend().await;
                        let _ = done.send(saved);
                        return Outcome::Suspended;
                    }
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
                return Outcome::Finished;
            }
            if self.changed_since_save() {
                self.save().await;
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
            DriverMsg::Play {
                prompt,
                audio,
                then,
                reply,
            } => {
                let answer = self.machine.request_play(now);
                if answer.is_ok() {
                    self.prompts.play(&self.media, prompt, audio, then);
                }
                let _ = reply.send(answer);
                vec![]
            }
            DriverMsg::Hangup => self.feed(Input::HangupRequested),
            DriverMsg::Shutdown => self.feed(Input::Shutdown),
            // Taken in `run`, which stops the loop.
            DriverMsg::Suspend { done } => {
                let _ = done.send(false);
                vec![]
            }
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
            // No refresh by the session's deadline (RFC 4028): the machine
            // ends the call and BYEs both legs, the caller's in case it
            // is still there.
            LegEvent::SessionExpired => self.feed(Input::SessionExpired),
            LegEvent::Sends(sends) => {
                self.media.set_sends(MediaLeg::Caller, sends);
                vec![]
            }
            LegEvent::Dtmf(press) => {
                // Bridged, the room's IVR needs the key too. RFC 4733 keys
                // cross with the relay; a key that came as SIP INFO goes
                // on as SIP INFO (the relay has no RTP to carry it).
                if let Some(room) = self.room.as_mut() {
                    let body = format!(
                        "Signal={}\r\nDuration={}\r\n",
                        press.digit, press.duration_ms
                    );
                    drop(room.info("application/dtmf-relay", &body));
                }
                self.feed(Input::Dtmf(press))
            }
        }
    }

    fn room_event(&mut self, event: LegEvent) -> Vec<Action> {
        match event {
            LegEvent::Bye | LegEvent::AckTimeout => {
                self.room = None;
                tracing::debug!(?event, "room leg ended");
                self.feed(Input::RoomHungUp)
            }
            // The room's leg stays, so that the machine's hang-up BYEs it.
            LegEvent::SessionExpired => self.feed(Input::SessionExpired),
            LegEvent::Sends(sends) => {
                self.media.set_sends(MediaLeg::Room, sends);
                vec![]
            }
            // The room's keys are not the caller's: not reported.
            LegEvent::ReferProgress(_) | LegEvent::Dtmf(_) => vec![],
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
                    self.refer_due = None;
                    if let Err(input) = self.start_dial(t) {
                        queue.extend(self.feed(input));
                    }
                }
                Action::Refer(t) => match (self.caller.as_mut(), &self.early) {
                    (Some(leg), _) => self.refer = Some(leg.refer(&t.target, &t.headers)),
                    // Sent with the 200 OK, which waits for the PRACK.
                    (None, Some(_)) => self.refer_due = Some(t),
                    (None, None) => queue.extend(self.feed(Input::ReferAnswered(None))),
                },
                // Dropping `Dialing` CANCELs the INVITE; its task ACKs and
                // BYEs a 2xx that crosses the CANCEL.
                Action::CancelTransfer => {
                    self.dialing = None;
                    self.refer = None;
                    self.refer_due = None;
                }
                Action::HangupCaller => {
                    if let Some(l) = self.caller.take() {
                        self.hang_up(l);
                    }
                    if let Some(early) = self.early.take() {
                        early.hang_up(self.machine.end_reason()).await;
                    }
                }
                // Sent from `run`'s loop once the caller may be answered
                // (its reliable 183 PRACKed): a PRACK is never waited for
                // here, where updates and API requests would wait too.
                Action::AnswerCaller => {
                    if let Some(early) = self.early.as_mut() {
                        early.want_answer();
                    }
                }
                Action::HangupRoom => {
                    if let Some(l) = self.room.take() {
                        self.hang_up(l);
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
                // One still to be heard (a period shorter than the
                // announcement, or a long prompt before it): skip this one
                // rather than queue them up behind each other.
                Action::AnnouncePosition if self.prompts.announcing() => {}
                Action::AnnouncePosition => {
                    let id = super::CallId(self.machine.parties().call_id.clone());
                    let registry = &self.ctx.registry;
                    self.prompts
                        .announce(&self.media, registry, &self.entry, &id);
                }
                Action::Finish => finished = true,
            }
        }
        finished
    }

    /// Acts on news of the caller in early media.
    async fn early_news(&mut self, news: EarlyNews) -> Vec<Action> {
        match news {
            EarlyNews::Left(why) => {
                if let Some(early) = self.early.take() {
                    early.close(why).await;
                }
                self.feed(Input::CallerHungUp)
            }
            EarlyNews::Dtmf(press) => self.feed(Input::Dtmf(press)),
            EarlyNews::Answerable => self.answer_early().await,
        }
    }

    /// Sends the early-media caller its 200 OK, and the REFER that waited
    /// for it (the leg holds it back until the caller's ACK).
    async fn answer_early(&mut self) -> Vec<Action> {
        let Some(early) = self.early.take() else {
            return vec![];
        };
        match early.answer(&self.ctx.stack, &self.media).await {
            Some(mut leg) => {
                if let Some(t) = self.refer_due.take() {
                    self.refer = Some(leg.refer(&t.target, &t.headers));
                }
                self.caller = Some(leg);
                vec![]
            }
            None => self.feed(Input::CallerHungUp),
        }
    }

    /// BYE on `leg`, saying why when the node's stop ends the call.
    fn hang_up(&self, leg: Leg) {
        match self.machine.end_reason() {
            Some(EndReason::Shutdown) => leg.hangup_because(SHUTDOWN_REASON),
            _ => leg.hangup(),
        }
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
            trace: self.trace.clone(),
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
                        .bridge(socket, answer.addr, answer.choose(), answer.sends)
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

    /// True when the call changed state since its last save: a published
    /// event (held, transfer started or failed, bridged, back to hold…)
    /// was logged. Webhook attempts and refused updates are not worth a
    /// write of their own; they ride along with the next save.
    fn changed_since_save(&self) -> bool {
        let timeline = self.machine.timeline();
        timeline
            .get(self.saved_lines..)
            .is_some_and(|new| new.iter().any(worth_a_save))
    }

    /// Saves the call as it is now, for a restart to resume (at every
    /// state change; never per packet). A failure is logged: the call goes
    /// on, it only could not be resumed from this point.
    async fn save(&mut self) -> bool {
        self.saved_lines = self.machine.timeline().len();
        // An INVITE in early media cannot be taken over by another
        // process: the call is saved from its answer on.
        if !self.machine.is_answered() {
            return false;
        }
        let saved = SavedCall {
            entry: self.entry.id.clone(),
            machine: self.machine.clone(),
            clock: self.ctx.clock.now(),
            caller_from: self.caller_from.clone(),
            caller: self.caller.as_ref().map(Leg::state),
            room: self.room.as_ref().map(Leg::state),
            media: self.media.state().await,
            published: self.published,
        };
        let written = match saved.to_live(crate::clock::unix_ms()) {
            Ok(live) => {
                self.ctx
                    .store_write(move |store| store.save_live(&live))
                    .await
            }
            Err(e) => Err(e.to_string()),
        };
        if let Err(error) = &written {
            tracing::warn!(%error, "call state not saved");
        }
        written.is_ok()
    }

    /// Resume mode's stop: a room INVITE still unanswered is CANCELed
    /// (its transfer starts again after the restart, so the caller is
    /// never left without a leg); then the call is saved as it stands.
    async fn suspend(&mut self) -> bool {
        if let Some((mut dialing, _)) = self.dialing.take() {
            dialing.cancel();
        }
        self.refer = None;
        // Answered first, so that the next start can take it over.
        let now = self.ctx.clock.now();
        if self.machine.answer_before_save(now).is_some() || self.early.is_some() {
            // A stop does not wait long for a PRACK: a caller that cannot
            // be answered by then is refused (503) and not saved.
            let answered = match self.early.as_mut() {
                Some(early) => match early.answerable(SUSPEND_PRACK_WAIT).await {
                    Ok(()) => self.answer_early().await.is_empty() && self.caller.is_some(),
                    Err(_) => false,
                },
                None => self.caller.is_some(),
            };
            if !answered {
                if let Some(early) = self.early.take() {
                    early.hang_up(Some(EndReason::Shutdown)).await;
                }
                return false;
            }
        }
        self.save().await
    }

    /// Publishes the call's view, and hands new timeline entries to the
    /// events webhook and the node's event feed.
    fn publish(&mut self) {
        self.view.send_replace(Arc::new(self.machine.view()));
        // The queue follows the machine: waiting or not, after each step.
        let id = super::CallId(self.machine.parties().call_id.clone());
        let bridged = self.machine.state() == super::machine::State::Bridged;
        let entry = &self.machine.parties().entry;
        (self.ctx.registry).set_waiting(&id, entry, self.machine.waiting(), bridged);
        let timeline = self.machine.timeline();
        if let Some(new) = timeline.get(self.published..).filter(|n| !n.is_empty()) {
            if let Some(sink) = &self.events {
                sink.publish(new);
            }
            let p = self.machine.parties();
            self.ctx.feed.publish(&p.call_id, &p.call_domain, new);
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
