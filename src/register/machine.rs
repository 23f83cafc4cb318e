//! One binding at a registrar as a sans-IO state machine: what to send
//! and when, from the answers it is fed. Its driver (`task`) turns
//! `Action`s into REGISTERs and keep-alives and answers into `Input`s;
//! time comes in as `now` (tests drive it with a fake clock).
//!
//! - A 2xx: registered until what the registrar **granted** (our
//!   Contact's `expires`, else the `Expires` header, else what we asked);
//!   refreshed at 85 % of it. Over UDP, a `received`/`rport` that differs
//!   from the Contact we sent (a NAT between us) is put in the Contact at
//!   once.
//! - 401/407: answered with digest credentials, once per challenge; a
//!   second challenge that is not `stale` means the credentials are wrong.
//! - 423: asked again with the registrar's `Min-Expires`.
//! - Anything else, or no answer: failing; tried again after a backoff
//!   that doubles from 30 s to 30 min with jitter (never a tight loop),
//!   or after `Retry-After` when the registrar says longer.
//! - A lost TCP/TLS connection: registered again at once (a new one).
//! - A stop removes the binding (`Expires: 0`) when asked to, then ends.

use crate::sip::digest_client::Challenge;
use crate::sip::register::RegisterAnswer;
use std::collections::VecDeque;
use std::time::Duration;
use tokio::time::Instant;

/// First wait after a failure; doubled after each further one.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(30);
/// Longest wait after failures.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30 * 60);
/// Longest `Retry-After` taken (a registrar's mistake must not park a
/// binding for days).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(2 * 3600);
/// Share of the granted lifetime after which the binding is refreshed.
const REFRESH_AT: f64 = 0.85;
/// Between CRLF keep-alives on a UDP flow (NAT bindings last 30 s or
/// more on common routers).
pub const KEEP_ALIVE_EVERY: Duration = Duration::from_secs(25);

/// Where a binding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Asking (the first REGISTER, or after a change of Contact).
    Registering,
    /// The registrar holds our Contact.
    Registered,
    /// The last attempt failed; another comes after the backoff.
    Failing,
    /// Removed or given up on a stop.
    Stopped,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Registering => "registering",
            State::Registered => "registered",
            State::Failing => "failing",
            State::Stopped => "stopped",
        }
    }
}

/// What the binding is for.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The Request-URI of REGISTERs (the digest `uri` too).
    pub registrar: String,
    /// The digest user and password ("" = no credentials).
    pub user: String,
    pub password: String,
    /// The lifetime asked for.
    pub expires: u32,
}

/// A fact for the machine.
#[derive(Debug, Clone)]
pub enum Input {
    /// The final answer to the REGISTER in flight; `used` is the host and
    /// port its Contact named; `udp`, whether it went over UDP.
    Answered {
        answer: RegisterAnswer,
        used: (String, u16),
        udp: bool,
    },
    /// The REGISTER in flight got no answer (not sent, timed out).
    NoAnswer(String),
    /// Stop: remove the binding first (`Expires: 0`) when `unregister`.
    Stop { unregister: bool },
    /// The TCP or TLS connection the binding was made on closed: the
    /// registrar can no longer reach us on it.
    FlowLost,
}

/// What the driver is to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send a REGISTER.
    Register(Register),
    /// Send a CRLF keep-alive on the flow.
    KeepAlive,
    /// The binding's state changed (log it, publish it).
    Changed(State),
    /// An attempt failed, with the registrar's code (none: no answer);
    /// one each, also while the state stays `Failing` (count it).
    Failed(Option<u16>),
    /// Nothing more will be asked: the task may end.
    Finished,
}

/// The parts of a REGISTER that the machine decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Register {
    pub cseq: u32,
    pub expires: u32,
    /// `Authorization` or `Proxy-Authorization`, and its value.
    pub credentials: Option<(&'static str, String)>,
    /// The address to put in the Contact instead of our own (learned
    /// from the registrar behind a NAT).
    pub contact_at: Option<(String, u16)>,
}

/// One binding.
pub struct Binding {
    settings: Settings,
    state: State,
    cseq: u32,
    /// What we ask (raised by a 423).
    asked: u32,
    contact_at: Option<(String, u16)>,
    /// The last challenge, whether it was proxy's, and its nonce count.
    challenge: Option<(bool, Challenge, u32)>,
    /// The REGISTER in flight carries an answer to `challenge`.
    answered: bool,
    /// ... to a challenge that came in the answer just before it (not a
    /// nonce kept from an earlier exchange, which a registrar that
    /// restarted no longer knows).
    fresh: bool,
    in_flight: bool,
    /// The next REGISTER (refresh or retry).
    wake: Option<Instant>,
    keep_alive: Option<Instant>,
    failures: u32,
    registered_until: Option<Instant>,
    last_code: Option<u16>,
    last_error: Option<String>,
    /// A stop was asked: `Some(unregister)`; and whether the `Expires: 0`
    /// REGISTER has gone.
    stopping: Option<bool>,
    removal_sent: bool,
    actions: VecDeque<Action>,
    /// xorshift state for the backoff's jitter.
    rng: u64,
}

