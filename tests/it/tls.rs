//! SIP over TLS on loopback: a caller reaches pinless over TLS, and pinless
//! reaches a room over TLS (`;transport=tls`), trusting the room's
//! certificate through `sip.tls_ca`; audio flows across the bridge.

use crate::support;

use serde_json::json;
use std::time::Duration;
use support::peers::TestCert;
use support::*;

#[tokio::test]
async fn calls_in_and_room_legs_out_over_tls() {
    let cert = TestCert::new();
    let (c, k) = (cert.cert.to_str().unwrap(), cert.key.to_str().unwrap());
    let mut hooks = WebhookReceiver::start(&[]).await;
    let gw = TestGateway::start_with_env(
        &hooks.url(),
        "",
        &[
            ("PINLESS_SIP__TLS", "127.0.0.1:0"),
            ("PINLESS_SIP__TLS_CERT", c),
            ("PINLESS_SIP__TLS_KEY", k),
            ("PINLESS_SIP__TLS_CA", c),
        ],
    )
    .await;
    let tls = gw.gw.sip_tls.expect("a TLS listener");
    let phone = Phone::with(Some(&cert)).await;
    let (_leg, media) = phone
        .call(
            &format!("sip:support@{tls};transport=tls"),
            &[("X-Lang", "de")],
        )
        .await;
    let hook = hooks.next().await.json();
    assert_eq!(hook["sipHeaders"]["X-Lang"], "de");
    let call_id = hook["callId"].as_str().unwrap();

    let mut room = Room::with(Some(&cert)).await;
    let room_tls = room.stack.tls_addr().unwrap();
    let target = format!("sip:agent@{room_tls};transport=tls");
    let (status, _) = gw
        .update(gw.update_body(call_id, json!({ "sipUri": target })))
        .await;
    assert_eq!(status, 200);
    let invite = room.next_invite().await;
    assert_eq!(invite.info.transport, "tls", "the room leg is TLS");
    assert!(
        invite
            .info
            .custom_headers
            .contains(&("X-Lang".into(), "de".into()))
    );
    let (_room_leg, offer) = room.answer(invite).await;
    let _send = room.rtp.send_pattern(offer.addr, 0, 0x5B, 200);
    phone.rtp.hears(0x5B).await;
    let _ = media;
    gw.wait_call(call_id, Duration::from_secs(5), |c| c["state"] == "bridged")
        .await;
}

#[tokio::test]
async fn a_bad_certificate_stops_the_start_naming_the_key() {
    let dir = std::env::temp_dir().join(format!("pinless-badcert-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let bogus = dir.join("cert.pem");
    std::fs::write(&bogus, "not a certificate").unwrap();
    let toml = format!(
        "[node]\nstate_dir = \"{}\"\n[sip]\nudp = \"127.0.0.1:0\"\ntcp = \"127.0.0.1:0\"\n\
         tls = \"127.0.0.1:0\"\ntls_cert = \"{b}\"\ntls_key = \"{b}\"\n[api]\nlisten = \"127.0.0.1:0\"\n\
         [hold]\nmusic = \"{}\"\n",
        dir.join("state").display(),
        concat!(env!("CARGO_MANIFEST_DIR"), "/assets/hold.flac"),
        b = bogus.display()
    );
    let config = pinless::Config::from_toml_with_env(&toml, std::iter::empty(), false).unwrap();
    let err = pinless::Gateway::start(config)
        .await
        .err()
        .expect("refused");
    let text = err.to_string();
    assert!(
        text.contains("sip.tls_cert") && text.contains("cert.pem"),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(dir);
}
