//! The provisioning API and durable state, over real HTTP, SIP and a real
//! webhook receiver: CRUD with the signed verification request, an entry
//! taking a call the moment it exists, conflicts, secret rotation, and a
//! restart that keeps entries, secrets and call records.

use crate::support;

use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;
use support::*;

const CONFIG: &str = "/v1/domain-dialin-config";

/// Creates an entry; `open: true` is added unless the config restricts it.
async fn create(gw: &TestGateway, mut config: Value) -> (u16, Value) {
    let restricted = config.get("allowed_cidrs").is_some() || config.get("credentials").is_some();
    if !restricted && config.get("open").is_none() {
        config["open"] = true.into();
    }
    gw.api(
        Method::POST,
        CONFIG,
        Some(json!({ "type": "pinless_dialin", "config": config })),
    )
    .await
}

#[tokio::test]
async fn crud_with_the_signed_verification_request() {
    let hooks = WebhookReceiver::start(&[]).await;
    let gw = TestGateway::start(&hooks.url(), "").await;
    let mut verify_rx = WebhookReceiver::start(&[]).await;

    let (status, made) = create(
        &gw,
        json!({ "phone_number": "+15550009999", "room_creation_api": verify_rx.url() }),
    )
    .await;
    assert_eq!(status, 200, "{made}");
    let id = made["id"].as_str().unwrap().to_string();
    let secret = made["config"]["hmac"].as_str().unwrap().to_string();
    assert_ne!(secret, "********", "a generated secret is shown once");
    let sip_uri = made["config"]["sip_uri"].as_str().unwrap();
    assert!(sip_uri.starts_with("sip:dialin-"), "{sip_uri}");
    assert_eq!(made["verification"]["status"], 200);
    let test = verify_rx.next().await;
    assert_eq!(test.json(), json!({ "Test": "test" }));
    assert!(test.pinless_verifies("X-Pinless-Signature", &secret));
    assert!(test.standard_verifies(&secret));

    // Listed and read with the secret masked; the config file's entry too.
    let (_, list) = gw.api(Method::GET, CONFIG, None).await;
    let listed: Vec<&Value> = list["data"].as_array().unwrap().iter().collect();
    assert!(
        listed
            .iter()
            .any(|e| e["id"] == "config:support" && e["source"] == "config")
    );
    assert!(
        listed.iter().all(|e| e["config"]["hmac"] == "********"),
        "{list}"
    );
    let (status, read) = gw.api(Method::GET, &format!("{CONFIG}/{id}"), None).await;
    assert_eq!((status, &read["config"]["hmac"]), (200, &json!("********")));

    // Replace: the webhook moves, the secret stays, the URI stays.
    let mut moved_rx = WebhookReceiver::start(&[]).await;
    let (status, put) = gw
        .api(
            Method::PUT,
            &format!("{CONFIG}/{id}"),
            Some(json!({ "type": "pinless_dialin", "config": {
                "phone_number": "+15550009999", "room_creation_api": moved_rx.url(), "open": true } })),
        )
        .await;
    assert_eq!(status, 200, "{put}");
    assert_eq!(put["config"]["sip_uri"], sip_uri);
    assert!(
        moved_rx
            .next()
            .await
            .pinless_verifies("X-Pinless-Signature", &secret)
    );

    // A receiver that is down: reported, but the entry is saved.
    let (status, down) = create(
        &gw,
        json!({ "sip_uri": "sip:down@127.0.0.1", "room_creation_api": "http://127.0.0.1:9/x" }),
    )
    .await;
    assert_eq!(status, 200, "{down}");
    assert!(down["verification"]["status"].is_null());
    assert!(down["verification"]["error"].is_string());
    let down_id = down["id"].as_str().unwrap();
    assert_eq!(
        gw.api(Method::GET, &format!("{CONFIG}/{down_id}"), None)
            .await
            .0,
        200
    );

    // Delete: gone, and its number no longer answers.
    assert_eq!(
        gw.api(Method::DELETE, &format!("{CONFIG}/{id}"), None)
            .await
            .0,
        200
    );
    assert_eq!(
        gw.api(Method::GET, &format!("{CONFIG}/{id}"), None).await.0,
        404
    );
    let phone = Phone::new().await;
    let mut d = phone.dial(&gw.sip_uri("+15550009999", false), &[]);
    assert!(matches!(
        within(5, "404", d.outcome()).await,
        pinless::sip::DialOutcome::Rejected { code: 404, .. }
    ));
}

