//! Security against a real SIP peer written by others (sipp): digest
//! authentication with sipp's own digest client, and an INVITE flood far
//! above the per-source limit while a held call's audio is measured.
//! Run with `cargo test --features interop`; fails, never skips, without sipp.

use crate::support;

use std::time::{Duration, Instant};
use support::sipp::*;
use support::*;

const CREDENTIALS: &str = r#"credentials = [{ username = "joe", password = "s3cret" }]"#;

#[tokio::test]
async fn sipp_authenticates_with_digest_and_a_wrong_password_gets_403() {
    let mut hooks = WebhookReceiver::start(&[]).await;
    let gw = TestGateway::start(&hooks.url(), CREDENTIALS).await;
    let addr = gw.gw.sip_udp.unwrap().to_string();
    let good = sipp_call(&addr, "caller_auth.xml", &["-au", "joe", "-ap", "s3cret"]);
    hooks.next().await;
    assert!(
        finished(good, "sipp with the right password", 30).await,
        "407, then 200 with sipp's credentials"
    );
    let bad = sipp_call(
        &addr,
        "caller_auth_refused.xml",
        &["-au", "joe", "-ap", "guess"],
    );
    assert!(
        finished(bad, "sipp with a wrong password", 30).await,
        "407, then 403"
    );
    assert_eq!(
        gw.metric("pinless_invites_forbidden_credentials_total")
            .await,
        1.0
    );
}

#[tokio::test]
async fn an_invite_flood_is_refused_while_held_calls_keep_clean_audio() {
    let limit = 20;
    let mut hooks = WebhookReceiver::start(&[]).await;
    let extra = format!("\n[limits]\ninvites_per_sec_per_ip = {limit}");
    let gw = TestGateway::start(&hooks.url(), &extra).await;
    let phone = Phone::new().await;
    let (_held, _) = phone.call(&gw.sip_uri("support", false), &[]).await;
    hooks.next().await;
    phone.rtp.drain();

    // 200 INVITEs a second for three seconds, ten times the limit.
    let (rate, total) = (200, 600);
    let addr = gw.gw.sip_udp.unwrap().to_string();
    let port = free_udp_port().to_string();
    let media = free_udp_port().to_string();
    let flood = sipp(&[
        &addr,
        "-sn",
        "uac",
        "-s",
        "support",
        "-i",
        "127.0.0.1",
        "-p",
        &port,
        "-mp",
        &media,
        "-r",
        &rate.to_string(),
        "-m",
        &total.to_string(),
        "-d",
        "500",
        "-timeout",
        "20",
    ]);
    let started = Instant::now();
    let audio = phone.rtp.collect_apart(Duration::from_secs(3)).await;
    let _ = finished(flood, "sipp flood", 20).await; // refused calls fail in sipp's eyes
    let flood_secs = started.elapsed().as_secs_f64();

    let refused = gw.metric("pinless_invites_rate_limited_total").await;
    let mut admitted = 0;
    while tokio::time::timeout(Duration::from_millis(200), hooks.rx.recv())
        .await
        .is_ok_and(|h| h.is_some())
    {
        admitted += 1;
    }
    let mut lost = 0u32;
    let mut max_gap = Duration::ZERO;
    for w in audio.windows(2) {
        lost += u32::from(w[1].header.sequence.wrapping_sub(w[0].header.sequence)) - 1;
        max_gap = max_gap.max(w[1].at.duration_since(w[0].at));
    }
    println!(
        "flood: {total} INVITEs at {rate}/s for {flood_secs:.1} s, limit {limit}/s: \
         refused 503 {refused}, admitted {admitted}; held call: {} packets in 3 s, lost {lost}, \
         max gap {:.1} ms",
        audio.len(),
        max_gap.as_secs_f64() * 1000.0
    );
    assert!(
        refused >= (total / 2) as f64,
        "most of the flood was refused"
    );
    assert!(
        admitted as f64 <= limit as f64 * (flood_secs + 1.0) + 1.0,
        "no more admitted than the rate allows"
    );
    assert_eq!(lost, 0, "the held call lost no packet");
    assert!(audio.len() >= 145, "{} packets in 3 s", audio.len());
    assert!(max_gap < Duration::from_millis(40), "gap of {max_gap:?}");
}
