//! What an API token can make the gateway read or reach, over real HTTP,
//! SIP and TCP: files only from inside `api.media_dir` (with one answer
//! whether a file outside exists or not, so nothing is opened), URLs
//! checked after resolution and before any packet goes to them, redirects
//! too. Link-local (cloud metadata) addresses are tried inside a network
//! namespace of the test's own, where the test itself serves them: a
//! regression reaches the test's server, never the machine's network.

use crate::support;

use serde_json::{Value, json};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use support::netns::Netns;
use support::*;

/// The override that refuses loopback and private URLs (the tests'
/// template allows them, its receivers being on loopback).
const STRICT: (&str, &str) = ("PINLESS_API__ALLOW_PRIVATE_URLS", "false");
const NO_FILES: &str = "audio: files are not allowed here (set api.media_dir)";
const OUTSIDE: &str = "audio: only files inside api.media_dir are read";
const LINK_LOCAL: Ipv4Addr = Ipv4Addr::new(169, 254, 169, 254);
/// A documentation address standing for a public server, inside the
/// namespace only.
const PUBLIC: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);

/// A server and how many requests (or connections) it got.
struct Counted {
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
}

impl Counted {
    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// An HTTP server on `ip` answering every request with `body`.
fn http_server(ip: IpAddr, body: Vec<u8>) -> Counted {
    use warp::Filter;
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let route = warp::any().map(move || {
        counter.fetch_add(1, Ordering::SeqCst);
        body.clone()
    });
    let (addr, server) = warp::serve(route).bind_ephemeral((ip, 0));
    tokio::spawn(server);
    Counted { addr, hits }
}

/// An HTTP server on `ip` answering every request with a 302 to `to`.
fn redirect_server(ip: IpAddr, to: String) -> Counted {
    use warp::Filter;
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let route = warp::any().map(move || {
        counter.fetch_add(1, Ordering::SeqCst);
        warp::http::Response::builder()
            .status(302)
            .header("Location", to.as_str())
            .body(String::new())
            .unwrap()
    });
    let (addr, server) = warp::serve(route).bind_ephemeral((ip, 0));
    tokio::spawn(server);
    Counted { addr, hits }
}

/// A TCP listener on `ip` counting the connections it accepts.
async fn tcp_listener(ip: IpAddr) -> Counted {
    let listener = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            drop(socket);
        }
    });
    Counted { addr, hits }
}

/// A short WAV's bytes: what a server would serve if asked.
fn wav_bytes(dir: &Path) -> Vec<u8> {
    let path = dir.join("served.wav");
    support::audio::wav(&path, &vec![-7_000; 5 * 160]);
    std::fs::read(&path).unwrap()
}

fn error_text(body: &Value) -> String {
    body["error"].as_str().unwrap_or_default().to_string()
}

/// Asks `call`'s gateway to play `audio`; status and error text.
async fn play(call: &HeldCall, audio: &str) -> (u16, String) {
    let path = format!("/v1/calls/{}/play", call.call_id);
    let (status, body) = call
        .gw
        .api(
            reqwest::Method::POST,
            &path,
            Some(json!({ "audio": audio })),
        )
        .await;
    (status, error_text(&body))
}

/// Asks for an entry with `config`; status and error text.
async fn provision(gw: &TestGateway, config: Value) -> (u16, String) {
    let body = json!({ "type": "pinless_dialin", "config": config });
    let (status, body) = gw
        .api(
            reqwest::Method::POST,
            "/v1/domain-dialin-config",
            Some(body),
        )
        .await;
    (status, error_text(&body))
}

/// How many entries the gateway has (the config file's one included).
async fn entries(gw: &TestGateway) -> u64 {
    let (_, list) = gw
        .api(reqwest::Method::GET, "/v1/domain-dialin-config", None)
        .await;
    list["total_count"].as_u64().unwrap_or_default()
}

