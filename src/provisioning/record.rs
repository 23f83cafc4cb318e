//! A provisioned entry as the node stores it (`StoredEntry`, SQLite) and
//! as the cluster shares it (`EntryRecord`, Redis): the same fields and
//! secrets, translated both ways.

use crate::cluster::{EntryRecord, PreviousKey};
use crate::store::{StoredEntry, StoredKeys};

pub fn to_record(s: &StoredEntry) -> EntryRecord {
    let mut config = s.config.clone();
    config.hmac = None;
    EntryRecord {
        id: s.id.clone(),
        config,
        hmac: s.keys.hmac.clone(),
        previous: s.keys.previous.as_ref().map(|(hmac, until)| PreviousKey {
            hmac: hmac.clone(),
            until: *until,
        }),
        created_at: s.created_at,
        updated_at: s.updated_at,
    }
}

pub fn from_record(r: EntryRecord) -> StoredEntry {
    StoredEntry {
        id: r.id,
        config: r.config,
        keys: StoredKeys {
            hmac: r.hmac,
            previous: r.previous.map(|p| (p.hmac, p.until)),
        },
        created_at: r.created_at,
        updated_at: r.updated_at,
    }
}

/// Whether the stored copy says what the record says.
pub fn same(s: &StoredEntry, r: &EntryRecord) -> bool {
    let ours = to_record(s);
    ours.hmac == r.hmac
        && ours.previous == r.previous
        && ours.created_at == r.created_at
        && ours.updated_at == r.updated_at
        && serde_json::to_value(&ours.config).ok() == serde_json::to_value(&r.config).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_secrets_and_rotation_window() {
        let config = serde_json::from_value(serde_json::json!({
            "name_prefix": "a", "sip_uri": "sip:a@h", "room_creation_api": "http://h/x", "open": true
        }))
        .unwrap();
        let s = StoredEntry {
            id: "e".into(),
            config,
            keys: StoredKeys {
                hmac: "bmV3".into(),
                previous: Some(("b2xk".into(), 42)),
            },
            created_at: 1,
            updated_at: 2,
        };
        let r = to_record(&s);
        assert!(same(&s, &r));
        let back = from_record(r.clone());
        assert_eq!(back.keys, s.keys);
        let mut changed = r;
        changed.previous = None;
        assert!(!same(&s, &changed));
    }
}
