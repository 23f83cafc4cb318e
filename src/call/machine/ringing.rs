//! Before a call is answered: an entry's `answer_delay_ms` lets the caller
//! ring (180) that long first. The caller may give up meanwhile (its
//! CANCEL gets 487), or the node may begin to stop (503: the caller then
//! tries elsewhere rather than be answered by a node on its way out).
//! The call's own `Machine` begins at the answer; this is the part before.

use crate::clock::Instant;
use std::time::Duration;

/// The ring before an answer, on the monotonic clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ringing {
    until: Option<Instant>,
}

/// What happens while it rings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RingInput {
    /// The caller sent CANCEL.
    Cancelled,
    /// The node began to stop.
    Stopping,
}

/// What the driver must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RingAction {
    /// Send 180 Ringing and wait for the machine's next word.
    Ring,
    /// Answer the call now.
    Answer,
    /// Refuse the INVITE: the caller cancelled (487).
    RefuseCancelled,
    /// Refuse the INVITE: the node is stopping (503).
    RefuseDraining,
}

impl Ringing {
    /// The ring of a call whose INVITE came at `now`, and the first thing
    /// to do: ring, or (no delay) answer at once.
    pub fn start(delay: Duration, now: Instant) -> (Ringing, RingAction) {
        if delay.is_zero() {
            return (Ringing { until: None }, RingAction::Answer);
        }
        let ring = Ringing {
            until: Some(now + delay),
        };
        (ring, RingAction::Ring)
    }

    /// When the delay is over (None: nothing left to wait for).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.until
    }

    /// The delay is over at `now`: answer.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<RingAction> {
        self.until.filter(|at| *at <= now)?;
        self.until = None;
        Some(RingAction::Answer)
    }

    /// The caller or the node did something while it rang.
    pub fn handle(&mut self, input: RingInput) -> RingAction {
        self.until = None;
        match input {
            RingInput::Cancelled => RingAction::RefuseCancelled,
            RingInput::Stopping => RingAction::RefuseDraining,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    #[test]
    fn no_delay_answers_at_once() {
        let (ring, first) = Ringing::start(Duration::ZERO, t(0));
        assert_eq!(first, RingAction::Answer);
        assert_eq!(ring.poll_timeout(), None);
    }

    #[test]
    fn a_delay_rings_then_answers_when_it_is_over() {
        let (mut ring, first) = Ringing::start(Duration::from_millis(2_500), t(1_000));
        assert_eq!(first, RingAction::Ring);
        assert_eq!(ring.poll_timeout(), Some(t(3_500)));
        assert_eq!(ring.handle_timeout(t(3_499)), None);
        assert_eq!(ring.handle_timeout(t(3_500)), Some(RingAction::Answer));
        assert_eq!(ring.poll_timeout(), None);
    }

    #[test]
    fn a_cancel_or_a_stop_while_ringing_refuses() {
        let (mut ring, _) = Ringing::start(Duration::from_secs(5), t(0));
        assert_eq!(
            ring.handle(RingInput::Cancelled),
            RingAction::RefuseCancelled
        );
        assert_eq!(ring.handle_timeout(t(10_000)), None, "never answered after");
        let (mut ring, _) = Ringing::start(Duration::from_secs(5), t(0));
        assert_eq!(ring.handle(RingInput::Stopping), RingAction::RefuseDraining);
        assert_eq!(ring.poll_timeout(), None);
    }
}
