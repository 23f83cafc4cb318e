//! RFC 4028 session timers, where the peer's INVITE asks for them
//! (`Session-Expires` with `Supported: timer`): what we answer, when a
//! refresh is due, and when a session that was not refreshed is over.
//! A dialog whose INVITE asked for none has none, as before.

use super::leg_state::SessionTimer;
use ezk_sip_core::IncomingRequest;
use ezk_sip_types::{Headers, Name};
use std::time::Duration;

/// The timer `request` (an INVITE, or a refresh in the dialog) asks for;
/// `None` when it asks for none, or for an interval below `min_se`.
///
/// Below our minimum RFC 4028 would answer 422; we answer the call as we
/// always did and leave the timer off (the peer still refreshes, we just
/// do not enforce), so no caller is refused over a header.
pub(crate) fn negotiate(request: &IncomingRequest, min_se: u32) -> Option<SessionTimer> {
    let supported = request
        .headers
        .get_raw(&Name::SUPPORTED)
        .any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("timer")));
    if !supported {
        return None;
    }
    // The peer is the UAC of whatever it sends us. Left to us (no
    // refresher), we let the peer refresh: it asked for the timer.
    read(&request.headers, min_se, "uas")
}

/// The timer a 2xx to our INVITE sets (RFC 4028 §7.2): the UAS may start
/// one; we are the UAC there. We never offer `Supported: timer` in our own
/// INVITEs, so only peers that start one anyway (and our test phones,
/// whose INVITEs carry the headers by hand) get here.
pub(crate) fn from_answer(headers: &Headers, min_se: u32) -> Option<SessionTimer> {
    read(headers, min_se, "uac")
}

/// Session-Expires of `headers`; `ours` is the refresher value naming us.
fn read(headers: &Headers, min_se: u32, ours: &str) -> Option<SessionTimer> {
    let value = headers.get_raw(&Name::SESSION_EXPIRES).next()?;
    let mut parts = value.split(';');
    let interval_secs: u32 = parts.next()?.trim().parse().ok()?;
    if interval_secs < min_se {
        tracing::debug!(
            interval_secs,
            min_se,
            "Session-Expires below our minimum: timer off"
        );
        return None;
    }
    let refresher = parts.find_map(|p| {
        let (name, value) = p.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("refresher")
            .then(|| value.trim().to_ascii_lowercase())
    });
    Some(SessionTimer {
        interval_secs,
        we_refresh: refresher.as_deref() == Some(ours),
    })
}

/// Headers for a 2xx to a request of the peer's (it is the UAC there).
pub(crate) fn answer_headers(timer: &SessionTimer) -> [(Name, String); 2] {
    let refresher = if timer.we_refresh { "uas" } else { "uac" };
    [
        (
            Name::SESSION_EXPIRES,
            format!("{};refresher={refresher}", timer.interval_secs),
        ),
        (Name::REQUIRE, "timer".to_string()),
    ]
}

/// Headers for a refresh we send (we are the UAC there).
pub(crate) fn request_headers(timer: &SessionTimer) -> [(Name, String); 2] {
    let refresher = if timer.we_refresh { "uac" } else { "uas" };
    [
        (
            Name::SESSION_EXPIRES,
            format!("{};refresher={refresher}", timer.interval_secs),
        ),
        (Name::SUPPORTED, "timer".to_string()),
    ]
}

/// After a refresh: how long until the session counts as expired. RFC
/// 4028 §10 has the side that does not refresh end the session slightly
/// before it expires: min(32 s, a third of the interval) early. We use
/// the same point when we refresh ourselves and our refresh (sent at half
/// the interval) got no 2xx by then.
pub(crate) fn expires_in(timer: &SessionTimer) -> Duration {
    let interval = Duration::from_secs(u64::from(timer.interval_secs));
    interval - (interval / 3).min(Duration::from_secs(32))
}

/// After a refresh: when we send the next one (RFC 4028 §10: half the
/// interval), if we are the refresher.
pub(crate) fn refresh_in(timer: &SessionTimer) -> Option<Duration> {
    timer
        .we_refresh
        .then(|| Duration::from_secs(u64::from(timer.interval_secs)) / 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_non_refresher_ends_a_little_before_expiry() {
        let t = |s| SessionTimer {
            interval_secs: s,
            we_refresh: false,
        };
        assert_eq!(expires_in(&t(90)), Duration::from_secs(60));
        assert_eq!(expires_in(&t(1800)), Duration::from_secs(1768));
        assert_eq!(expires_in(&t(3)), Duration::from_secs(2));
        assert_eq!(refresh_in(&t(90)), None);
        let ours = SessionTimer {
            interval_secs: 90,
            we_refresh: true,
        };
        assert_eq!(refresh_in(&ours), Some(Duration::from_secs(45)));
        assert_eq!(answer_headers(&ours)[0].1, "90;refresher=uas");
        assert_eq!(request_headers(&ours)[0].1, "90;refresher=uac");
    }
}
