//! baresip (Debian `baresip-core`) as a caller: each test writes its
//! `config` and `accounts` into a directory of its own (`Baresip::dir`),
//! then starts it dialling one target. Its output goes to `dir/log`; it is
//! killed and the directory removed when dropped.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

pub struct Baresip {
    child: Child,
    pub dir: PathBuf,
}

impl Baresip {
    /// A fresh directory for a baresip's files.
    pub fn dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("pinless-baresip-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Starts baresip on the files in `dir`, dialling `target`; it quits
    /// by itself after `secs`. Fails, never skips, when it is missing.
    pub fn dial(dir: PathBuf, target: &str, secs: u32) -> Baresip {
        let log = std::fs::File::create(dir.join("log")).unwrap();
        let child = Command::new("baresip")
            .arg("-f")
            .arg(&dir)
            .args(["-t", &secs.to_string(), "-e", &format!("/dial {target}")])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect(
                "baresip is installed (apt-get install baresip-core); interop tests do not skip",
            );
        Baresip { child, dir }
    }

    /// What it printed so far, without terminal escapes.
    pub fn log(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(self.dir.join("log")).unwrap_or_default())
            .replace('\u{1b}', "")
    }
}

impl Drop for Baresip {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
