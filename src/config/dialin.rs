//! `[[dialin]]` entries: which calls an entry takes, where its webhooks go,
//! who may call it, and how its calls behave when transfers fail, rooms hang
//! up or the caller waits too long.

use super::duration;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// One `[[dialin]]` entry.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DialinEntry {
    pub name_prefix: String,
    /// Matched against the INVITE's To user (E.164).
    pub phone_number: Option<String>,
    /// Static SIP URI, matched on its user part.
    pub sip_uri: Option<String>,
    /// The incoming-call webhook.
    pub room_creation_api: String,
    /// Base64 webhook signing key; generated once into `state_dir` if absent.
    pub hmac: Option<String>,
    #[serde(default)]
    pub allowed_cidrs: Vec<String>,
    #[serde(default)]
    pub credentials: Vec<Credential>,
    #[serde(default)]
    pub open: bool,
    /// Ring (180) this long before answering; 0 answers at once.
    #[serde(rename = "answer_delay_ms", default, with = "duration::millis")]
    pub answer_delay: Duration,
    /// Overrides `[hold].music` for this entry's callers.
    pub hold_music: Option<PathBuf>,
    /// How long one update may keep retrying rooms that are not ready
    /// (404/408/480/5xx or no answer) before the caller goes back to hold.
    #[serde(
        rename = "transfer_timeout_secs",
        default = "default_transfer_timeout",
        with = "duration::secs"
    )]
    pub transfer_timeout: Duration,
    /// What a room's hang-up does to a bridged caller.
    #[serde(default)]
    pub on_room_hangup: OnRoomHangup,
    /// Overrides `[hold].max_hold_secs` for this entry's calls.
    #[serde(rename = "max_hold_secs", default, with = "duration::opt_secs")]
    pub max_hold: Option<Duration>,
    /// What happens when a caller has been on hold for `max_hold_secs`.
    #[serde(default)]
    pub hold_timeout_action: HoldTimeoutAction,
    /// Played once before hanging up on a hold timeout (any format the
    /// hold music accepts). None: hang up at once.
    pub timeout_announcement: Option<PathBuf>,
    /// Where `hold_timeout_action = "transfer"` sends the caller.
    pub timeout_sip_uri: Option<String>,
    /// Signed call events (`call.held`, `call.bridged`, …) go here.
    pub events_url: Option<String>,
    /// Which of the caller's headers cross into the webhook and room INVITE.
    #[serde(default)]
    pub header_policy: HeaderPolicyConfig,
    /// When the caller is answered: at once, or only when a room answers
    /// (music in early media until then).
    #[serde(default)]
    pub answer: AnswerMode,
    /// With `answer = "early"`: answer and hold as usual after this long
    /// in early media with no room.
    #[serde(
        rename = "early_media_max_secs",
        default = "default_early_media_max",
        with = "duration::secs"
    )]
    pub early_media_max: Duration,
    /// Tell held callers their place in the queue and the estimated wait
    /// this often; 0 = never.
    #[serde(
        rename = "announce_position_every_secs",
        default,
        with = "duration::secs"
    )]
    pub announce_position_every: Duration,
    /// The prompt set for position announcements (else the bundled
    /// English one in `assets/prompts`).
    pub prompts_dir: Option<PathBuf>,
    /// A digit the held caller presses → a transfer to this SIP URI.
    #[serde(default)]
    pub dtmf_transfer: BTreeMap<String, String>,
    /// SRTP (SDES) on the caller's leg.
    #[serde(default)]
    pub media_encryption: MediaEncryption,
    /// When the entry's calls are recorded on their own (the recording
    /// API and updates start and stop recordings too).
    #[serde(default)]
    pub record: RecordMode,
    /// Played to the caller (on hold) before any recording of the call
    /// starts, once per call; recording starts when it has played.
    pub record_announcement: Option<PathBuf>,
}

/// `record`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordMode {
    /// Only when asked (API, update).
    #[default]
    Off,
    /// From the answer, hold included.
    Answer,
    /// From the first bridge to a room or bot.
    Bridge,
}

/// `answer`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AnswerMode {
    /// 200 OK at once; music on an answered call.
    #[default]
    Now,
    /// 183 Session Progress with music; 200 OK only when a room answers,
    /// or after `early_media_max_secs`.
    Early,
}

/// `media_encryption`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaEncryption {
    /// Plain RTP only.
    #[default]
    Disable,
    /// SRTP when the caller offers it, plain RTP otherwise.
    Allow,
    /// SRTP only: a plain offer is refused.
    Require,
}

/// A digest username and password accepted for an entry.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Credential {
    pub username: String,
    pub password: String,
}

/// `on_room_hangup`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnRoomHangup {
    /// The call ends: the caller gets BYE.
    #[default]
    End,
    /// The caller goes back to hold music and a new webhook is posted.
    Hold,
}

/// `hold_timeout_action`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HoldTimeoutAction {
    /// Play `timeout_announcement` (if set), then hang up.
    #[default]
    Hangup,
    /// Transfer to `timeout_sip_uri`.
    Transfer,
}

/// `[dialin.header_policy]`: what of the caller's `X-` / `User-to-User`
/// headers this entry passes on. Applied as the call arrives, so the
/// webhook, the call record and every room INVITE see the same headers.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HeaderPolicyConfig {
    /// Header names passed on (case-insensitive; a trailing `*` matches a
    /// prefix, like `X-Customer-*`). Empty: every custom header.
    pub allow: Vec<String>,
    /// Renames applied after the allow list, e.g. `{ "X-Lang" = "X-Caller-Lang" }`.
    pub rename: BTreeMap<String, String>,
    /// A header whose value is longer is dropped (and the drop logged).
    pub max_value_bytes: usize,
    /// Headers beyond this many bytes in all (names and values) are dropped.
    pub max_total_bytes: usize,
}

fn default_transfer_timeout() -> Duration {
    Duration::from_secs(30)
}

fn default_early_media_max() -> Duration {
    Duration::from_secs(120)
}

impl Default for HeaderPolicyConfig {
    fn default() -> Self {
        Self {
            allow: Vec::new(),
            rename: BTreeMap::new(),
            max_value_bytes: 1024,
            max_total_bytes: 8192,
        }
    }
}

impl Default for DialinEntry {
    /// Empty names and URLs: for building entries in code, not for use as is.
    fn default() -> Self {
        Self {
            name_prefix: String::new(),
            phone_number: None,
            sip_uri: None,
            room_creation_api: String::new(),
            hmac: None,
            allowed_cidrs: Vec::new(),
            credentials: Vec::new(),
            open: false,
            answer_delay: Duration::ZERO,
            hold_music: None,
            transfer_timeout: default_transfer_timeout(),
            on_room_hangup: OnRoomHangup::End,
            max_hold: None,
            hold_timeout_action: HoldTimeoutAction::Hangup,
            timeout_announcement: None,
            timeout_sip_uri: None,
            events_url: None,
            header_policy: HeaderPolicyConfig::default(),
            answer: AnswerMode::Now,
            early_media_max: default_early_media_max(),
            announce_position_every: Duration::ZERO,
            prompts_dir: None,
            dtmf_transfer: BTreeMap::new(),
            media_encryption: MediaEncryption::Disable,
            record: RecordMode::Off,
            record_announcement: None,
        }
    }
}
