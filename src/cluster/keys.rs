//! What the cluster keeps in Redis, without I/O: key names, the JSON of
//! a node's record and of a provisioned entry, and how long each lives.
//!
//! ```text
//! pinless:node:{callDomain}     node record (JSON), expires NODE_TTL after the last beat
//! pinless:nodes                 sorted set: callDomain → last beat (Unix ms)
//! pinless:call:{callId}         callDomain of the owner, expires CALL_TTL after the last beat
//! pinless:entries               hash: entry id → provisioned entry (JSON, with its secrets)
//! pinless:entries:version       counter, raised by every entry change
//! pinless:entries:epoch         random id, set when Redis had no entries epoch (new, or lost its data)
//! pinless:entries:changed       pub/sub channel: the new version, after each change
//! ```
//!
//! A node's id in the cluster is its `callDomain`: the app already holds
//! it from the webhook, and it is stable across restarts.

use crate::config::DialinEntry;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How often a node writes its record and its calls' owner keys.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(3);
/// A node whose record was not refreshed this long is gone: several
/// missed beats, so that one slow round does not drop it.
pub const NODE_TTL: Duration = Duration::from_secs(15);
/// An owner key not refreshed this long is stale (its node died).
pub const CALL_TTL: Duration = Duration::from_secs(30);
/// The longest one Redis command may take before the caller gives up:
/// an API request or a heartbeat waits no longer on a dead Redis.
pub const REDIS_TIMEOUT: Duration = Duration::from_millis(500);
/// How often a node checks the entries' version, in case a change notice
/// was missed (pub/sub is fire-and-forget). Well under the 1 s in which a
/// new entry must take calls everywhere.
pub const ENTRIES_POLL_EVERY: Duration = Duration::from_millis(400);
/// Longest a forwarded request may take at the owner (an update answers
/// in milliseconds; this only bounds a hung owner).
pub const FORWARD_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest the connection to an owner may take to open.
pub const FORWARD_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Set on a request one node forwards to another: the receiver answers it
/// itself and never forwards it again (no loops, even with stale owners).
/// Its value is the sender's callDomain, for the logs.
pub const FORWARDED_BY: &str = "x-pinless-forwarded-by";

const PREFIX: &str = "pinless:";

/// The sorted set of nodes by their last beat.
pub fn nodes() -> String {
    format!("{PREFIX}nodes")
}

/// A node's record.
pub fn node(call_domain: &str) -> String {
    format!("{PREFIX}node:{call_domain}")
}

/// The owner key of a call.
pub fn call(call_id: &str) -> String {
    format!("{PREFIX}call:{call_id}")
}

/// The hash of provisioned entries.
pub fn entries() -> String {
    format!("{PREFIX}entries")
}

/// The entries' version counter.
pub fn entries_version() -> String {
    format!("{PREFIX}entries:version")
}

/// The id of the entries' current epoch: a new one means Redis lost its
/// data and was seeded again, and nodes merge their copies into it.
pub fn entries_epoch() -> String {
    format!("{PREFIX}entries:epoch")
}

/// The channel on which entry changes are announced.
pub fn entries_channel() -> String {
    format!("{PREFIX}entries:changed")
}

/// A node as the others see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeRecord {
    /// The node's id.
    pub call_domain: String,
    /// Its API base URL (`cluster.advertise_api`), without a trailing `/`.
    pub api: String,
    /// When this run of the node started (Unix ms).
    pub started_at: u64,
}

impl NodeRecord {
    /// The URL of `path_and_query` (starting with `/`) on this node's API.
    pub fn url(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.api.trim_end_matches('/'))
    }

    pub fn to_json(&self) -> String {
        // A struct of strings and numbers always serialises.
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn from_json(text: &str) -> Result<NodeRecord, serde_json::Error> {
        serde_json::from_str(text)
    }
}

/// A provisioned entry as every node reads it: the `[[dialin]]` fields and
/// its secrets, including the one still valid during a rotation's grace.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EntryRecord {
    pub id: String,
    /// The fields; `hmac` is always None here (see `hmac` below).
    pub config: DialinEntry,
    /// The current signing secret (base64).
    pub hmac: String,
    /// The secret before the last rotation, and until when (Unix ms) it
    /// still signs.
    #[serde(default)]
    pub previous: Option<PreviousKey>,
    pub created_at: u64,
    pub updated_at: u64,
}

