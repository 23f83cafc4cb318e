//! `pinless [--config FILE] [--check-config]`, `pinless probe SIP_URI …`

use clap::Parser;
use pinless::{Config, Gateway, lifecycle};
use std::path::PathBuf;

const ENVIRONMENT: &str = "\
Environment overrides: PINLESS_SECTION__KEY=value, e.g. PINLESS_API__LISTEN=127.0.0.1:9090
(double underscore = nesting). PINLESS_LOG sets the log filter (default: info).";

/// Self-hostable pinless dial-in hold-and-transfer SIP gateway.
#[derive(Debug, Parser)]
#[command(name = "pinless", version, after_help = ENVIRONMENT)]
// Given twice, a flag takes its last value, as the hand-written parser did.
#[command(args_override_self = true)]
struct Args {
    /// Read FILE (default: config/pinless.toml if present, else built-in
    /// loopback defaults)
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Validate the configuration and exit (0 when valid)
    #[arg(long)]
    check_config: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Place a test call to any SIP URI and report what was heard: answer
    /// time, codec, packets, loss, jitter, sound or silence, and an
    /// E-model quality estimate. Exit 0: answered and heard sound; 1: the
    /// call failed; 2: answered but silent (or --update-to did not bridge)
    Probe(ProbeArgs),
}

#[derive(Debug, clap::Args)]
struct ProbeArgs {
    /// Where to call: sip:…, sips:…, with ;transport=tcp or tls
    target: String,
    /// Seconds to listen once answered
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Seconds to wait for an answer
    #[arg(long, default_value_t = 20.0)]
    ring_timeout: f64,
    /// DTMF keys to send as RFC 4733 events, from one second in (e.g. 123#)
    #[arg(long, default_value = "")]
    dtmf: String,
    /// The From URI (default: a unique sip:probe-…@<local address>)
    #[arg(long)]
    from: Option<String>,
    /// Local IP for SIP and RTP (default: the one that routes to the target)
    #[arg(long)]
    bind: Option<std::net::IpAddr>,
    /// Extra CA certificate (PEM) for sips: targets
    #[arg(long, value_name = "FILE")]
    tls_ca: Option<PathBuf>,
    /// Once held, move the call to this room through a pinless API
    #[arg(long, value_name = "SIP_URI")]
    update_to: Option<String>,
    /// The pinless API for --update-to
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    api: String,
    /// Bearer token for --update-to (or PINLESS_PROBE_TOKEN)
    #[arg(
        long,
        env = "PINLESS_PROBE_TOKEN",
        default_value = "dev-token",
        hide_env_values = true
    )]
    token: String,
    /// Print the report as JSON
    #[arg(long)]
    json: bool,
}

fn main() -> std::process::ExitCode {
    // Before logging starts: --help, --version and usage errors print and
    // exit here (usage errors with status 2).
    let mut args = Args::parse();
    if let Some(Command::Probe(p)) = args.command.take() {
        return probe(p);
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PINLESS_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        // Colours only on a terminal: journald and log files get plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
    match run(args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pinless: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `pinless probe`: logs only warnings (the report is the output).
fn probe(p: ProbeArgs) -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::new("warn"))
        .init();
    let seconds = |name: &str, s: f64| {
        if s.is_finite() && s > 0.0 && s <= 3600.0 {
            Ok(std::time::Duration::from_secs_f64(s))
        } else {
            Err(format!(
                "--{name} must be a number of seconds above 0 and up to 3600"
            ))
        }
    };
    let durations = seconds("duration", p.duration)
        .and_then(|listen| seconds("ring-timeout", p.ring_timeout).map(|ring| (listen, ring)));
    let (listen, ring_timeout) = match durations {
        Ok(d) => d,
        Err(e) => {
            eprintln!("pinless probe: {e}");
            return std::process::ExitCode::from(64);
        }
    };
    let options = pinless::probe::Options {
        target: p.target,
        listen,
        ring_timeout,
        dtmf: p.dtmf,
        from: p.from,
        bind: p.bind,
        tls_ca: p.tls_ca,
        update: p.update_to.map(|room| pinless::probe::update::UpdateTo {
            room,
            api: p.api,
            token: p.token,
        }),
    };
    let outcome = tokio::runtime::Runtime::new()
        .map_err(|e| e.to_string())
        .and_then(|rt| {
            rt.block_on(pinless::probe::run(options))
                .map_err(|e| e.to_string())
        });
    match outcome {
        Ok(report) => {
            if p.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).unwrap_or_default()
                );
            } else {
                print!("{}", report.text());
            }
            std::process::ExitCode::from(report.exit_code())
        }
        Err(e) => {
            eprintln!("pinless probe: {e}");
            std::process::ExitCode::from(64)
        }
    }
}

