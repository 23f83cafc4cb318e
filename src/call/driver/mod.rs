//! One task per call: answers the admitted INVITE, then runs the call's
//! machine — a thin loop: wait for the next fact (a SIP leg, a room
//! INVITE's outcome, a REFER answer, an API request) or for the machine's
//! own next deadline, feed it, perform the actions that come out, publish
//! the call's view and new events, save the call when its state changed.
//! The driver keeps no timers and no copy of the machine's state: it
//! holds the legs, the media, the one transfer attempt's I/O and where an
//! API request's answer goes. What to do is the machine's; the driver
//! only carries it out (which leg object a BYE goes to, which Reason
//! header it carries).

use crate::call::door::admission::Admitted;
use crate::call::door::capacity::Permit;
use crate::call::door::entries::Entry;
use crate::call::driver::answer::Answered;
use crate::call::driver::early_caller::EarlyCaller;
use crate::call::driver::events::EventSink;
use crate::call::driver::hold_prompts::HoldPrompts;
use crate::call::machine::recording::RecordingNow;
use crate::call::machine::view::CallView;
use crate::call::machine::{
    Accepted, Action, Input, KeyVia, Machine, PlayThen, Silent, UpdateRefused,
};
use crate::call::registry::handle::{CallHandle, DriverMsg, DriverRx, DriverTx};
use crate::media::{CallMedia, MediaLeg, Prompt, RtpSocket};
use crate::sip::{DialOutcome, Dialing, IncomingInvite, Leg, LegEvent, Trace};
use crate::stream::{OpenError, Opened, StreamLink};
pub use ctx::Ctx;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, watch};

mod actions;
pub(in crate::call) mod answer;
mod bot;
pub(in crate::call) mod ctx;
mod early_caller;
pub mod events;
mod hold_prompts;
mod persist;
mod quality;
mod recording;
mod recordings;
mod webhook_task;

/// Handles one admitted INVITE, from answer to end. The admission's
/// permit is held until this returns (or unwinds).
///
/// Not an `async fn`: its arguments (the INVITE, 1.7 KB) and what the
/// answer returns would stay in the call's task for the whole call, as an
/// async fn's arguments and locals do. The answer is a boxed future of its
/// own, freed once answered; what the task keeps is `drive`'s state.
pub fn run(
    ctx: Arc<Ctx>,
    admitted: Admitted,
    invite: IncomingInvite,
) -> impl std::future::Future<Output = ()> + Send {
    let answering = Box::pin(answer_held(ctx.clone(), admitted, invite));
    async move {
        if let Some((entry, parts, permit)) = answering.await {
            drive(ctx, entry, parts, permit, true).await;
        }
    }
}

/// Answers the INVITE and puts the caller on hold: the call's entry, its
/// parts and its permit, or None when it could not be answered.
async fn answer_held(
    ctx: Arc<Ctx>,
    admitted: Admitted,
    invite: IncomingInvite,
) -> Option<(Arc<Entry>, Box<Parts>, Permit)> {
    let Admitted {
        entry,
        offer,
        socket,
        srtp,
        permit,
        registration,
    } = admitted;
    let Answered {
        caller,
        early,
        media,
        machine,
        caller_from,
    } = answer::answer(&ctx, &entry, offer, socket, srtp, invite, registration).await?;
    let p = machine.parties();
    tracing::info!(call = %p.call_id, entry = %entry.name, from = %p.from, to = %p.to, "call held");
    #[cfg(test)]
    test_hooks::maybe_panic(&machine);
    let mut machine = machine;
    let pending = machine.start_actions(ctx.clock.now());
    let parts = Box::new(Parts {
        machine,
        caller,
        early,
        room: None,
        media,
        caller_from,
        published: 0,
        pending,
    });
    Some((entry, parts, permit))
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
    parts: Box<Parts>,
    _permit: Permit,
    post_webhook: bool,
) {
    // Set up outside the future's own state: what `begin` takes apart
    // would otherwise keep its room in every call's task all call long.
    let Begun {
        mut call,
        rx,
        id,
        enrolled,
        sip_call_id,
        pending,
    } = begin(&ctx, entry, parts);
    if post_webhook {
        call.post_webhook();
    }
    // What is awaited once (saves, the quality report, the record) is
    // boxed: inline, each would add its future's size to every call's task
    // for the whole call.
    let outcome = match call.perform(pending).await {
        Some(outcome) => outcome,
        None => {
            call.publish();
            Box::pin(call.save()).await;
            call.run(rx).await
        }
    };
    if outcome == Outcome::Finished {
        // Their ready (or failed) events are the call's last.
        Box::pin(call.finish_recordings()).await;
    }
    call.publish();
    // Stops a webhook still being retried.
    call.webhook_task = None;
    if outcome == Outcome::Suspended {
        // Saved, and the process is about to exit: keep the legs, the
        // media and the registry entry as they are until then. A request
        // from either side now gets no answer (not 481) and is
        // retransmitted to the next start.
        tracing::info!(call = %id, "call saved for the next start");
        std::future::pending::<()>().await;
        return;
    }
    if let Some(sip_call_id) = &sip_call_id {
        Box::pin(call.report_quality(sip_call_id)).await;
    }
    // Music and relay stop now, not after the store writes below.
    drop(call.media);
    drop(enrolled); // no longer live for the API
    if let Some(reason) = call.machine.end_reason() {
        ctx.node.ended(reason);
    }
    Box::pin(ctx.forget(&id.0)).await;
    Box::pin(ctx.record(call.machine.view())).await;
    tracing::info!(call = %id, "call ended");
}

