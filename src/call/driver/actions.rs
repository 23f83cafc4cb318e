//! What a call's driver does on the machine's actions: dial a room, REFER
//! the caller, hang up a leg, play music, an announcement or a prompt,
//! post the webhook again, answer a caller held in early media, answer an
//! API request, pass a key press on. Each
//! action is carried out on the legs and the media; a failure becomes the
//! fact fed back to the machine.

use super::{Attempt, AttemptEnd, Call, Outcome, Replier};
use crate::call::door::secure;
use crate::call::driver::answer::hold_music;
use crate::call::driver::webhook_task;
use crate::call::machine::{
    Action, EndReason, Input, KeyTo, KeyVia, PromptEnd, Reply, Transfer, room,
};
use crate::codec::DtmfPress;
use crate::media::RtpSocket;
use crate::sip::{DialOutcome, Dialing, EarlyNews, Leg, OutboundRequest, sdp};
use std::collections::VecDeque;

/// The Reason (RFC 3326) on the BYEs of a drain's hang-ups.
const SHUTDOWN_REASON: &str = "SIP;cause=503;text=\"shutting down\"";

impl Call {
    /// Performs actions (and those their failures lead to); how the call
    /// ended, when it did. The actions that await (a bridge, a hang-up, a
    /// save) are boxed: this future lives inside every held call's task,
    /// and inline they made it 11 KB a call for work done now and then.
    pub(super) async fn perform(&mut self, actions: Vec<Action>) -> Option<Outcome> {
        let mut queue = VecDeque::from(actions);
        let mut outcome = None;
        while let Some(action) = queue.pop_front() {
            match action {
                Action::Dial(t) => {
                    self.attempt = Attempt::Idle;
                    if let Err(input) = self.start_dial(t) {
                        queue.extend(self.feed(input));
                    }
                }
                Action::Connect(c) => self.start_connect(c),
                // The machine sends it only once the caller's 200 OK went
                // out; no leg then means the caller is gone.
                Action::Refer(t) => match self.caller.as_mut() {
                    Some(leg) => {
                        self.attempt = Attempt::Referring(leg.refer(&t.target, &t.headers));
                    }
                    None => queue.extend(self.feed(Input::ReferAnswered(None))),
                },
                // Dropping `Dialing` CANCELs the INVITE; its task ACKs and
                // BYEs a 2xx that crosses the CANCEL.
                Action::CancelTransfer => self.attempt = Attempt::Idle,
                Action::BridgeRoom(usable) => {
                    let input = Box::pin(self.bridge_room(*usable)).await;
                    queue.extend(self.feed(input));
                }
                Action::HangupAnswered => {
                    if let Attempt::Answered { leg, .. } =
                        std::mem::replace(&mut self.attempt, Attempt::Idle)
                    {
                        leg.hangup();
                    }
                }
                Action::HangupCaller => {
                    if let Some(l) = self.caller.take() {
                        self.hang_up(l);
                    }
                    if let Some(early) = self.early.take() {
                        Box::pin(early.hang_up(self.machine.end_reason())).await;
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
                        self.hang_up(*l);
                    }
                    // Dropping the link sends `stop` and closes the socket.
                    self.bot = None;
                }
                Action::ResumeHold => {
                    Box::pin(self.media.play(hold_music(&self.ctx, &self.entry))).await;
                }
                Action::PostWebhook => self.post_webhook(),
                // The machine ends the call when the announcement is over;
                // an entry without one never asks for it.
                Action::PlayAnnouncement => {
                    if let Some(a) = self.entry.announcement.clone() {
                        Box::pin(self.media.play(a)).await;
                    }
                }
                Action::AnnouncePosition => {
                    let id = crate::call::CallId(self.machine.parties().call_id.clone());
                    let registry = &self.ctx.registry;
                    let started = (self.prompts).announce(&self.media, registry, &self.entry, &id);
                    if !started {
                        let over = Input::PromptFinished(PromptEnd::Announcement);
                        queue.extend(self.feed(over));
                    }
                }
                Action::Reply(reply) => self.reply(reply),
                Action::PlayPrompt => {
                    if let Some((prompt, audio, then)) = self.prompt.take() {
                        self.prompts.play(&self.media, prompt, audio, then);
                    }
                }
                Action::SendDtmf { press, to } => self.send_dtmf(press, to),
                Action::StartRecording { id, resume_at } => {
                    Box::pin(self.start_recording(id, resume_at)).await;
                }
                Action::PauseRecording(mode) => self.pause_recording(mode),
                Action::PlayConsent => {
                    if !self.prompts.consent(&self.media, &self.entry) {
                        let over = Input::PromptFinished(PromptEnd::Consent { played: false });
                        queue.extend(self.feed(over));
                    }
                }
                Action::ResumeRecording => self.resume_recording(),
                Action::StopRecording => self.stop_recording(),
                Action::Suspend => {
                    // The file as it stands, for the next start to go on.
                    Box::pin(self.detach_recording()).await;
                    let saved = Box::pin(self.save()).await;
                    if let Some(done) = self.suspended.take() {
                        let _ = done.send(saved);
                    }
                    return Some(Outcome::Suspended);
                }
                Action::Finish => outcome = Some(Outcome::Finished),
            }
        }
        // A stop that waited for this call learns it was not saved.
        if let (Some(Outcome::Finished), Some(done)) = (outcome, self.suspended.take()) {
            let _ = done.send(false);
        }
        outcome
    }

