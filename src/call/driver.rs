//! One task per call: answers the INVITE, starts hold music and the
//! webhook, then runs the call's machine against what happens (SIP legs,
//! room INVITEs, REFER, API requests, timers) and performs its actions.
//! Everything the machine writes to the timeline is also published to the
//! entry's events webhook.

use super::CallId;
use super::entries::Entry;
use super::events::EventSink;
use super::machine::{Accepted, Action, Input, Machine, Parties, Transfer, UpdateRefused};
use super::plan::TransferRequest;
use super::registry::{CallHandle, Registry, lock};
use crate::media::{CallMedia, MediaEngine, RtpSocket};
use crate::sip::headers::to_json_map;
use crate::sip::{
    DialOutcome, Dialing, IncomingInvite, Leg, LegEvent, OutboundRequest, Stack, sdp,
};
use crate::store::Store;
use crate::webhook::{self, AttemptOutcome, Delivery};
use serde_json::json;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// What the rest of the gateway shares with call drivers.
pub struct Ctx {
    pub stack: Stack,
    /// Where finished calls are recorded.
    pub store: Arc<Store>,
    pub media: MediaEngine,
    /// Incoming-call webhooks.
    pub webhooks: webhook::Sender,
    /// Call events (shorter retries).
    pub events: webhook::Sender,
    pub registry: Registry,
    pub call_domain: String,
}

/// Messages to a call's driver.
pub enum DriverMsg {
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
    Hangup,
    Webhook(Input),
}

/// Handles one incoming INVITE matched to `entry`, from answer to end.
pub async fn run(ctx: Arc<Ctx>, entry: Arc<Entry>, mut invite: IncomingInvite) {
    let offer = match sdp::parse(&invite.info.sdp) {
        Ok(o) => o,
        Err(e) => {
            tracing::info!(error = %e, from = %invite.info.source, "INVITE refused: 488");
            // The parser's message may quote the offer: keep it one clean line.
            let text: String = e
                .to_string()
                .chars()
                .filter(|c| !c.is_control() && *c != '"')
                .take(120)
                .collect();
            let warning = format!("399 pinless \"{text}\"");
            Box::pin(invite.reject(488, None, &[("Warning", warning)])).await;
            return;
        }
    };
    let socket = match ctx.media.allocate() {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "INVITE refused: 503");
            Box::pin(invite.reject(503, None, &[("Retry-After", "5".into())])).await;
            return;
        }
    };
    if !entry.answer_delay.is_zero() {
        Box::pin(invite.ring(&ctx.stack)).await;
        tokio::select! {
            _ = tokio::time::sleep(entry.answer_delay) => {}
            _ = invite.cancelled() => {
                Box::pin(invite.reject(487, None, &[])).await;
                return;
            }
        }
    }
    let codec = offer.choose();
    let answer = sdp::answer(ctx.media.public_ip(), socket.port, codec);
    let info = invite.info.clone();
    // Boxed, like the rejections above: the answering state is large and
    // would otherwise be reserved in every held call's task for its life.
    let caller_leg = match Box::pin(invite.accept(&ctx.stack, answer)).await {
        Ok(leg) => leg,
        Err(e) => {
            tracing::warn!(error = %e, "could not answer INVITE");
            return;
        }
    };
    let media = match ctx
        .media
        .hold(socket, offer.addr, codec, hold_music(&ctx, &entry))
    {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(error = %e, "no media for answered call; hanging up");
            caller_leg.hangup();
            return;
        }
    };

    let id = CallId::new();
    let party = |user: &Option<String>, uri: &str| match user {
        Some(u) if u.starts_with('+') => u.clone(),
        _ => uri.to_string(),
    };
    let (caller_headers, dropped) = entry.headers.apply(&info.custom_headers);
    let parties = Parties {
        call_id: id.0.clone(),
        call_domain: ctx.call_domain.clone(),
        from: party(&info.from_user, &info.from_uri),
        to: party(&info.to_user, &info.to_uri),
        entry: entry.name.clone(),
        caller_headers,
    };
    let now = webhook::unix_ms();
    let mut m = Machine::answered(parties.clone(), entry.policy.clone(), now);
    if !dropped.is_empty() {
        let names: Vec<_> = dropped
            .iter()
            .map(|d| json!({ "name": d.name, "why": d.why }))
            .collect();
        m.log(now, "headers.dropped", json!(names));
    }
    let machine = Arc::new(Mutex::new(m));
    let (tx, rx) = mpsc::unbounded_channel();
    ctx.registry.insert(
        id.clone(),
        CallHandle {
            tx: tx.clone(),
            machine: machine.clone(),
        },
    );
    tracing::info!(call = %id, entry = %entry.name, from = %parties.from, to = %parties.to, "call held");
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
        id: id.clone(),
        machine,
        caller: Some(caller_leg),
        room: None,
        dialing: None,
        refer: None,
        retry_at: None,
        announce_until: None,
        media,
        caller_from: info.from_uri.clone(),
        parties,
        tx,
        webhook_task: None,
        events,
        published: 0,
    };
    call.post_webhook();
    call.publish();
    call.run(rx).await; // publishes as it goes, the end included
    if let Some(task) = call.webhook_task.take() {
        task.abort();
    }
    if let Some(record) = ctx.registry.finish(&id) {
        let store = ctx.store.clone();
        let record = record_of(&record);
        let error = match tokio::task::spawn_blocking(move || store.record_call(&record)).await {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(e) => Some(e.to_string()),
        };
        if let Some(error) = error {
            tracing::warn!(call = %id, %error, "call record not written");
        }
    }
    tracing::info!(call = %id, "call ended");
}

