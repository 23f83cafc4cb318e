//! `pinless [--config FILE] [--check-config]`

use anyhow::Context;
use pinless::{Config, Gateway};
use std::path::PathBuf;

const USAGE: &str = "usage: pinless [--config FILE] [--check-config]

  --config FILE    read FILE (default: config/pinless.toml if present,
                   else built-in loopback defaults)
  --check-config   validate the configuration and exit (0 when valid)

Environment overrides: PINLESS_SECTION__KEY=value, e.g. PINLESS_API__LISTEN=127.0.0.1:9090";

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PINLESS_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pinless: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let mut config_path: Option<PathBuf> = None;
    let mut check_only = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--config" => {
                config_path = Some(args.next().context("--config needs a FILE")?.into());
            }
            "--check-config" => check_only = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => anyhow::bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    // PINLESS_LOG is for logging, not a config key.
    let vars = std::env::vars().filter(|(k, _)| k != "PINLESS_LOG");
    let (config, source) = Config::load(config_path.as_deref(), vars)?;
    if check_only {
        println!("configuration is valid ({source:?})");
        return Ok(());
    }
    tracing::info!(?source, "configuration loaded");
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let gateway = Gateway::start(config).await?;
        tokio::signal::ctrl_c()
            .await
            .context("cannot wait for Ctrl-C")?;
        tracing::info!("shutting down");
        gateway.shutdown();
        anyhow::Ok(())
    })
}
