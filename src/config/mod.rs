//! The gateway's configuration: one documented struct with defaults,
//! loaded once (file, then `PINLESS_` environment overrides) and validated
//! once. Every key of CONTRACT.md parses; an unknown key is an error that
//! names it.
//!
//! Config sits below every layer but the leaves, so it imports none of
//! them. Its files, each importing only those listed before it:
//!
//! - `error`: `ConfigError`.
//! - `syntax`: the value formats config shares with `sip` and `webhook`
//!   (which re-export them): SIP URI user, custom header names, secrets.
//! - `dialin`: the `[[dialin]]` entry.
//! - `registration`: a `[[registration]]` at a provider's registrar.
//! - `sections`: `Config` and its sections, with the built-in defaults.
//! - `env`: the `PINLESS_` overrides.
//! - `text`: the config as serde reads it; its addresses parsed once.
//! - `validate`: what serde cannot check.
//! - this file: loading (file, overrides, parse, validate).

mod dialin;
mod duration;
mod env;
mod error;
mod registration;
mod sections;
pub mod syntax;
mod text;
mod validate;

use std::path::{Path, PathBuf};

pub use dialin::{
    AnswerMode, Credential, DialinEntry, HeaderPolicyConfig, HoldTimeoutAction, MediaEncryption,
    OnRoomHangup, RecordMode,
};
pub use error::ConfigError;
pub use registration::RegistrationConfig;
pub use sections::{
    ApiConfig, ClusterConfig, Config, HepConfig, HoldConfig, LimitsConfig, MediaConfig, NodeConfig,
    RecordingConfig, ShutdownMode, SipConfig,
};
pub use syntax::parse_cidr;
pub use validate::validate_entry;

/// Where the configuration came from, for the start-up log line.
#[derive(Debug, Clone)]
pub enum Source {
    File(PathBuf),
    BuiltIn,
}

impl Config {
    /// Reads `path` (or, with `None`, `config/pinless.toml` when present,
    /// else the built-in defaults), applies `PINLESS_` overrides from
    /// `vars`, and validates the result.
    pub fn load(
        path: Option<&Path>,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(Config, Source), ConfigError> {
        let (text, source) = match path {
            Some(p) => (read(p)?, Source::File(p.to_path_buf())),
            None => {
                let p = Path::new("config/pinless.toml");
                if p.exists() {
                    (read(p)?, Source::File(p.to_path_buf()))
                } else {
                    (String::new(), Source::BuiltIn)
                }
            }
        };
        let config = Self::from_toml_with_env(&text, vars, matches!(source, Source::BuiltIn))?;
        Ok((config, source))
    }

    /// Parses TOML text, applies overrides and validates. With `builtin`,
    /// empty text means the built-in defaults (including the demo entry).
    pub fn from_toml_with_env(
        text: &str,
        vars: impl IntoIterator<Item = (String, String)>,
        builtin: bool,
    ) -> Result<Config, ConfigError> {
        let mut table: toml::Table =
            toml::from_str(text).map_err(|source| ConfigError::Syntax { source })?;
        // The environment is read once: for the overrides and for
        // `password_env`.
        let vars: Vec<(String, String)> = vars.into_iter().collect();
        env::apply(&mut table, vars.iter().cloned())?;
        let mut config: text::ConfigText =
            serde_path_to_error::deserialize(toml::Value::Table(table.clone())).map_err(|e| {
                ConfigError::Key {
                    key: e.path().to_string(),
                    reason: e.inner().to_string(),
                }
            })?;
        if !builtin && !table.contains_key("dialin") {
            // A file with no entries means no entries, not the demo one.
            config.dialin.clear();
        }
        let mut config = config.into_config()?;
        for (i, r) in config.registration.iter_mut().enumerate() {
            let var = |name: &str| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
            r.resolve_password(&format!("registration[{i}]"), var)?;
        }
        config.validate()?;
        Ok(config)
    }
}

fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::File {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests;
