//! One task per call: answers the INVITE, starts hold music and the
//! webhook, then runs the call's machine against what happens (SIP legs,
//! the room INVITE, API requests, timers) and performs its actions.

use super::CallId;
use super::entries::Entry;
use super::machine::{Action, Input, Machine, Parties, Transfer, UpdateRefused};
use super::registry::{CallHandle, Registry, lock};
use crate::media::{CallMedia, MediaEngine, RtpSocket};
use crate::sip::headers::to_json_map;
use crate::sip::{
    DialOutcome, Dialing, IncomingInvite, Leg, LegEvent, OutboundRequest, Stack, sdp,
};
use crate::webhook::{self, AttemptOutcome, Delivery};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// What the rest of the gateway shares with call drivers.
pub struct Ctx {
    pub stack: Stack,
    pub media: MediaEngine,
    pub webhooks: webhook::Sender,
    pub registry: Registry,
    pub call_domain: String,
    pub max_hold: Duration,
    /// How long a room may ring before we give up on it.
    pub room_ring_timeout: Duration,
}

/// Messages to a call's driver.
pub enum DriverMsg {
    Update {
        transfer_to: String,
        headers: Vec<(String, String)>,
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
            invite.reject(488, None, &[("Warning", warning)]).await;
            return;
        }
    };
    let socket = match ctx.media.allocate() {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "INVITE refused: 503");
            invite
                .reject(503, None, &[("Retry-After", "5".into())])
                .await;
            return;
        }
    };
    if !entry.answer_delay.is_zero() {
        invite.ring(&ctx.stack).await;
        tokio::select! {
            _ = tokio::time::sleep(entry.answer_delay) => {}
            _ = invite.cancelled() => {
                invite.reject(487, None, &[]).await;
                return;
            }
        }
    }
    let codec = offer.choose();
    let answer = sdp::answer(ctx.media.public_ip(), socket.port, codec);
    let info = invite.info.clone();
    let caller_leg = match invite.accept(&ctx.stack, answer).await {
        Ok(leg) => leg,
        Err(e) => {
            tracing::warn!(error = %e, "could not answer INVITE");
            return;
        }
    };
    let media = match ctx.media.hold(socket, offer.addr, codec) {
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
    let parties = Parties {
        call_id: id.0.clone(),
        call_domain: ctx.call_domain.clone(),
        from: party(&info.from_user, &info.from_uri),
        to: party(&info.to_user, &info.to_uri),
        entry: entry.name.clone(),
        caller_headers: info.custom_headers.clone(),
    };
    let machine = Arc::new(Mutex::new(Machine::answered(
        parties.clone(),
        webhook::unix_ms(),
    )));
    let (tx, rx) = mpsc::unbounded_channel();
    ctx.registry.insert(
        id.clone(),
        CallHandle {
            tx: tx.clone(),
            machine: machine.clone(),
        },
    );
    tracing::info!(call = %id, entry = %entry.name, from = %parties.from, to = %parties.to, "call held");
    let webhook_task = tokio::spawn(send_webhook(
        ctx.clone(),
        entry.clone(),
        parties,
        info.custom_headers.clone(),
        tx,
    ));

    let mut call = Call {
        ctx: ctx.clone(),
        id: id.clone(),
        machine,
        caller: Some(caller_leg),
        room: None,
        dialing: None,
        media,
        caller_from: info.from_uri.clone(),
    };
    call.run(rx).await;
    webhook_task.abort();
    ctx.registry.finish(&id);
    tracing::info!(call = %id, "call ended");
}

