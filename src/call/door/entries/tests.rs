use super::*;

fn config(name: &str, number: &str) -> DialinEntry {
    DialinEntry {
        name_prefix: name.into(),
        phone_number: Some(number.into()),
        room_creation_api: "http://127.0.0.1:9/dialin".into(),
        open: true,
        ..DialinEntry::default()
    }
}

fn stored(id: &str, c: DialinEntry) -> StoredEntry {
    StoredEntry::for_tests(id, c, 1)
}

fn fixed() -> Vec<Arc<Entry>> {
    let e = Entry::resolve(
        "config:desk".into(),
        &config("desk", "+15550000001"),
        SigningKeys::single(vec![7; 32]),
        Duration::from_secs(60),
        "dialin[0]",
    )
    .unwrap();
    vec![Arc::new(e)]
}

/// The entries a node must hold whatever else it was sent: one clashing
/// with the config file, one clashing with an older stored entry, one
/// with a hold-music file missing on this node, and two good ones.
fn mixed() -> Vec<StoredEntry> {
    let mut missing = config("music", "+15550000004");
    missing.hold_music = Some("/nonexistent/pinless-test.wav".into());
    vec![
        stored("clash-config", config("a", "+15550000001")),
        stored("good-1", config("b", "+15550000002")),
        stored("clash-older", config("c", "+15550000002")),
        stored("no-music", missing),
        stored("good-2", config("d", "+15550000005")),
    ]
}

#[test]
fn a_node_starts_with_the_entries_it_can_apply() {
    let book = EntryBook::new(fixed(), &mixed(), Duration::from_secs(60));
    let now = book.snapshot();
    assert_eq!(now.find("+15550000001").unwrap().id, "config:desk");
    assert_eq!(now.find("+15550000002").unwrap().id, "good-1");
    assert_eq!(now.find("+15550000005").unwrap().id, "good-2");
    assert!(now.find("+15550000004").is_none());
}

#[test]
fn rebuild_skips_bad_entries_and_names_them() {
    let book = EntryBook::new(fixed(), &[], Duration::from_secs(60));
    let skipped = book.rebuild(&mixed());
    let ids: Vec<_> = skipped.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["clash-config", "clash-older", "no-music"]);
    assert!(skipped[0].reason.contains("config:desk"), "{skipped:?}");
    assert!(skipped[1].reason.contains("good-1"), "{skipped:?}");
    assert!(skipped[2].reason.contains("hold_music"), "{skipped:?}");
    // A later change still goes in force with the bad ones still there.
    let mut next = mixed();
    next.push(stored("good-3", config("e", "+15550000006")));
    book.rebuild(&next);
    assert_eq!(book.snapshot().find("+15550000006").unwrap().id, "good-3");
}
