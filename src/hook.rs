//! `--exec`: the command run after the files changed (reload a service, restart kubelet).
//!
//! It runs through `sh -c` so operators can write what they would type, with the new paths in
//! `NODECERT_CERT` and `NODECERT_KEY` (never interpolated into the command, so paths with spaces or
//! quotes are safe). It runs only when the files changed; its failure is reported with its own exit
//! code, and the new certificate stays: it is valid, and the next run will not issue again.
//! What the hook prints goes to stderr, so stdout stays nodecert's own (`--report json`). The
//! hook does not inherit the environment variables the auth key was read from.

use std::path::Path;
use std::process::Command;

use crate::error::{Error, Result};

/// Runs `command` with the pair's paths in the environment.
pub fn run(command: &str, cert: &Path, key: &Path) -> Result<()> {
    log::debug!("running --exec hook");
    let mut sh = Command::new("sh");
    for var in crate::auth::secret_env_vars() {
        sh.env_remove(var);
    }
    let status = sh
        .arg("-c")
        .arg(command)
        .env("NODECERT_CERT", cert)
        .env("NODECERT_KEY", key)
        // stdout belongs to nodecert's own output (--report json); the hook talks on stderr.
        .stdout(std::io::stderr())
        .status()
        .map_err(|e| Error::Hook(format!("cannot start sh for --exec: {e}")))?;
    if status.success() {
        return Ok(());
    }
    let how = match status.code() {
        Some(code) => format!("exited with status {code}"),
        None => "was killed by a signal".to_string(),
    };
    Err(Error::Hook(format!(
        "--exec {command:?} {how}; the new certificate is in place at {}",
        cert.display()
    )))
}
