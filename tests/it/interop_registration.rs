//! Registration to a real registrar: Kamailio (`config/kamailio/
//! registrar.cfg`, digest auth, usrloc in memory) on 127.0.0.2, pinless
//! registering to it, sipp calling the AOR through it. The registrar
//! has an address of its own so that an INVITE from anywhere else
//! (127.0.0.1 here) is a stranger's.

use crate::support;

use pinless::config::ShutdownMode;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::Duration;
use support::binary::{free_tcp_port, held_port};
use support::netns::Netns;
use support::raw::RawSip;
use support::registrar::{Also, Registrar};
use support::sipp::{finished, sipp_calls_to};
use support::*;

const PASSWORD: &str = "s3cret";
/// The address of record: no entry has this number, so calls to it take
/// the registration's entry.
const AOR_USER: &str = "+15557770000";

/// A registrar on 127.0.0.2, on a port free on loopback.
async fn registrar(min_expires: u32) -> Registrar {
    let sip: SocketAddr = format!("127.0.0.2:{}", free_udp_port()).parse().unwrap();
    Registrar::start_on(sip, PASSWORD, min_expires).await
}

/// The `[[registration]]` table, appended after the test entry.
fn registration(r: &Registrar, password: &str) -> String {
    format!(
        "\n[[registration]]\nname = \"provider\"\nregistrar = \"sip:{sip}\"\n\
         aor = \"sip:{AOR_USER}@pinless.test\"\npassword = \"{password}\"\nentry = \"support\"\n",
        sip = r.sip
    )
}

async fn metrics(gw: &TestGateway) -> String {
    let page = reqwest::get(gw.url("/metrics")).await.expect("metrics");
    page.text().await.unwrap_or_default()
}

async fn registrations(gw: &TestGateway) -> Value {
    let (status, body) = gw
        .api(reqwest::Method::GET, "/v1/registrations", None)
        .await;
    assert_eq!(status, 200, "{body}");
    body["registrations"][0].clone()
}

