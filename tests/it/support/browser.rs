//! A real browser for tests: headless Chromium (Debian `chromium`) driven
//! through WebDriver by `chromedriver` (Debian `chromium-driver`), both
//! started by the test on loopback and stopped when dropped. Interop tests
//! fail, never skip, when either is missing.

use fantoccini::{Client, ClientBuilder};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A chromedriver process, killed (with its browsers) on drop.
pub struct Driver {
    child: Child,
    pub port: u16,
    profile: PathBuf,
}

impl Driver {
    pub async fn start() -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            // Loopback only (chromedriver's default, said out loud).
            .arg("--allowed-ips=127.0.0.1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "chromedriver is installed (apt-get install chromium chromium-driver); \
                 browser tests do not skip",
            );
        let profile =
            std::env::temp_dir().join(format!("pinless-chromium-{}", uuid::Uuid::new_v4()));
        let driver = Driver {
            child,
            port,
            profile,
        };
        super::within(15, "chromedriver to listen", async {
            while tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_err()
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        driver
    }

    /// A new headless Chromium session, `width` × `height` CSS pixels.
    pub async fn browser(&self, width: u32, height: u32) -> Client {
        let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("chromium is installed (apt-get install chromium); browser tests do not skip");
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": chromium,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--no-first-run",
                    "--hide-scrollbars",
                    format!("--window-size={width},{height}"),
                    format!("--user-data-dir={}", self.profile.display()),
                ],
            }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        super::within(
            30,
            "a Chromium session",
            ClientBuilder::new(connector)
                .capabilities(caps)
                .connect(&format!("http://127.0.0.1:{}", self.port)),
        )
        .await
        .expect("chromedriver starts Chromium")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Where tests keep screenshots: `target/test-artifacts/`.
pub fn artifact(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    let _ = std::fs::create_dir_all(&dir);
    dir.join(name)
}

/// Saves what the browser shows to `target/test-artifacts/<name>.png`.
pub async fn screenshot(client: &Client, name: &str) -> Option<PathBuf> {
    let png = client.screenshot().await.ok()?;
    let path = artifact(&format!("{name}.png"));
    std::fs::write(&path, png).ok()?;
    Some(path)
}

/// Runs one step of a browser test; when it fails (a panic), saves a
/// screenshot as `console-<step>.png`, prints its path, and fails the test.
pub async fn step<T>(client: &Client, name: &str, f: impl std::future::Future<Output = T>) -> T {
    use futures_util::FutureExt;
    match std::panic::AssertUnwindSafe(f).catch_unwind().await {
        Ok(v) => v,
        Err(panic) => {
            match screenshot(client, &format!("console-{name}")).await {
                Some(p) => eprintln!("step {name} failed; screenshot: {}", p.display()),
                None => eprintln!("step {name} failed; no screenshot could be taken"),
            }
            std::panic::resume_unwind(panic)
        }
    }
}

/// Runs `script` in the page (a function body; `return` its result).
pub async fn js(client: &Client, script: &str) -> serde_json::Value {
    client
        .execute(script, vec![])
        .await
        .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
}

/// Polls `script` until it returns something truthy (returned), or panics
/// naming `what` after `secs`.
pub async fn until(client: &Client, secs: f64, what: &str, script: &str) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs_f64(secs);
    loop {
        let v = js(client, script).await;
        let truthy = match &v {
            serde_json::Value::Null => false,
            serde_json::Value::Bool(b) => *b,
            serde_json::Value::String(s) => !s.is_empty(),
            serde_json::Value::Number(n) => n.as_f64() != Some(0.0),
            _ => true,
        };
        if truthy {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {secs}s waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
