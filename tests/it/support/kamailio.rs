//! Kamailio (Debian `kamailio`) in front of test nodes, started with the
//! dispatcher configuration we ship (`config/kamailio/kamailio.cfg`), on
//! a free loopback port, probing every second. Interop tests fail, never
//! skip, when it is missing.

use super::sipp::free_udp_port;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Kamailio {
    pub sip: SocketAddr,
    dir: PathBuf,
    child: Child,
}

impl Kamailio {
    /// Starts Kamailio dispatching to `nodes` (their UDP SIP addresses),
    /// and waits until it answers an OPTIONS of its own.
    pub async fn start(nodes: &[SocketAddr]) -> Kamailio {
        let dir = std::env::temp_dir().join(format!("pinless-kamailio-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let list = dir.join("dispatcher.list");
        let lines: String = nodes.iter().map(|n| format!("1 sip:{n}\n")).collect();
        std::fs::write(&list, lines).unwrap();
        let sip: SocketAddr = format!("127.0.0.1:{}", free_udp_port()).parse().unwrap();
        let log = std::fs::File::create(dir.join("kamailio.log")).unwrap();
        let child = Command::new("kamailio")
            .args(["-DD", "-E", "-m", "64", "-M", "8", "-f"])
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/config/kamailio/kamailio.cfg"
            ))
            .arg("-Y")
            .arg(&dir)
            .arg("-A")
            .arg(format!("LISTEN=udp:{sip}"))
            .arg("-A")
            .arg(format!("DISPATCHER_LIST=\"{}\"", list.display()))
            .args(["-A", "PING_INTERVAL=1", "-A", "FR_TIMER=2000"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("kamailio is installed (apt-get install kamailio); interop tests do not skip");
        let mut k = Kamailio { sip, dir, child };
        tokio::time::sleep(Duration::from_millis(300)).await;
        if let Ok(Some(status)) = k.child.try_wait() {
            panic!("kamailio exited at start ({status}):\n{}", k.log());
        }
        let probe = super::raw::RawSip::new(sip).await;
        let up = probe.first_options_answer("kamailio").await;
        assert_eq!(up, 200, "kamailio's own OPTIONS answer\n{}", k.log());
        k
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("kamailio.log")).unwrap_or_default()
    }
}

impl Drop for Kamailio {
    /// SIGTERM, not SIGKILL: Kamailio's main process then stops the
    /// worker processes it forked; killed outright, it would leave them
    /// running (still probing the nodes) after the test.
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while matches!(self.child.try_wait(), Ok(None)) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
