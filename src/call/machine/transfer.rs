//! The machine's transfers: an update taken or refused, each attempt (a
//! room INVITE or a REFER), what a room's or the caller's side's answer
//! does, and a transfer cut short by a restart. The rest of the machine is
//! in `mod.rs`.

use super::room;
use super::{
    Accepted, Action, Connect, EndReason, EventKind, KEYS_KEPT, Machine, Referring, State,
    Transfer, UpdateRefused, millis,
};
use crate::call::machine::plan::{Mode, Next, Plan, TransferRequest};
use crate::clock::Instant;
use serde_json::json;

/// Routes a call takes from the webhook's answers (see `webhook_routed`).
const MAX_WEBHOOK_ROUTES: usize = 3;

impl Machine {
    /// The node restarted while an attempt was in flight: its room INVITE
    /// was CANCELed before the stop (or died with the process). Count it
    /// as failed, so the transfer goes on as after any failed attempt
    /// (next target, backoff, deadline). A REFER is waited for instead.
    ///
    /// A caller that was with a voice bot is back on hold, and the app
    /// gets the webhook again: a WebSocket does not outlive the process
    /// (the media side resumes the caller's stream with music).
    pub fn interrupted(&mut self, now: Instant) -> Vec<Action> {
        if self.state == State::Ended {
            return vec![];
        }
        let mut actions = self.resume_recording(now);
        actions.extend(self.stream_lost(now));
        if self
            .plan
            .as_ref()
            .is_some_and(|p| p.request.stream.is_some())
        {
            // Its URL's query, parameters and headers were not saved (they
            // may be credentials): the bot cannot be tried again. Like a
            // caller that was with a bot, the app is asked anew.
            let reason = "interrupted by a restart of the gateway".to_string();
            actions.extend(self.give_up_stream(reason, now));
            if self.state == State::Held && !actions.contains(&Action::PostWebhook) {
                actions.push(Action::PostWebhook);
            }
            return actions;
        }
        let in_flight = self.plan.as_ref().is_some_and(|p| p.retry_at.is_none());
        if !in_flight {
            return actions;
        }
        let reason = "interrupted by a restart of the gateway";
        if self.refer.is_some() {
            // The caller's side may act on the REFER still, and its NOTIFY
            // reaches the resumed dialog: keep waiting until the REFER's
            // own deadline rather than bridging the caller a second time.
            return actions;
        }
        actions.extend(self.attempt_failed(None, reason.to_string(), now));
        actions
    }

    /// Whether the caller is with a voice bot (not a SIP room).
    pub fn with_bot(&self) -> bool {
        self.room.is_some()
            && self
                .room_request
                .as_ref()
                .is_some_and(|r| r.stream.is_some())
    }

    /// After a restart: the caller's bot stream is gone; back on hold.
    fn stream_lost(&mut self, now: Instant) -> Vec<Action> {
        if !self.with_bot() {
            return vec![];
        }
        self.leave_room(now);
        if self.plan.is_some() {
            // A transfer away from the bot was under way: it goes on.
            self.held_since = Some(now);
            self.log(
                now,
                EventKind::ReturnedToHold,
                json!({ "reason": "restart" }),
            );
            return vec![];
        }
        self.back_to_hold(now, "restart");
        vec![Action::PostWebhook]
    }

    /// The app asks to move the call (`pinlessCallUpdate`).
    pub(super) fn request_transfer(
        &mut self,
        request: TransferRequest,
        key: Option<String>,
        now: Instant,
    ) -> Result<(Accepted, Vec<Action>), UpdateRefused> {
        if matches!(self.state, State::Ended | State::Announcing) {
            let reason = format!("call is {}", self.state.name());
            return Err(self.refuse(now, reason));
        }
        let earlier = key
            .as_ref()
            .and_then(|k| self.keys.iter().find(|(seen, _)| seen == k));
        if let Some((_, earlier)) = earlier {
            if earlier.same_as(&request) {
                return Ok((Accepted::Duplicate, vec![]));
            }
            let reason = "Idempotency-Key already used for a different update".to_string();
            return Err(self.refuse(now, reason));
        }
        let duplicate = match &self.plan {
            Some(plan) => {
                // A stream's `targets` is its shown URL only: another
                // query, parameters or handshake headers is another bot.
                let same = plan.request.targets == request.targets
                    && plan.request.mode == request.mode
                    && plan.request.stream == request.stream;
                if !same {
                    let reason = format!("a transfer to {} is under way", plan.current());
                    return Err(self.refuse(now, reason));
                }
                true
            }
            // Bridged by this very request (any of its targets), or to
            // the one room it names (a stream is the same only with the
            // same query, parameters and headers: compared above).
            None => {
                let served = self.room_request.as_ref();
                served.is_some_and(|r| {
                    r.targets == request.targets
                        && r.mode == request.mode
                        && r.stream == request.stream
                }) || (request.stream.is_none()
                    && request.targets.len() == 1
                    && self.room.as_ref() == request.targets.first())
            }
        };
        // Recording from this bridge on needs the announcement first,
        // which only a caller on hold can hear.
        let consent = !duplicate && self.transfer_needs_consent(&request);
        if consent && self.room.is_some() {
            let reason = "record: the recording announcement plays only to a caller on hold; \
                          start recording before the caller is bridged"
                .to_string();
            return Err(self.refuse(now, reason));
        }
        if let Some(k) = key {
            if self.keys.len() >= KEYS_KEPT {
                self.keys.remove(0);
            }
            self.keys.push((k, request.clone()));
        }
        if duplicate {
            return Ok((Accepted::Duplicate, vec![]));
        }
        self.plan = Some(Plan::new(request, now, self.policy.transfer_timeout));
        self.timeout_transfer = false;
        self.state = State::Transferring;
        if consent && let Some(actions) = self.transfer_after_consent() {
            return Ok((Accepted::Started, actions));
        }
        Ok((Accepted::Started, self.attempt(now)))
    }

