//! Webhook secrets: decoding a configured one, or generating one once and
//! keeping it in `state_dir`, readable only by its owner. A kept secret is
//! never regenerated silently: an unreadable or corrupt file is an error.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Why a secret could not be had.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The secret file exists but could not be read.
    #[error("secret file {path}: {source}")]
    Unreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The secret file does not hold a usable secret. It is left as it is:
    /// a new one would silently break every app holding the old one.
    #[error("secret file {path}: {source}")]
    Corrupt {
        path: PathBuf,
        #[source]
        source: BadSecret,
    },
    /// The secret file could not be written.
    #[error("cannot write secret file {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Secret decoding is shared with config validation (`dialin.hmac`).
pub use crate::config::syntax::{BadSecret, MIN_SECRET_BYTES, decode_secret, parse_secret};

/// The secret kept for entry `name` in `dir`, created (32 random bytes) on
/// first use. Returns the base64 text and the file's path (for the log:
/// the log names the file, never the secret).
pub fn load_or_create_secret(dir: &Path, name: &str) -> Result<(String, PathBuf), SecretError> {
    let path = dir.join(format!("hmac-{name}.key"));
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            parse_secret(&text).map_err(|source| SecretError::Corrupt {
                path: path.clone(),
                source,
            })?;
            Ok((text.trim().to_string(), path))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut key = [0u8; 32];
            rand::thread_rng().fill_bytes(&mut key);
            let text = STANDARD.encode(key);
            write_private(&path, &text).map_err(|source| SecretError::Write {
                path: path.clone(),
                source,
            })?;
            Ok((text, path))
        }
        Err(source) => Err(SecretError::Unreadable { path, source }),
    }
}

/// Writes `text` to `path` with mode 0600, atomically (temp file + rename),
/// creating the directory if needed.
pub(crate) fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_once_then_kept() {
        let dir = std::env::temp_dir().join(format!("pinless-secret-{}", uuid::Uuid::new_v4()));
        let (a, path) = load_or_create_secret(&dir, "support").unwrap();
        let (b, _) = load_or_create_secret(&dir, "support").unwrap();
        assert_eq!(a, b);
        assert_eq!(decode_secret(&a).unwrap().len(), 32);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(&path, "!!not base64").unwrap();
        let e = load_or_create_secret(&dir, "support").unwrap_err();
        assert!(matches!(e, SecretError::Corrupt { .. }), "{e}");
        assert!(e.to_string().contains("not valid base64"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn short_or_bad_secrets_are_refused() {
        assert!(decode_secret("c2hvcnQ=").is_err());
        assert!(decode_secret("***").is_err());
        assert!(decode_secret("whsec_c2VjcmV0LWtleS1mb3ItdGVzdHM=").is_ok());
        // The texts config errors quote.
        assert_eq!(
            decode_secret("c2hvcnQ=").unwrap_err(),
            "decodes to 5 bytes; at least 16 are needed"
        );
        assert!(
            decode_secret("***")
                .unwrap_err()
                .starts_with("not valid base64 (")
        );
    }
}
