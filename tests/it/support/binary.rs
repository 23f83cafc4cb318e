//! The real `pinless` binary as a test peer: a config written to a fresh
//! directory (SIP and API on free loopback ports), signals sent with
//! `kill`, the exit status awaited. For what only a process shows:
//! signals, exits, restarts.

use super::TOKEN;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

/// A free TCP port on 127.0.0.1 (for the API).
pub fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Ports a binary keeps across its restarts (SIP, API) come from
/// 10000–11999 and its RTP blocks from 12000–19999: below the kernel's
/// ephemeral range (32768 and up), where any socket bound to port 0 by a
/// concurrent test could take a port a stopped gateway must bind again
/// when it resumes, and below the in-process gateways' default RTP range
/// (20000–30000). CI once lost a resume to exactly that.
const HELD_PORTS: (u32, u32) = (10_000, 2_000);
const RTP_BLOCKS: (u32, u32) = (12_000, 40);

/// A port free for both UDP and TCP that no port-0 socket will be given.
pub fn held_port() -> u16 {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let (base, count) = HELD_PORTS;
    loop {
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let offset = std::process::id().wrapping_mul(7919).wrapping_add(n) % count;
        // base + offset < 12000: the conversion cannot fail.
        let port = u16::try_from(base + offset).unwrap_or(10_000);
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok()
            && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
        {
            return port;
        }
    }
}

/// A block of 200 RTP ports (100 calls' legs, each with its RTCP port) of
/// its own for each binary; the binaries of one test process get
/// different blocks.
pub fn rtp_range() -> (u16, u16) {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let (first, blocks) = RTP_BLOCKS;
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let block = (std::process::id().wrapping_add(n.wrapping_mul(37))) % blocks;
    let base = first + block * 200;
    // base + 199 < 20_000: the conversions cannot fail.
    let base = u16::try_from(base).unwrap_or(12_000);
    (base, base + 199)
}

/// What a test gateway process is started with.
pub struct Binary {
    pub dir: PathBuf,
    pub config: PathBuf,
    pub sip: SocketAddr,
    pub api: String,
    pub child: Option<Child>,
}

impl Binary {
    /// Writes the config: `[node]` extra lines, one open entry `support`
    /// posting to `hook_url` (with `entry` lines appended), `more` at the
    /// end (other sections).
    pub fn new(node: &str, hook_url: &str, entry: &str, more: &str) -> Binary {
        let dir = std::env::temp_dir().join(format!("pinless-bin-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(dir.join("state")).unwrap();
        let sip: SocketAddr = format!("127.0.0.1:{}", held_port()).parse().unwrap();
        let api_port = held_port();
        let (min, max) = rtp_range();
        let config = dir.join("pinless.toml");
        std::fs::write(
            &config,
            format!(
                "[node]\nstate_dir = \"{state}\"\n{node}\n\
                 [sip]\nudp = \"{sip}\"\ntcp = \"{sip}\"\n\
                 [media]\nrtp_port_min = {min}\nrtp_port_max = {max}\n\
                 [api]\nlisten = \"127.0.0.1:{api_port}\"\nbearer_tokens = [\"{TOKEN}\"]\nallow_private_urls = true\n\
                 media_dir = \"{assets}\"\n\
                 [hold]\nmusic = \"{music}\"\n\
                 [[dialin]]\nname_prefix = \"support\"\nsip_uri = \"sip:support@127.0.0.1\"\n\
                 room_creation_api = \"{hook_url}\"\nhmac = \"{secret}\"\nopen = true\n{entry}\n{more}\n",
                state = dir.join("state").display(),
                music = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/hold.flac"),
                assets = concat!(env!("CARGO_MANIFEST_DIR"), "/assets"),
                secret = super::SECRET,
            ),
        )
        .unwrap();
        Binary {
            dir,
            config,
            sip,
            api: format!("http://127.0.0.1:{api_port}"),
            child: None,
        }
    }

    /// Starts the process and waits until `/healthz` answers.
    pub async fn start(&mut self) {
        let log = std::fs::File::create(self.dir.join("pinless.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_pinless"))
            .arg("--config")
            .arg(&self.config)
            .env("PINLESS_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("the pinless binary starts");
        self.child = Some(child);
        let http = reqwest::Client::new();
        let url = format!("{}/healthz", self.api);
        let up = tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                if let Some(status) = self
                    .child
                    .as_mut()
                    .and_then(|c| c.try_wait().ok().flatten())
                {
                    return Err(status);
                }
                if http
                    .get(&url)
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success())
                {
                    return Ok(());
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        match up {
            Ok(Ok(())) => {}
            Ok(Err(status)) => panic!(
                "the gateway exited ({status}) instead of coming up; log:\n{}",
                self.log()
            ),
            Err(_) => panic!(
                "the gateway did not come up within 20 s; log:\n{}",
                self.log()
            ),
        }
    }

    /// Sends `signal` (`TERM`, `INT`, `KILL`) to the process.
    pub fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("started").id().to_string();
        let ok = Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{signal} {pid}");
    }

    /// Waits for the process to exit, at most `secs`.
    pub async fn exited(&mut self, secs: u64) -> ExitStatus {
        let child = self.child.as_mut().expect("started");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if tokio::time::Instant::now() > deadline {
                let log = std::fs::read_to_string(self.dir.join("pinless.log")).unwrap_or_default();
                panic!("pinless still running after {secs} s; log:\n{log}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn db(&self) -> PathBuf {
        self.dir.join("state").join("pinless.db")
    }

    /// `(end_reason, from)` of every call record, read from the database.
    pub fn records(&self) -> Vec<(Option<String>, String)> {
        read_records(&self.db())
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("pinless.log")).unwrap_or_default()
    }
}

fn read_records(db: &Path) -> Vec<(Option<String>, String)> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare("SELECT end_reason, from_party FROM call_records ORDER BY ended_at")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

impl Drop for Binary {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
