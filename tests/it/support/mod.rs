//! Test harness: a gateway on loopback ports, a real HTTP webhook
//! receiver, and a phone and a room built on pinless's own SIP code.

pub mod audio;
#[cfg(feature = "interop")]
pub mod baresip;
pub mod binary;
pub mod bot;
#[cfg(feature = "interop")]
pub mod browser;
#[cfg(feature = "interop")]
pub mod cluster;
#[cfg(feature = "interop")]
pub mod kamailio;
pub mod netns;
pub mod openapi;
pub mod peers;
#[cfg(feature = "interop")]
pub mod pipecat;
pub mod raw;
#[cfg(feature = "interop")]
pub mod registrar;
pub mod signal;
#[cfg(feature = "interop")]
pub mod sipp;
#[cfg(feature = "interop")]
pub mod tone;
pub mod webhook_rx;

use pinless::{Config, Gateway};
use std::time::Duration;

pub use peers::{Phone, Room, RtpPeer};
pub use webhook_rx::{Hook, WebhookReceiver};

/// A started gateway plus what tests need to reach it.
pub struct TestGateway {
    pub gw: Gateway,
    pub http: reqwest::Client,
    pub state_dir: std::path::PathBuf,
    /// Remove `state_dir` when dropped (not for restart tests).
    owns_state: bool,
}

pub const TOKEN: &str = "test-token";
pub const SECRET: &str = "c2VjcmV0LWtleS1mb3ItdGVzdHMtMDEyMzQ1Njc4OQ==";

impl TestGateway {
    /// A gateway with one open entry `support` whose webhook is `hook_url`;
    /// `extra` is appended to the entry (e.g. `answer_delay_ms = 2000`).
    pub async fn start(hook_url: &str, extra: &str) -> TestGateway {
        let state_dir = std::env::temp_dir().join(format!("pinless-test-{}", uuid::Uuid::new_v4()));
        let mut gw = Self::start_in(&state_dir, hook_url, extra).await;
        gw.owns_state = true;
        gw
    }

    /// Like `start`, with `PINLESS_…` environment overrides applied.
    pub async fn start_with_env(hook_url: &str, extra: &str, env: &[(&str, &str)]) -> TestGateway {
        let state_dir = std::env::temp_dir().join(format!("pinless-test-{}", uuid::Uuid::new_v4()));
        let mut gw = Self::start_full(&state_dir, hook_url, extra, env).await;
        gw.owns_state = true;
        gw
    }

    /// Like `start`, keeping its state in `state_dir` (left in place).
    pub async fn start_in(state_dir: &std::path::Path, hook_url: &str, extra: &str) -> TestGateway {
        Self::start_full(state_dir, hook_url, extra, &[]).await
    }