struct Call {
    ctx: Arc<Ctx>,
    id: CallId,
    machine: Arc<Mutex<Machine>>,
    caller: Option<Leg>,
    room: Option<Leg>,
    /// The room INVITE under way and the socket its SDP offers.
    dialing: Option<(Dialing, RtpSocket)>,
    media: CallMedia,
    caller_from: String,
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

impl Call {
    async fn run(&mut self, mut rx: mpsc::UnboundedReceiver<DriverMsg>) {
        let hold_deadline = tokio::time::Instant::now() + self.ctx.max_hold;
        loop {
            let held = !matches!(lock(&self.machine).state, super::State::Bridged);
            let actions = tokio::select! {
                event = next_leg_event(&mut self.caller) => {
                    self.caller = None; // its dialog is over either way
                    tracing::debug!(call = %self.id, ?event, "caller leg ended");
                    self.step(Input::CallerHungUp)
                }
                event = next_leg_event(&mut self.room) => {
                    self.room = None;
                    tracing::debug!(call = %self.id, ?event, "room leg ended");
                    self.step(Input::RoomHungUp)
                }
                outcome = dial_outcome(&mut self.dialing) => self.room_outcome(outcome).await,
                msg = rx.recv() => match msg {
                    Some(DriverMsg::Update { transfer_to, headers, reply }) => {
                        let result = lock(&self.machine).request_transfer(transfer_to, headers, webhook::unix_ms());
                        let (ack, actions) = match result {
                            Ok(a) => (Ok(()), a),
                            Err(e) => (Err(e), vec![]),
                        };
                        let _ = reply.send(ack);
                        actions
                    }
                    Some(DriverMsg::Hangup) => self.step(Input::HangupRequested),
                    Some(DriverMsg::Webhook(input)) => self.step(input),
                    None => self.step(Input::HangupRequested),
                },
                _ = tokio::time::sleep_until(hold_deadline), if held => self.step(Input::HoldTimeout),
            };
            if self.perform(actions) {
                return;
            }
        }
    }

    fn step(&self, input: Input) -> Vec<Action> {
        lock(&self.machine).handle(input, webhook::unix_ms())
    }

    /// Performs actions; true when the call is finished.
    fn perform(&mut self, actions: Vec<Action>) -> bool {
        let mut finished = false;
        for action in actions {
            match action {
                Action::StartTransfer(t) => self.start_transfer(t),
                // Dropping `Dialing` CANCELs the INVITE; its task ACKs and
                // BYEs a 2xx that crosses the CANCEL.
                Action::CancelTransfer => self.dialing = None,
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
                Action::Finish => finished = true,
            }
        }
        finished
    }

    fn start_transfer(&mut self, t: Transfer) {
        let socket = match self.ctx.media.allocate() {
            Ok(s) => s,
            Err(e) => {
                let actions = self.step(Input::RoomFailed {
                    code: None,
                    reason: e.to_string(),
                });
                self.perform(actions);
                return;
            }
        };
        let request = OutboundRequest {
            target: t.target,
            from: self.caller_from.clone(),
            headers: t.headers,
            sdp: sdp::offer(self.ctx.media.public_ip(), socket.port),
            ring_timeout: self.ctx.room_ring_timeout,
        };
        tracing::info!(call = %self.id, target = %request.target, "transferring");
        self.dialing = Some((Dialing::start(&self.ctx.stack, request), socket));
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
                        self.room = Some(leg);
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
            tracing::info!(call = %self.id, ?code, %reason, "transfer failed; caller stays on hold");
        }
        self.step(input)
    }
}

/// Posts the incoming-call webhook, reporting each attempt to the driver.
async fn send_webhook(
    ctx: Arc<Ctx>,
    entry: Arc<Entry>,
    p: Parties,
    headers: Vec<(String, String)>,
    tx: mpsc::UnboundedSender<DriverMsg>,
) {
    let body = serde_json::json!({
        "To": p.to,
        "From": p.from,
        "callId": p.call_id,
        "callDomain": p.call_domain,
        "sipHeaders": to_json_map(&headers),
    });
    let body = body.to_string().into_bytes();
    let id = format!("msg_{}", uuid::Uuid::new_v4().simple());
    let result = ctx
        .webhooks
        .deliver(&entry.webhook_url, &entry.key, &id, &body, |a| {
            let (status, error) = match &a.outcome {
                AttemptOutcome::Status(s) => (Some(*s), None),
                AttemptOutcome::Error(e) => (None, Some(e.clone())),
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