    /// Sends the machine's answer to the API request being handled.
    fn reply(&mut self, reply: Reply) {
        // A requester that gave up is no concern of the call's.
        match (self.reply.take(), reply) {
            (Some(Replier::Update(tx)), Reply::Update(r)) => drop(tx.send(r)),
            (Some(Replier::Hold(tx)), Reply::Hold(r)) => drop(tx.send(r)),
            (Some(Replier::Play(tx)), Reply::Play(r)) => drop(tx.send(r)),
            (Some(Replier::Record(tx)), Reply::Record(r)) => drop(tx.send(r)),
            (replier, reply) => {
                tracing::warn!(
                    ?reply,
                    waiting = replier.is_some(),
                    "an answer nobody asked for"
                );
            }
        }
    }

    /// Passes a caller's key press on: to the room as SIP INFO, or to the
    /// voice bot on its stream.
    fn send_dtmf(&mut self, press: DtmfPress, to: KeyTo) {
        match to {
            KeyTo::RoomInfo => {
                if let Some(room) = self.room.as_mut() {
                    let body = format!(
                        "Signal={}\r\nDuration={}\r\n",
                        press.digit, press.duration_ms
                    );
                    drop(room.info("application/dtmf-relay", &body));
                }
            }
            KeyTo::Bot => {
                if let Some(bot) = &self.bot {
                    bot.dtmf(&press.digit.to_string());
                }
            }
        }
    }

    /// Acts on news of the caller in early media.
    pub(super) async fn early_news(&mut self, news: EarlyNews) -> Vec<Action> {
        match news {
            EarlyNews::Left(why) => {
                if let Some(early) = self.early.take() {
                    early.close(why).await;
                }
                self.feed(Input::CallerHungUp)
            }
            EarlyNews::Dtmf(press) => self.feed(Input::Dtmf(press, KeyVia::Info)),
            EarlyNews::Answerable => self.answer_early().await,
        }
    }

    /// Sends the early-media caller its 200 OK and tells the machine (a
    /// REFER it held back goes out now; the leg itself holds it until the
    /// caller's ACK).
    pub(super) async fn answer_early(&mut self) -> Vec<Action> {
        let Some(early) = self.early.take() else {
            return vec![];
        };
        match early.answer(&self.ctx.stack, &self.media).await {
            Some(leg) => {
                self.caller = Some(leg);
                self.feed(Input::CallerAnswered)
            }
            None => self.feed(Input::CallerHungUp),
        }
    }

    /// BYE on `leg`, saying why when the node's stop ends the call.
    pub(super) fn hang_up(&self, leg: Leg) {
        match self.machine.end_reason() {
            Some(EndReason::Shutdown) => leg.hangup_because(SHUTDOWN_REASON),
            _ => leg.hangup(),
        }
    }

