//! The caller's side of an early-media hold, as the driver holds it: the
//! INVITE answered 183 (music already flows to the caller) and what its
//! 200 OK will carry. The driver answers it when the machine says
//! (`Action::AnswerCaller`: asked for here, sent when `news` says it may
//! go, so a caller's PRACK is waited for in the driver's loop, never in
//! one of its steps), refuses it when the call ends first, and hears from
//! it when the caller leaves (CANCEL, BYE, no PRACK) or presses a key in
//! a SIP INFO.

use crate::call::machine::EndReason;
use crate::media::CallMedia;
use crate::media::MediaLeg;
use crate::sip::{CallerLeft, EarlyNews, IncomingInvite, Leg, Refusal, Stack};

/// An INVITE held in early media.
pub(in crate::call) struct EarlyCaller {
    invite: IncomingInvite,
    /// The SDP of our 183, which the 200 OK repeats (RFC 3261 §13.2.1:
    /// the offer was answered once; the 2xx carries the same answer).
    sdp: String,
    /// The caller's offer says it sends: its silence counts once it is
    /// answered (many phones send nothing in early media).
    sends: bool,
    /// The machine asked for the 200 OK; it goes out at `Answerable`.
    answer_wanted: bool,
}

impl EarlyCaller {
    /// The caller's SIP Call-ID.
    pub fn call_id(&self) -> &str {
        &self.invite.info.call_id
    }

    /// The call's SIP ladder, which the INVITE began.
    pub fn trace(&self) -> crate::sip::Trace {
        self.invite.trace()
    }

    /// Sends 183 with `sdp` on `invite`; None (logged) when it could not go.
    pub async fn start(
        stack: &Stack,
        mut invite: IncomingInvite,
        sdp: String,
        sends: bool,
    ) -> Option<EarlyCaller> {
        if let Err(e) = invite.progress(stack, &sdp).await {
            tracing::warn!(error = %e, "could not send 183 Session Progress");
            invite
                .refuse(&Refusal::new(500, "early media failed"))
                .await;
            return None;
        }
        Some(EarlyCaller {
            invite,
            sdp,
            sends,
            answer_wanted: false,
        })
    }

    /// The 200 OK is due: `news` says `Answerable` when it may go out.
    pub fn want_answer(&mut self) {
        self.answer_wanted = true;
    }

    /// The next thing to act on: the caller left, the 200 OK may go out
    /// (once wanted), or a key press in a SIP INFO.
    pub async fn news(&mut self) -> EarlyNews {
        self.invite.early_news(self.answer_wanted).await
    }

    /// The final answer to an INVITE whose caller left: 487 after a CANCEL
    /// or an early BYE, 5xx when our reliable 183 was never PRACKed (RFC
    /// 3262 §3).
    pub async fn close(self, why: CallerLeft) {
        let refusal = match why {
            CallerLeft::Cancelled | CallerLeft::Bye => Refusal::new(487, "cancelled by the caller"),
            CallerLeft::NoPrack => Refusal::new(504, "reliable 183 not acknowledged"),
        };
        self.invite.refuse(&refusal).await;
    }

    /// Answers 200 OK; the caller's music or room goes on as it is. A
    /// caller who left meanwhile (a BYE crossing the PRACK) gets its
    /// final error instead, and None comes back, as when the 200 could
    /// not be sent.
    pub async fn answer(mut self, stack: &Stack, media: &CallMedia) -> Option<Leg> {
        if let Err(why) = self.invite.early_ready() {
            self.close(why).await;
            return None;
        }
        match self.invite.accept(stack, self.sdp).await {
            Ok(leg) => {
                media.set_sends(MediaLeg::Caller, self.sends);
                Some(leg)
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not answer the early-media caller");
                None
            }
        }
    }

    /// The call ended before the caller was answered: a final error, as
    /// a BYE would be for an answered one.
    pub async fn hang_up(self, reason: Option<EndReason>) {
        let refusal = match reason {
            Some(EndReason::Shutdown) => Refusal::draining(),
            _ => Refusal::new(480, "not routed"),
        };
        tracing::debug!(code = refusal.code, "early-media caller refused");
        self.invite.refuse(&refusal).await;
    }
}

/// News of the caller in early media, when there is one (else never).
pub(in crate::call) async fn news(early: &mut Option<Box<EarlyCaller>>) -> EarlyNews {
    match early {
        Some(e) => e.news().await,
        None => std::future::pending().await,
    }
}