    /// The incoming-call webhook's answer names a room: the transfer starts
    /// exactly as if `pinlessCallUpdate` had asked for it (so a later
    /// identical update is a duplicate, and a different one is refused
    /// while this one runs). An unusable route leaves the caller on hold;
    /// the timeline says why.
    pub(super) fn webhook_routed(
        &mut self,
        answer: Result<TransferRequest, super::route::RouteError>,
        now: Instant,
    ) -> Vec<Action> {
        // A room that hangs up on every caller, an entry that holds them
        // again (`on_room_hangup = "hold"`, which posts the webhook anew)
        // and an app that answers each webhook with that room would loop
        // for ever, and the hold timer restarts each time: the webhook
        // routes a call this many times at most, then only updates do.
        let routed = self
            .timeline
            .iter()
            .filter(|e| e.event == EventKind::WebhookRouted);
        if routed.count() >= MAX_WEBHOOK_ROUTES {
            let error =
                format!("ignored: the webhook already routed this call {MAX_WEBHOOK_ROUTES} times");
            self.log(now, EventKind::WebhookRouted, json!({ "error": error }));
            return vec![];
        }
        let request = match answer {
            Ok(request) => request,
            Err(error) => {
                let error = error.to_string();
                self.log(now, EventKind::WebhookRouted, json!({ "error": error }));
                return vec![];
            }
        };
        let detail = json!({ "targets": request.targets, "mode": request.mode });
        self.log(now, EventKind::WebhookRouted, detail);
        // A refusal (the call ended meanwhile, another transfer under
        // way) is logged by `request_transfer` itself.
        match self.request_transfer(request, None, now) {
            Ok((_, actions)) => actions,
            Err(_) => vec![],
        }
    }

    /// Forgets the transfer under way; the action that stops it, if any.
    pub(super) fn drop_transfer(&mut self) -> Vec<Action> {
        self.attempt_until = None;
        self.refer = None;
        self.refer_due = None;
        match self.plan.take() {
            Some(_) => vec![Action::CancelTransfer],
            None => vec![],
        }
    }

    /// Starts the next attempt of the plan.
    pub(super) fn attempt(&mut self, now: Instant) -> Vec<Action> {
        let Some(plan) = self.plan.as_mut() else {
            return vec![];
        };
        plan.attempts += 1;
        plan.retry_at = None;
        let target = plan.current().to_string();
        let refer = !plan.refer_done;
        // The app's headers win over the caller's of the same name, so a
        // value re-set at every hop does not pile up.
        let app = &plan.request.headers;
        let mut headers: Vec<(String, String)> = self
            .parties
            .caller_headers
            .iter()
            .filter(|(n, _)| !app.iter().any(|(a, _)| a.eq_ignore_ascii_case(n)))
            .cloned()
            .collect();
        headers.extend(app.iter().cloned());
        let ring_timeout = plan.ring_timeout(now, self.policy.ring_cap);
        let attempt = plan.attempts;
        // Timed here, not by the SIP stack or the stream: when it passes,
        // the attempt is given up (`attempt_timed_out`). A REFER has its
        // own deadline.
        self.attempt_until =
            (!refer || plan.request.stream.is_some()).then_some((now + ring_timeout, ring_timeout));
        if let Some(stream) = plan.request.stream.clone() {
            return self.connect(*stream, target, attempt, ring_timeout, now);
        }
        let srtp =
            crate::call::door::secure::room_wants_srtp(&target, plan.request.media_encryption);
        let transfer = Transfer {
            target: target.clone(),
            headers,
            ring_timeout,
            srtp,
            codecs: self.room_codecs.clone(),
        };
        self.transfer_attempts += 1;
        self.target = Some(target.clone());
        let mode = if refer { Mode::Refer } else { Mode::Bridge };
        self.log(
            now,
            EventKind::TransferStarted,
            json!({ "sipUri": target, "attempt": attempt, "mode": mode }),
        );
        if refer {
            self.refer = Some(Referring {
                accepted: false,
                deadline: now + ring_timeout,
            });
            // REFER is sent in a confirmed dialog: answer an early call,
            // and send the REFER once its 200 OK has gone out (a reliable
            // 183 must be PRACKed first).
            let mut actions: Vec<Action> = self.answer(now, "refer").into_iter().collect();
            if self.ok_sent {
                actions.push(Action::Refer(transfer));
            } else {
                self.refer_due = Some(transfer);
            }
            actions
        } else if let Some(reason) = srtp.then(|| room::srtp_refused(&target)).flatten() {
            // Not sent at all: the attempt fails as a room that cannot be
            // reached would, and the plan goes on.
            self.attempt_failed(None, reason, now)
        } else {
            vec![Action::Dial(transfer)]
        }
    }