/// Polls `GET /v1/registrations` until the binding is in `state`.
async fn until_state(gw: &TestGateway, state: &str, r: &Registrar) -> Value {
    let what = format!("the registration to be {state}");
    let wait = async {
        loop {
            let view = registrations(gw).await;
            if view["state"] == state {
                return view;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    match tokio::time::timeout(Duration::from_secs(10), wait).await {
        Ok(v) => v,
        Err(_) => panic!(
            "timed out waiting for {what}: {}\n{}",
            registrations(gw).await,
            r.log()
        ),
    }
}

/// A sipp caller (tests/sipp/caller.xml: six seconds, then BYE) to the
/// AOR through the registrar.
fn call_through(r: &Registrar) -> std::process::Child {
    sipp_calls_to(&r.sip.to_string(), AOR_USER, "caller.xml", 1, &[])
}

#[tokio::test]
async fn pinless_registers_takes_calls_to_the_aor_refuses_strangers_and_unregisters_on_a_drain() {
    let r = registrar(60).await;
    let mut hooks = WebhookReceiver::start(&[]).await;
    let gw = TestGateway::start(&hooks.url(), &registration(&r, PASSWORD)).await;
    let view = until_state(&gw, "registered", &r).await;
    let udp = gw.gw.sip_udp.unwrap();
    assert_eq!(
        view["contact"],
        format!("sip:pl-provider@127.0.0.1:{}", udp.port())
    );
    assert_eq!(view["lastCode"], 200);
    let expires = view["expiresInSecs"].as_u64().unwrap();
    assert!((590..=600).contains(&expires), "{view}");
    let metrics = metrics(&gw).await;
    assert!(
        metrics.contains("pinless_registration_up{name=\"provider\"} 1"),
        "{metrics}"
    );

    // A caller dials the AOR at the registrar, which finds our contact.
    let caller = call_through(&r);
    let hook = within(
        10,
        "the webhook of the call through the registrar",
        hooks.next(),
    )
    .await;
    let body = hook.json();
    assert_eq!(body["To"], AOR_USER);
    assert_eq!(body["registration"], "provider");
    let call_id = body["callId"].as_str().unwrap().to_string();
    let (_, call) = gw.get_call(&call_id).await;
    assert_eq!(
        (&call["entry"], &call["registration"]),
        (&json!("support"), &json!("provider"))
    );
    // Transferred as any call.
    let mut room = Room::new().await;
    let (status, answer) = gw
        .update(gw.update_body(&call_id, json!({ "sipUri": room.uri("agent", false) })))
        .await;
    assert_eq!(status, 200, "{answer}");
    let invite = within(10, "the room's INVITE", room.next_invite()).await;
    let (_room_leg, _) = room.answer(invite).await;
    gw.wait_call(&call_id, Duration::from_secs(5), |c| {
        c["state"] == "bridged"
    })
    .await;
    assert!(finished(caller, "sipp caller through the registrar", 30).await);

    // Someone who found the contact and calls it directly: 403.
    let stranger = RawSip::new(udp).await;
    stranger
        .send(&stranger.invite("pl-provider", "stranger-1", 1, ""))
        .await;
    let refused = stranger
        .response(Duration::from_secs(3), true)
        .await
        .expect("an answer to the stranger");
    assert_eq!(refused.code(), 403);

    // A drain takes the binding off the registrar: the AOR is unknown.
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tx.send("SIGTERM").await.unwrap();
    pinless::lifecycle::run_until_stopped(&gw.gw, ShutdownMode::Drain, Duration::from_secs(1), rx)
        .await;
    let probe = RawSip::new(r.sip).await;
    probe
        .send(&probe.invite(AOR_USER, "after-drain", 1, ""))
        .await;
    let after = probe
        .response(Duration::from_secs(3), true)
        .await
        .expect("the registrar's answer");
    assert_eq!(after.code(), 404, "{}", r.log());
}

#[tokio::test]
async fn a_wrong_password_fails_with_the_code_and_does_not_retry_in_a_loop() {
    let r = Registrar::start(PASSWORD, 60).await;
    let hooks = WebhookReceiver::start(&[]).await;
    let gw = TestGateway::start(&hooks.url(), &registration(&r, "wrong")).await;
    let view = until_state(&gw, "failing", &r).await;
    assert_eq!(view["lastCode"], 403, "{view}");
    assert!(
        view["lastError"].as_str().unwrap().starts_with("403"),
        "{view}"
    );
    // Three seconds later: still that one failure (the next try is 30 s
    // away at the earliest).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let metrics = metrics(&gw).await;
    assert!(
        metrics.contains("pinless_registration_failures_total{name=\"provider\",code=\"403\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("pinless_registration_up{name=\"provider\"} 0"));
    let registers = r.log().matches("REGISTER").count();
    assert!(registers <= 4, "REGISTERs logged: {registers}\n{}", r.log());
}

#[tokio::test]
async fn through_an_outbound_proxy_the_registrar_name_need_not_resolve() {
    // The registrar's name does not resolve (.invalid never does): the
    // binding is made only if REGISTERs go to the outbound proxy, here
    // the Kamailio on 127.0.0.2, and calls come in from it.
    let r = registrar(60).await;
    let mut hooks = WebhookReceiver::start(&[]).await;
    let table = registration(&r, PASSWORD).replace(
        &format!("registrar = \"sip:{}\"", r.sip),
        &format!(
            "registrar = \"sip:registrar.invalid\"\noutbound_proxy = \"sip:{}\"",
            r.sip
        ),
    );
    let gw = TestGateway::start(&hooks.url(), &table).await;
    let view = until_state(&gw, "registered", &r).await;
    assert_eq!(view["lastCode"], 200, "{view}");
    let caller = RawSip::new(r.sip).await;
    caller
        .send(&caller.invite(AOR_USER, "via-proxy", 1, ""))
        .await;
    let hook = within(10, "the webhook of the call via the proxy", hooks.next()).await;
    assert_eq!(hook.json()["registration"], "provider");
}

#[tokio::test]
async fn a_min_expires_above_the_asked_lifetime_is_honoured() {
    let r = Registrar::start(PASSWORD, 900).await;
    let hooks = WebhookReceiver::start(&[]).await;
    let gw = TestGateway::start(&hooks.url(), &registration(&r, PASSWORD)).await;
    let view = until_state(&gw, "registered", &r).await;
    let expires = view["expiresInSecs"].as_u64().unwrap();
    assert!((890..=900).contains(&expires), "{view}");
}

#[tokio::test]
async fn over_tcp_a_registrar_that_restarts_is_registered_again_within_the_backoff() {
    let sip: SocketAddr = format!("127.0.0.2:{}", held_port()).parse().unwrap();
    let mut r = Registrar::start_in(None, sip, PASSWORD, 60, Also::Tcp).await;
    let hooks = WebhookReceiver::start(&[]).await;
    let table = registration(&r, PASSWORD).replace(
        &format!("registrar = \"sip:{sip}\""),
        &format!("registrar = \"sip:{sip};transport=tcp\""),
    );
    let gw = TestGateway::start(&hooks.url(), &table).await;
    let view = until_state(&gw, "registered", &r).await;
    let tcp_port = gw.gw.sip_tcp.unwrap().port();
    assert_eq!(
        view["contact"],
        format!("sip:pl-provider@127.0.0.1:{tcp_port};transport=tcp"),
        "our listener, not the connection's own port: {view}"
    );
    // The registrar goes away (and forgets every binding): the closed
    // connection is noticed at once; it is back a moment later.
    r.stop();
    let fresh = tokio::time::Instant::now();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let r = Registrar::start_in(None, sip, PASSWORD, 60, Also::Tcp).await;
    // Seen to notice (no longer registered), then registered again.
    let mut noticed = false;
    let wait = async {
        loop {
            let view = registrations(&gw).await;
            if view["state"] != "registered" {
                noticed = true;
            } else if noticed {
                return view;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let view = match tokio::time::timeout(Duration::from_secs(45), wait).await {
        Ok(v) => v,
        Err(_) => panic!(
            "not registered again: {}\n{}",
            registrations(&gw).await,
            r.log()
        ),
    };
    // Within the first backoff (30 s at most, plus the exchange), not at
    // the refresh (51 s).
    assert!(
        fresh.elapsed() < Duration::from_secs(38),
        "{:?} {view}",
        fresh.elapsed()
    );
    // The new registrar knows us: a call to the AOR reaches pinless.
    let caller = RawSip::new(r.sip).await;
    caller
        .send(&caller.invite(AOR_USER, "after-restart", 1, ""))
        .await;
    let answer = caller
        .response(Duration::from_secs(5), true)
        .await
        .expect("an answer through the new registrar");
    assert_eq!(answer.code(), 200, "{}", r.log());
}

#[tokio::test]
async fn over_tls_a_sips_registrar_is_registered_and_sends_calls_over_tls() {
    let cert = support::peers::TestCert::new();
    let sip: SocketAddr = format!("127.0.0.1:{}", free_udp_port()).parse().unwrap();
    let at: SocketAddr = format!("127.0.0.1:{}", free_tcp_port()).parse().unwrap();
    let tls = Also::Tls {
        at,
        cert: &cert.cert,
        key: &cert.key,
    };
    let r = Registrar::start_in(None, sip, PASSWORD, 60, tls).await;
    let mut hooks = WebhookReceiver::start(&[]).await;
    let table = registration(&r, PASSWORD).replace(
        &format!("registrar = \"sip:{sip}\""),
        &format!("registrar = \"sips:{at}\""),
    );
    let (c, k) = (
        cert.cert.display().to_string(),
        cert.key.display().to_string(),
    );
    let listener = [
        ("PINLESS_SIP__TLS", "127.0.0.1:0"),
        ("PINLESS_SIP__TLS_CERT", c.as_str()),
        ("PINLESS_SIP__TLS_KEY", k.as_str()),
        ("PINLESS_SIP__TLS_CA", c.as_str()),
    ];
    let gw = TestGateway::start_with_env(&hooks.url(), &table, &listener).await;
    let view = until_state(&gw, "registered", &r).await;
    let tls_port = gw.gw.sip_tls.unwrap().port();
    assert_eq!(
        view["contact"],
        format!("sip:pl-provider@127.0.0.1:{tls_port};transport=tls"),
        "{view}"
    );
    // A call to the AOR (over UDP to the registrar) reaches us over TLS.
    let caller = RawSip::new(r.sip).await;
    caller
        .send(&caller.invite(AOR_USER, "over-tls", 1, ""))
        .await;
    let hook = within(10, "the webhook of the call over TLS", hooks.next()).await;
    assert_eq!(hook.json()["registration"], "provider");
    let id = hook.json()["callId"].as_str().unwrap().to_string();
    let (_, ladder) = gw
        .api(reqwest::Method::GET, &format!("/v1/calls/{id}/sip"), None)
        .await;
    assert!(ladder.to_string().contains("\"tls\""), "{ladder}");
}

/// pinless's side of the NAT: its SIP on a private address, masqueraded
/// (to ports 40000–40099) on the way to the registrar's network.
const NAT: &str = "table ip nat {
  chain post {
    type nat hook postrouting priority 100; policy accept;
    ip saddr 192.168.77.2 meta l4proto udp masquerade to :40000-40099
  }
}
";

/// Runs the next test in a namespace of its own behind an nftables
/// masquerade, with the registrar in a second namespace beyond it (the
/// two linked to each other only).
#[test]
fn behind_a_nat_the_registrar_reaches_pinless_through_the_mapping_its_register_opened() {
    let inside = Netns::new("natin", &["192.168.77.2/32"]);
    let outside = Netns::new("natout", &[]);
    inside.link(&outside, "10.99.0.2/24", "10.99.0.1/24");
    inside.nft(NAT);
    inside.pass_test(
        "interop_registration::inside_the_nat_a_call_to_the_aor_comes_through_the_learned_contact",
        &[("PINLESS_TEST_NAT_OUTSIDE", outside.name.as_str())],
    );
}

#[tokio::test]
#[ignore = "run behind a NAT of its own by the test above"]
async fn inside_the_nat_a_call_to_the_aor_comes_through_the_learned_contact() {
    let outside = std::env::var("PINLESS_TEST_NAT_OUTSIDE").expect(
        "run by behind_a_nat_the_registrar_reaches_pinless_through_the_mapping_its_register_opened",
    );
    let sip: SocketAddr = "10.99.0.1:5080".parse().unwrap();
    let r = Registrar::start_in(Some(&outside), sip, PASSWORD, 60, Also::Nothing).await;
    let mut hooks = WebhookReceiver::start(&[]).await;
    let private = [
        ("PINLESS_SIP__UDP", "192.168.77.2:5060"),
        ("PINLESS_SIP__TCP", "\"\""),
        ("PINLESS_SIP__PUBLIC_HOST", "192.168.77.2"),
        ("PINLESS_MEDIA__PUBLIC_IP", "192.168.77.2"),
    ];
    let gw = TestGateway::start_with_env(&hooks.url(), &registration(&r, PASSWORD), &private).await;
    // Registered with the address the registrar saw, not the private one.
    let view = until_state(&gw, "registered", &r).await;
    let contact = view["contact"].as_str().unwrap_or_default();
    let port: u16 = contact
        .strip_prefix("sip:pl-provider@10.99.0.2:")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("a Contact at the NAT's address: {view}"));
    assert!((40000..40100).contains(&port), "{view}");
    // A caller beyond the NAT dials the AOR; the registrar sends the
    // INVITE to the learned contact, and the NAT lets it in.
    let scenario = support::sipp::scenario("caller.xml");
    let mut caller = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            &outside,
            "sipp",
            "10.99.0.1:5080",
            "-sf",
            &scenario,
            "-s",
            AOR_USER,
        ])
        .args([
            "-i",
            "10.99.0.1",
            "-p",
            "5090",
            "-mp",
            "6200",
            "-m",
            "1",
            "-timeout",
            "20",
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("sipp is installed (apt-get install sip-tester)");
    let hook = within(10, "the webhook of the call through the NAT", hooks.next()).await;
    let body = hook.json();
    assert_eq!(
        (&body["To"], &body["registration"]),
        (&json!(AOR_USER), &json!("provider"))
    );
    let id = body["callId"].as_str().unwrap().to_string();
    gw.wait_call(&id, Duration::from_secs(5), |c| c["state"] == "held")
        .await;
    let _ = caller.kill();
    let _ = caller.wait();
}

#[tokio::test]
async fn several_registrations_at_one_and_two_registrars_each_take_their_own_calls() {
    let (one, two) = (registrar(60).await, registrar(60).await);
    let table = |name: &str, r: &Registrar, user: &str| {
        format!(
            "\n[[registration]]\nname = \"{name}\"\nregistrar = \"sip:{sip}\"\n\
             aor = \"sip:{user}@pinless.test\"\npassword = \"{PASSWORD}\"\nentry = \"support\"\n",
            sip = r.sip
        )
    };
    let tables = [
        table("first", &one, "+15557770001"),
        table("second", &one, "+15557770002"),
        table("other", &two, "+15557770003"),
    ]
    .concat();
    let mut hooks = WebhookReceiver::start(&[]).await;
    let gw = TestGateway::start(&hooks.url(), &tables).await;
    // All three bound, each with a contact of its own.
    let all = within(10, "three registrations registered", async {
        loop {
            let (_, body) = gw
                .api(reqwest::Method::GET, "/v1/registrations", None)
                .await;
            let list = body["registrations"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if list.len() == 3 && list.iter().all(|r| r["state"] == "registered") {
                return list;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    let mut contacts: Vec<String> = all
        .iter()
        .map(|r| r["contact"].as_str().unwrap_or_default().to_string())
        .collect();
    contacts.sort();
    contacts.dedup();
    assert_eq!(contacts.len(), 3, "{all:?}");
    // A call to each AOR, through its own registrar, comes in as that
    // registration's.
    for (r, user, name) in [
        (&one, "+15557770002", "second"),
        (&two, "+15557770003", "other"),
    ] {
        let caller = sipp_calls_to(&r.sip.to_string(), user, "caller.xml", 1, &[]);
        let hook = within(
            10,
            "the webhook of a call through a registrar",
            hooks.next(),
        )
        .await;
        let body = hook.json();
        assert_eq!(
            (&body["To"], &body["registration"]),
            (&json!(user), &json!(name))
        );
        assert!(finished(caller, "sipp caller through the registrar", 30).await);
    }
}
