//! Driving sipp (Debian `sip-tester`), a SIP peer written by others.
//! Interop tests fail, never skip, when it is missing.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub use super::free_udp_port;

pub fn scenario(name: &str) -> String {
    format!("{}/tests/sipp/{name}", env!("CARGO_MANIFEST_DIR"))
}

pub fn sipp(args: &[&str]) -> Child {
    Command::new("sipp")
        .args(args)
        .args(["-buff_size", "4194304"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sipp is installed (apt-get install sip-tester); interop tests do not skip")
}

/// Waits for sipp to exit; its exit code 0 means every call succeeded.
pub async fn finished(mut child: Child, what: &str, secs: u64) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            if !status.success() {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    use std::io::Read;
                    let _ = e.read_to_string(&mut err);
                }
                eprintln!("{what} exited with {status}: {err}");
            }
            return status.success();
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("{what} did not finish in {secs}s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("pinless-sipp-{}-{name}", uuid::Uuid::new_v4()))
}

/// One sipp call to `gw` with `scenario` (a file in tests/sipp), to the
/// `support` entry, on free ports; `extra` arguments are appended.
pub fn sipp_call(gw: &str, scenario_file: &str, extra: &[&str]) -> Child {
    sipp_calls(gw, scenario_file, 1, extra)
}

/// `calls` sipp calls, as `sipp_call` places one (`extra` may add a rate
/// and a limit on calls at once).
pub fn sipp_calls(gw: &str, scenario_file: &str, calls: u32, extra: &[&str]) -> Child {
    sipp_calls_to(gw, "support", scenario_file, calls, extra)
}

/// Like `sipp_calls`, to the user `service` (the scenarios' `[service]`).
pub fn sipp_calls_to(
    gw: &str,
    service: &str,
    scenario_file: &str,
    calls: u32,
    extra: &[&str],
) -> Child {
    let calls = calls.to_string();
    let port = free_udp_port().to_string();
    let media = free_udp_port().to_string();
    let path = scenario(scenario_file);
    let mut args = vec![
        gw,
        "-sf",
        &path,
        "-s",
        service,
        "-i",
        "127.0.0.1",
        "-p",
        &port,
        "-mp",
        &media,
        "-m",
        &calls,
        "-timeout",
        "40",
    ];
    args.extend_from_slice(extra);
    sipp(&args)
}
