//! Kamailio (Debian `kamailio`) as a SIP registrar with digest
//! authentication, started with the configuration we ship
//! (`config/kamailio/registrar.cfg`) on a loopback UDP port: one password
//! for every user, REGISTER below `min_expires` refused with 423, calls to
//! a registered user sent to its contact, 404 for anyone else. Interop
//! tests fail, never skip, when it is missing.

use super::sipp::free_udp_port;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Listeners besides UDP on `sip`.
pub enum Also<'a> {
    Nothing,
    /// TCP on the same address.
    Tcp,
    /// TLS on `at` (Debian's kamailio-tls-modules), showing `cert`.
    Tls {
        at: SocketAddr,
        cert: &'a std::path::Path,
        key: &'a std::path::Path,
    },
}

pub struct Registrar {
    pub sip: SocketAddr,
    /// Its runtime directory (`-Y`) and its log, removed on drop.
    dir: PathBuf,
    /// None once stopped.
    child: Option<Child>,
}

impl Registrar {
    /// Starts Kamailio as a registrar on a free loopback UDP port, with
    /// `password` for every user and `min_expires` (seconds), and waits
    /// until it answers an OPTIONS of its own.
    pub async fn start(password: &str, min_expires: u32) -> Registrar {
        let sip: SocketAddr = format!("127.0.0.1:{}", free_udp_port()).parse().unwrap();
        Self::start_on(sip, password, min_expires).await
    }

    /// Like `start`, on `sip` (a restart on the address a stopped
    /// registrar had: its registrations are gone, it kept them in memory).
    pub async fn start_on(sip: SocketAddr, password: &str, min_expires: u32) -> Registrar {
        Self::start_in(None, sip, password, min_expires, Also::Nothing).await
    }

    /// Like `start_on`, inside network namespace `netns` when given (the
    /// caller reaches `sip` from where it is), listening also as `also`
    /// says.
    pub async fn start_in(
        netns: Option<&str>,
        sip: SocketAddr,
        password: &str,
        min_expires: u32,
        also: Also<'_>,
    ) -> Registrar {
        // The password goes into the configuration as a quoted string in
        // which `$` would start a variable.
        assert!(
            !password.is_empty() && !password.contains(['"', '\\', '$', '\r', '\n']),
            "a registrar password without quotes, backslashes, `$` or line breaks: {password:?}"
        );
        // A REGISTER that asks for no expiry, or for more than the
        // maximum, must still get at least the minimum.
        let max_expires = min_expires.max(3600);
        let dir = std::env::temp_dir().join(format!("pinless-registrar-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = std::fs::File::create(dir.join("kamailio.log")).unwrap();
        let mut command = match netns {
            // `ip netns exec` becomes kamailio (exec): the same process
            // gets the stop's SIGTERM.
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, "kamailio"]);
                c
            }
            None => Command::new("kamailio"),
        };
        let child = command
            .args(["-DD", "-E", "-m", "64", "-M", "8", "-f"])
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/config/kamailio/registrar.cfg"
            ))
            .arg("-Y")
            .arg(&dir)
            .arg("-A")
            .arg(format!("LISTEN=udp:{sip}"))
            .args(match also {
                Also::Nothing => vec![],
                Also::Tcp => vec!["-A".to_string(), format!("LISTEN_TCP=tcp:{sip}")],
                Also::Tls { at, cert, key } => vec![
                    "-A".to_string(),
                    format!("LISTEN_TLS=tls:{at}"),
                    "-A".to_string(),
                    format!("TLS_CERT=\"{}\"", cert.display()),
                    "-A".to_string(),
                    format!("TLS_KEY=\"{}\"", key.display()),
                ],
            })
            .arg("-A")
            .arg(format!("PASSWORD=\"{password}\""))
            .arg("-A")
            .arg(format!("MIN_EXPIRES={min_expires}"))
            .arg("-A")
            .arg(format!("MAX_EXPIRES={max_expires}"))
            .arg("-A")
            .arg(format!("DEFAULT_EXPIRES={max_expires}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("kamailio is installed (apt-get install kamailio); interop tests do not skip");
        let mut r = Registrar {
            sip,
            dir,
            child: Some(child),
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        if let Some(Ok(Some(status))) = r.child.as_mut().map(|c| c.try_wait()) {
            panic!(
                "kamailio (registrar on {sip}) exited at start ({status}):\n{}",
                r.log()
            );
        }
        let probe = match netns {
            // From another namespace: not from a loopback address.
            Some(_) => super::raw::RawSip::bound(std::net::Ipv4Addr::UNSPECIFIED.into(), sip).await,
            None => super::raw::RawSip::new(sip).await,
        };
        let up = probe.first_options_answer("the registrar").await;
        assert_eq!(up, 200, "the registrar's own OPTIONS answer\n{}", r.log());
        r
    }

    /// What Kamailio wrote so far (also after `stop`).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("kamailio.log")).unwrap_or_default()
    }

    /// Stops it: SIGTERM, not SIGKILL, so that Kamailio's main process
    /// stops the worker processes it forked (killed outright, it would
    /// leave them holding the port after the test). Waits until it has
    /// exited; SIGKILL only if it is still there after 5 s. Its log stays
    /// readable until drop.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while matches!(child.try_wait(), Ok(None)) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Registrar {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
