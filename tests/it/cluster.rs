//! Nodes in a cluster through a real `redis-server`: real `pinless`
//! binaries, each on its own ports and state_dir, with `[cluster]` set.
//! A call held on one node is updated, read, put on hold and hung up
//! through another; an entry provisioned on one node takes calls on the
//! others within 1 s; and Redis stopped mid-run stops no call. Run with
//! `cargo test --features interop` (`.ci/run` installs redis-server; the
//! tests fail, never skip, without it).

use crate::support;

use pinless::sip::DialOutcome;
use pinless::sip::sdp::PeerMedia;
use reqwest::Method;
use serde_json::json;
use std::time::{Duration, Instant};
use support::cluster::*;
use support::*;

/// Room answers the next INVITE; then audio crosses both ways. Returns
/// the room's leg (hold it to keep the call up) and the gateway's media
/// address for the room.
async fn bridges(
    room: &mut Room,
    phone: &Phone,
    phone_media: &PeerMedia,
) -> (pinless::sip::Leg, std::net::SocketAddr) {
    let invite = room.next_invite().await;
    let (room_leg, offer) = room.answer(invite).await;
    let _to_caller = room.rtp.send_pattern(offer.addr, 0, 0x2A, 100);
    phone.rtp.hears(0x2A).await;
    let _to_room = phone.rtp.send_pattern(phone_media.addr, 0, 0x55, 100);
    room.rtp.hears(0x55).await;
    (room_leg, offer.addr)
}

