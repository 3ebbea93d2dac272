//! `--exec`: the command run after the files changed (reload a service, restart kubelet).
//!
//! It runs through `sh -c` so operators can write what they would type, with the new paths in
//! `NODECERT_CERT` and `NODECERT_KEY` (never interpolated into the command, so paths with spaces or
//! quotes are safe). It runs only when the files changed; its failure is reported with its own exit
//! code, and the new certificate stays: it is valid, and the next run will not issue again.
//! What the hook prints goes to stderr, so stdout stays nodecert's own (`--report json`). The
//! hook does not inherit the environment variables the auth key was read from. A hook that did
//! not succeed stays owed ([`Owed`]): the next run runs it even if the pair stays.
//!
//! The shell is started with `posix_spawn` rather than `std::process::Command`: nodecert blocks
//! SIGTERM, SIGINT and SIGHUP in every thread ([`crate::signals`]) and a child inherits the mask
//! of the thread that starts it. `posix_spawn` sets the child's mask itself, so no thread of
//! nodecert ever unblocks them, not even for the instant of a spawn (a signal then would end a
//! parallel `sync` without removing the keys other workers are staging).

use std::ffi::{CString, OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::spawn::{PosixSpawnAttr, PosixSpawnFileActions, PosixSpawnFlags, posix_spawnp};
use nix::sys::signal::{SigSet, Signal, killpg};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use crate::error::{Error, Result};

/// Runs `command` with the pair's paths in the environment, for at most `timeout`. The hook
/// runs while the pair's lock is held, so one that hangs (a `systemctl restart` waiting on a
/// stuck unit) would stall every later run on the pair: past `timeout` its whole process group
/// is stopped (SIGTERM, then SIGKILL) and the run fails with the hook's exit code.
pub fn run(command: &str, cert: &Path, key: &Path, timeout: Duration) -> Result<()> {
    log::debug!("running --exec hook");
    let child = start(command, cert, key)
        .map_err(|e| Error::Hook(format!("cannot start sh for --exec: {e}")))?;
    let Some(status) = wait_until(child, Instant::now().checked_add(timeout))? else {
        stop(child);
        return Err(Error::Hook(format!(
            "--exec {command:?} did not finish within {} and was stopped (raise --exec-timeout \
             if it needs longer); the new certificate is in place at {}",
            humantime::format_duration(timeout),
            cert.display()
        )));
    };
    let how = match status {
        Ended::Exited(0) => return Ok(()),
        Ended::Exited(code) => format!("exited with status {code}"),
        Ended::Killed => "was killed by a signal".to_string(),
    };
    Err(Error::Hook(format!(
        "--exec {command:?} {how}; the new certificate is in place at {}",
        cert.display()
    )))
}

/// `.CERT.exec-pending` beside the certificate: the hook is owed from just before the pair is
/// swapped until it has succeeded. A run killed between the swap and the hook, or a hook that
/// fails, would otherwise leave the service on the old certificate for good, since the next run
/// finds the new pair and has nothing to do.
pub struct Owed {
    path: PathBuf,
}

impl Owed {
    /// The record for the pair whose certificate is `cert`.
    pub fn beside(cert: &Path) -> Self {
        Self {
            path: cert.with_file_name(crate::output::hidden_name(cert, "exec-pending")),
        }
    }

    /// Whether an earlier run left the record (said at info level).
    pub fn by_an_earlier_run(&self) -> bool {
        if !self.path.exists() {
            return false;
        }
        log::info!(
            "{} is there: an earlier run changed the pair but its --exec hook did not succeed; running it now",
            self.path.display()
        );
        true
    }

    /// Records the hook as owed, before the swap (the pair's directory fsync after the swap
    /// makes the record durable with it); not through a symlink. Returns whether an earlier
    /// run's record was there already, for [`Self::withdraw`].
    pub fn record(&self) -> Result<Recorded> {
        use std::os::unix::fs::OpenOptionsExt as _;
        let earlier = self.path.exists();
        let mut options = std::fs::OpenOptions::new();
        options
            .write(true)
            .create(true)
            .truncate(true)
            .mode(crate::output::KEY_MODE);
        crate::error::open_regular(&mut options, &self.path)
            .map_err(|e| Error::output(&self.path, e))?;
        Ok(if earlier {
            Recorded::Earlier
        } else {
            Recorded::Now
        })
    }

    /// Takes back the record when the swap failed: only if this run made it, since a hook an
    /// earlier run owes is still owed.
    pub fn withdraw(self, recorded: Recorded) {
        if recorded == Recorded::Now {
            let _ = std::fs::remove_file(&self.path);
        }
    }

    /// Removes the record: the hook has succeeded.
    pub fn paid(self) {
        if let Err(e) = std::fs::remove_file(&self.path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            log::warn!("cannot remove {}: {e}", self.path.display());
        }
    }
}

/// Who made the record of an owed hook ([`Owed::record`]).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// An earlier run, whose hook is still owed.
    Earlier,
    /// This run.
    Now,
}