#[tokio::test]
async fn without_media_dir_files_are_refused_with_one_answer_whether_they_exist_or_not() {
    let call = held_call_with_env("", &[], &[STRICT]).await;
    let dir = support::audio::temp_dir("confine-files");
    // Not audio: opened, it would give 422 "cannot decode".
    let text = dir.join("text.wav");
    std::fs::write(&text, "this is no audio at all").unwrap();
    let missing = dir.join("missing.wav");
    let key = call.gw.state_dir.join("missing.key");
    for audio in [
        text.display().to_string(),
        missing.display().to_string(),
        "/etc/shadow".into(),
        "/proc/self/environ".into(),
        "../../../../etc/hostname".into(),
        key.display().to_string(),
    ] {
        assert_eq!(play(&call, &audio).await, (400, NO_FILES.into()), "{audio}");
    }
    call.wait(|c| c["state"] == "held").await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_media_dir_file_plays_and_nothing_leads_out_of_it() {
    let base = support::audio::temp_dir("confine-media");
    let media = base.join("media");
    std::fs::create_dir_all(&media).unwrap();
    let prompt = vec![-7_000; 5 * 160];
    support::audio::wav(&media.join("prompt.wav"), &prompt);
    support::audio::wav(&base.join("outside.wav"), &prompt);
    std::os::unix::fs::symlink(base.join("outside.wav"), media.join("link.wav")).unwrap();
    let media_dir = media.display().to_string();
    let env = [("PINLESS_API__MEDIA_DIR", media_dir.as_str())];
    let call = held_call_with_env("", &[], &env).await;

    assert_eq!(play(&call, "prompt.wav").await.0, 200);
    let inside = media.join("prompt.wav").display().to_string();
    assert_eq!(play(&call, &inside).await.0, 200, "absolute, inside");
    let outside = base.join("outside.wav").display().to_string();
    for audio in [
        "../outside.wav",
        outside.as_str(),
        "link.wav",
        "../nothing.wav",
        "/etc/shadow",
    ] {
        assert_eq!(play(&call, audio).await, (400, OUTSIDE.into()), "{audio}");
    }
    // A provisioned entry's files are held to the same directory.
    let config = json!({ "phone_number": "+15550007777", "room_creation_api": call.hooks.url(),
                         "open": true, "hold_music": "../outside.wav" });
    let (status, error) = provision(&call.gw, config).await;
    assert_eq!(
        (status, error.as_str()),
        (
            400,
            "config.hold_music: only files inside api.media_dir are read"
        )
    );
    assert_eq!(entries(&call.gw).await, 1, "nothing saved");
    let _ = std::fs::remove_dir_all(&base);
}

#[tokio::test]
async fn urls_to_loopback_are_refused_before_anything_is_sent_unless_allowed() {
    let call = held_call_with_env("", &[], &[STRICT]).await;
    let dir = support::audio::temp_dir("confine-urls");
    let server = http_server(IpAddr::V4(Ipv4Addr::LOCALHOST), wav_bytes(&dir));
    let port = server.addr.port();

    // A name is judged by what it resolves to.
    let (status, error) = play(&call, &format!("http://localhost:{port}/prompt.wav")).await;
    assert_eq!(status, 400, "{error}");
    assert!(
        error.starts_with("audio: refused: localhost resolves to")
            && error.contains("a loopback address (set api.allow_private_urls = true to allow it)"),
        "{error}"
    );
    // The gateway's own API, on its loopback.
    let api = format!("http://{}/v1/calls", call.gw.gw.api);
    let (status, error) = play(&call, &api).await;
    assert_eq!(
        (status, error.as_str()),
        (
            400,
            "audio: refused: 127.0.0.1 is a loopback address (set api.allow_private_urls = true to allow it)"
        )
    );
    // A bot's stream, checked before the call is touched.
    let bot = tcp_listener(IpAddr::V4(Ipv4Addr::LOCALHOST)).await;
    let (status, body) = call
        .update(json!({ "streamUrl": format!("ws://{}/bot", bot.addr) }))
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        error_text(&body).starts_with("streamUrl: refused: 127.0.0.1 is a loopback address"),
        "{body}"
    );
    // A provisioned entry's webhook URLs.
    let hook = format!("http://127.0.0.1:{port}/hook");
    let config = json!({ "phone_number": "+15550006666", "room_creation_api": hook, "open": true });
    let (status, error) = provision(&call.gw, config).await;
    assert_eq!(status, 400, "{error}");
    assert!(
        error.starts_with("config.room_creation_api: refused: 127.0.0.1 is a loopback"),
        "{error}"
    );
    let config = json!({ "phone_number": "+15550006666", "room_creation_api": "http://203.0.113.9/hook",
                         "events_url": hook, "open": true });
    let (status, error) = provision(&call.gw, config).await;
    assert_eq!(status, 400, "{error}");
    assert!(
        error.starts_with("config.events_url: refused: 127.0.0.1 is a loopback"),
        "{error}"
    );
    assert_eq!(entries(&call.gw).await, 1, "nothing saved");

    // A bot a webhook answer names: that transfer fails, once, and the
    // caller stays on hold.
    let mut hooks = WebhookReceiver::start(&[]).await;
    hooks.answer_with(&json!({ "streamUrl": format!("ws://{}/bot", bot.addr) }).to_string());
    let routed = TestGateway::start_with_env(&hooks.url(), "", &[STRICT]).await;
    let phone = Phone::new().await;
    let (_leg, _) = phone.call(&routed.sip_uri("support", false), &[]).await;
    let id = hooks.next().await.json()["callId"]
        .as_str()
        .unwrap()
        .to_string();
    let view = routed
        .wait_call(&id, std::time::Duration::from_secs(5), |c| {
            c["state"] == "held" && !details(c, "call.transfer_failed").is_empty()
        })
        .await;
    let failed = details(&view, "call.transfer_failed");
    assert_eq!(failed.len(), 1, "not retried: {failed:?}");
    assert!(
        failed[0]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("refused: 127.0.0.1 is a loopback address"),
        "{failed:?}"
    );

    assert_eq!(server.hits(), 0, "no request reached the server");
    assert_eq!(bot.hits(), 0, "no connection reached the bot's address");
    call.wait(|c| c["state"] == "held").await;

    // Allowed, the same URL is fetched and played.
    let lax = held_call("", &[]).await;
    let (status, error) = play(&lax, &format!("http://localhost:{port}/prompt.wav")).await;
    assert_eq!(status, 200, "{error}");
    assert_eq!(server.hits(), 1);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs the next test inside a namespace of its own that has the
/// link-local metadata address and a "public" one on its loopback.
#[test]
fn link_local_and_redirected_urls_are_refused_inside_a_namespace_of_its_own() {
    let ns = Netns::new("confine", &["169.254.169.254/32", "203.0.113.10/32"]);
    ns.pass_test(
        "confine::inside_the_namespace_link_local_and_redirects_to_loopback_are_refused",
        &[],
    );
}

#[tokio::test]
#[ignore = "run inside its own network namespace by the test above"]
async fn inside_the_namespace_link_local_and_redirects_to_loopback_are_refused() {
    assert!(
        std::env::var_os("PINLESS_TEST_NETNS").is_some(),
        "run by link_local_and_redirected_urls_are_refused_inside_a_namespace_of_its_own"
    );
    let dir = support::audio::temp_dir("confine-netns");
    let metadata = http_server(IpAddr::V4(LINK_LOCAL), wav_bytes(&dir));
    let local = http_server(IpAddr::V4(Ipv4Addr::LOCALHOST), wav_bytes(&dir));
    let to = format!("http://127.0.0.1:{}/prompt.wav", local.addr.port());
    let redirect = redirect_server(IpAddr::V4(PUBLIC), to);
    let bot = tcp_listener(IpAddr::V4(LINK_LOCAL)).await;
    let link_local =
        "refused: 169.254.169.254 is a link-local address (where clouds serve instance metadata)";

    let call = held_call_with_env("", &[], &[STRICT]).await;
    let metadata_url = format!("http://{}/latest/meta-data/", metadata.addr);
    assert_eq!(
        play(&call, &metadata_url).await,
        (400, format!("audio: {link_local}"))
    );
    let (status, error) = play(&call, &format!("http://{}/go", redirect.addr)).await;
    assert_eq!(
        (status, error.as_str()),
        (
            400,
            "audio: a redirect was refused: 127.0.0.1 is a loopback address (set api.allow_private_urls = true to allow it)"
        )
    );
    assert_eq!(redirect.hits(), 1, "the public server was asked");
    assert_eq!(local.hits(), 0, "the redirect was not followed");
    let (status, body) = call
        .update(json!({ "streamUrl": format!("ws://{}/bot", bot.addr) }))
        .await;
    assert_eq!(
        (status, error_text(&body)),
        (400, format!("streamUrl: {link_local}"))
    );
    let config = json!({ "phone_number": "+15550005555", "room_creation_api": "http://203.0.113.9/hook",
                         "events_url": metadata_url, "open": true });
    assert_eq!(
        provision(&call.gw, config).await,
        (400, format!("config.events_url: {link_local}"))
    );

    // Allowing private addresses does not allow link-local ones.
    let lax = held_call("", &[]).await;
    assert_eq!(
        play(&lax, &metadata_url).await,
        (400, format!("audio: {link_local}"))
    );
    assert_eq!(metadata.hits(), 0, "nothing reached the metadata address");
    assert_eq!(bot.hits(), 0);
    let _ = std::fs::remove_dir_all(&dir);
}
