//! A real `redis-server` for cluster tests, and the helpers that start
//! cluster nodes (the real binary with `[cluster]` set) and talk to them.

use super::binary::{Binary, free_tcp_port};
use super::*;
use reqwest::Method;
use serde_json::Value;
use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `redis-server` on a free loopback port, without persistence (a
/// restart comes back empty, as a crashed Redis without AOF would).
/// Killed when dropped.
pub struct Redis {
    port: u16,
    child: Option<Child>,
}

impl Redis {
    pub fn start() -> Redis {
        let mut r = Redis {
            port: free_tcp_port(),
            child: None,
        };
        r.spawn();
        r
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    pub fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (.ci/run installs it)");
        self.child = Some(child);
        // Ready when it answers PING.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
                use std::io::Read;
                let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
                let mut buf = [0u8; 16];
                if s.write_all(b"PING\r\n").is_ok()
                    && s.read(&mut buf)
                        .is_ok_and(|n| buf[..n].starts_with(b"+PONG"))
                {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "redis-server did not come up");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One cluster node: the real binary with `[cluster]` pointing at `redis`.
pub async fn node(redis: &Redis, hook_url: &str) -> Binary {
    node_with(redis, hook_url, "").await
}

/// A cluster node with `[node]` lines of its own (e.g. its call_domain).
pub async fn node_with(redis: &Redis, hook_url: &str, node_lines: &str) -> Binary {
    let mut b = Binary::new(node_lines, hook_url, "", "");
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&b.config)
        .unwrap();
    writeln!(
        file,
        "[cluster]\nredis_url = \"{}\"\nadvertise_api = \"{}\"",
        redis.url(),
        b.api
    )
    .unwrap();
    b.start().await;
    b
}

/// An authenticated API call to `node`: status and JSON body.
pub async fn api(node: &Binary, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = reqwest::Client::new().request(method, format!("{}{path}", node.api));
    if let Some(b) = body {
        req = req.json(&b);
    }
    super::send(req).await
}

/// The SIP URI of `user` on `node`.
pub fn uri(node: &Binary, user: &str) -> String {
    format!("sip:{user}@{}", node.sip)
}

/// The next incoming-call webhook (verification bodies skipped).
pub async fn call_hook(rx: &mut WebhookReceiver) -> Hook {
    loop {
        let h = rx.next().await;
        if h.json().get("callId").is_some() {
            return h;
        }
    }
}

/// Waits until every node sees `n` nodes in the cluster.
pub async fn cluster_of(nodes: &[&Binary]) {
    within(15, "every node to see the whole cluster", async {
        loop {
            let mut all = true;
            for n in nodes {
                let (s, list) = api(n, Method::GET, "/v1/calls?scope=cluster", None).await;
                let seen = list["nodes"].as_array().map_or(0, Vec::len);
                all &= s == 200 && seen == nodes.len();
            }
            if all {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
}

/// Waits until `GET /v1/calls/{id}` through `node` shows `state`.
pub async fn state_through(node: &Binary, id: &str, state: &str) -> Value {
    within(10, &format!("call {id} to be {state}"), async {
        loop {
            let (s, call) = api(node, Method::GET, &format!("/v1/calls/{id}"), None).await;
            if s == 200 && call["state"] == state {
                return call;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
}

/// Waits (5 s at most) until provisioned entry `id` is on `node`.
pub async fn entry_reaches(node: &Binary, id: &str, which: &str) {
    let path = format!("/v1/domain-dialin-config/{id}");
    within(5, &format!("the entry to reach {which}"), async {
        while api(node, Method::GET, &path, None).await.0 != 200 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
}

/// Creates, through `node`'s provisioning API, an open entry for
/// `sip:{user}@127.0.0.1` posting to `hook_url`; returns the API's answer
/// (its `id`, and `config.hmac` shown this once).
pub async fn provision_open_entry(node: &Binary, user: &str, hook_url: &str) -> Value {
    let body = serde_json::json!({ "type": "pinless_dialin", "config": {
        "sip_uri": format!("sip:{user}@127.0.0.1"), "room_creation_api": hook_url, "open": true
    }});
    let (s, made) = api(node, Method::POST, "/v1/domain-dialin-config", Some(body)).await;
    assert_eq!(s, 200, "{made}");
    made
}