/// A rotated-out secret in its grace period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviousKey {
    pub hmac: String,
    pub until: u64,
}

impl EntryRecord {
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        let mut copy = self.clone();
        copy.config.hmac = None;
        serde_json::to_string(&copy)
    }

    pub fn from_json(text: &str) -> Result<EntryRecord, serde_json::Error> {
        serde_json::from_str(text)
    }
}

/// The records of the entries hash that parse, and the (id, text,
/// reason) of each that does not: one bad record leaves the others
/// readable.
pub fn parse_entries(
    all: impl IntoIterator<Item = (String, String)>,
) -> (Vec<EntryRecord>, Vec<(String, String, String)>) {
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for (id, text) in all {
        match EntryRecord::from_json(&text) {
            Ok(r) => good.push(r),
            Err(e) => bad.push((id, text, e.to_string())),
        }
    }
    (good, bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_unreadable_entry_record_leaves_the_others() {
        let good = r#"{"id":"a","config":{"name_prefix":"a","room_creation_api":"http://h/x","open":true},"hmac":"aw==","createdAt":1,"updatedAt":1}"#;
        // Written by a newer node: a field this one does not know.
        let newer = good
            .replace(r#""id":"a""#, r#""id":"b""#)
            .replace(r#""open":true"#, r#""open":true,"future_knob":1"#);
        let (records, bad) = parse_entries([
            ("a".to_string(), good.to_string()),
            ("b".to_string(), newer),
            ("c".to_string(), "not json".to_string()),
        ]);
        let ids: Vec<_> = records.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["a"]);
        let bad_ids: Vec<_> = bad.iter().map(|(id, _, _)| id.as_str()).collect();
        assert_eq!(bad_ids, ["b", "c"]);
        assert!(bad[0].2.contains("future_knob"), "{}", bad[0].2);
    }

    #[test]
    fn key_names_are_stable() {
        // Nodes of different releases share one Redis: these names are a
        // format, not a detail.
        assert_eq!(nodes(), "pinless:nodes");
        assert_eq!(node("d1"), "pinless:node:d1");
        assert_eq!(call("c-1"), "pinless:call:c-1");
        assert_eq!(entries(), "pinless:entries");
        assert_eq!(entries_version(), "pinless:entries:version");
        assert_eq!(entries_channel(), "pinless:entries:changed");
        assert_eq!(entries_epoch(), "pinless:entries:epoch");
    }

    #[test]
    fn node_record_round_trips_and_builds_urls() {
        let n = NodeRecord {
            call_domain: "d1".into(),
            api: "http://10.0.0.5:8080/".into(),
            started_at: 7,
        };
        let text = n.to_json();
        assert_eq!(
            text,
            r#"{"callDomain":"d1","api":"http://10.0.0.5:8080/","startedAt":7}"#
        );
        assert_eq!(NodeRecord::from_json(&text).unwrap(), n);
        assert_eq!(n.url("/v1/calls/x"), "http://10.0.0.5:8080/v1/calls/x");
        assert!(NodeRecord::from_json("{}").is_err());
    }

    #[test]
    fn entry_record_keeps_secrets_apart_and_round_trips() {
        let config: DialinEntry = serde_json::from_value(serde_json::json!({
            "name_prefix": "a", "sip_uri": "sip:a@h", "room_creation_api": "http://h/x",
            "open": true, "hmac": "should-not-travel-in-config"
        }))
        .unwrap();
        let r = EntryRecord {
            id: "e1".into(),
            config,
            hmac: "c2VjcmV0".into(),
            previous: Some(PreviousKey {
                hmac: "b2xk".into(),
                until: 99,
            }),
            created_at: 1,
            updated_at: 2,
        };
        let text = r.to_json().unwrap();
        assert!(!text.contains("should-not-travel-in-config"));
        let back = EntryRecord::from_json(&text).unwrap();
        assert_eq!(back.hmac, "c2VjcmV0");
        assert_eq!(back.previous, r.previous);
        assert_eq!(back.config.sip_uri.as_deref(), Some("sip:a@h"));
        assert_eq!((back.created_at, back.updated_at), (1, 2));
        assert!(back.config.hmac.is_none());
    }
}
