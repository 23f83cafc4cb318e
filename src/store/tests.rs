use super::*;
use crate::config::DialinEntry;

fn dir() -> PathBuf {
    std::env::temp_dir().join(format!("pinless-store-{}", uuid::Uuid::new_v4()))
}

fn entry(id: &str) -> StoredEntry {
    let config = DialinEntry {
        name_prefix: "sales".into(),
        phone_number: Some("+15550001111".into()),
        room_creation_api: "http://127.0.0.1:9/dialin".into(),
        open: true,
        ..DialinEntry::default()
    };
    StoredEntry::for_tests(id, config, 1)
}

#[test]
fn entries_survive_reopening_and_rotation_keeps_the_old_key() {
    let d = dir();
    {
        let s = Store::open(&d).unwrap();
        s.insert_entry(&entry("a")).unwrap();
        assert!(
            s.rotate_entry("a", "bmV3LWtleS1mb3ItdGVzdHMtMDEyMzQ1Njc4OQ==", 99, 2)
                .unwrap()
        );
        assert!(!s.rotate_entry("nope", "x", 1, 2).unwrap());
        assert_eq!(s.node_value_or_insert("call_domain", "d1").unwrap(), "d1");
    }
    let s = Store::open(&d).unwrap();
    let e = s.entry("a").unwrap().unwrap();
    assert_eq!(e.config.phone_number.as_deref(), Some("+15550001111"));
    assert!(e.keys.hmac.starts_with("bmV3"));
    assert_eq!(
        e.keys.previous,
        Some(("c2VjcmV0LWtleS1mb3ItdGVzdHMtMDEyMzQ1Njc4OQ==".into(), 99))
    );
    assert_eq!(s.node_value_or_insert("call_domain", "d2").unwrap(), "d1");
    assert!(s.delete_entry("a").unwrap());
    assert!(s.entries().unwrap().is_empty());
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn a_file_that_is_not_a_database_is_refused_and_left_alone() {
    let d = dir();
    std::fs::create_dir_all(&d).unwrap();
    let garbage = vec![0x42u8; 8192];
    std::fs::write(d.join(FILE), &garbage).unwrap();
    let e = Store::open(&d).err().expect("refused");
    assert!(matches!(e, StoreError::Corrupt { .. }), "{e}");
    assert!(e.to_string().contains("pinless.db"), "{e}");
    assert_eq!(std::fs::read(d.join(FILE)).unwrap(), garbage, "untouched");
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn a_newer_schema_is_refused() {
    let d = dir();
    std::fs::create_dir_all(&d).unwrap();
    let conn = Connection::open(d.join(FILE)).unwrap();
    conn.pragma_update(None, "user_version", 999).unwrap();
    drop(conn);
    let e = Store::open(&d).err().expect("refused");
    assert!(
        matches!(e, StoreError::NewerSchema { found: 999, .. }),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(d);
}

fn record(id: &str, ended_at: u64) -> CallRecord {
    CallRecord {
        call_id: id.into(),
        call_domain: "d".into(),
        entry: "sales".into(),
        from: "sip:alice@example.com".into(),
        to: "+15550001111".into(),
        state: "ended".into(),
        created_at: 1_000,
        bridged_at: Some(2_000),
        ended_at,
        end_reason: Some("caller_hangup".into()),
        target: Some("sip:room@h".into()),
        transfer_attempts: 1,
        hold_ms: 1_000,
        talk_ms: 500,
        sip_headers: [("X-Ref".to_string(), "7".to_string())].into(),
        timeline: vec![
            RecordEvent {
                at: 1_000,
                event: "call.held".into(),
                detail: serde_json::Value::Null,
            },
            RecordEvent {
                at: 1_500,
                event: "call.transfer_started".into(),
                detail: serde_json::json!({ "sipUri": "sip:room@h", "attempt": 1 }),
            },
        ],
    }
}

#[test]
fn records_round_trip_in_the_versioned_form() {
    let d = dir();
    let s = Store::open(&d).unwrap();
    let r = record("c-1", 2_500);
    s.record_call(&r).unwrap();
    let mut later = record("c-2", 3_000);
    later.bridged_at = None;
    later.end_reason = None;
    later.target = None;
    s.record_call(&later).unwrap();
    let stored: String = s
        .conn()
        .query_row(
            "SELECT record FROM call_records WHERE call_id = 'c-1'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&stored).unwrap();
    assert_eq!(v["v"], 1);
    assert_eq!(v["call_id"], "c-1", "snake_case, not the API's names");
    let got = s
        .records(RecordQuery {
            since: 0,
            limit: 10,
        })
        .unwrap();
    assert_eq!(got, vec![r, later.clone()]);
    let got = s
        .records(RecordQuery {
            since: 2_600,
            limit: 10,
        })
        .unwrap();
    assert_eq!(got, vec![later]);
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn records_written_by_the_previous_release_are_read() {
    let d = dir();
    let s = Store::open(&d).unwrap();
    // The API's JSON of the call, as the previous release stored it.
    let old = r#"{"callId":"c-old","callDomain":"d","state":"ended","from":"sip:alice@example.com","to":"+15550001111","entry":"sales","createdAt":1000,"bridgedAt":2000,"endedAt":2500,"target":"sip:room@h","endReason":"caller_hangup","transferAttempts":1,"holdMs":1000,"talkMs":500,"sipHeaders":{"X-Ref":"7"},"timeline":[{"at":1000,"event":"call.held"},{"at":1500,"event":"call.transfer_started","detail":{"sipUri":"sip:room@h","attempt":1}}]}"#;
    s.conn()
        .execute(
            "INSERT INTO call_records
               (call_id, entry, from_party, to_party, created_at, ended_at, end_reason,
                target, hold_ms, talk_ms, record)
             VALUES ('c-old', 'sales', 'sip:alice@example.com', '+15550001111', 1000, 2500,
                     'caller_hangup', 'sip:room@h', 1000, 500, ?1)",
            [old],
        )
        .unwrap();
    let got = s
        .records(RecordQuery {
            since: 0,
            limit: 10,
        })
        .unwrap();
    assert_eq!(got, vec![record("c-old", 2_500)]);
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn a_record_from_a_newer_release_is_an_error_not_a_guess() {
    let d = dir();
    let s = Store::open(&d).unwrap();
    s.conn()
        .execute(
            "INSERT INTO call_records
               (call_id, entry, from_party, to_party, created_at, ended_at, end_reason,
                target, hold_ms, talk_ms, record)
             VALUES ('c-new', 'e', 'f', 't', 1, 2, NULL, NULL, 0, 0, '{\"v\":2}')",
            [],
        )
        .unwrap();
    let e = s
        .records(RecordQuery {
            since: 0,
            limit: 10,
        })
        .unwrap_err();
    assert!(matches!(e, StoreError::NewerRecord { found: 2, .. }), "{e}");
    s.conn()
        .execute("UPDATE call_records SET record = 'not json'", [])
        .unwrap();
    let e = s
        .records(RecordQuery {
            since: 0,
            limit: 10,
        })
        .unwrap_err();
    assert!(matches!(e, StoreError::Json { .. }), "{e}");
    assert!(
        e.to_string()
            .starts_with("database: stored record unreadable: "),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(d);
}