/// A call set up to be driven: its `Call`, where its messages arrive, its
/// place in the registry, and what `drive` needs at its end.
struct Begun {
    call: Call,
    rx: DriverRx,
    id: crate::call::CallId,
    /// Leaves the registry when dropped, however the task ends.
    enrolled: crate::call::registry::Enrolled,
    /// The caller leg's SIP Call-ID, which the HEP quality report is filed
    /// under (kept only when `[hep]` is on).
    sip_call_id: Option<String>,
    /// Actions to perform first.
    pending: Vec<Action>,
}

fn begin(ctx: &Arc<Ctx>, entry: Arc<Entry>, parts: Box<Parts>) -> Begun {
    // Unboxed here, not in `drive`: a box moved out of in an async fn is
    // freed only when the fn returns, 2 KB kept for the whole call.
    let mut parts = *parts;
    let id = crate::call::CallId(parts.machine.parties().call_id.clone());
    let (tx, rx) = mpsc::unbounded_channel();
    let (view_tx, view_rx) = watch::channel(Arc::new(parts.machine.view()));
    let trace = link_trace(&mut parts);
    let sip_call_id = ctx.stack.hep().and(match (&parts.caller, &parts.early) {
        (Some(leg), _) => Some(leg.call_id().to_string()),
        (None, Some(early)) => Some(early.call_id().to_string()),
        (None, None) => None,
    });
    let enrolled = ctx
        .registry
        .enroll(id.clone(), CallHandle::new(tx.clone(), view_rx));
    if let Some(t) = &trace {
        ctx.registry.keep_trace(&id, t.clone());
    }
    let events = entry.events_url.as_ref().map(|url| {
        EventSink::start(
            ctx.events.for_origin(entry.origin),
            url.clone(),
            entry.keys.clone(),
            id.0.clone(),
            ctx.call_domain.clone(),
        )
    });
    let call = Call {
        ctx: ctx.clone(),
        entry,
        machine: parts.machine,
        caller: parts.caller,
        early: parts.early,
        room: parts.room.map(Box::new),
        attempt: Attempt::Idle,
        bot: None,
        media: parts.media,
        caller_from: parts.caller_from,
        tx,
        webhook_task: None,
        events,
        published: parts.published,
        view: view_tx,
        saved_lines: 0,
        prompts: HoldPrompts::default(),
        reply: None,
        prompt: None,
        trace,
        suspended: None,
        recordings: None,
    };
    Begun {
        call,
        rx,
        id,
        enrolled,
        sip_call_id,
        pending: parts.pending,
    }
}

/// How a driver's loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// The call is over.
    Finished,
    /// The call was saved and left up for the next start.
    Suspended,
}

