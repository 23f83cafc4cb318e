//! Behind 1:1 NAT (issue 11): SIP bound to one address (a private one, or
//! 0.0.0.0) while everything we advertise names `sip.public_host`. Here
//! the bound address is 127.0.0.1 (or 0.0.0.0) and the public one
//! 127.0.0.2, for SIP (`sip.public_host`) and media (`media.public_ip`
//! with `media.bind_ip`): SDP names the public address while RTP still
//! flows between the bound sockets and where the peers really send from.

use crate::support;

use pinless::sip::{Stack, StackConfig, sdp};
use serde_json::json;
use std::time::Duration;
use support::raw::RawSip;
use support::{Phone, Room, TestGateway, WebhookReceiver, within};

const PUBLIC: &str = "127.0.0.2";

/// The values of header `name` (case-insensitive) in `headers`.
fn values<'a>(headers: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect()
}

#[tokio::test]
async fn contact_and_via_name_the_public_host_and_the_call_works() {
    let mut hooks = WebhookReceiver::start(&[]).await;
    let gw = TestGateway::start_with_env(
        &hooks.url(),
        "",
        &[
            ("PINLESS_SIP__PUBLIC_HOST", PUBLIC),
            ("PINLESS_MEDIA__PUBLIC_IP", PUBLIC),
            ("PINLESS_MEDIA__BIND_IP", "127.0.0.1"),
        ],
    )
    .await;
    assert_eq!(gw.gw.sip_udp.unwrap().ip().to_string(), "127.0.0.1");

    // The 200 OK's Contact (the caller's remote target) is public.
    let phone = Phone::new().await;
    let (caller, media) = phone.call(&gw.sip_uri("support", false), &[]).await;
    let contact = caller.state().remote_target;
    assert!(contact.contains(PUBLIC), "200 OK Contact: {contact}");
    // The answer's SDP names the public address; the music comes from the
    // bound socket (the same port) to where the phone is.
    assert_eq!(media.addr.ip().to_string(), PUBLIC, "answer SDP c=");
    let music = phone.rtp.collect(Duration::from_millis(300)).await;
    assert!(music.len() >= 8, "the caller hears music: {}", music.len());
    assert_eq!(music[0].from, ([127, 0, 0, 1], media.addr.port()).into());
    let call_id = hooks.next().await.json()["callId"]
        .as_str()
        .unwrap()
        .to_string();

    // The room INVITE's Via and Contact are public too.
    let mut room = Room::new().await;
    let update = gw.update_body(&call_id, json!({ "sipUri": room.uri("room", false) }));
    assert_eq!(gw.update(update).await.0, 200);
    let invite = room.next_invite().await;
    let headers = &invite.info.all_headers;
    let via = values(headers, "Via");
    assert_eq!(via.len(), 1, "{headers:?}");
    let sent_by = via[0].split_whitespace().nth(1).unwrap_or("");
    let port = gw.gw.sip_udp.unwrap().port();
    assert!(
        sent_by.starts_with(&format!("{PUBLIC}:{port};")),
        "INVITE Via: {}",
        via[0]
    );
    let contact = values(headers, "Contact");
    assert!(
        contact.len() == 1 && contact[0].contains(&format!("{PUBLIC}:{port}")),
        "INVITE Contact: {contact:?}"
    );
    let offer = sdp::parse(&invite.info.sdp).unwrap();
    assert_eq!(offer.addr.ip().to_string(), PUBLIC, "room INVITE SDP c=");

    // And the call bridges.
    let (room_leg, _offer) = room.answer(invite).await;
    gw.wait_call(&call_id, Duration::from_secs(5), |c| {
        c["state"] == "bridged"
    })
    .await;
    caller.hangup();
    drop(room_leg);
}

/// A stack on 0.0.0.0 answers a raw INVITE and hangs up: the 200's
/// Contact and the BYE's Via name the public host, never 0.0.0.0.
#[tokio::test]
async fn a_stack_on_all_addresses_advertises_the_public_host() {
    let (stack, mut invites) = Stack::start(StackConfig {
        udp: Some("0.0.0.0:0".parse().unwrap()),
        tcp: None,
        tls: None,
        tls_connector: None,
        public_host: PUBLIC.into(),
        invite_queue: 4,
    })
    .await
    .unwrap();
    let port = stack.udp_addr().unwrap().port();
    let raw = RawSip::new(([127, 0, 0, 1], port).into()).await;
    raw.send(&raw.invite("support", "nat-any", 1, "")).await;
    let invite = within(5, "the INVITE", invites.recv()).await.unwrap();
    let offer = sdp::parse(&invite.info.sdp).unwrap();
    let answer = sdp::answer("127.0.0.1".parse().unwrap(), 40000, offer.choose());
    let leg = invite.accept(&stack, answer).await.unwrap();
    let ok = raw.response(Duration::from_secs(5), true).await.unwrap();
    assert_eq!(ok.code(), 200);
    let contact = ok.header("Contact").unwrap();
    assert!(contact.contains(&format!("{PUBLIC}:{port}")), "{contact}");

    leg.hangup();
    let bye = within(5, "our BYE", async {
        let mut buf = vec![0u8; 65_536];
        loop {
            let (n, _) = raw.socket.recv_from(&mut buf).await.unwrap();
            let text = String::from_utf8_lossy(&buf[..n]).to_string();
            if text.starts_with("BYE ") {
                return text;
            }
        }
    })
    .await;
    let via = bye
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("via:"))
        .unwrap();
    assert!(via.contains(&format!("{PUBLIC}:{port}")), "{via}");
    assert!(!bye.contains("0.0.0.0"), "{bye}");
}
