//! The pipecat echo bot of `examples/pipecat_bot`, run with the Python of
//! the venv that `.ci/run` makes (`PIPECAT_PYTHON`). Interop tests
//! fail, never skip, when that Python or pipecat is missing.

use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

/// The variable naming the venv's Python. Not `PINLESS_…`: every
/// `PINLESS_` variable is read as a config key by the gateway binaries the
/// tests start (and an unknown key stops them).
pub const PYTHON_VAR: &str = "PIPECAT_PYTHON";

/// A running bot: its WebSocket URL and what it logs.
pub struct PipecatBot {
    /// `ws://127.0.0.1:PORT/ws`.
    pub url: String,
    log: mpsc::UnboundedReceiver<String>,
    /// Every log line read so far (for failure messages).
    pub seen: Vec<String>,
    _child: Child,
}

impl PipecatBot {
    /// Starts the bot on a free loopback port and waits until it listens.
    pub async fn start() -> PipecatBot {
        let python = std::env::var(PYTHON_VAR).unwrap_or_else(|_| {
            panic!(
                "{PYTHON_VAR} is not set: it names a Python with \
                 examples/pipecat_bot/requirements.txt installed (.ci/run makes \
                 one); interop tests do not skip"
            )
        });
        let bot = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/pipecat_bot/bot.py");
        let mut child = Command::new(&python)
            .args([bot, "--host", "127.0.0.1", "--port", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("{PYTHON_VAR}={python} does not run: {e}"));
        let (tx, log) = mpsc::unbounded_channel();
        let stderr = child.stderr.take().expect("piped stderr");
        tokio::spawn(forward(BufReader::new(stderr).lines(), tx));
        let stdout = child.stdout.take().expect("piped stdout");
        let mut out = BufReader::new(stdout).lines();
        let first = super::within(60, "the pipecat bot to listen", out.next_line()).await;
        let url = match first {
            Ok(Some(line)) => line
                .strip_prefix("listening on ")
                .unwrap_or_else(|| panic!("unexpected first line from the bot: {line}"))
                .to_string(),
            other => {
                let mut bot = PipecatBot {
                    url: String::new(),
                    log,
                    seen: Vec::new(),
                    _child: child,
                };
                bot.settle().await;
                panic!(
                    "the pipecat bot did not start ({other:?}); is pipecat-ai installed in \
                     {python}?\n{}",
                    bot.seen.join("\n")
                );
            }
        };
        PipecatBot {
            url,
            log,
            seen: Vec::new(),
            _child: child,
        }
    }

    /// Waits (`secs` at most) for a log line containing `needle`.
    pub async fn logged(&mut self, needle: &str, secs: u64) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        if let Some(line) = self.seen.iter().find(|l| l.contains(needle)) {
            return line.clone();
        }
        while let Ok(Some(line)) = tokio::time::timeout_at(deadline, self.log.recv()).await {
            self.seen.push(line.clone());
            if line.contains(needle) {
                return line;
            }
        }
        panic!(
            "the bot never logged {needle:?} in {secs}s; it logged:\n{}",
            self.seen.join("\n")
        );
    }

    /// Collects what the bot logged in the next half second.
    async fn settle(&mut self) {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(500);
        while let Ok(Some(line)) = tokio::time::timeout_at(deadline, self.log.recv()).await {
            self.seen.push(line);
        }
    }
}

async fn forward(
    mut lines: tokio::io::Lines<BufReader<tokio::process::ChildStderr>>,
    tx: mpsc::UnboundedSender<String>,
) {
    while let Ok(Some(line)) = lines.next_line().await {
        if tx.send(line).is_err() {
            return;
        }
    }
}