struct Call {
    ctx: Arc<Ctx>,
    entry: Arc<Entry>,
    machine: Machine,
    caller: Option<Leg>,
    /// The caller's INVITE while it is held in early media (no 200 yet).
    early: Option<Box<EarlyCaller>>,
    /// Boxed: a held call has none, and would keep its 0.5 KB all along.
    room: Option<Box<Leg>>,
    /// The I/O of the transfer attempt under way (one at a time).
    attempt: Attempt,
    /// The voice bot the caller is with (in place of `room`).
    bot: Option<StreamLink>,
    media: CallMedia,
    caller_from: String,
    tx: DriverTx,
    /// Stops the webhook task when dropped or replaced (see
    /// `post_webhook`).
    webhook_task: Option<oneshot::Sender<()>>,
    events: Option<EventSink>,
    /// Timeline entries already handed to `events`.
    published: usize,
    view: watch::Sender<Arc<CallView>>,
    /// Timeline length at the last save.
    saved_lines: usize,
    /// Announcements and play-API prompts not over yet.
    prompts: HoldPrompts,
    /// Where the answer to the API request being handled goes.
    reply: Option<Replier>,
    /// The play request's decoded prompt, until the machine takes it.
    prompt: Option<(Prompt, String, PlayThen)>,
    /// The call's SIP ladder, which room legs join.
    trace: Option<Trace>,
    /// Where a stop in resume mode learns whether the call was saved.
    suspended: Option<oneshot::Sender<bool>>,
    /// The call's recordings (made at its first).
    recordings: Option<Box<recordings::Recordings>>,
}

/// The I/O of a transfer attempt: what the machine's `Dial`, `Connect` or
/// `Refer` started, until its outcome is fed back. Dropping it gives the
/// attempt up (a `Dialing` CANCELs its INVITE).
enum Attempt {
    Idle,
    /// A room INVITE, the socket its SDP offers and our SRTP keys in it
    /// by tag (None: plain RTP).
    Dialing {
        dialing: Dialing,
        socket: RtpSocket,
        keys: Option<Vec<(u32, crate::sdes::MasterKey)>>,
    },
    /// A room that answered, while the machine judges its SDP (boxed: a
    /// leg is large, and every held call's task holds an `Attempt`).
    Answered {
        leg: Box<Leg>,
        socket: RtpSocket,
    },
    /// A voice bot's stream being opened.
    Opening(Opening),
    /// The answer to our REFER.
    Referring(oneshot::Receiver<Option<u16>>),
}

/// How an attempt's I/O ended.
enum AttemptEnd {
    Dialed(DialOutcome),
    Opened(Result<Opened, OpenError>),
    /// The REFER's final answer (None: none came).
    Referred(Option<u16>),
}

/// Where an API request's answer goes.
enum Replier {
    Update(oneshot::Sender<Result<Accepted, UpdateRefused>>),
    Hold(oneshot::Sender<Result<(), UpdateRefused>>),
    Play(oneshot::Sender<Result<(), UpdateRefused>>),
    Record(oneshot::Sender<Result<RecordingNow, UpdateRefused>>),
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

async fn next_leg_event(leg: Option<&mut Leg>) -> LegEvent {
    match leg {
        Some(l) => l.next_event().await,
        None => std::future::pending().await,
    }
}

/// A voice bot's stream being opened: dropping it gives up the attempt.
type Opening = Pin<Box<dyn Future<Output = Result<Opened, OpenError>> + Send>>;

/// The end of the attempt under way; pending while there is none.
async fn attempt_end(a: &mut Attempt) -> AttemptEnd {
    match a {
        Attempt::Dialing { dialing, .. } => AttemptEnd::Dialed(dialing.outcome().await),
        Attempt::Opening(f) => AttemptEnd::Opened(f.as_mut().await),
        // A dropped sender means no answer came.
        Attempt::Referring(rx) => AttemptEnd::Referred(rx.await.unwrap_or(None)),
        Attempt::Idle | Attempt::Answered { .. } => std::future::pending().await,
    }
}

/// Why the bot's stream ended.
async fn stream_closed(b: &mut Option<StreamLink>) -> String {
    match b {
        Some(link) => link.closed().await,
        None => std::future::pending().await,
    }
}

impl Call {
    async fn run(&mut self, mut rx: DriverRx) -> Outcome {
        let mut presses = self.media.presses();
        loop {
            let wake = self.machine.poll_timeout();
            let actions = tokio::select! {
                event = next_leg_event(self.caller.as_mut()) => self.caller_event(event),
                news = early_caller::news(&mut self.early) => Box::pin(self.early_news(news)).await,
                event = next_leg_event(self.room.as_deref_mut()) => self.room_event(event),
                end = attempt_end(&mut self.attempt) => {
                    let input = Box::pin(self.attempt_ended(end)).await;
                    self.feed(input)
                }
                why = stream_closed(&mut self.bot) => {
                    tracing::info!(%why, "voice bot stream ended");
                    self.bot = None;
                    self.feed(Input::RoomHungUp)
                }
                leg = self.media.silent() => {
                    tracing::info!(?leg, "no RTP from a leg for rtp_timeout_secs");
                    let leg = match leg {
                        MediaLeg::Caller => Silent::Caller,
                        MediaLeg::Room => Silent::Room,
                    };
                    self.feed(Input::PeerSilent(leg))
                }
                press = presses.next() => self.feed(Input::Dtmf(press, KeyVia::Rtp)),
                end = self.prompts.finished() => self.feed(Input::PromptFinished(end)),
                (id, ended) = recordings::finished(&mut self.recordings) => {
                    let input = Box::pin(self.recording_done(id, ended)).await;
                    self.feed(input)
                }
                msg = rx.recv() => match msg {
                    Some(msg) => self.message(*msg),
                    None => self.feed(Input::HangupRequested),
                },
                _ = self.ctx.clock.sleep_until(wake) => {
                    let now = self.ctx.clock.now();
                    self.machine.handle_timeout(now)
                }
            };
            let outcome = self.perform(actions).await;
            self.publish();
            if let Some(outcome) = outcome {
                return outcome;
            }
            if self.changed_since_save() {
                // Boxed, as `perform`'s awaits are: a store write's future
                // inline would sit in every call's task all call long.
                Box::pin(self.save()).await;
            }
        }
    }

