//! The caller's side of an early-media hold, as the driver holds it: the
//! INVITE answered 183 (music already flows to the caller) and what its
//! 200 OK will carry. The driver answers it when the machine says
//! (`Action::AnswerCaller`), refuses it when the call ends first, and
//! hears from it when the caller leaves (CANCEL, BYE, no PRACK).

use super::machine::EndReason;
use crate::media::CallMedia;
use crate::media::MediaLeg;
use crate::sip::{CallerLeft, IncomingInvite, Leg, Refusal, Stack};

/// An INVITE held in early media.
pub(super) struct EarlyCaller {
    invite: IncomingInvite,
    /// The SDP of our 183, which the 200 OK repeats (RFC 3261 §13.2.1:
    /// the offer was answered once; the 2xx carries the same answer).
    sdp: String,
    /// The caller's offer says it sends: its silence counts once it is
    /// answered (many phones send nothing in early media).
    sends: bool,
}

impl EarlyCaller {
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
        Some(EarlyCaller { invite, sdp, sends })
    }

    /// Resolves when the caller gives up before its answer.
    pub async fn left(&mut self) -> CallerLeft {
        self.invite.caller_left().await
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

    /// Answers 200 OK; the caller's music or room goes on as it is.
    pub async fn answer(self, stack: &Stack, media: &CallMedia) -> Option<Leg> {
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

/// The caller leaving, when one is in early media (else never).
pub(super) async fn caller_left(early: &mut Option<Box<EarlyCaller>>) -> CallerLeft {
    match early {
        Some(e) => e.left().await,
        None => std::future::pending().await,
    }
}
