//! From an admitted INVITE to a held call: ring while the entry's
//! `answer_delay_ms` runs (`machine::ringing` decides), answer with our SDP
//! (or, for `answer = "early"`, send it in a 183 and keep the INVITE for
//! later: `early`), start hold music, and set up the machine. Boxed by the caller: these
//! states are large and would otherwise be reserved in every held call's
//! task for its whole life.

use crate::call::door::entries::Entry;
use crate::call::door::secure::CallerSrtp;
use crate::call::driver::ctx::Ctx;
use crate::call::driver::early_caller::EarlyCaller;
use crate::call::machine::ringing::{RingAction, RingInput, Ringing};
use crate::call::machine::{EventKind, Machine, Parties, room};
use crate::media::{CallMedia, HoldLoop, RtpSocket};
use crate::sip::sdp::{self, PeerMedia};
use crate::sip::{IncomingInvite, InviteInfo, Leg, Refusal};
use serde_json::json;
use std::sync::Arc;

/// A call just answered and on hold (or held in early media: then
/// `caller` is None and `early` holds the INVITE).
pub(in crate::call) struct Answered {
    pub caller: Option<Leg>,
    pub early: Option<Box<EarlyCaller>>,
    pub media: CallMedia,
    pub machine: Machine,
    /// The caller's From URI, used as From of our room INVITEs.
    pub caller_from: String,
}

/// Answers the INVITE; None when the caller left first or the answer or
/// media failed (logged).
pub(in crate::call) async fn answer(
    ctx: &Ctx,
    entry: &Entry,
    offer: PeerMedia,
    socket: RtpSocket,
    srtp: Option<CallerSrtp>,
    mut invite: IncomingInvite,
    registration: Option<String>,
) -> Option<Answered> {
    let (mut ring, first) = Ringing::start(entry.answer_delay, ctx.clock.now());
    let mut next = Some(first);
    loop {
        match next {
            Some(RingAction::Answer) => break,
            Some(RingAction::Ring) => invite.ring(&ctx.stack).await,
            Some(RingAction::RefuseCancelled) => {
                invite
                    .refuse(&Refusal::new(487, "cancelled by the caller"))
                    .await;
                return None;
            }
            Some(RingAction::RefuseDraining) => {
                invite.refuse(&Refusal::draining()).await;
                return None;
            }
            None => {}
        }
        next = tokio::select! {
            _ = ctx.clock.sleep_until(ring.poll_timeout()) => ring.handle_timeout(ctx.clock.now()),
            _ = invite.cancelled() => Some(ring.handle(RingInput::Cancelled)),
            _ = ctx.node.stopping() => Some(ring.handle(RingInput::Stopping)),
        };
    }
    let codec = offer.choose();
    let answer = sdp::answer(ctx.media.public_ip(), socket.port, codec);
    let answer = match &srtp {
        Some(s) => s.answer(answer),
        None => answer,
    };
    let info = invite.info.clone();
    let (caller, early) = match entry.early_media {
        // Early media: 183 now, the 200 when the machine says.
        Some(_) => {
            let early = EarlyCaller::start(&ctx.stack, invite, answer, offer.sends).await?;
            (None, Some(Box::new(early)))
        }
        None => match invite.accept(&ctx.stack, answer).await {
            Ok(leg) => (Some(leg), None),
            Err(e) => {
                tracing::warn!(error = %e, "could not answer INVITE");
                return None;
            }
        },
    };
    // In early media the caller's silence does not count (many phones
    // send nothing before the 200): `EarlyCaller::answer` turns it on.
    let sends = offer.sends && early.is_none();
    let keys = srtp.map(|s| s.keys);
    let media = match ctx.media.hold_secure(
        socket,
        offer.addr,
        codec,
        sends,
        hold_music(ctx, entry),
        keys,
    ) {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(error = %e, "no media for answered call; hanging up");
            if let Some(caller) = caller {
                caller.hangup();
            }
            if let Some(early) = early {
                early.hang_up(None).await;
            }
            return None;
        }
    };
    let room_codecs = room::offer_codecs(codec.audio, ctx.media.codecs());
    let machine = held_machine(ctx, entry, &info, registration).with_room_codecs(room_codecs);
    Some(Answered {
        caller,
        early,
        media,
        machine,
        caller_from: info.from_uri,
    })
}

/// The machine of a call just put on hold, with its parties as the
/// webhook shows them and the headers the entry's policy dropped.
fn held_machine(
    ctx: &Ctx,
    entry: &Entry,
    info: &InviteInfo,
    registration: Option<String>,
) -> Machine {
    // Phone calls are shown by number (E.164), others by URI.
    let party = |user: &Option<String>, uri: &str| match user {
        Some(u) if u.starts_with('+') => u.clone(),
        _ => uri.to_string(),
    };
    let (caller_headers, dropped) = entry.headers.apply(&info.custom_headers);
    let parties = Parties {
        call_id: crate::call::CallId::new().0,
        call_domain: ctx.call_domain.clone(),
        from: party(&info.from_user, &info.from_uri),
        to: party(&info.to_user, &info.to_uri),
        entry: entry.name.clone(),
        caller_headers,
        registration,
    };
    let now = ctx.clock.now();
    let (policy, unix_ms) = (entry.policy.clone(), crate::clock::unix_ms());
    let mut m = match entry.early_media {
        Some(max) => Machine::early(parties, policy, now, unix_ms, max),
        None => Machine::answered(parties, policy, now, unix_ms),
    };
    if !dropped.is_empty() {
        let names: Vec<_> = dropped
            .iter()
            .map(|d| json!({ "name": d.name, "why": d.why }))
            .collect();
        m.log(now, EventKind::HeadersDropped, json!(names));
    }
    m
}

/// What the entry's callers hear on hold: its own music, else `[hold].music`.
pub(in crate::call) fn hold_music(ctx: &Ctx, entry: &Entry) -> Arc<HoldLoop> {
    entry.music.clone().unwrap_or_else(|| ctx.media.music())
}