/// The store's record of a finished call.
// TEMPORARY (errors branch): the store no longer takes the machine; the
// lead's call rewrite replaces this with its own conversion.
pub fn record_of(m: &Machine) -> crate::store::CallRecord {
    let sip_headers = match &m.sip_headers {
        serde_json::Value::Object(map) => map
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
            .collect(),
        _ => Default::default(),
    };
    crate::store::CallRecord {
        call_id: m.call_id.clone(),
        call_domain: m.call_domain.clone(),
        entry: m.entry.clone(),
        from: m.from.clone(),
        to: m.to.clone(),
        state: super::machine::state_name(m.state).to_string(),
        created_at: m.created_at,
        bridged_at: m.bridged_at,
        ended_at: m.ended_at.unwrap_or(m.created_at),
        end_reason: m.end_reason.map(str::to_string),
        target: m.target.clone(),
        transfer_attempts: m.transfer_attempts,
        hold_ms: m.hold_ms,
        talk_ms: m.talk_ms,
        sip_headers,
        timeline: m
            .timeline
            .iter()
            .map(|e| crate::store::RecordEvent {
                at: e.at,
                event: e.event.to_string(),
                detail: e.detail.clone(),
            })
            .collect(),
    }
}

/// What the entry's callers hear on hold: its own music, else `[hold].music`.
fn hold_music(ctx: &Ctx, entry: &Entry) -> Arc<crate::media::HoldLoop> {
    entry.music.clone().unwrap_or_else(|| ctx.media.music())
}

/// A REFER under way: its answer, then a deadline for the final NOTIFY.
struct Referring {
    answer: Option<oneshot::Receiver<Option<u16>>>,
    deadline: Instant,
}

