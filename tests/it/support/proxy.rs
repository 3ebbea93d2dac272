//! A real HTTP proxy (Debian's tinyproxy) on 127.0.0.1, for the environment's HTTPS_PROXY.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use super::ca::{free_port, wait_for_listener};
use super::write;

/// A running tinyproxy that opens CONNECT tunnels to one port only; killed by PID on drop.
pub struct Tinyproxy {
    child: Child,
    pub port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tinyproxy {
    /// Starts tinyproxy allowing CONNECT to `connect_port` on any host (and nothing else).
    pub fn start(connect_port: u16) -> Self {
        Self::start_with_auth(connect_port, None)
    }

    /// [`Self::start`], requiring Basic proxy authentication with `(user, password)` if given.
    pub fn start_with_auth(connect_port: u16, auth: Option<(&str, &str)>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let log = dir.path().join("tinyproxy.log");
        let conf = write(
            dir.path(),
            "tinyproxy.conf",
            &format!(
                "Port {port}\nListen 127.0.0.1\nAllow 127.0.0.1\nTimeout 30\n\
                 ConnectPort {connect_port}\nLogLevel Connect\n{}",
                auth.map(|(user, password)| format!("BasicAuth {user} {password}\n"))
                    .unwrap_or_default()
            ),
        );
        let child = Command::new("tinyproxy")
            .arg("-d")
            .arg("-c")
            .arg(&conf)
            // In the foreground (-d) tinyproxy logs to stdout.
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .expect("tinyproxy runs (apt-get install tinyproxy-bin; scripts/setup-deps.sh does)");
        let proxy = Self {
            child,
            port,
            log,
            _dir: dir,
        };
        wait_for_listener("tinyproxy", port, || proxy.log());
        proxy
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The proxy's log (with LogLevel Connect: one line per CONNECT request).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