    /// An attempt at a voice bot: open its stream.
    fn connect(
        &mut self,
        stream: crate::call::machine::plan::StreamTarget,
        target: String,
        attempt: u32,
        timeout: std::time::Duration,
        now: Instant,
    ) -> Vec<Action> {
        let p = &self.parties;
        let mut parameters = vec![
            ("callId".to_string(), p.call_id.clone()),
            ("From".to_string(), p.from.clone()),
            ("To".to_string(), p.to.clone()),
        ];
        parameters.extend(p.caller_headers.iter().cloned());
        parameters.extend(stream.parameters.iter().cloned());
        self.transfer_attempts += 1;
        self.target = Some(target.clone());
        self.log(
            now,
            EventKind::TransferStarted,
            json!({ "target": target, "attempt": attempt, "mode": "stream" }),
        );
        // An early-media caller is answered when the bot is there, as
        // for a room (`bridged`).
        vec![Action::Connect(Connect {
            stream,
            parameters,
            timeout,
        })]
    }

    pub(super) fn refer_answered(&mut self, code: Option<u16>, now: Instant) -> Vec<Action> {
        let Some(refer) = self.refer.as_mut() else {
            return vec![];
        };
        match code {
            // Accepted: wait for the NOTIFY that says how the call went.
            Some(c) if (200..300).contains(&c) => {
                refer.accepted = true;
                vec![]
            }
            _ => self.refer_failed(code, "REFER refused or not answered", now),
        }
    }

    pub(super) fn refer_notified(&mut self, code: u16, now: Instant) -> Vec<Action> {
        if code < 200 || self.refer.is_none() {
            return vec![];
        }
        if code >= 300 {
            let reason = "the caller's side could not reach the target";
            return self.refer_failed(Some(code), reason, now);
        }
        // The caller's side is with the target now: nothing to cancel.
        self.refer = None;
        self.refer_due = None;
        self.plan = None;
        self.log(now, EventKind::Referred, json!({ "sipUri": self.target }));
        self.end(now, EndReason::Referred, true)
    }

    /// The REFER did not work: say so, and bridge instead.
    pub(super) fn refer_failed(
        &mut self,
        code: Option<u16>,
        reason: &str,
        now: Instant,
    ) -> Vec<Action> {
        self.refer = None;
        self.refer_due = None;
        let attempt = self.plan.as_ref().map(|p| p.attempts);
        self.log(
            now,
            EventKind::ReferFailed,
            json!({ "sipUri": self.target, "code": code, "reason": reason, "attempt": attempt }),
        );
        if let Some(p) = self.plan.as_mut() {
            p.refer_done = true;
        }
        self.attempt(now)
    }

    pub(super) fn bridged(&mut self, now: Instant) -> Vec<Action> {
        self.attempt_until = None;
        // An early-media caller is answered now that a room took the call.
        let actions: Vec<Action> = self.answer(now, "room").into_iter().collect();
        let plan = self.plan.take();
        let target = plan.as_ref().map(|p| p.current().to_string());
        let stream = plan.as_ref().is_some_and(|p| p.request.stream.is_some());
        self.room_request = plan.as_ref().map(|p| p.request.clone());
        let replaced = self.room.take();
        if let Some(since) = self.held_since.take() {
            self.hold_ms += millis(now.since(since));
        }
        self.bridged_since.get_or_insert(now);
        self.timeout_transfer = false;
        self.state = State::Bridged;
        self.bridged_at = Some(self.shown(now));
        self.room = target.clone();
        self.target = target.clone();
        // A bot has no leg of its own: no room codec.
        self.room_codec = self.answering_codec.take().filter(|_| !stream);
        let attempt = plan.map(|p| p.attempts);
        let detail = if stream {
            json!({ "target": target, "attempt": attempt, "replaced": replaced })
        } else {
            json!({ "sipUri": target, "attempt": attempt, "replaced": replaced })
        };
        self.log(now, EventKind::Bridged, detail);
        let mut actions = actions;
        actions.extend(self.record_at_bridge(now));
        actions
    }

