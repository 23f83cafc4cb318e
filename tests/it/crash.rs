//! Crash safety of the real binary: `kill -9` while entries are being
//! provisioned loses none that the API acknowledged, and the database
//! opens cleanly afterwards; a database that is not one stops the start
//! with a clear message and is left untouched.

use crate::support;

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::TOKEN;
use support::binary::free_tcp_port;

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
            let answer = http.get(format!("{base}/healthz")).send().await;
            if answer.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
}

/// Writes a config for the binary in a fresh directory: API on `port`,
/// SIP on free ports, state in `dir/state`. Returns (dir, config file).
fn setup(port: u16) -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("pinless-crash-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(dir.join("state")).unwrap();
    let config = dir.join("pinless.toml");
    std::fs::write(
        &config,
        format!(
            "[node]\nstate_dir = \"{state}\"\n[sip]\nudp = \"127.0.0.1:0\"\ntcp = \"127.0.0.1:0\"\n\
             [api]\nlisten = \"127.0.0.1:{port}\"\nbearer_tokens = [\"{TOKEN}\"]\nallow_private_urls = true\n\
             [hold]\nmusic = \"{music}\"\n",
            state = dir.join("state").display(),
            music = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/hold.flac"),
        ),
    )
    .unwrap();
    (dir, config)
}

#[test]
fn a_corrupt_database_stops_the_start_and_is_left_alone() {
    let (dir, config) = setup(free_tcp_port());
    let db = dir.join("state").join("pinless.db");
    let garbage = b"this is not a database, but someone's data".repeat(200);
    std::fs::write(&db, &garbage).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_pinless"))
        .arg("--config")
        .arg(&config)
        .output()
        .expect("the pinless binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "started on a corrupt database");
    assert!(
        stderr.contains("pinless.db") && stderr.contains("corrupt"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&db).unwrap(), garbage, "left untouched");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn kill_9_during_writes_loses_nothing_acknowledged() {
    let port = free_tcp_port();
    let (dir, config) = setup(port);
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
                        "open": true,
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