    fn feed(&mut self, input: Input) -> Vec<Action> {
        let now = self.ctx.clock.now();
        self.machine.handle(input, now)
    }

    /// An API request or a helper task's report, as the machine's input;
    /// where its answer goes is kept for the machine's `Reply`.
    fn message(&mut self, msg: DriverMsg) -> Vec<Action> {
        let input = match msg {
            DriverMsg::Update {
                request,
                key,
                reply,
            } => {
                self.reply = Some(Replier::Update(reply));
                Input::UpdateRequested { request, key }
            }
            DriverMsg::Hold { reply } => {
                self.reply = Some(Replier::Hold(reply));
                Input::HoldRequested
            }
            DriverMsg::Play {
                prompt,
                audio,
                then,
                reply,
            } => {
                self.reply = Some(Replier::Play(reply));
                self.prompt = Some((prompt, audio.clone(), then));
                Input::PlayRequested { audio, then }
            }
            DriverMsg::Record { request, reply } => {
                self.reply = Some(Replier::Record(reply));
                Input::RecordRequested(request)
            }
            DriverMsg::Hangup => Input::HangupRequested,
            DriverMsg::Shutdown => Input::Shutdown,
            DriverMsg::Suspend { done } => {
                self.suspended = Some(done);
                Input::Suspending
            }
            DriverMsg::Report(input) => input,
        };
        self.feed(input)
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
            LegEvent::Dtmf(press) => self.feed(Input::Dtmf(press, KeyVia::Info)),
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
}

/// Test-only faults, to check what a driver bug leaves behind.
#[cfg(test)]
pub(crate) mod test_hooks {
    /// The caller header that makes the driver panic right after answering.
    pub const PANIC_HEADER: &str = "X-Pinless-Test-Panic";

    pub fn maybe_panic(m: &crate::call::Machine) {
        let wanted = m.parties().caller_headers.iter();
        if wanted
            .into_iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(PANIC_HEADER))
        {
            panic!("test hook: driver panics after answering");
        }
    }
}

#[cfg(test)]
mod size_tests {
    /// The size of the future an async fn of three arguments returns, from
    /// its type alone.
    fn future_size<A, B, C, F: std::future::Future>(_: fn(A, B, C) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    /// Every held call keeps one of these futures for its whole life: what
    /// it awaits inline counts in every call's memory. Boxing the awaits
    /// made now and then took it from 24.8 KB to 9.1 KB, and keeping the
    /// answer's arguments and results out of it to 4.8 KB (the same in
    /// debug and release builds; `-Zprint-type-sizes` shows the parts);
    /// this keeps it from growing back unnoticed.
    #[test]
    fn a_call_task_stays_small() {
        let size = future_size(super::run);
        eprintln!("call task future: {size} bytes");
        assert!(size <= 6 * 1024, "the call task's future is {size} bytes");
    }
}
