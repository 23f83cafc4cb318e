//! What the API (`GET /v1/registrations`), the metrics and the console
//! show of one binding.

use super::machine::{State, Status};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistrationView {
    pub name: String,
    /// `registered`, `registering`, `failing` or `stopped`.
    pub state: &'static str,
    /// Until the registrar forgets the binding, while registered.
    pub expires_in_secs: Option<u64>,
    /// The last answer's status code (none after a timeout).
    pub last_code: Option<u16>,
    pub last_error: Option<String>,
    /// The Contact we register.
    pub contact: String,
    /// Failures by code (`timeout` without one), for the metrics.
    #[serde(skip)]
    pub failures: Vec<(String, u64)>,
}

impl RegistrationView {
    pub fn new(name: &str) -> RegistrationView {
        RegistrationView {
            name: name.to_string(),
            state: State::Registering.name(),
            expires_in_secs: None,
            last_code: None,
            last_error: None,
            contact: String::new(),
            failures: Vec::new(),
        }
    }

    pub(super) fn update(&mut self, s: &Status, contact: &str) {
        self.state = s.state.name();
        self.expires_in_secs = s.expires_in.map(|d| d.as_secs());
        self.last_code = s.last_code;
        self.last_error = s.last_error.clone();
        if self.contact != contact {
            self.contact = contact.to_string();
        }
    }

    pub(super) fn count_failure(&mut self, code: Option<u16>) {
        let code = code.map_or_else(|| "timeout".to_string(), |c| c.to_string());
        match self.failures.iter_mut().find(|(c, _)| *c == code) {
            Some((_, n)) => *n += 1,
            None => self.failures.push((code, 1)),
        }
    }

    pub fn up(&self) -> bool {
        self.state == State::Registered.name()
    }
}
