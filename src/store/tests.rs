use super::*;
use crate::config::DialinEntry;

fn dir() -> PathBuf {
    std::env::temp_dir().join(format!("pinless-store-{}", uuid::Uuid::new_v4()))
}

fn entry(id: &str) -> StoredEntry {
    StoredEntry {
        id: id.into(),
        config: DialinEntry {
            name_prefix: "sales".into(),
            phone_number: Some("+15550001111".into()),
            room_creation_api: "http://127.0.0.1:9/dialin".into(),
            open: true,
            ..DialinEntry::default()
        },
        keys: StoredKeys {
            hmac: "c2VjcmV0LWtleS1mb3ItdGVzdHMtMDEyMzQ1Njc4OQ==".into(),
            previous: None,
        },
        created_at: 1,
        updated_at: 1,
    }
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
