//! A network namespace of a test's own (root only, as CI runs): only its
//! loopback, up, plus the addresses the test puts on it, and no link to
//! the host's namespace. A test that checks an outside address is
//! refused runs its gateway in one, so a regression sends nothing off the
//! machine. Deleted when dropped.

use std::process::{Command, Output};

pub struct Netns {
    pub name: String,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("the ip command (iproute2) runs");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Netns {
    /// A new namespace with `lo` up and `addrs` (CIDRs) on it.
    pub fn new(tag: &str, addrs: &[&str]) -> Netns {
        let name = format!("pl-{tag}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        ip(&["netns", "add", &name]);
        let ns = Netns { name };
        ip(&["-n", &ns.name, "link", "set", "lo", "up"]);
        for a in addrs {
            ip(&["-n", &ns.name, "addr", "add", a, "dev", "lo"]);
        }
        ns
    }

    /// Runs the ignored test `name` of this test binary inside the
    /// namespace, alone; its output.
    pub fn run_test(&self, name: &str) -> Output {
        let exe = std::env::current_exe().expect("the test binary's path");
        Command::new("ip")
            .args(["netns", "exec", &self.name])
            .arg(exe)
            .args([name, "--exact", "--ignored", "--nocapture", "--test-threads=1"])
            .env("PINLESS_TEST_NETNS", &self.name)
            .output()
            .expect("ip netns exec runs")
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.name]).output();
    }
}