#[tokio::test]
async fn any_node_answers_for_any_call_and_provisioned_entries_reach_every_node() {
    let redis = Redis::start();
    let mut hooks = WebhookReceiver::start(&[]).await;
    let n1 = node(&redis, &hooks.url()).await;
    let n2 = node(&redis, &hooks.url()).await;
    let n3 = node(&redis, &hooks.url()).await;
    cluster_of(&[&n1, &n2, &n3]).await;

    // A call held on node 1.
    let phone = Phone::new().await;
    let (_leg, media) = phone.call(&uri(&n1, "support"), &[]).await;
    let hook = call_hook(&mut hooks).await.json();
    let id = hook["callId"].as_str().unwrap().to_string();
    let domain = hook["callDomain"].as_str().unwrap().to_string();

    // Its update sent to node 2: the owner dials the room, the call bridges.
    let mut room = Room::new().await;
    let (s, answer) = api(
        &n2,
        Method::POST,
        "/v1/dialin/pinlessCallUpdate",
        Some(json!({ "callId": id, "callDomain": domain, "sipUri": room.uri("room", false) })),
    )
    .await;
    assert_eq!(s, 200, "{answer}");
    assert_eq!(answer["status"], "transferring");
    let _bridged = bridges(&mut room, &phone, &media).await;
    // Read through node 3: the owner's view, with the owner's callDomain.
    let call = state_through(&n3, &id, "bridged").await;
    assert_eq!(call["callDomain"], domain.as_str());
    // Its SIP ladder too: the owner's, with both legs' INVITEs.
    let (s, ladder) = api(&n3, Method::GET, &format!("/v1/calls/{id}/sip"), None).await;
    assert_eq!((s, &ladder["callId"]), (200, &json!(id)), "{ladder}");
    let invites: Vec<&str> = ladder["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| {
            m["startLine"]
                .as_str()
                .is_some_and(|l| l.starts_with("INVITE "))
        })
        .filter_map(|m| m["leg"].as_str())
        .collect();
    assert_eq!(invites, ["caller", "room"], "{ladder}");

    // The cluster's list, from node 2.
    let (s, list) = api(&n2, Method::GET, "/v1/calls?scope=cluster", None).await;
    assert_eq!(s, 200, "{list}");
    let ids: Vec<&str> = list["calls"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["callId"].as_str())
        .collect();
    assert!(ids.contains(&id.as_str()), "{list}");
    assert_eq!(list["unreachable"], json!([]));
    // Node 2's own list stays its own.
    let (_, own) = api(&n2, Method::GET, "/v1/calls", None).await;
    assert_eq!(own["calls"], json!([]));

    // Back to hold through node 3, hung up through node 2.
    let (s, held) = api(&n3, Method::POST, &format!("/v1/calls/{id}/hold"), None).await;
    assert_eq!((s, &held["status"]), (200, &json!("held")), "{held}");
    state_through(&n2, &id, "held").await;
    // A prompt asked of node 2 plays on the owner.
    let prompt = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/prompts/thank_you.wav");
    let path = format!("/v1/calls/{id}/play");
    let (s, playing) = api(&n2, Method::POST, &path, Some(json!({ "audio": prompt }))).await;
    assert_eq!(
        (s, &playing["status"]),
        (200, &json!("playing")),
        "{playing}"
    );
    let (s, ending) = api(&n2, Method::DELETE, &format!("/v1/calls/{id}"), None).await;
    assert_eq!((s, &ending["status"]), (200, &json!("ending")), "{ending}");
    state_through(&n1, &id, "ended").await;

    // A call no node owns: 404, as a lone node answers.
    let (s, unknown) = api(&n2, Method::GET, "/v1/calls/no-such-call", None).await;
    assert_eq!((s, &unknown["error"]), (404, &json!("unknown callId")));

    // An entry created through node 1 takes a call on node 3 within 1 s,
    // its webhook signed with the secret node 1 handed out.
    let mut shared_hooks = WebhookReceiver::start(&[]).await;
    let made = provision_open_entry(&n1, "shared", &shared_hooks.url()).await;
    let answered_at = Instant::now();
    let secret = made["config"]["hmac"].as_str().unwrap().to_string();
    let entry = made["id"].as_str().unwrap().to_string();
    let phone3 = Phone::new().await;
    let (_leg3, _) = loop {
        match phone3.dial(&uri(&n3, "shared"), &[]).outcome().await {
            DialOutcome::Answered { leg, sdp } => break (leg, sdp),
            DialOutcome::Rejected { code: 404, .. } => {
                assert!(
                    answered_at.elapsed() < Duration::from_secs(1),
                    "node 3 still refuses the entry 1 s after node 1 created it"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => panic!("call to the shared entry on node 3: {other:?}"),
        }
    };
    let h = call_hook(&mut shared_hooks).await;
    assert!(h.pinless_verifies("X-Pinless-Signature", &secret));
    let on3 = h.json();
    assert_ne!(on3["callDomain"], domain.as_str(), "taken by node 3 itself");

    // Its secret rotated through node 2: node 3 signs with the new one and,
    // during the grace, the old one.
    let (s, rotated) = api(
        &n2,
        Method::POST,
        &format!("/v1/domain-dialin-config/{entry}/rotate-hmac"),
        Some(json!({ "grace_secs": 60 })),
    )
    .await;
    assert_eq!(s, 200, "{rotated}");
    let new = rotated["config"]["hmac"].as_str().unwrap().to_string();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let phone4 = Phone::new().await;
    let (_leg4, _) = phone4.call(&uri(&n3, "shared"), &[]).await;
    let h = call_hook(&mut shared_hooks).await;
    assert!(h.pinless_verifies("X-Pinless-Signature", &new));
    assert!(h.pinless_verifies("X-Pinless-Signature-Previous", &secret));

    // Deleted through node 3: gone from node 1 too.
    let (s, _) = api(
        &n3,
        Method::DELETE,
        &format!("/v1/domain-dialin-config/{entry}"),
        None,
    )
    .await;
    assert_eq!(s, 200);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (s, _) = api(
        &n1,
        Method::GET,
        &format!("/v1/domain-dialin-config/{entry}"),
        None,
    )
    .await;
    assert_eq!(s, 404);
    let refused = Phone::new().await;
    match refused.dial(&uri(&n1, "shared"), &[]).outcome().await {
        DialOutcome::Rejected { code: 404, .. } => {}
        other => panic!("a deleted entry still takes calls on node 1: {other:?}"),
    }
}

#[tokio::test]
async fn redis_down_stops_no_call_and_all_recovers_when_it_returns() {
    let mut redis = Redis::start();
    let mut hooks = WebhookReceiver::start(&[]).await;
    let a = node(&redis, &hooks.url()).await;
    let b = node(&redis, &hooks.url()).await;
    cluster_of(&[&a, &b]).await;

    // Two calls held on A; an entry provisioned before the outage.
    let phone_x = Phone::new().await;
    let (_x, media_x) = phone_x.call(&uri(&a, "support"), &[]).await;
    let x = call_hook(&mut hooks).await.json();
    let phone_y = Phone::new().await;
    let (_y, _) = phone_y.call(&uri(&a, "support"), &[]).await;
    let y = call_hook(&mut hooks).await.json();
    let (x_id, domain) = (
        x["callId"].as_str().unwrap(),
        x["callDomain"].as_str().unwrap(),
    );
    let y_id = y["callId"].as_str().unwrap();
    let mut cached_hooks = WebhookReceiver::start(&[]).await;
    let made = provision_open_entry(&a, "cached", &cached_hooks.url()).await;
    let entry = made["id"].as_str().unwrap().to_string();
    // B reaches A's calls (so their owners are recorded) and has the entry.
    state_through(&b, y_id, "held").await;
    entry_reaches(&b, &entry, "node B").await;

    redis.stop();

    // Held callers keep their music: a packet every 20 ms.
    phone_x.rtp.drain();
    let heard = phone_x.rtp.collect(Duration::from_secs(2)).await;
    assert!(
        heard.len() >= 90,
        "held caller heard {} packets in 2 s",
        heard.len()
    );
    // A same-node update works.
    let mut room = Room::new().await;
    let body = |id: &str, room: &Room| json!({ "callId": id, "callDomain": domain, "sipUri": room.uri("room", false) });
    let (s, answer) = api(
        &a,
        Method::POST,
        "/v1/dialin/pinlessCallUpdate",
        Some(body(x_id, &room)),
    )
    .await;
    assert_eq!(s, 200, "{answer}");
    let (_room_leg, gw_room_side) = bridges(&mut room, &phone_x, &media_x).await;
    // A cross-node update gets 503 with the reason.
    let (s, refused) = api(
        &b,
        Method::POST,
        "/v1/dialin/pinlessCallUpdate",
        Some(body(y_id, &room)),
    )
    .await;
    assert_eq!(s, 503, "{refused}");
    let reason = refused["error"].as_str().unwrap_or_default();
    assert!(reason.starts_with("cluster unavailable: redis"), "{reason}");
    // Provisioning writes wait for Redis; nothing changes.
    let (s, write) = api(
        &b,
        Method::DELETE,
        &format!("/v1/domain-dialin-config/{entry}"),
        None,
    )
    .await;
    assert_eq!(s, 503, "{write}");
    // New calls are answered, with the cached copy of the entries too.
    let phone_z = Phone::new().await;
    let (_z, _) = phone_z.call(&uri(&b, "cached"), &[]).await;
    assert!(call_hook(&mut cached_hooks).await.json()["callId"].is_string());
    // Liveness never depends on Redis; the metric says it is down.
    let health = reqwest::get(format!("{}/healthz", b.api)).await.unwrap();
    assert_eq!(health.status(), 200);
    let metrics = reqwest::get(format!("{}/metrics", b.api))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("pinless_cluster_redis_up 0"), "{metrics}");
    // The bridged call still carries audio.
    let _more = room.rtp.send_pattern(gw_room_side, 0, 0x3C, 50);
    phone_x.rtp.hears(0x3C).await;

    // Redis back (empty, same port): ownership and the entry are written
    // again, and a cross-node update works.
    redis.spawn();
    let mut room2 = Room::new().await;
    within(15, "a cross-node update to work again", async {
        loop {
            let (s, _) = api(
                &b,
                Method::POST,
                "/v1/dialin/pinlessCallUpdate",
                Some(body(y_id, &room2)),
            )
            .await;
            if s == 200 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    let invite = room2.next_invite().await;
    let _room_leg = room2.answer(invite).await;
    state_through(&b, y_id, "bridged").await;
    let (s, _) = api(
        &b,
        Method::GET,
        &format!("/v1/domain-dialin-config/{entry}"),
        None,
    )
    .await;
    assert_eq!(
        s, 200,
        "the provisioned entry survived Redis losing its data"
    );
    let (s, _) = api(
        &a,
        Method::GET,
        &format!("/v1/domain-dialin-config/{entry}"),
        None,
    )
    .await;
    assert_eq!(s, 200);
}

/// A node whose copy is empty seeds a new Redis first; a node that made an
/// entry through its API (under another Redis) then joins: its entry is
/// merged in and reaches the first node, instead of being wiped by the
/// empty set the first node wrote.
#[tokio::test]
async fn an_empty_redis_seeded_by_an_empty_node_wipes_no_entry() {
    let old = Redis::start();
    let hooks = WebhookReceiver::start(&[]).await;
    let mut a = node(&old, &hooks.url()).await;
    let mut entry_hooks = WebhookReceiver::start(&[]).await;
    let made = provision_open_entry(&a, "kept", &entry_hooks.url()).await;
    let entry = made["id"].as_str().unwrap().to_string();
    a.signal("TERM");
    a.exited(30).await;

    // A new Redis, seeded first by a node with no entries.
    let new = Redis::start();
    let c = node(&new, &hooks.url()).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let config = std::fs::read_to_string(&a.config).unwrap();
    std::fs::write(&a.config, config.replace(&old.url(), &new.url())).unwrap();
    a.start().await;

    entry_reaches(&c, &entry, "the node that seeded Redis").await;
    let (s, _) = api(
        &a,
        Method::GET,
        &format!("/v1/domain-dialin-config/{entry}"),
        None,
    )
    .await;
    assert_eq!(s, 200, "the joining node kept its entry");
    // And it takes calls on the node that seeded Redis empty.
    let phone = Phone::new().await;
    let (_leg, _) = phone.call(&uri(&c, "kept"), &[]).await;
    assert!(call_hook(&mut entry_hooks).await.json()["callId"].is_string());
}

/// The app may send its update through another node as soon as the
/// webhook arrives, before the owner's heartbeat has written the owner
/// key: the update's callDomain names the owner, and the update reaches it.
#[tokio::test]
async fn an_update_before_the_owner_key_is_written_reaches_the_node_it_names() {
    let redis = Redis::start();
    let mut hooks = WebhookReceiver::start(&[]).await;
    let a = node(&redis, &hooks.url()).await;
    let b = node(&redis, &hooks.url()).await;
    cluster_of(&[&a, &b]).await;
    let phone = Phone::new().await;
    let (_leg, media) = phone.call(&uri(&a, "support"), &[]).await;
    let hook = call_hook(&mut hooks).await.json();
    let id = hook["callId"].as_str().unwrap().to_string();
    let domain = hook["callDomain"].as_str().unwrap().to_string();
    // As if the webhook had just been posted: no owner key yet.
    let deleted = std::process::Command::new("redis-cli")
        .args(["-u", &redis.url(), "DEL", &format!("pinless:call:{id}")])
        .output()
        .expect("redis-cli is installed with redis-server");
    assert_eq!(String::from_utf8_lossy(&deleted.stdout).trim(), "1");
    let mut room = Room::new().await;
    let (s, answer) = api(
        &b,
        Method::POST,
        "/v1/dialin/pinlessCallUpdate",
        Some(json!({ "callId": id, "callDomain": domain, "sipUri": room.uri("room", false) })),
    )
    .await;
    assert_eq!(s, 200, "{answer}");
    let _bridged = bridges(&mut room, &phone, &media).await;
    // A callDomain that is no node of the cluster is still refused.
    let (s, _) = api(
        &b,
        Method::POST,
        "/v1/dialin/pinlessCallUpdate",
        Some(json!({ "callId": "no-such-call", "callDomain": "nowhere", "sipUri": room.uri("room", false) })),
    )
    .await;
    assert!(s == 404 || s == 400, "{s}");
}
