//! Contacts this node keeps at registrars (`[[registration]]`), as the
//! door sees them: an INVITE whose Request-URI names one arrived through
//! that binding. It falls back to the registration's entry when no entry
//! matches, and is taken only from the registrar's (or outbound proxy's)
//! addresses, or as the entry itself allows (`allowed_cidrs`,
//! `credentials`): a scanner that finds the contact gets 403.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, RwLock};

/// One binding, as the door needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The registration's name (shown in the webhook and the call).
    pub name: String,
    /// The `[[dialin]]` entry (`name_prefix`) for calls no entry matches.
    pub entry: String,
    /// Where INVITEs on this binding may come from.
    pub from: Vec<IpAddr>,
}

/// Contact user → binding. Written by the registration tasks, read by
/// the door for every INVITE (a read lock, rarely contended).
#[derive(Debug, Clone, Default)]
pub struct Registered(Arc<RwLock<HashMap<String, Binding>>>);

impl Registered {
    /// Adds or replaces the binding of `contact_user`.
    pub fn set(&self, contact_user: &str, binding: Binding) {
        self.0
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(contact_user.to_string(), binding);
    }

    /// The binding an INVITE to `request_user` arrived through.
    pub fn get(&self, request_user: &str) -> Option<Binding> {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(request_user)
            .cloned()
    }
}
