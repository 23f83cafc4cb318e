//! The driver of one binding: turns the machine's actions into REGISTERs
//! and keep-alives through the SIP stack, and answers, timers and a stop
//! into its inputs. It decides nothing; it also tells the door where the
//! binding's INVITEs may come from, and publishes what the API shows.

use super::machine::{Action, Binding, Input, Settings, State};
use super::view::RegistrationView;
use crate::call::door::registered::{self, Registered};
use crate::config::RegistrationConfig;
use crate::sip::Stack;
use crate::sip::register::{Flow, RegisterAnswer, RegisterError, RegisterRequest, TransportState};
use std::future::Future;
use std::pin::Pin;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

type InFlight = Pin<
    Box<dyn Future<Output = (Result<(RegisterAnswer, Flow), RegisterError>, (String, u16))> + Send>,
>;

/// What a binding's task is given.
pub(super) struct Task {
    pub stack: Stack,
    pub config: RegistrationConfig,
    pub registered: Registered,
    pub view: watch::Sender<RegistrationView>,
    /// `true`: remove the binding, then end; `false`: end, keeping it.
    pub stop: mpsc::Receiver<bool>,
}

/// The user part of our Contact for registration `name`: how the door
/// knows an INVITE came through it.
pub fn contact_user(name: &str) -> String {
    format!("pl-{name}")
}

impl Task {
    pub(super) async fn run(mut self) {
        let c = &self.config;
        let user = contact_user(&c.name);
        let call_id = uuid::Uuid::new_v4().to_string();
        let from_tag = uuid::Uuid::new_v4().simple().to_string();
        let settings = Settings {
            registrar: c.registrar.clone(),
            user: c.digest_user(),
            password: c.password.clone(),
            expires: c.expires_secs,
        };
        let seed = u64::from_le_bytes(
            *uuid::Uuid::new_v4()
                .as_bytes()
                .first_chunk()
                .unwrap_or(&[7; 8]),
        );
        let mut machine = Binding::new(settings, seed);
        let mut in_flight: Option<InFlight> = None;
        let mut flow: Option<Flow> = None;
        // The state of the TCP/TLS connection the binding was made on.
        let mut connection: Option<watch::Receiver<TransportState>> = None;
        let (mut contact, _) = self.stack.registration_contact(&user, &c.registrar, None);
        let mut stop_asked = false;
        loop {
            while let Some(action) = machine.poll_action() {
                match action {
                    Action::Register(r) => {
                        let (uri, used) = self.stack.registration_contact(
                            &user,
                            &c.registrar,
                            r.contact_at.as_ref(),
                        );
                        contact = uri.clone();
                        let request = RegisterRequest {
                            registrar: c.registrar.clone(),
                            outbound_proxy: (!c.outbound_proxy.is_empty())
                                .then(|| c.outbound_proxy.clone()),
                            aor: c.aor.clone(),
                            from_tag: from_tag.clone(),
                            call_id: call_id.clone(),
                            cseq: r.cseq,
                            contact: uri,
                            expires: r.expires,
                            credentials: r.credentials,
                        };
                        let stack = self.stack.clone();
                        in_flight =
                            Some(Box::pin(
                                async move { (stack.register(&request).await, used) },
                            ));
                    }
                    Action::KeepAlive => {
                        if let Some(f) = &flow
                            && let Err(e) = self.stack.keep_alive(f).await
                        {
                            tracing::debug!(registration = %c.name, error = %e, "keep-alive not sent");
                        }
                    }
                    Action::Failed(code) => {
                        self.view.send_modify(|v| v.count_failure(code));
                    }
                    Action::Changed(state) => {
                        let s = machine.status(Instant::now());
                        match state {
                            State::Failing => tracing::warn!(
                                registration = %c.name, state = state.name(), code = ?s.last_code,
                                error = s.last_error.as_deref().unwrap_or(""), %contact, "registration"
                            ),
                            _ => tracing::info!(
                                registration = %c.name, state = state.name(), code = ?s.last_code, %contact,
                                "registration"
                            ),
                        }
                    }
                    Action::Finished => {
                        self.publish(&machine, &contact);
                        return;
                    }
                }
            }
            self.publish(&machine, &contact);
            let deadline = machine.poll_timeout();
            tokio::select! {
                done = answer(&mut in_flight), if in_flight.is_some() => {
                    in_flight = None;
                    let now = Instant::now();
                    match done {
                        (Ok((answer, f)), used) => {
                            self.registered.set(&user, registered::Binding {
                                name: c.name.clone(),
                                entry: c.entry.clone(),
                                from: vec![f.peer.ip()],
                            });
                            let udp = f.transport.is_udp();
                            connection = (!udp).then(|| f.transport.watch_state());
                            flow = Some(f);
                            machine.handle(Input::Answered { answer, used, udp }, now);
                        }
                        (Err(e), _) => machine.handle(Input::NoAnswer(e.to_string()), now),
                    }
                }
                _ = closed(&mut connection), if connection.is_some() => {
                    connection = None;
                    tracing::info!(registration = %c.name, "the registrar's connection closed");
                    machine.handle(Input::FlowLost, Instant::now());
                }
                _ = sleep_until(deadline) => machine.handle_timeout(Instant::now()),
                asked = self.stop.recv(), if !stop_asked => {
                    // A closed channel (the node going away) keeps the binding.
                    stop_asked = true;
                    machine.handle(Input::Stop { unregister: asked.unwrap_or(false) }, Instant::now());
                }
            }
        }
    }

    fn publish(&self, machine: &Binding, contact: &str) {
        let s = machine.status(Instant::now());
        self.view.send_modify(|v| v.update(&s, contact));
    }
}

/// Resolves when the watched connection closes (never without one).
async fn closed(connection: &mut Option<watch::Receiver<TransportState>>) {
    let Some(state) = connection.as_mut() else {
        return std::future::pending().await;
    };
    loop {
        if matches!(*state.borrow_and_update(), TransportState::Closed(_)) {
            return;
        }
        if state.changed().await.is_err() {
            // The transport is gone with its sender: closed too.
            return;
        }
    }
}

/// The answer to the REGISTER in flight (never resolves without one).
async fn answer(
    in_flight: &mut Option<InFlight>,
) -> (Result<(RegisterAnswer, Flow), RegisterError>, (String, u16)) {
    match in_flight.as_mut() {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