/// What the API shows of a binding (the driver adds the Contact).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub state: State,
    pub expires_in: Option<Duration>,
    pub last_code: Option<u16>,
    pub last_error: Option<String>,
}

impl Binding {
    /// A binding that registers at once; `seed` varies the jitter.
    pub fn new(settings: Settings, seed: u64) -> Binding {
        let asked = settings.expires;
        let mut b = Binding {
            settings,
            state: State::Registering,
            cseq: 0,
            asked,
            contact_at: None,
            challenge: None,
            answered: false,
            fresh: false,
            in_flight: false,
            wake: None,
            keep_alive: None,
            failures: 0,
            registered_until: None,
            last_code: None,
            last_error: None,
            stopping: None,
            removal_sent: false,
            actions: VecDeque::new(),
            rng: seed | 1,
        };
        b.actions.push_back(Action::Changed(State::Registering));
        b.send(asked);
        b
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn status(&self, now: Instant) -> Status {
        Status {
            state: self.state,
            expires_in: match self.state {
                State::Registered => self
                    .registered_until
                    .map(|t| t.saturating_duration_since(now)),
                _ => None,
            },
            last_code: self.last_code,
            last_error: self.last_error.clone(),
        }
    }

    /// The next action, if any.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When `handle_timeout` is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.wake, self.keep_alive) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if self.keep_alive.is_some_and(|t| t <= now) {
            self.actions.push_back(Action::KeepAlive);
            self.keep_alive = Some(now + KEEP_ALIVE_EVERY);
        }
        if self.wake.is_some_and(|t| t <= now) && !self.in_flight {
            self.wake = None;
            self.send(self.asked);
        }
    }

    pub fn handle(&mut self, input: Input, now: Instant) {
        match input {
            Input::Answered {
                mut answer,
                used,
                udp,
            } => {
                self.in_flight = false;
                self.last_code = Some(answer.code);
                if !udp {
                    // Over TCP and TLS `rport` is the connection's own
                    // ephemeral port, which nobody can connect to: calls
                    // come to our listener, or back over the connection.
                    answer.seen_as = None;
                }
                if self.stopping.is_some() {
                    self.answered_while_stopping(answer, now);
                } else {
                    self.answered(answer, used, now);
                }
            }
            Input::NoAnswer(why) => {
                self.in_flight = false;
                self.last_code = None;
                if self.stopping.is_some() {
                    self.after_stop_answer(now);
                } else {
                    self.fail(now, why, None);
                }
            }
            Input::FlowLost => {
                if self.stopping.is_none() && !self.in_flight {
                    self.registered_until = None;
                    self.keep_alive = None;
                    self.set(State::Registering);
                    self.send(self.asked);
                }
            }
            Input::Stop { unregister } => {
                if self.stopping.is_some() {
                    return;
                }
                self.stopping = Some(unregister);
                self.wake = None;
                self.keep_alive = None;
                if !self.in_flight {
                    self.after_stop_answer(now);
                }
            }
        }
    }

    fn answered(&mut self, a: RegisterAnswer, used: (String, u16), now: Instant) {
        match a.code {
            200..=299 => self.registered(a, used, now),
            401 | 407 => self.challenged(a, now),
            423 => match a.min_expires {
                Some(min) if min > self.asked => {
                    self.asked = min;
                    self.send(min);
                }
                _ => self.fail(now, "423 without a usable Min-Expires".into(), None),
            },
            code => {
                let why = format!("{code} {}", a.reason).trim().to_string();
                let retry = a.retry_after.map(|s| Duration::from_secs(u64::from(s)));
                self.fail(now, why, retry);
            }
        }
    }

    fn registered(&mut self, a: RegisterAnswer, used: (String, u16), now: Instant) {
        let granted = a.granted.unwrap_or(self.asked);
        if granted == 0 {
            self.fail(now, "the registrar granted no lifetime".into(), None);
            return;
        }
        // Behind a NAT the registrar saw another address than the one our
        // Contact names: calls must come to the one it saw.
        if let Some((received, rport)) = &a.seen_as {
            let host = if received.is_empty() {
                used.0.clone()
            } else {
                received.clone()
            };
            let seen = (host, rport.unwrap_or(used.1));
            if seen != used {
                self.contact_at = Some(seen);
                self.send(self.asked);
                return;
            }
        }
        self.failures = 0;
        self.last_error = None;
        self.registered_until = Some(now + Duration::from_secs(u64::from(granted)));
        let refresh =
            Duration::from_secs_f64(f64::from(granted) * REFRESH_AT).max(Duration::from_secs(1));
        self.wake = Some(now + refresh);
        if self.keep_alive.is_none() {
            self.keep_alive = Some(now + KEEP_ALIVE_EVERY);
        }
        self.set(State::Registered);
    }

    fn challenged(&mut self, a: RegisterAnswer, now: Instant) {
        let code = a.code;
        let Some((proxy, header)) = a.challenge else {
            self.fail(now, format!("{code} without a challenge"), None);
            return;
        };
        if self.settings.password.is_empty() {
            self.fail(
                now,
                format!("{code}: the registrar asks for credentials and none are set"),
                None,
            );
            return;
        }
        let challenge = match Challenge::parse(&header) {
            Ok(c) => c,
            Err(e) => {
                self.fail(now, format!("{code}: {e}"), None);
                return;
            }
        };
        // Refused right after answering the challenge it came with: the
        // credentials are wrong. Refused with a nonce kept from before
        // (a refresh; the registrar may have restarted): answer anew.
        if self.answered && self.fresh && !challenge.stale {
            self.challenge = None;
            self.fail(now, format!("{code}: credentials refused"), None);
            return;
        }
        self.challenge = Some((proxy, challenge, 0));
        self.send(self.asked);
        self.fresh = true;
    }

    fn answered_while_stopping(&mut self, a: RegisterAnswer, now: Instant) {
        if (200..300).contains(&a.code) && !self.removal_sent {
            // The REGISTER in flight as the stop came made a binding.
            let granted = a.granted.unwrap_or(self.asked);
            self.registered_until = Some(now + Duration::from_secs(u64::from(granted)));
        }
        // The removal itself may be challenged (a nonce gone stale).
        if matches!(a.code, 401 | 407)
            && !self.answered
            && !self.settings.password.is_empty()
            && let Some((proxy, header)) = a.challenge
            && let Ok(c) = Challenge::parse(&header)
        {
            self.challenge = Some((proxy, c, 0));
            self.send(0);
            self.fresh = true;
            return;
        }
        self.after_stop_answer(now);
    }

    /// After a stop: send the removal if it is due, else end.
    fn after_stop_answer(&mut self, now: Instant) {
        let unregister = self.stopping == Some(true);
        let had_binding = self.registered_until.is_some_and(|t| t > now);
        if unregister && had_binding && !self.removal_sent {
            self.removal_sent = true;
            self.send(0);
            return;
        }
        self.registered_until = None;
        self.set(State::Stopped);
        self.actions.push_back(Action::Finished);
    }

    fn send(&mut self, expires: u32) {
        if expires == 0 {
            self.removal_sent = true;
        }
        self.cseq += 1;
        let registrar = &self.settings.registrar;
        let credentials = self.challenge.as_mut().map(|(proxy, c, nc)| {
            *nc += 1;
            let name = if *proxy {
                "Proxy-Authorization"
            } else {
                "Authorization"
            };
            let value = c.answer(
                "REGISTER",
                registrar,
                &self.settings.user,
                &self.settings.password,
                *nc,
            );
            (name, value)
        });
        self.answered = credentials.is_some();
        self.fresh = false;
        self.in_flight = true;
        self.wake = None;
        self.actions.push_back(Action::Register(Register {
            cseq: self.cseq,
            expires,
            credentials,
            contact_at: self.contact_at.clone(),
        }));
    }

    fn fail(&mut self, now: Instant, why: String, retry_after: Option<Duration>) {
        self.failures += 1;
        self.actions.push_back(Action::Failed(self.last_code));
        self.last_error = Some(why);
        self.keep_alive = None;
        self.registered_until = None;
        let mut wait = self.backoff();
        if let Some(r) = retry_after {
            wait = wait.max(r.min(MAX_RETRY_AFTER));
        }
        self.wake = Some(now + wait);
        self.set(State::Failing);
    }

    /// 30 s × 2^(failures − 1), at most 30 min, less up to 20 % jitter
    /// (so that many nodes that failed together do not retry together).
    fn backoff(&mut self) -> Duration {
        let doublings = self.failures.saturating_sub(1).min(16);
        let base = FIRST_BACKOFF
            .saturating_mul(1 << doublings)
            .min(MAX_BACKOFF);
        // xorshift64: enough to spread retries, no need for a crypto RNG.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let jitter = (self.rng % 1000) as f64 / 1000.0 * 0.2;
        base.mul_f64(1.0 - jitter)
    }

    fn set(&mut self, state: State) {
        if self.state != state {
            self.state = state;
            self.actions.push_back(Action::Changed(state));
        }
    }
}

#[cfg(test)]
mod tests;