#[tokio::test]
async fn an_entry_made_by_the_api_takes_a_call_at_once() {
    let hooks = WebhookReceiver::start(&[]).await;
    let media = support::audio::temp_dir("provisioned-music");
    let quiet = media.join("quiet.wav");
    silent_wav(&quiet, 1.0);
    let media_dir = media.display().to_string();
    let env = [("PINLESS_API__MEDIA_DIR", media_dir.as_str())];
    let gw = TestGateway::start_with_env(&hooks.url(), "", &env).await;
    let mut sales_rx = WebhookReceiver::start(&[]).await;
    let (status, made) = create(
        &gw,
        json!({ "sip_uri": "sip:sales@127.0.0.1", "room_creation_api": sales_rx.url(),
                "header_policy": { "allow": ["X-Lang"] }, "hold_music": quiet }),
    )
    .await;
    assert_eq!(status, 200, "{made}");
    let secret = made["config"]["hmac"].as_str().unwrap().to_string();
    sales_rx.next().await; // the verification
    let phone = Phone::new().await;
    let (_caller, _) = phone
        .call(
            &gw.sip_uri("sales", false),
            &[("X-Lang", "fr"), ("X-Other", "no")],
        )
        .await;
    let hook = sales_rx.next().await;
    assert!(hook.pinless_verifies("X-Pinless-Signature", &secret));
    let body = hook.json();
    assert_eq!(
        body["sipHeaders"],
        json!({ "X-Lang": "fr" }),
        "the entry's policy applies"
    );
    let _ = std::fs::remove_dir_all(&media);
}

