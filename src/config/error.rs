//! Why a configuration was refused: every error names the key or the file.

use std::path::PathBuf;

/// Why a configuration was refused. Every variant names the key or file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML. The message only: the error's own
    /// Display adds a source snippet spanning lines.
    #[error("config is not valid TOML: {}", .source.message())]
    Syntax {
        #[source]
        source: toml::de::Error,
    },
    /// A key has a bad value or is unknown.
    #[error("config key `{key}`: {reason}")]
    Key { key: String, reason: String },
    /// A key's value parsed, but what it names cannot be used (a TLS
    /// certificate file, say); the layer that tried says why.
    #[error("config key `{key}`: {source}")]
    Unusable {
        key: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// An environment override could not be applied.
    #[error("environment variable {name}: {reason}")]
    Env { name: String, reason: String },
}

impl ConfigError {
    pub(crate) fn key(key: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError::Key {
            key: key.into(),
            reason: reason.into(),
        }
    }

    /// `key`'s value could not be used, for the reason `source` gives.
    pub fn unusable(
        key: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        ConfigError::Unusable {
            key: key.into(),
            source: Box::new(source),
        }
    }
}