struct Call {
    ctx: Arc<Ctx>,
    entry: Arc<Entry>,
    id: CallId,
    machine: Arc<Mutex<Machine>>,
    caller: Option<Leg>,
    room: Option<Leg>,
    /// The room INVITE under way and the socket its SDP offers.
    dialing: Option<(Dialing, RtpSocket)>,
    refer: Option<Referring>,
    retry_at: Option<Instant>,
    announce_until: Option<Instant>,
    media: CallMedia,
    caller_from: String,
    parties: Parties,
    tx: mpsc::UnboundedSender<DriverMsg>,
    webhook_task: Option<tokio::task::JoinHandle<()>>,
    events: Option<EventSink>,
    /// Timeline entries already handed to `events`.
    published: usize,
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

/// The REFER's final answer, once; then pending until the NOTIFY deadline.
async fn refer_answer(r: &mut Option<Referring>) -> Option<Option<u16>> {
    match r {
        Some(Referring {
            answer: Some(rx), ..
        }) => {
            let code = rx.await.unwrap_or(None);
            if let Some(r) = r.as_mut() {
                r.answer = None;
            }
            Some(code)
        }
        Some(Referring { deadline, .. }) => {
            tokio::time::sleep_until(*deadline).await;
            None
        }
        None => std::future::pending().await,
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl Call {
    async fn run(&mut self, mut rx: mpsc::UnboundedReceiver<DriverMsg>) {
        loop {
            let hold_deadline = lock(&self.machine).hold_deadline().map(|at| {
                Instant::now() + Duration::from_millis(at.saturating_sub(webhook::unix_ms()))
            });
            let actions = tokio::select! {
                event = next_leg_event(&mut self.caller) => self.caller_event(event),
                event = next_leg_event(&mut self.room) => {
                    self.room = None;
                    tracing::debug!(call = %self.id, ?event, "room leg ended");
                    self.step(Input::RoomHungUp)
                }
                outcome = dial_outcome(&mut self.dialing) => {
                    Box::pin(self.room_outcome(outcome)).await
                }
                answer = refer_answer(&mut self.refer) => self.refer_answered(answer),
                msg = rx.recv() => match msg {
                    Some(msg) => self.message(msg),
                    None => self.step(Input::HangupRequested),
                },
                _ = sleep_until(self.retry_at) => {
                    self.retry_at = None;
                    self.step(Input::RetryDue)
                }
                _ = sleep_until(self.announce_until) => {
                    self.announce_until = None;
                    self.step(Input::AnnouncementDone)
                }
                _ = sleep_until(hold_deadline) => self.step(Input::HoldTimeout),
            };
            let finished = self.perform(actions).await;
            self.publish();
            if finished {
                return;
            }
        }
    }

    fn step(&self, input: Input) -> Vec<Action> {
        lock(&self.machine).handle(input, webhook::unix_ms())
    }

    fn message(&mut self, msg: DriverMsg) -> Vec<Action> {
        let now = webhook::unix_ms();
        match msg {
            DriverMsg::Update {
                request,
                key,
                reply,
            } => {
                let result = lock(&self.machine).request_transfer(request, key, now);
                let (answer, actions) = match result {
                    Ok((accepted, actions)) => (Ok(accepted), actions),
                    Err(e) => (Err(e), vec![]),
                };
                let _ = reply.send(answer);
                actions
            }
            DriverMsg::Hold { reply } => {
                let result = lock(&self.machine).request_hold(now);
                let (answer, actions) = match result {
                    Ok(actions) => (Ok(()), actions),
                    Err(e) => (Err(e), vec![]),
                };
                let _ = reply.send(answer);
                actions
            }
            DriverMsg::Hangup => self.step(Input::HangupRequested),
            DriverMsg::Webhook(input) => self.step(input),
        }
    }

    fn caller_event(&mut self, event: LegEvent) -> Vec<Action> {
        match event {
            LegEvent::ReferProgress(code) if code < 200 => vec![],
            LegEvent::ReferProgress(code) if self.refer.is_some() => {
                self.refer = None;
                if code < 300 {
                    self.step(Input::ReferSucceeded)
                } else {
                    self.step(Input::ReferFailed {
                        code: Some(code),
                        reason: "the caller's side could not reach the target".into(),
                    })
                }
            }
            LegEvent::ReferProgress(_) => vec![],
            LegEvent::Bye | LegEvent::AckTimeout => {
                self.caller = None; // its dialog is over either way
                tracing::debug!(call = %self.id, ?event, "caller leg ended");
                self.step(Input::CallerHungUp)
            }
        }
    }

    fn refer_answered(&mut self, answer: Option<Option<u16>>) -> Vec<Action> {
        match answer {
            // 2xx: wait for the NOTIFY that says how the call went.
            Some(Some(code)) if (200..300).contains(&code) => vec![],
            Some(code) => {
                self.refer = None;
                self.step(Input::ReferFailed {
                    code,
                    reason: "REFER refused or not answered".into(),
                })
            }
            None => {
                self.refer = None;
                self.step(Input::ReferFailed {
                    code: None,
                    reason: "no final NOTIFY in time".into(),
                })
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
                    if let Err(input) = self.start_dial(t) {
                        queue.extend(self.step(input));
                    }
                }
                Action::Refer(t) => match self.caller.as_mut() {
                    Some(leg) => {
                        self.refer = Some(Referring {
                            answer: Some(leg.refer(&t.target, &t.headers)),
                            deadline: Instant::now() + t.ring_timeout,
                        });
                    }
                    None => queue.extend(self.step(Input::ReferFailed {
                        code: None,
                        reason: "caller leg gone".into(),
                    })),
                },
                Action::RetryIn(after) => self.retry_at = Some(Instant::now() + after),
                // Dropping `Dialing` CANCELs the INVITE; its task ACKs and
                // BYEs a 2xx that crosses the CANCEL.
                Action::CancelTransfer => {
                    self.dialing = None;
                    self.retry_at = None;
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
                Action::PlayAnnouncement => match self.entry.announcement.clone() {
                    Some(a) => {
                        let length = Duration::from_millis(u64::from(a.frames()) * 20);
                        self.media.play(a).await;
                        self.announce_until = Some(Instant::now() + length);
                    }
                    None => queue.extend(self.step(Input::AnnouncementDone)),
                },
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
        tracing::info!(call = %self.id, target = %request.target, "transferring");
        self.dialing = Some((Dialing::start(&self.ctx.stack, request), socket));
        Ok(())
    }

    async fn room_outcome(&mut self, outcome: DialOutcome) -> Vec<Action> {
        let Some((_, socket)) = self.dialing.take() else {
            return vec![];
        };
        let failed = |code: Option<u16>, reason: String| Input::RoomFailed { code, reason };
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
            tracing::info!(call = %self.id, ?code, %reason, "transfer attempt failed");
        }
        self.step(input)
    }

    /// Posts the incoming-call webhook (again, after a room hung up on a
    /// caller whose entry returns it to hold).
    fn post_webhook(&mut self) {
        if let Some(old) = self.webhook_task.take() {
            old.abort();
        }
        self.webhook_task = Some(tokio::spawn(send_webhook(
            self.ctx.clone(),
            self.entry.clone(),
            self.parties.clone(),
            self.tx.clone(),
        )));
    }

    /// Hands new timeline entries to the events webhook.
    fn publish(&mut self) {
        let Some(sink) = &self.events else { return };
        let m = lock(&self.machine);
        if self.published < m.timeline.len() {
            sink.publish(&m.timeline[self.published..]);
            self.published = m.timeline.len();
        }
    }
}

/// Posts the incoming-call webhook, reporting each attempt to the driver.
async fn send_webhook(
    ctx: Arc<Ctx>,
    entry: Arc<Entry>,
    p: Parties,
    tx: mpsc::UnboundedSender<DriverMsg>,
) {
    let body = serde_json::json!({
        "To": p.to,
        "From": p.from,
        "callId": p.call_id,
        "callDomain": p.call_domain,
        "sipHeaders": to_json_map(&p.caller_headers),
    });
    let body = body.to_string().into_bytes();
    let id = format!("msg_{}", uuid::Uuid::new_v4().simple());
    let result = ctx
        .webhooks
        .deliver(&entry.webhook_url, &entry.keys, &id, &body, |a| {
            let (status, error) = match &a.outcome {
                AttemptOutcome::Status(s) => (Some(*s), None),
                AttemptOutcome::Error(e) => (None, Some(e.to_string())),
            };
            let _ = tx.send(DriverMsg::Webhook(Input::WebhookAttempt {
                number: a.number,
                status,
                error,
            }));
        })
        .await;
    if let Delivery::Failed { attempts, last } = result {
        tracing::warn!(call = %p.call_id, attempts, ?last, "webhook not delivered; caller stays on hold");
        let _ = tx.send(DriverMsg::Webhook(Input::WebhookGaveUp));
    }
}
