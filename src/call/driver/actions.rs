//! What a call's driver does on the machine's actions: dial a room, REFER
//! the caller, hang up a leg, play music, an announcement or a prompt,
//! post the webhook again, and answer a caller held in early media. Each
//! action is carried out on the legs and the media; a failure becomes the
//! fact fed back to the machine.

use super::Call;
use crate::call::door::secure;
use crate::call::driver::answer::hold_music;
use crate::call::driver::webhook_task;
use crate::call::machine::{Action, EndReason, Input, Transfer};
use crate::sip::crypto;
use crate::sip::{DialOutcome, Dialing, EarlyNews, Leg, OutboundRequest, sdp};
use std::collections::VecDeque;

/// The Reason (RFC 3326) on the BYEs of a drain's hang-ups.
const SHUTDOWN_REASON: &str = "SIP;cause=503;text=\"shutting down\"";

impl Call {
    /// Performs actions (and those their failures lead to); true when the
    /// call is finished.
    pub(super) async fn perform(&mut self, actions: Vec<Action>) -> bool {
        let mut queue = VecDeque::from(actions);
        let mut finished = false;
        while let Some(action) = queue.pop_front() {
            match action {
                Action::Dial(t) => {
                    self.refer = None;
                    self.refer_due = None;
                    self.opening = None;
                    if let Err(input) = self.start_dial(t) {
                        queue.extend(self.feed(input));
                    }
                }
                Action::Connect(c) => {
                    self.refer = None;
                    self.refer_due = None;
                    self.dialing = None;
                    self.start_connect(c);
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
                    self.opening = None;
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
                    // Dropping the link sends `stop` and closes the socket.
                    self.bot = None;
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
                    let id = crate::call::CallId(self.machine.parties().call_id.clone());
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
    pub(super) async fn early_news(&mut self, news: EarlyNews) -> Vec<Action> {
        match news {
            EarlyNews::Left(why) => {
                if let Some(early) = self.early.take() {
                    early.close(why).await;
                }
                self.feed(Input::CallerHungUp)
            }
            EarlyNews::Dtmf(press) => {
                self.press_to_bot(&press);
                self.feed(Input::Dtmf(press))
            }
            EarlyNews::Answerable => self.answer_early().await,
        }
    }

    /// Sends the early-media caller its 200 OK, and the REFER that waited
    /// for it (the leg holds it back until the caller's ACK).
    pub(super) async fn answer_early(&mut self) -> Vec<Action> {
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
    pub(super) fn hang_up(&self, leg: Leg) {
        match self.machine.end_reason() {
            Some(EndReason::Shutdown) => leg.hangup_because(SHUTDOWN_REASON),
            _ => leg.hangup(),
        }
    }

    /// Starts a room INVITE; on failure, the input to feed the machine.
    pub(super) fn start_dial(&mut self, t: Transfer) -> Result<(), Input> {
        // SDES keys travel in the offer: never over UDP or TCP, whatever
        // the target (`sips:…;transport=udp` passes the API's check).
        if t.srtp && !crate::sip::reaches_over_tls(&t.target) {
            return Err(Input::RoomFailed {
                code: None,
                reason: format!("SRTP keys are only sent over TLS; {} is not", t.target),
            });
        }
        let socket = self.ctx.media.allocate().map_err(|e| Input::RoomFailed {
            code: None,
            reason: e.to_string(),
        })?;
        // The caller's codec first: rooms mostly take the first they
        // speak, and legs that agree are relayed untouched.
        let caller = self.media.caller_codec().audio;
        let mut codecs = vec![caller];
        codecs.extend(self.ctx.media.codecs().iter().filter(|c| **c != caller));
        let offer = sdp::offer_of(self.ctx.media.public_ip(), socket.port, &codecs);
        let (offer, keys) = match t.srtp {
            true => {
                let (offer, keys) = secure::room_offer(offer);
                (offer, Some(keys))
            }
            false => (offer, None),
        };
        self.dial_srtp = keys;
        let request = OutboundRequest {
            target: t.target,
            from: self.caller_from.clone(),
            headers: t.headers,
            sdp: offer,
            ring_timeout: t.ring_timeout,
            trace: self.trace.clone(),
        };
        tracing::info!(target = %request.target, "transferring");
        self.dialing = Some((Dialing::start(&self.ctx.stack, request), socket));
        Ok(())
    }

    /// Sets up media for a room that answered; the fact to feed.
    pub(super) async fn room_outcome(&mut self, outcome: DialOutcome) -> Input {
        let failed = |code: Option<u16>, reason: String| Input::RoomFailed { code, reason };
        let Some((_, socket)) = self.dialing.take() else {
            return failed(None, "no transfer under way".into());
        };
        let offered = self.dial_srtp.take();
        let srtp = match (&outcome, offered) {
            (DialOutcome::Answered { sdp: body, .. }, Some(ours)) => {
                crypto::answered(body, &ours).map(Some)
            }
            // A room that answers our plain offer with SRTP would have
            // its ciphertext relayed as audio.
            (DialOutcome::Answered { sdp: body, .. }, None) => {
                crypto::answered_plain(body).map(|()| None)
            }
            _ => Ok(None),
        };
        let input = match outcome {
            DialOutcome::Answered { leg, sdp: body } => {
                match sdp::parse_for(&body, self.ctx.media.codecs()) {
                    // A room that answers our SRTP offer without SRTP (or
                    // with keys we cannot use), or our plain offer with
                    // SRTP, is a failed attempt: its audio would be in
                    // clear, or unreadable.
                    Ok(_) if srtp.as_ref().is_err() => {
                        leg.hangup();
                        let e = srtp.err().map(|e| e.to_string()).unwrap_or_default();
                        failed(Some(488), e)
                    }
                    Ok(answer) => {
                        let keys = srtp.ok().flatten();
                        if self
                            .media
                            .bridge_secure(socket, answer.addr, answer.choose(), answer.sends, keys)
                            .await
                        {
                            // Make before break: the caller is on the new room
                            // already; only now does the old one (or the old
                            // bot) go.
                            if let Some(old) = self.room.replace(leg) {
                                old.hangup();
                            }
                            self.bot = None;
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
                }
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

    /// Posts the incoming-call webhook (again, after a room hung up on a
    /// caller whose entry returns it to hold).
    pub(super) fn post_webhook(&mut self) {
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
}