    /// Starts a room INVITE as the machine shaped it (codecs, SRTP); on
    /// failure, the input to feed the machine.
    pub(super) fn start_dial(&mut self, t: Transfer) -> Result<(), Input> {
        let socket = self.ctx.media.allocate().map_err(|e| Input::RoomFailed {
            code: None,
            reason: e.to_string(),
        })?;
        let offer = sdp::offer_of(self.ctx.media.public_ip(), socket.port, &t.codecs);
        let (offer, keys) = match t.srtp {
            true => {
                let (offer, keys) = secure::room_offer(offer);
                (offer, Some(keys))
            }
            false => (offer, None),
        };
        let request = OutboundRequest {
            target: t.target,
            from: self.caller_from.clone(),
            headers: t.headers,
            sdp: offer,
            // The machine times the ring (its `CancelTransfer` drops this).
            ring_timeout: None,
            trace: self.trace.clone(),
        };
        tracing::info!(target = %request.target, "transferring");
        self.attempt = Attempt::Dialing {
            dialing: Dialing::start(&self.ctx.stack, request),
            socket,
            keys,
        };
        Ok(())
    }

    /// The attempt under way ended: the fact to feed.
    pub(super) async fn attempt_ended(&mut self, end: AttemptEnd) -> Input {
        match (std::mem::replace(&mut self.attempt, Attempt::Idle), end) {
            (Attempt::Dialing { socket, keys, .. }, AttemptEnd::Dialed(outcome)) => {
                self.room_outcome(outcome, socket, keys)
            }
            (_, AttemptEnd::Opened(result)) => self.stream_outcome(result).await,
            (_, AttemptEnd::Referred(code)) => Input::ReferAnswered(code),
            (_, AttemptEnd::Dialed(_)) => Input::RoomFailed {
                code: None,
                reason: "no transfer under way".into(),
            },
        }
    }

    /// A room INVITE's outcome as the fact to feed. A room that answered
    /// is kept (with the socket its offer named) while the machine judges
    /// its SDP: `BridgeRoom` or `HangupAnswered` then takes it.
    fn room_outcome(
        &mut self,
        outcome: DialOutcome,
        socket: RtpSocket,
        offered: Option<Vec<(u32, crate::sdes::MasterKey)>>,
    ) -> Input {
        let failed = |code: Option<u16>, reason: String| Input::RoomFailed { code, reason };
        let input = match outcome {
            DialOutcome::Answered { leg, sdp } => {
                let leg = Box::new(leg);
                self.attempt = Attempt::Answered { leg, socket };
                return Input::RoomAnswer { sdp, offered };
            }
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

    /// Bridges the caller to the room that answered, as the machine
    /// accepted its SDP; the fact to feed.
    async fn bridge_room(&mut self, usable: room::Usable) -> Input {
        let Attempt::Answered { leg, socket } = std::mem::replace(&mut self.attempt, Attempt::Idle)
        else {
            return Input::RoomFailed {
                code: None,
                reason: "no room answered".into(),
            };
        };
        let media = usable.media;
        let codec = media.choose();
        let bridged = (self.media)
            .bridge_secure(socket, media.addr, codec, media.sends, usable.keys)
            .await;
        if !bridged {
            leg.hangup();
            tracing::info!("transfer attempt failed: media relay unavailable");
            return Input::RoomFailed {
                code: None,
                reason: "media relay unavailable".into(),
            };
        }
        // Make before break: the caller is on the new room already; only
        // now does the old one (or the old bot) go.
        if let Some(old) = self.room.replace(leg) {
            old.hangup();
        }
        self.bot = None;
        Input::RoomAnswered
    }

    /// Posts the incoming-call webhook (again, after a room hung up on a
    /// caller whose entry returns it to hold).
    pub(super) fn post_webhook(&mut self) {
        // Not a `JoinHandle`: it would keep the finished task's memory
        // (1.8 KiB) for as long as the call is held. The task stops when
        // this sender goes, replaced by the next post or with the call.
        let (stop, stopped) = tokio::sync::oneshot::channel();
        self.webhook_task = Some(stop);
        let send = webhook_task::send(
            self.ctx.webhooks.for_origin(self.entry.origin),
            self.entry.clone(),
            self.machine.parties().clone(),
            self.tx.clone(),
        );
        tokio::spawn(async move {
            tokio::select! {
                _ = send => {}
                _ = stopped => {}
            }
        });
    }
}
