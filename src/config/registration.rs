//! `[[registration]]`: a binding pinless keeps at a provider's or PBX's
//! registrar, so that calls to the AOR reach it without a fixed address.

use super::ConfigError;
use super::syntax::uri_user;
use serde::{Deserialize, Serialize};

/// One registration, as written.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrationConfig {
    /// Names it in the API, metrics, logs and the webhook.
    pub name: String,
    /// Where REGISTER goes: `sip:host[:port]` or `sips:`, with an optional
    /// `;transport=udp|tcp|tls`.
    pub registrar: String,
    /// The address of record: `sip:+15551230000@sip.example.net`.
    pub aor: String,
    /// Digest user; "" means the AOR's user part.
    #[serde(default)]
    pub username: String,
    /// Digest password ("" with `password_env` unset: no credentials).
    #[serde(default, skip_serializing)]
    pub password: String,
    /// Read the password from this environment variable instead.
    #[serde(default)]
    pub password_env: String,
    /// The binding's lifetime asked for; the registrar's grant wins.
    #[serde(default = "default_expires")]
    pub expires_secs: u32,
    /// The `[[dialin]]` entry (`name_prefix`) for a call that arrives on
    /// this registration and matches no entry by number or URI.
    pub entry: String,
    /// Send REGISTER here instead of to the registrar's address
    /// (`sip:proxy.example.net;transport=tcp`); "" = none.
    #[serde(default)]
    pub outbound_proxy: String,
}

fn default_expires() -> u32 {
    600
}

/// Shortest and longest `expires_secs` taken.
pub const EXPIRES_RANGE: std::ops::RangeInclusive<u32> = 60..=86_400;

impl RegistrationConfig {
    /// The digest user: `username`, else the AOR's user part.
    pub fn digest_user(&self) -> String {
        if self.username.is_empty() {
            uri_user(&self.aor).unwrap_or_default().to_string()
        } else {
            self.username.clone()
        }
    }

    /// Checks one registration; `key` names its fields (`registration[0]`).
    /// `entries` are the `[[dialin]]` names it may fall back to.
    pub fn validate(&self, key: &str, entries: &[&str]) -> Result<(), ConfigError> {
        let field = |f: &str| format!("{key}.{f}");
        let name_ok = !self.name.is_empty()
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !name_ok {
            return Err(ConfigError::key(
                field("name"),
                "must be letters, digits, - and _ (it names the registration in URLs and metrics)",
            ));
        }
        if !is_sip_uri(&self.registrar) {
            return Err(ConfigError::key(
                field("registrar"),
                format!("{:?} is not a sip: or sips: URI", self.registrar),
            ));
        }
        if !is_sip_uri(&self.aor) || uri_user(&self.aor).is_none() {
            return Err(ConfigError::key(
                field("aor"),
                format!("{:?} is not a sip: or sips: URI with a user part", self.aor),
            ));
        }
        if !self.outbound_proxy.is_empty() && !is_sip_uri(&self.outbound_proxy) {
            return Err(ConfigError::key(
                field("outbound_proxy"),
                format!("{:?} is not a sip: or sips: URI", self.outbound_proxy),
            ));
        }
        if !EXPIRES_RANGE.contains(&self.expires_secs) {
            return Err(ConfigError::key(
                field("expires_secs"),
                format!(
                    "must be {} to {}",
                    EXPIRES_RANGE.start(),
                    EXPIRES_RANGE.end()
                ),
            ));
        }
        if !self.password.is_empty() && !self.password_env.is_empty() {
            return Err(ConfigError::key(
                field("password_env"),
                "give password or password_env, not both",
            ));
        }
        if !entries.contains(&self.entry.as_str()) {
            return Err(ConfigError::key(
                field("entry"),
                format!(
                    "{:?} is not the name_prefix of a [[dialin]] entry of this file",
                    self.entry
                ),
            ));
        }
        Ok(())
    }

    /// Reads `password_env` into `password` (from `vars`, the process's
    /// environment as given to the loader).
    pub fn resolve_password(
        &mut self,
        key: &str,
        mut var: impl FnMut(&str) -> Option<String>,
    ) -> Result<(), ConfigError> {
        if self.password_env.is_empty() {
            return Ok(());
        }
        match var(&self.password_env) {
            Some(p) if !p.is_empty() => {
                self.password = p;
                Ok(())
            }
            _ => Err(ConfigError::key(
                format!("{key}.password_env"),
                format!("the environment variable {} is not set", self.password_env),
            )),
        }
    }
}

fn is_sip_uri(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("sip:")
        .or_else(|| lower.strip_prefix("sips:"));
    rest.is_some_and(|r| !r.is_empty() && !r.starts_with(';') && !r.contains(' '))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> RegistrationConfig {
        RegistrationConfig {
            name: "provider".into(),
            registrar: "sip:sip.example.net".into(),
            aor: "sip:+15551230000@sip.example.net".into(),
            username: String::new(),
            password: "pw".into(),
            password_env: String::new(),
            expires_secs: 600,
            entry: "support".into(),
            outbound_proxy: String::new(),
        }
    }

    #[test]
    fn errors_name_the_key() {
        let check = |r: RegistrationConfig| r.validate("registration[0]", &["support"]);
        assert!(check(good()).is_ok());
        assert_eq!(good().digest_user(), "+15551230000");
        let err = |r| check(r).unwrap_err().to_string();
        let mut r = good();
        r.name = "a b".into();
        assert!(err(r).contains("registration[0].name"));
        let mut r = good();
        r.registrar = "http://x".into();
        assert!(err(r).contains("registration[0].registrar"));
        let mut r = good();
        r.aor = "sip:example.net".into();
        assert!(err(r).contains("registration[0].aor"));
        let mut r = good();
        r.expires_secs = 5;
        assert!(err(r).contains("must be 60 to 86400"));
        let mut r = good();
        r.entry = "sales".into();
        assert!(err(r).contains("registration[0].entry"));
        let mut r = good();
        r.password_env = "PW".into();
        assert!(err(r).contains("not both"));
        let mut r = good();
        r.password = String::new();
        r.password_env = "PW".into();
        assert!(r.resolve_password("registration[0]", |_| None).is_err());
        r.resolve_password("registration[0]", |n| (n == "PW").then(|| "s".into()))
            .unwrap();
        assert_eq!(r.password, "s");
    }
}
