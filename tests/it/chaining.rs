//! Two pinless sites chained over SIP, on loopback: site A's app overflows
//! a caller to site B's static SIP URI adding `X-Lang`; B's webhook sees
//! it with the caller's own headers (as B's header policy allows); B's app
//! sends the caller to a room; audio flows caller → A → B → room and back.

use crate::support;

use serde_json::json;
use std::time::Duration;
use support::*;

#[tokio::test]
async fn overflow_from_site_a_to_site_b_keeps_headers_and_audio() {
    let site_a = held_call(
        "",
        &[
            ("X-Customer-Id", "42"),
            ("X-Internal", "site-a-only"),
            ("X-Lang", "en"),
        ],
    )
    .await;
    assert_eq!(
        site_a.hook.json()["sipHeaders"]["X-Internal"],
        "site-a-only"
    );

    let mut hooks_b = WebhookReceiver::start(&[]).await;
    let site_b = TestGateway::start(
        &hooks_b.url(),
        r#"header_policy = { allow = ["X-Lang", "X-Customer-*"] }"#,
    )
    .await;
    let (status, _) = site_a
        .update(json!({
            "sipUri": site_b.sip_uri("support", false),
            "headers": { "X-Lang": "de" },
        }))
        .await;
    assert_eq!(status, 200);

    let at_b = hooks_b.next().await.json();
    assert_eq!(at_b["From"], "+15557654321", "the original caller");
    let headers = at_b["sipHeaders"].as_object().unwrap();
    assert_eq!(headers["X-Lang"], "de", "A's app re-set it: one value");
    assert_eq!(headers["X-Customer-Id"], "42");
    assert!(
        !headers.contains_key("X-Internal"),
        "B's policy keeps it out: {headers:?}"
    );

    let mut room = Room::new().await;
    let b_call = at_b["callId"].as_str().unwrap();
    let (status, _) = site_b
        .update(site_b.update_body(b_call, json!({ "sipUri": room.uri("agent", false) })))
        .await;
    assert_eq!(status, 200);
    let invite = room.next_invite().await;
    let custom = &invite.info.custom_headers;
    assert!(
        custom.contains(&("X-Lang".into(), "de".into())),
        "{custom:?}"
    );
    assert!(custom.contains(&("X-Customer-Id".into(), "42".into())));
    let (_room_leg, offer) = room.answer(invite).await;

    // Room → B → A → caller.
    let _to_caller = room.rtp.send_pattern(offer.addr, 0, 0x5A, 200);
    site_a.phone.rtp.hears(0x5A).await;
    // Caller → A → B → room.
    let _to_room = site_a
        .phone
        .rtp
        .send_pattern(site_a.media.addr, 0, 0x3C, 200);
    room.rtp.hears(0x3C).await;
    site_a.wait(|c| c["state"] == "bridged").await;
    site_b
        .wait_call(b_call, Duration::from_secs(5), |c| c["state"] == "bridged")
        .await;
}
