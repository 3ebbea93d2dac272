//! `--exec`: the command run after the files changed (reload a service, restart kubelet).
//!
//! It runs through `sh -c` so operators can write what they would type, with the new paths in
//! `NODECERT_CERT` and `NODECERT_KEY` (never interpolated into the command, so paths with spaces or
//! quotes are safe). It runs only when the files changed; its failure is reported with its own exit
//! code, and the new certificate stays: it is valid, and the next run will not issue again.
//! What the hook prints goes to stderr, so stdout stays nodecert's own (`--report json`). The
//! hook does not inherit the environment variables the auth key was read from.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use crate::error::{Error, Result};

/// Runs `command` with the pair's paths in the environment, for at most `timeout`. The hook
/// runs while the pair's lock is held, so one that hangs (a `systemctl restart` waiting on a
/// stuck unit) would stall every later run on the pair: past `timeout` its whole process group
/// is stopped (SIGTERM, then SIGKILL) and the run fails with the hook's exit code.
pub fn run(command: &str, cert: &Path, key: &Path, timeout: Duration) -> Result<()> {
    log::debug!("running --exec hook");
    let mut sh = Command::new("sh");
    for var in crate::auth::secret_env_vars() {
        sh.env_remove(var);
    }
    sh.arg("-c")
        .arg(command)
        .env("NODECERT_CERT", cert)
        .env("NODECERT_KEY", key)
        // stdout belongs to nodecert's own output (--report json); the hook talks on stderr.
        .stdout(std::io::stderr())
        // Its own process group, so that what it started can be stopped with it.
        .process_group(0);
    let mut child = crate::signals::unblocked(|| sh.spawn())
        .map_err(|e| Error::Hook(format!("cannot start sh for --exec: {e}")))?;
    let Some(status) = wait_until(&mut child, Instant::now().checked_add(timeout))? else {
        stop(&mut child);
        return Err(Error::Hook(format!(
            "--exec {command:?} did not finish within {} and was stopped (raise --exec-timeout \
             if it needs longer); the new certificate is in place at {}",
            humantime::format_duration(timeout),
            cert.display()
        )));
    };
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

/// The child's exit status, or None if it is still running at `deadline` (None: no deadline).
fn wait_until(child: &mut Child, deadline: Option<Instant>) -> Result<Option<ExitStatus>> {
    let mut pause = Duration::from_millis(1);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(Some(status)),
            Ok(None) => {}
            Err(e) => return Err(Error::Hook(format!("waiting for --exec: {e}"))),
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(None);
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// Stops the hook's process group: SIGTERM, and SIGKILL to whatever of it is still there 5 s
/// later. The shell exiting on SIGTERM is not the end of the group: a member that ignores it
/// (a stuck `systemctl`, a `trap '' TERM`) would outlive the run.
fn stop(child: &mut Child) {
    let group = Pid::from_raw(child.id() as i32);
    let _ = killpg(group, Signal::SIGTERM);
    let grace = Instant::now() + Duration::from_secs(5);
    let _ = wait_until(child, Some(grace));
    while killpg(group, None).is_ok() && Instant::now() < grace {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = killpg(group, Signal::SIGKILL);
    let _ = child.wait();
}