#[tokio::test]
async fn conflicts_and_bad_requests_are_refused() {
    let hooks = WebhookReceiver::start(&[]).await;
    let gw = TestGateway::start(&hooks.url(), "").await;
    let url = hooks.url();
    // The config file's entry holds +15551230000 and sip:support@….
    let (status, e) = create(
        &gw,
        json!({ "phone_number": "+15551230000", "room_creation_api": url }),
    )
    .await;
    assert_eq!(status, 409, "{e}");
    assert!(e["error"].as_str().unwrap().contains("config:support"));
    let (status, _) = create(
        &gw,
        json!({ "sip_uri": "sip:support@10.0.0.1", "room_creation_api": url }),
    )
    .await;
    assert_eq!(status, 409);
    let (status, first) = create(
        &gw,
        json!({ "phone_number": "+15550001234", "room_creation_api": url }),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = create(
        &gw,
        json!({ "phone_number": "+15550001234", "room_creation_api": url }),
    )
    .await;
    assert_eq!(status, 409, "two API entries with one number");
    // An entry may keep its own number on update.
    let id = first["id"].as_str().unwrap();
    let same = json!({ "type": "pinless_dialin", "config": { "phone_number": "+15550001234", "room_creation_api": url, "open": true } });
    assert_eq!(
        gw.api(Method::PUT, &format!("{CONFIG}/{id}"), Some(same.clone()))
            .await
            .0,
        200
    );
    assert_eq!(
        gw.api(
            Method::PUT,
            &format!("{CONFIG}/config:support"),
            Some(same.clone())
        )
        .await
        .0,
        409
    );
    assert_eq!(
        gw.api(Method::DELETE, &format!("{CONFIG}/config:support"), None)
            .await
            .0,
        409
    );
    assert_eq!(
        gw.api(Method::PUT, &format!("{CONFIG}/nope"), Some(same))
            .await
            .0,
        404
    );
    let (status, e) = create(
        &gw,
        json!({ "phone_number": "555", "room_creation_api": url }),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        e["error"]
            .as_str()
            .unwrap()
            .starts_with("config.phone_number"),
        "{e}"
    );
    let (status, e) = gw
        .api(Method::POST, CONFIG, Some(json!({ "config": {} })))
        .await;
    assert_eq!(status, 400);
    assert!(e["error"].as_str().unwrap().starts_with("type"), "{e}");
    // No token, no API.
    let r = gw.http.get(gw.url(CONFIG)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
}

#[tokio::test]
async fn rotation_keeps_the_old_secret_valid_for_the_grace_only() {
    let hooks = WebhookReceiver::start(&[]).await;
    let gw = TestGateway::start(&hooks.url(), "").await;
    let mut rx = WebhookReceiver::start(&[]).await;
    let (_, made) = create(
        &gw,
        json!({ "sip_uri": "sip:rot@127.0.0.1", "room_creation_api": rx.url() }),
    )
    .await;
    let old = made["config"]["hmac"].as_str().unwrap().to_string();
    rx.next().await;
    let id = made["id"].as_str().unwrap();
    let (status, rotated) = gw
        .api(
            Method::POST,
            &format!("{CONFIG}/{id}/rotate-hmac"),
            Some(json!({ "grace_secs": 2 })),
        )
        .await;
    assert_eq!(status, 200, "{rotated}");
    let new = rotated["config"]["hmac"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    let (_, read) = gw.api(Method::GET, &format!("{CONFIG}/{id}"), None).await;
    assert_eq!(read["config"]["hmac"], "********", "shown once only");

    let phone = Phone::new().await;
    let (_a, _) = phone.call(&gw.sip_uri("rot", false), &[]).await;
    let during = rx.next().await;
    assert!(during.pinless_verifies("X-Pinless-Signature", &new));
    assert!(during.pinless_verifies("X-Pinless-Signature-Previous", &old));
    assert!(during.standard_verifies(&new));
    assert!(
        during.standard_verifies(&old),
        "an app still on the old secret verifies"
    );

    tokio::time::sleep(Duration::from_millis(2100)).await;
    let phone = Phone::new().await;
    let (_b, _) = phone.call(&gw.sip_uri("rot", false), &[]).await;
    let after = rx.next().await;
    assert!(after.standard_verifies(&new));
    assert!(
        !after.standard_verifies(&old),
        "the old secret is dropped after the grace"
    );
    assert!(after.header("X-Pinless-Signature-Previous").is_none());
}

#[tokio::test]
async fn a_restart_keeps_entries_secrets_call_domain_and_records() {
    let state = std::env::temp_dir().join(format!("pinless-restart-{}", uuid::Uuid::new_v4()));
    let mut rx = WebhookReceiver::start(&[]).await;
    let (id, secret, domain, first_call) = {
        let gw = TestGateway::start_in(&state, &rx.url(), "").await;
        let (_, made) = create(
            &gw,
            json!({ "phone_number": "+15550007777", "room_creation_api": rx.url() }),
        )
        .await;
        rx.next().await;
        let phone = Phone::new().await;
        let (caller, _) = phone.call(&gw.sip_uri("+15550007777", false), &[]).await;
        let call_id = rx.next().await.json()["callId"]
            .as_str()
            .unwrap()
            .to_string();
        tokio::time::sleep(Duration::from_millis(300)).await;
        caller.hangup();
        gw.wait_call(&call_id, Duration::from_secs(5), |c| c["state"] == "ended")
            .await;
        tokio::time::sleep(Duration::from_millis(200)).await; // the record is written after
        (
            made["id"].as_str().unwrap().to_string(),
            made["config"]["hmac"].as_str().unwrap().to_string(),
            gw.gw.call_domain.clone(),
            call_id,
        )
    };
    let gw = TestGateway::start_in(&state, &rx.url(), "").await;
    assert_eq!(gw.gw.call_domain, domain, "the node keeps its id");
    assert_eq!(
        gw.api(Method::GET, &format!("{CONFIG}/{id}"), None).await.0,
        200
    );
    let phone = Phone::new().await;
    let (_caller, _) = phone.call(&gw.sip_uri("+15550007777", false), &[]).await;
    let hook = rx.next().await;
    assert!(
        hook.pinless_verifies("X-Pinless-Signature", &secret),
        "same secret after restart"
    );

    let (status, records) = gw.api(Method::GET, "/v1/call-records?since=0", None).await;
    assert_eq!(status, 200);
    let record = records["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["callId"] == first_call.as_str())
        .cloned()
        .unwrap_or_else(|| panic!("record of the first call: {records}"));
    assert_eq!(record["endReason"], "caller_hangup");
    assert_eq!(record["to"], "+15550007777");
    assert!(record["holdMs"].as_u64().unwrap() >= 250, "{record}");
    assert!(!event_names(&record).is_empty());
    let _ = std::fs::remove_dir_all(state);
}

#[tokio::test]
async fn a_change_applies_to_the_next_call_and_not_to_calls_already_held() {
    let hooks = WebhookReceiver::start(&[]).await;
    let gw = TestGateway::start(&hooks.url(), "").await;
    let mut rx = WebhookReceiver::start(&[]).await;
    let (_, made) = create(
        &gw,
        json!({ "sip_uri": "sip:desk@127.0.0.1", "room_creation_api": rx.url() }),
    )
    .await;
    rx.next().await;
    let id = made["id"].as_str().unwrap();
    let phone = Phone::new().await;
    let (mut held, _) = phone.call(&gw.sip_uri("desk", false), &[]).await;
    rx.next().await;

    // Now every new call to this entry is hung up after one second.
    let shorter = json!({ "type": "pinless_dialin", "config": {
        "sip_uri": "sip:desk@127.0.0.1", "room_creation_api": rx.url(), "max_hold_secs": 1, "open": true } });
    assert_eq!(
        gw.api(Method::PUT, &format!("{CONFIG}/{id}"), Some(shorter))
            .await
            .0,
        200
    );
    rx.next().await;
    let phone2 = Phone::new().await;
    let (mut next, _) = phone2.call(&gw.sip_uri("desk", false), &[]).await;
    assert_eq!(
        within(4, "the new call's hold timeout", next.next_event()).await,
        pinless::sip::LegEvent::Bye
    );
    let still = tokio::time::timeout(Duration::from_millis(300), held.next_event()).await;
    assert!(
        still.is_err(),
        "the call held before the change kept its settings"
    );
}
