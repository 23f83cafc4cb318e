//! Audio for the play API: a file inside `[api] media_dir` or an http(s)
//! URL whose every address the URL policy allows (see `confine`), fetched
//! (with a timeout and a size cap) or read, decoded off the async threads into
//! the gateway's 8 kHz G.711 frames, and cached by the exact string given
//! (bounded: the least recently used go first). A file or URL whose
//! content changes keeps its cached audio until it is pushed out: give
//! new audio a new name.

use super::bad_request::FieldError;
use super::error::ApiError;
use crate::confine::{MediaDir, UrlPolicy, refusal_in};
use crate::media::{HoldError, HoldLoop};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Longest a fetch may take, connection to last byte.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest file fetched or read (bytes).
pub const MAX_AUDIO_BYTES: usize = 20 * 1024 * 1024;
/// Decoded audio kept, in 20 ms frames (30 minutes, ≈ 29 MB in both laws).
const CACHED_FRAMES: u64 = 30 * 60 * 50;
/// Clips kept at most.
const CACHED_CLIPS: usize = 64;
/// Longest prompt played (decoding stops there).
const LONGEST: Duration = Duration::from_secs(10 * 60);

/// Decoded clips by the `audio` string that named them.
pub struct AudioCache {
    files: MediaDir,
    urls: UrlPolicy,
    /// Err: the client could not be built (its reason fails each fetch;
    /// an unchecked default client must never stand in).
    http: Result<reqwest::Client, String>,
    clips: Mutex<VecDeque<(String, Arc<HoldLoop>)>>,
    /// The node speaks Opus: a clip is encoded for it before it plays.
    opus: bool,
}

impl AudioCache {
    pub fn new(files: MediaDir, urls: UrlPolicy, opus: bool) -> Self {
        AudioCache {
            files,
            urls,
            opus,
            http: urls
                .http_client(FETCH_TIMEOUT)
                .build()
                .map_err(|e| e.to_string()),
            clips: Mutex::new(VecDeque::new()),
        }
    }
}

/// Where an `audio` string points.
enum Source {
    Url(String),
    /// As given: resolved inside `media_dir`.
    File(String),
}

fn source(audio: &str) -> Source {
    let lower = audio.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        Source::Url(audio.to_string())
    } else {
        Source::File(audio.to_string())
    }
}

/// Decodes a fetched or read clip (and encodes it for Opus on a node
/// that speaks it): CPU-bound, run on a blocking thread.
fn decode(bytes: Vec<u8>, name: &str, opus: bool) -> Result<HoldLoop, HoldError> {
    let clip = HoldLoop::from_bytes_within(bytes, name, Some(LONGEST))?;
    if opus {
        clip.prepare_opus();
    }
    Ok(clip)
}

/// 400 naming `audio`.
fn unreachable(audio: &str, why: impl std::fmt::Display) -> ApiError {
    FieldError::rule("audio", format!("cannot get {audio}: {why}")).into()
}

/// 400 naming `audio`: the URL or file is not one an API client may use.
fn refused(why: impl std::fmt::Display) -> ApiError {
    FieldError::rule("audio", why.to_string()).into()
}

/// 422 naming `audio`.
fn undecodable(audio: &str, e: HoldError) -> ApiError {
    let why = match &e {
        HoldError::Open { source, .. } => return unreachable(audio, source),
        HoldError::Format { source, .. } | HoldError::Decode { source, .. } => source.to_string(),
        HoldError::NoTrack { .. } => "no audio track".into(),
        HoldError::Empty { .. } => "no audio in it".into(),
        HoldError::TooLong { longest, .. } => {
            format!("longer than {} minutes", longest.as_secs() / 60)
        }
    };
    ApiError::Undecodable(FieldError::rule(
        "audio",
        format!("cannot decode {audio}: {why}"),
    ))
}