/// Starts `sh -c command` in its own process group (so that what it starts can be stopped with
/// it), with no signal blocked, SIGPIPE back at its default action (the Rust runtime ignores it
/// in nodecert), stdout on nodecert's stderr (stdout belongs to `--report json`) and the
/// environment without the auth key's variables.
fn start(command: &str, cert: &Path, key: &Path) -> std::result::Result<Pid, String> {
    let command = CString::new(command).map_err(|_| "the command contains a NUL byte")?;
    let args = [c"sh".to_owned(), c"-c".to_owned(), command];

    let secret = crate::auth::secret_env_vars();
    let ours = [
        ("NODECERT_CERT", cert.as_os_str()),
        ("NODECERT_KEY", key.as_os_str()),
    ];
    let inherited = std::env::vars_os().filter(|(name, _)| {
        !secret.iter().any(|s| OsStr::new(s) == name)
            && !ours.iter().any(|(ours, _)| OsStr::new(ours) == name)
    });
    let env = inherited
        .chain(ours.map(|(name, value)| (name.into(), value.to_owned())))
        .map(|(name, value): (OsString, OsString)| {
            let mut entry = name.into_vec();
            entry.push(b'=');
            entry.extend_from_slice(value.as_bytes());
            // A NUL cannot be in an environment variable; it can be in a path given to us.
            CString::new(entry).map_err(|_| "a path contains a NUL byte".to_string())
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;

    let errno = |e: Errno| e.desc().to_string();
    let mut actions = PosixSpawnFileActions::init().map_err(errno)?;
    actions.add_dup2(2, 1).map_err(errno)?;
    let mut attr = PosixSpawnAttr::init().map_err(errno)?;
    attr.set_pgroup(Pid::from_raw(0)).map_err(errno)?;
    attr.set_sigmask(&SigSet::empty()).map_err(errno)?;
    let mut default = SigSet::empty();
    default.add(Signal::SIGPIPE);
    attr.set_sigdefault(&default).map_err(errno)?;
    attr.set_flags(
        PosixSpawnFlags::POSIX_SPAWN_SETPGROUP
            | PosixSpawnFlags::POSIX_SPAWN_SETSIGMASK
            | PosixSpawnFlags::POSIX_SPAWN_SETSIGDEF,
    )
    .map_err(errno)?;
    posix_spawnp(c"sh", &actions, &attr, &args, &env).map_err(errno)
}

/// How the hook ended.
enum Ended {
    Exited(i32),
    Killed,
}

/// How the child ended, or None if it is still running at `deadline` (None: no deadline).
fn wait_until(child: Pid, deadline: Option<Instant>) -> Result<Option<Ended>> {
    let mut pause = Duration::from_millis(1);
    loop {
        match waitpid(child, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(Some(Ended::Exited(code))),
            Ok(WaitStatus::Signaled(..)) => return Ok(Some(Ended::Killed)),
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(Error::Hook(format!("waiting for --exec: {}", e.desc()))),
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
fn stop(child: Pid) {
    let _ = killpg(child, Signal::SIGTERM);
    let grace = Instant::now() + Duration::from_secs(5);
    let _ = wait_until(child, Some(grace));
    while killpg(child, None).is_ok() && Instant::now() < grace {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = killpg(child, Signal::SIGKILL);
    let _ = waitpid(child, None);
}
