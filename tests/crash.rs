//! Crash safety of the real binary: `kill -9` while entries are being
//! provisioned loses none that the API acknowledged, and the database
//! opens cleanly afterwards.

mod support;

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::TOKEN;

fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start(config: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_pinless"))
        .arg("--config")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the pinless binary starts")
}

async fn wait_healthy(http: &reqwest::Client, base: &str) {
    support::within(20, "the gateway to come up", async {
        loop {
            if let Ok(r) = http.get(format!("{base}/healthz")).send().await {
                if r.status().is_success() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
}

#[tokio::test]
async fn kill_9_during_writes_loses_nothing_acknowledged() {
    let dir = std::env::temp_dir().join(format!("pinless-crash-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let port = free_tcp_port();
    let config = dir.join("pinless.toml");
    std::fs::write(
        &config,
        format!(
            "[node]\nstate_dir = \"{state}\"\n[sip]\nudp = \"127.0.0.1:0\"\ntcp = \"127.0.0.1:0\"\n\
             [api]\nlisten = \"127.0.0.1:{port}\"\nbearer_tokens = [\"{TOKEN}\"]\n\
             [hold]\nmusic = \"{music}\"\n",
            state = dir.join("state").display(),
            music = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/hold.flac"),
        ),
    )
    .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let mut child = start(&config);
    wait_healthy(&http, &base).await;

    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (http, base, acked) = (http.clone(), base.clone(), acked.clone());
            tokio::spawn(async move {
                for i in 0..10_000u32 {
                    let body = serde_json::json!({
                        "type": "pinless_dialin",
                        "phone_number": format!("+1555{w}{i:06}"),
                        "room_creation_api": "http://127.0.0.1:9/hook",
                    });
                    let sent = http
                        .post(format!("{base}/v1/domain-dialin-config"))
                        .bearer_auth(TOKEN)
                        .json(&body)
                        .send()
                        .await;
                    let Ok(r) = sent else { return };
                    if r.status() != 200 {
                        return;
                    }
                    let Ok(v) = r.json::<serde_json::Value>().await else {
                        return;
                    };
                    if let Some(id) = v["id"].as_str() {
                        acked.lock().unwrap().push(id.to_string());
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(700)).await;
    child.kill().expect("SIGKILL"); // kill -9, mid-write
    let _ = child.wait();
    for w in writers {
        let _ = w.await;
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 5,
        "only {} writes before the kill",
        acked.len()
    );

    let mut child = start(&config);
    wait_healthy(&http, &base).await;
    let list: serde_json::Value = http
        .get(format!("{base}/v1/domain-dialin-config"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kept: std::collections::HashSet<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["id"].as_str())
        .collect();
    let lost: Vec<_> = acked
        .iter()
        .filter(|id| !kept.contains(id.as_str()))
        .collect();
    println!(
        "kill -9 after {} acknowledged creates; {} entries after restart; lost {}",
        acked.len(),
        kept.len(),
        lost.len()
    );
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(dir);
}