impl AudioCache {
    /// The decoded clip `audio` names: from the cache, or fetched or read
    /// and decoded now. 400 for a URL that cannot be fetched or a file
    /// that cannot be read, 422 for content that is no audio.
    pub async fn get(&self, audio: &str) -> Result<Arc<HoldLoop>, ApiError> {
        if let Some(clip) = self.cached(audio) {
            return Ok(clip);
        }
        let decoded = match source(audio) {
            Source::Url(url) => {
                // The reason, before any packet goes to the address; the
                // client's resolver checks again as it connects.
                self.urls.check_url(&url).await.map_err(refused)?;
                let bytes = self.fetch(&url).await?;
                // The URL's last segment hints at the format.
                let name = url.rsplit('/').next().unwrap_or_default().to_string();
                let opus = self.opus;
                tokio::task::spawn_blocking(move || decode(bytes, &name, opus)).await
            }
            Source::File(given) => {
                let path = self.files.resolve(&given).map_err(refused)?;
                let meta = tokio::fs::metadata(&path)
                    .await
                    .map_err(|e| unreachable(audio, e))?;
                // Not a FIFO, a device or a directory: a FIFO would block a
                // thread for ever, /dev/zero never ends (and says size 0).
                if !meta.is_file() {
                    return Err(unreachable(audio, "not a regular file"));
                }
                if meta.len() > MAX_AUDIO_BYTES as u64 {
                    return Err(unreachable(
                        audio,
                        format!("larger than {MAX_AUDIO_BYTES} bytes"),
                    ));
                }
                let bytes = tokio::fs::read(&path)
                    .await
                    .map_err(|e| unreachable(audio, e))?;
                let name = given;
                let opus = self.opus;
                tokio::task::spawn_blocking(move || decode(bytes, &name, opus)).await
            }
        };
        let clip = match decoded {
            Ok(Ok(clip)) => Arc::new(clip),
            Ok(Err(e)) => return Err(undecodable(audio, e)),
            Err(join) => return Err(unreachable(audio, join)),
        };
        self.keep(audio, clip.clone());
        Ok(clip)
    }

    async fn fetch(&self, url: &str) -> Result<Vec<u8>, ApiError> {
        let http = self.http.as_ref().map_err(|e| unreachable(url, e))?;
        let response = http
            .get(url)
            .send()
            .await
            .map_err(|e| match refusal_in(&e) {
                Some(r) if e.is_redirect() => refused(format!("a redirect was {r}")),
                Some(r) => refused(r),
                None => unreachable(url, e),
            })?;
        let status = response.status();
        if !status.is_success() {
            return Err(unreachable(url, format!("HTTP {}", status.as_u16())));
        }
        crate::webhook::read_capped(response, MAX_AUDIO_BYTES)
            .await
            .map_err(|e| unreachable(url, e))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<(String, Arc<HoldLoop>)>> {
        self.clips.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A cached clip, moved to the back (most recently used).
    fn cached(&self, audio: &str) -> Option<Arc<HoldLoop>> {
        let mut clips = self.lock();
        let i = clips.iter().position(|(name, _)| name == audio)?;
        let hit = clips.remove(i)?;
        let clip = hit.1.clone();
        clips.push_back(hit);
        Some(clip)
    }

    fn keep(&self, audio: &str, clip: Arc<HoldLoop>) {
        self.keep_within(audio, clip, CACHED_CLIPS, CACHED_FRAMES);
    }

    /// Adds `clip`, then drops the least recently used beyond `max_clips`
    /// clips or `max_frames` frames in all.
    fn keep_within(&self, audio: &str, clip: Arc<HoldLoop>, max_clips: usize, max_frames: u64) {
        let mut clips = self.lock();
        clips.retain(|(name, _)| name != audio);
        clips.push_back((audio.to_string(), clip));
        let frames = |c: &VecDeque<(String, Arc<HoldLoop>)>| -> u64 {
            c.iter().map(|(_, h)| u64::from(h.frames())).sum()
        };
        // Never evicts the clip just added: it is about to play.
        while clips.len() > 1 && (clips.len() > max_clips || frames(&clips) > max_frames) {
            clips.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clip(frames: usize) -> Arc<HoldLoop> {
        Arc::new(HoldLoop::from_samples(&vec![0.25; frames * 160], 8000))
    }

    #[test]
    fn the_cache_is_bounded_and_keeps_the_recently_used() {
        let cache = AudioCache::new(MediaDir::none(), UrlPolicy::default(), false);
        for i in 0..CACHED_CLIPS + 5 {
            cache.keep(&format!("a{i}"), clip(1));
        }
        assert_eq!(cache.lock().len(), CACHED_CLIPS);
        assert!(cache.cached("a0").is_none());
        assert!(cache.cached("a5").is_some()); // now the most recent
        // 40 frames at most: two clips of 20 push out the rest.
        cache.keep_within("big1", clip(20), CACHED_CLIPS, 40);
        cache.keep_within("big2", clip(20), CACHED_CLIPS, 40);
        assert!(cache.cached("a5").is_none(), "pushed out by size");
        assert!(cache.cached("big1").is_some() && cache.cached("big2").is_some());
    }
}
