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
        let name = format!(
            "pl-{tag}-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        ip(&["netns", "add", &name]);
        let ns = Netns { name };
        ip(&["-n", &ns.name, "link", "set", "lo", "up"]);
        for a in addrs {
            ip(&["-n", &ns.name, "addr", "add", a, "dev", "lo"]);
        }
        ns
    }

    /// A veth pair between this namespace and `other` (neither is the
    /// host's), with `mine` and `theirs` (CIDRs) on its two ends, up.
    pub fn link(&self, other: &Netns, mine: &str, theirs: &str) {
        let tag = &uuid::Uuid::new_v4().simple().to_string()[..8];
        let (a, b) = (format!("pl{tag}a"), format!("pl{tag}b"));
        ip(&[
            "link",
            "add",
            &a,
            "netns",
            &self.name,
            "type",
            "veth",
            "peer",
            "name",
            &b,
            "netns",
            &other.name,
        ]);
        for (ns, dev, cidr) in [(&self.name, &a, mine), (&other.name, &b, theirs)] {
            ip(&["-n", ns, "addr", "add", cidr, "dev", dev]);
            ip(&["-n", ns, "link", "set", dev, "up"]);
        }
    }

    /// Loads an nftables ruleset in the namespace (Debian `nftables`).
    pub fn nft(&self, rules: &str) {
        use std::io::Write;
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.name, "nft", "-f", "-"])
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("ip netns exec nft runs (apt-get install nftables)");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(rules.as_bytes())
            .expect("the ruleset is written");
        let out = child.wait_with_output().expect("nft ends");
        assert!(
            out.status.success(),
            "nft: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Runs the ignored test `name` of this test binary inside the
    /// namespace, alone, with `env` added, and fails unless it passed
    /// (its output then in the message).
    pub fn pass_test(&self, name: &str, env: &[(&str, &str)]) {
        let out = self.run_test(name, env);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success() && text.contains("test result: ok. 1 passed"),
            "{name} inside {}:\n{text}",
            self.name
        );
    }

    fn run_test(&self, name: &str, env: &[(&str, &str)]) -> Output {
        let exe = std::env::current_exe().expect("the test binary's path");
        Command::new("ip")
            .args(["netns", "exec", &self.name])
            .arg(exe)
            .args([
                name,
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("PINLESS_TEST_NETNS", &self.name)
            .envs(env.iter().copied())
            .output()
            .expect("ip netns exec runs")
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}