    async fn start_full(
        state_dir: &std::path::Path,
        hook_url: &str,
        extra: &str,
        overrides: &[(&str, &str)],
    ) -> TestGateway {
        let toml = format!(
            r#"
[node]
state_dir = "{state}"
[sip]
udp = "127.0.0.1:0"
tcp = "127.0.0.1:0"
[api]
listen = "127.0.0.1:0"
bearer_tokens = ["{TOKEN}"]
# The tests' webhook receivers, bots and audio servers listen on loopback;
# the confine tests turn this off to see such URLs refused.
allow_private_urls = true
[hold]
music = "{music}"
[[dialin]]
name_prefix = "support"
sip_uri = "sip:support@127.0.0.1"
phone_number = "+15551230000"
room_creation_api = "{hook_url}"
hmac = "{SECRET}"
open = true
{extra}
"#,
            state = state_dir.display(),
            music = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/hold.flac"),
        );
        let vars = overrides
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()));
        let config = Config::from_toml_with_env(&toml, vars, false).expect("test config");
        let gw = Gateway::start(config).await.expect("gateway starts");
        TestGateway {
            gw,
            http: reqwest::Client::new(),
            state_dir: state_dir.to_path_buf(),
            owns_state: false,
        }
    }

    pub fn sip_uri(&self, user: &str, tcp: bool) -> String {
        if tcp {
            format!("sip:{user}@{};transport=tcp", self.gw.sip_tcp.unwrap())
        } else {
            format!("sip:{user}@{}", self.gw.sip_udp.unwrap())
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.gw.api)
    }

    /// POSTs a pinlessCallUpdate; returns status and JSON body.
    pub async fn update(&self, body: serde_json::Value) -> (u16, serde_json::Value) {
        self.update_with_key(body, None).await
    }

    /// POSTs a pinlessCallUpdate with an optional `Idempotency-Key`.
    pub async fn update_with_key(
        &self,
        body: serde_json::Value,
        key: Option<&str>,
    ) -> (u16, serde_json::Value) {
        let mut request = self
            .http
            .post(self.url("/v1/dialin/pinlessCallUpdate"))
            .json(&body);
        if let Some(k) = key {
            request = request.header("Idempotency-Key", k);
        }
        send(request).await
    }

    /// An update body for `call_id` on this node with `fields` merged in
    /// (`sipUri` or `sipUris`, `headers`, `mode`).
    pub fn update_body(&self, call_id: &str, fields: serde_json::Value) -> serde_json::Value {
        let mut body = serde_json::json!({ "callId": call_id, "callDomain": self.gw.call_domain });
        if let (Some(b), serde_json::Value::Object(f)) = (body.as_object_mut(), fields) {
            b.extend(f);
        }
        body
    }

    /// A value from `/metrics`.
    /// Waits (3 s at most) until the node reports its media overloaded,
    /// then checks that a new INVITE (Call-ID `call_id`) gets 503 with
    /// `Retry-After: 1`, counted as refused for overload.
    pub async fn refuses_while_overloaded(&self, call_id: &str) {
        within(3, "the media to report overload", async {
            while self.metric("pinless_pacer_overloaded").await != 1.0 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        let sip = raw::RawSip::new(self.gw.sip_udp.unwrap()).await;
        sip.send(&sip.invite("support", call_id, 1, "")).await;
        let refused = sip
            .response(Duration::from_secs(3), true)
            .await
            .expect("an answer");
        assert_eq!(refused.code(), 503, "{}", refused.0);
        assert_eq!(refused.header("Retry-After"), Some("1"));
        assert_eq!(
            self.metric("pinless_invites_pacer_overloaded_total").await,
            1.0
        );
    }

    pub async fn metric(&self, name: &str) -> f64 {
        let text = self
            .http
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("API reachable")
            .text()
            .await
            .unwrap_or_default();
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} not in /metrics:\n{text}"))
    }

    /// POSTs with the bearer token to `path` (no body).
    pub async fn post(&self, path: &str) -> (u16, serde_json::Value) {
        send(self.http.post(self.url(path))).await
    }

    /// Any API request with the bearer token and an optional JSON body.
    pub async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut request = self.http.request(method, self.url(path));
        if let Some(b) = body {
            request = request.json(&b);
        }
        send(request).await
    }

    pub async fn get_call(&self, id: &str) -> (u16, serde_json::Value) {
        send(self.http.get(self.url(&format!("/v1/calls/{id}")))).await
    }

    /// Polls a call until `pred` holds on its JSON, or panics after `within`.
    pub async fn wait_call(
        &self,
        id: &str,
        within: Duration,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let (_, call) = self.get_call(id).await;
            if pred(&call) {
                return call;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("call never reached the expected state: {call:#}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Sends an API request with the test token: status and JSON body.
pub(crate) async fn send(request: reqwest::RequestBuilder) -> (u16, serde_json::Value) {
    let (client, request) = request.bearer_auth(TOKEN).build_split();
    let request = request.expect("a request");
    let (method, path) = (request.method().clone(), request.url().path().to_string());
    let r = client.execute(request).await.expect("API reachable");
    let status = r.status().as_u16();
    let body = r.json().await.unwrap_or(serde_json::Value::Null);
    openapi::check(method.as_str(), &path, status, &body);
    (status, body)
}

/// A caller held at a fresh gateway: the most common start of a test.
pub struct HeldCall {
    pub gw: TestGateway,
    pub hooks: WebhookReceiver,
    pub phone: Phone,
    pub caller: pinless::sip::Leg,
    /// Where the gateway sends the caller's RTP from.
    pub media: pinless::sip::sdp::PeerMedia,
    pub call_id: String,
    /// The incoming-call webhook as received.
    pub hook: Hook,
}

/// Starts a gateway (`extra` appended to its entry), calls it over UDP
/// with `headers`, and waits for the webhook.
pub async fn held_call(extra: &str, headers: &[(&str, &str)]) -> HeldCall {
    held_call_with_env(extra, headers, &[]).await
}

/// `held_call` at a gateway with `PINLESS_…` overrides.
pub async fn held_call_with_env(
    extra: &str,
    headers: &[(&str, &str)],
    env: &[(&str, &str)],
) -> HeldCall {
    let hooks = WebhookReceiver::start(&[]).await;
    let gw = TestGateway::start_with_env(&hooks.url(), extra, env).await;
    call_in(gw, hooks, headers).await
}

/// `held_call_with_env` at an entry that also posts its call events to
/// the webhook receiver (`events_url`): the webhook awaited is the first
/// body that is no event.
pub async fn held_call_with_events(extra: &str, env: &[(&str, &str)]) -> HeldCall {
    let hooks = WebhookReceiver::start(&[]).await;
    let extra = format!("{extra}\nevents_url = \"{}\"", hooks.url());
    let gw = TestGateway::start_with_env(&hooks.url(), &extra, env).await;
    call_in(gw, hooks, &[]).await
}

/// Calls `gw`'s `support` entry over UDP with `headers` and waits for the
/// incoming-call webhook at `hooks` (the first body that is no call
/// event).
async fn call_in(
    gw: TestGateway,
    mut hooks: WebhookReceiver,
    headers: &[(&str, &str)],
) -> HeldCall {
    let phone = Phone::new().await;
    let (caller, media) = phone.call(&gw.sip_uri("support", false), headers).await;
    let hook = loop {
        let hook = hooks.next().await;
        if hook.json().get("type").is_none() {
            break hook;
        }
    };
    let call_id = hook.json()["callId"]
        .as_str()
        .expect("callId in webhook")
        .to_string();
    HeldCall {
        gw,
        hooks,
        phone,
        caller,
        media,
        call_id,
        hook,
    }
}

impl HeldCall {
    /// Sends an update for this call with `fields` (see `update_body`).
    pub async fn update(&self, fields: serde_json::Value) -> (u16, serde_json::Value) {
        self.gw
            .update(self.gw.update_body(&self.call_id, fields))
            .await
    }

    /// Polls this call until `pred` holds (5 s at most).
    pub async fn wait(&self, pred: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        self.gw
            .wait_call(&self.call_id, Duration::from_secs(5), pred)
            .await
    }

    /// The names of the call's timeline events, in order.
    pub async fn events(&self) -> Vec<String> {
        let (_, call) = self.gw.get_call(&self.call_id).await;
        event_names(&call)
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        self.gw.shutdown();
        if self.owns_state {
            let _ = std::fs::remove_dir_all(&self.state_dir);
        }
    }
}

/// Every event name in a call's timeline (`GET /v1/calls/{id}`), in order.
pub fn event_names(call: &serde_json::Value) -> Vec<String> {
    timeline(call)
        .filter_map(|e| e["event"].as_str().map(String::from))
        .collect()
}

/// The `detail` of every `name` event in a call's timeline, in order.
pub fn details(call: &serde_json::Value, name: &str) -> Vec<serde_json::Value> {
    timeline(call)
        .filter(|e| e["event"] == name)
        .map(|e| e["detail"].clone())
        .collect()
}

fn timeline(call: &serde_json::Value) -> impl Iterator<Item = &serde_json::Value> {
    call["timeline"].as_array().into_iter().flatten()
}

/// Writes a WAV file of `secs` seconds of silence (8 kHz, 16-bit mono).
pub fn silent_wav(path: &std::path::Path, secs: f32) {
    let samples = (8000.0 * secs) as u32;
    let mut w = Vec::new();
    w.extend(b"RIFF");
    w.extend((36 + samples * 2).to_le_bytes());
    w.extend(b"WAVEfmt ");
    w.extend(16u32.to_le_bytes());
    w.extend(1u16.to_le_bytes()); // PCM
    w.extend(1u16.to_le_bytes()); // mono
    w.extend(8000u32.to_le_bytes());
    w.extend(16000u32.to_le_bytes());
    w.extend(2u16.to_le_bytes());
    w.extend(16u16.to_le_bytes());
    w.extend(b"data");
    w.extend((samples * 2).to_le_bytes());
    w.resize(w.len() + samples as usize * 2, 0);
    std::fs::write(path, w).unwrap();
}

/// A UDP port free on 127.0.0.1 (for a peer that binds it itself).
pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A port free for both UDP and TCP on 127.0.0.1 (baresip binds both).
#[cfg(feature = "interop")]
pub fn free_udp_and_tcp_port() -> u16 {
    loop {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Awaits `f` for at most `secs` seconds.
pub async fn within<T>(secs: u64, what: &str, f: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(Duration::from_secs(secs), f).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {secs}s waiting for {what}"),
    }
}