    /// A room answered 2xx with `sdp` to the offer made with our keys
    /// `offered`: bridged if the answer is usable; else its leg is hung up
    /// and the attempt fails as a room that refused the offer.
    pub(super) fn room_answer(
        &mut self,
        sdp: &[u8],
        offered: Option<&[(u32, crate::sdes::MasterKey)]>,
        now: Instant,
    ) -> Vec<Action> {
        match room::accept_answer(sdp, &self.room_codecs, offered) {
            Ok(usable) => {
                self.answering_codec = Some(usable.media.choose().audio);
                vec![Action::BridgeRoom(Box::new(usable))]
            }
            Err((code, why)) => {
                let mut actions = vec![Action::HangupAnswered];
                actions.extend(self.attempt_failed(Some(code), why, now));
                actions
            }
        }
    }

    pub(super) fn attempt_failed(
        &mut self,
        code: Option<u16>,
        reason: String,
        now: Instant,
    ) -> Vec<Action> {
        self.attempt_ended(code, reason, false, now)
    }

    /// A stream attempt failed in a way no retry mends.
    pub(super) fn attempt_unusable(&mut self, reason: String, now: Instant) -> Vec<Action> {
        self.attempt_ended(None, reason, true, now)
    }

    /// The attempt under way had its ring timeout: it is given up
    /// (CANCEL, or the stream abandoned) and fails as a room that never
    /// answered (408) or a bot that never came.
    pub(super) fn attempt_timed_out(&mut self, now: Instant) -> Vec<Action> {
        let Some((_, had)) = self.attempt_until.filter(|(at, _)| *at <= now) else {
            return vec![];
        };
        self.attempt_until = None;
        let stream = self
            .plan
            .as_ref()
            .is_some_and(|p| p.request.stream.is_some());
        let (code, reason) = match stream {
            true => (None, format!("no answer from the bot in {had:?}")),
            false => (Some(408), "no answer from room".to_string()),
        };
        let mut actions = vec![Action::CancelTransfer];
        actions.extend(self.attempt_failed(code, reason, now));
        actions
    }

    fn attempt_ended(
        &mut self,
        code: Option<u16>,
        reason: String,
        unusable: bool,
        now: Instant,
    ) -> Vec<Action> {
        self.attempt_until = None;
        let Some(plan) = self.plan.as_mut() else {
            return vec![];
        };
        let target = plan.current().to_string();
        let attempt = plan.attempts;
        let stream = plan.request.stream.is_some();
        let next = if unusable {
            plan.unusable(now)
        } else {
            plan.failed(code, now)
        };
        let detail = |last: bool| {
            if stream {
                json!({ "target": target, "code": code, "reason": reason, "attempt": attempt, "final": last })
            } else {
                json!({ "sipUri": target, "code": code, "reason": reason, "attempt": attempt, "final": last })
            }
        };
        match next {
            Next::Try(_) => {
                self.log(now, EventKind::TransferFailed, detail(false));
                self.attempt(now)
            }
            // The plan holds the backoff's end; `poll_timeout` reports it.
            Next::Wait(_) => {
                self.log(now, EventKind::TransferFailed, detail(false));
                vec![]
            }
            Next::GiveUp(why) => {
                let mut d = detail(true);
                d["gaveUp"] = why.into();
                self.log(now, EventKind::TransferFailed, d);
                self.given_up(now)
            }
        }
    }

    /// A stream plan read back after a restart: given up at once.
    fn give_up_stream(&mut self, reason: String, now: Instant) -> Vec<Action> {
        let Some(plan) = self.plan.as_ref() else {
            return vec![];
        };
        let detail = json!({
            "target": plan.current(), "code": null, "reason": reason,
            "attempt": plan.attempts, "final": true, "gaveUp": "restart",
        });
        self.log(now, EventKind::TransferFailed, detail);
        self.given_up(now)
    }

    /// The plan is over without a bridge: back where the caller was.
    fn given_up(&mut self, now: Instant) -> Vec<Action> {
        self.plan = None;
        if self.timeout_transfer {
            return self.end(now, EndReason::HoldTimeout, true);
        }
        if self.room.is_some() {
            // Make before break: the caller never left its room.
            self.state = State::Bridged;
            self.target = self.room.clone();
        } else {
            self.back_to_hold(now, "transfer_failed");
        }
        vec![]
    }
}