/// The exit status of a drain that had to hang up calls still up at
/// `drain_secs` (or at a second signal): the stop worked, but callers were
/// cut, which systemd and scripts can tell from a clean drain (0).
const EXIT_DRAIN_CUT_CALLS: i32 = 3;

/// Why the gateway did not run. Printed with `{}`: pinless's errors name
/// their cause in their own text (the API and the config check show that
/// text) and keep it as `source()` for programs, so walking the chain, as
/// `{:#}` does, would print each cause twice.
#[derive(Debug, thiserror::Error)]
enum Failed {
    #[error(transparent)]
    Config(#[from] pinless::config::ConfigError),
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error("cannot listen for SIGTERM/SIGINT: {0}")]
    Signals(std::io::Error),
    #[error(transparent)]
    Start(#[from] pinless::StartError),
}

fn run(args: Args) -> Result<(), Failed> {
    // PINLESS_LOG is for logging, not a config key.
    let vars = std::env::vars().filter(|(k, _)| k != "PINLESS_LOG");
    let (config, source) = Config::load(args.config.as_deref(), vars)?;
    if args.check_config {
        println!("configuration is valid ({source:?})");
        return Ok(());
    }
    tracing::info!(?source, "configuration loaded");
    let runtime = tokio::runtime::Runtime::new().map_err(Failed::Runtime)?;
    let (mode, drain) = (config.node.shutdown, config.node.drain);
    let stopped = runtime.block_on(async {
        let signals = lifecycle::stop_signals().map_err(Failed::Signals)?;
        let gateway = Gateway::start(config).await?;
        let stopped = lifecycle::run_until_stopped(&gateway, mode, drain, signals).await;
        Ok::<_, Failed>(stopped)
    })?;
    let status = match stopped {
        lifecycle::Stopped::Drained { hung_up } if hung_up > 0 => EXIT_DRAIN_CUT_CALLS,
        lifecycle::Stopped::Drained { .. } | lifecycle::Stopped::Suspended { .. } => 0,
    };
    // Exit without waiting for the runtime's tasks: in resume mode the
    // calls were saved and must stay up on the wire, not be torn down.
    std::process::exit(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_is_written_with_its_cause_once() {
        let io = || std::io::Error::other("no such file");
        let e = Failed::from(pinless::config::ConfigError::File {
            path: "x.toml".into(),
            source: io(),
        });
        assert_eq!(
            e.to_string(),
            "cannot read config file x.toml: no such file"
        );
        let e = Failed::Runtime(io());
        assert_eq!(
            e.to_string(),
            "cannot start the async runtime: no such file"
        );
    }

    #[test]
    fn the_flags_of_the_first_release_parse() {
        let a = Args::try_parse_from(["pinless", "--check-config", "--config", "f.toml"]).unwrap();
        assert!(a.check_config);
        assert_eq!(a.config, Some(PathBuf::from("f.toml")));
        let a = Args::try_parse_from(["pinless", "--config", "a", "--config", "b"]).unwrap();
        assert_eq!(a.config, Some(PathBuf::from("b")), "the last one wins");
        let a = Args::try_parse_from(["pinless"]).unwrap();
        assert!(!a.check_config && a.config.is_none());
        assert!(Args::try_parse_from(["pinless", "--bogus"]).is_err());
        assert!(Args::try_parse_from(["pinless", "--config"]).is_err());
    }
}
