//! What a provisioned entry may point at: it was written by an API client,
//! so its webhook URLs reach only the addresses the URL policy allows, and
//! its audio files (hold music, announcement, prompt set) come only from
//! `[api] media_dir`, stored as the files they resolved to.

use super::error::ProvisionError;
use crate::config::DialinEntry;
use crate::confine::{MediaDir, UrlPolicy};
use std::path::PathBuf;

/// `config` with its file paths resolved inside `files`; refused (naming
/// the field) when a URL or a path reaches where it may not.
pub async fn confine_entry(
    mut config: DialinEntry,
    files: &MediaDir,
    urls: UrlPolicy,
) -> Result<DialinEntry, ProvisionError> {
    let refused = |field: &'static str, reason: String| ProvisionError::Confined { field, reason };
    urls.check_url(&config.room_creation_api)
        .await
        .map_err(|e| refused("room_creation_api", e.to_string()))?;
    if let Some(url) = &config.events_url {
        urls.check_url(url)
            .await
            .map_err(|e| refused("events_url", e.to_string()))?;
    }
    let resolve = |field: &'static str, path: &mut Option<PathBuf>| {
        if let Some(given) = path.take() {
            let text = given.to_string_lossy();
            *path = Some(
                files
                    .resolve(&text)
                    .map_err(|e| refused(field, e.to_string()))?,
            );
        }
        Ok::<_, ProvisionError>(())
    };
    resolve("hold_music", &mut config.hold_music)?;
    resolve("timeout_announcement", &mut config.timeout_announcement)?;
    resolve("prompts_dir", &mut config.prompts_dir)?;
    resolve("record_announcement", &mut config.record_announcement)?;
    Ok(config)
}
