//! `--exec`: the command run after the files changed (reload a service, restart kubelet).
//!
//! It runs through `sh -c` so operators can write what they would type, with the new paths in
//! `NODECERT_CERT` and `NODECERT_KEY` as absolute paths (never interpolated into the command, so
//! paths with spaces or quotes are safe). It runs only when the files changed; its failure is
//! reported with its own exit code, and the new certificate stays: it is valid, and the next run
//! will not issue again.
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
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::spawn::{PosixSpawnAttr, PosixSpawnFileActions, PosixSpawnFlags, posix_spawn};
use nix::sys::signal::{SigSet, Signal, killpg};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use crate::error::{Error, Result};

/// Runs `command` with the pair's paths in the environment, for at most `timeout`. The hook
/// runs while the pair's lock is held, so one that hangs (a `systemctl restart` waiting on a
/// stuck unit) would stall every later run on the pair: past `timeout` its whole process group
/// is stopped (SIGTERM, then SIGKILL) and the run fails with the hook's exit code.
pub(crate) fn run(command: &str, cert: &Path, key: &Path, timeout: Duration) -> Result<()> {
    log::debug!("running --exec hook");
    let quoted = quoted(command);
    let child = Running::start(command, cert, key).map_err(|e| {
        let exec = crate::logging::setting("--exec");
        Error::Hook(format!("cannot start sh for {exec} {quoted}: {e}"))
    })?;
    let status = wait_until(child.0, Instant::now().checked_add(timeout)).inspect_err(|_| {
        stop(child.0);
    })?;
    let how = match status {
        Some(Ended::Exited(0)) => return Ok(()),
        Some(Ended::Exited(code)) => format!("exited with status {code}"),
        Some(Ended::Killed(signal)) => format!("was killed by {signal}"),
        None => {
            stop(child.0);
            format!(
                "did not finish within {} and was stopped (raise --exec-timeout if it needs \
                 longer)",
                humantime::format_duration(timeout)
            )
        }
        Some(Ended::WantsTerminal(signal)) => {
            stop(child.0);
            let (what, instead) = if signal == Signal::SIGTTIN {
                (
                    "read from the terminal",
                    "give it its input another way (sudo -n, a file)",
                )
            } else {
                (
                    "change the terminal's settings, or write to it under `stty tostop`",
                    "redirect its output, and give it its input another way (sudo -n, a file)",
                )
            };
            format!(
                "was stopped ({signal}) as it tried to {what}, which a hook cannot (it runs in \
                 a process group of its own, so that --exec-timeout can stop all of it): \
                 {instead}"
            )
        }
    };
    Err(Error::Hook(format!(
        "{} {quoted} {how}; the new certificate is in place at {}",
        crate::logging::setting("--exec"),
        cert.display()
    )))
}

/// Refuses a command that is empty (blank), or that `sh -c` cannot be given: one with a NUL
/// byte (possible only in a sync spec's JSON), or one longer than the kernel takes as one
/// argument. Checked when the flag or spec is read, so that no certificate is issued with a
/// hook that could never run (and would stay owed on every later run).
pub(crate) fn check_command(command: &str) -> std::result::Result<(), String> {
    // `--exec "$UNSET"` would otherwise run nothing and succeed on every renewal.
    if command.trim().is_empty() {
        return Err("is empty: give the command to run, or leave it out".into());
    }
    if command.contains('\0') {
        return Err("contains a NUL byte, which no command can: remove it".into());
    }
    // MAX_ARG_STRLEN: 32 pages of 4 KiB, the terminating NUL included.
    const MAX_ARGUMENT: usize = 32 * 4096 - 1;
    if command.len() > MAX_ARGUMENT {
        return Err(format!(
            "is {} bytes, more than the {MAX_ARGUMENT} the kernel takes as one argument: put \
             the commands in a script and run that",
            command.len()
        ));
    }
    Ok(())
}

/// The command as error lines quote it: in full up to 200 characters, else its beginning.
fn quoted(command: &str) -> String {
    const SHOWN: usize = 200;
    match command.char_indices().nth(SHOWN) {
        None => format!("{command:?}"),
        Some((end, _)) => format!("{:?}… ({} bytes)", &command[..end], command.len()),
    }
}

/// The process groups of the hooks running now, so that a signal that ends nodecert reaches
/// them too ([`signal_running`]).
static RUNNING: Mutex<Vec<Pid>> = Mutex::new(Vec::new());

fn running() -> MutexGuard<'static, Vec<Pid>> {
    RUNNING.lock().unwrap_or_else(|e| e.into_inner())
}

/// A started hook, listed in [`RUNNING`] until it is dropped.
struct Running(Pid);

impl Running {
    /// Starts the hook with [`RUNNING`] held, so that a signal handled meanwhile waits until
    /// the hook is listed, and reaches it.
    fn start(command: &str, cert: &Path, key: &Path) -> std::result::Result<Self, String> {
        let mut running = running();
        let child = start(command, cert, key)?;
        running.push(child);
        Ok(Self(child))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        running().retain(|pid| *pid != self.0);
    }
}

/// Sends `signal` to the process group of every hook running: nodecert is ending on it (see
/// [`crate::signals`]), and a hook is in a process group of its own, which a Ctrl-C, `timeout`
/// or a kill of nodecert's group does not reach. Otherwise the hook would run on, outside the
/// pair's lock, after nodecert is gone. What is left of it after [`SIGNAL_GRACE`] is killed.
pub(crate) fn signal_running(signal: Signal) {
    // Held until the process ends: no hook starts after this. Each hook's shell is reaped by
    // the thread that waits for it.
    let running = running();
    end_groups(&running, signal, SIGNAL_GRACE, || {});
    std::mem::forget(running);
}

/// How long a hook has to end after a signal that ends nodecert has been passed on to it. Short:
/// whoever sent the signal (`timeout`, systemd) is waiting for nodecert to end.
const SIGNAL_GRACE: Duration = Duration::from_secs(2);

/// `.CERT.exec-pending.UID` beside the certificate: the hook is owed from just before the pair
/// is swapped until it has succeeded. A run killed between the swap and the hook, or a hook
/// that fails, would otherwise leave the service on the old certificate for good, since the
/// next run finds the new pair and has nothing to do.
///
/// One record per user (UID: the effective uid of the run that made it), paid only by that
/// user's runs, with their `--exec` as it is now (a command fixed since still pays). Root's
/// timer and a service user's own runs of one pair each keep their own debt: neither clears
/// the other's by running something else, nor blocks the other's from being recorded. A
/// record is created with `O_EXCL`, never through a symlink, and never opened for writing once
/// there. An older nodecert's `.CERT.exec-pending` counts as its owner's record.
pub(crate) struct Owed {
    /// This user's record.
    path: PathBuf,
    /// An older nodecert's record, shared by all users.
    legacy: PathBuf,
}

impl Owed {
    /// The records for the pair whose certificate is `cert`.
    pub(crate) fn beside(cert: &Path) -> Self {
        let uid = nix::unistd::geteuid().as_raw();
        Self {
            path: cert.with_file_name(crate::output::hidden_name(
                cert,
                &format!("exec-pending.{uid}"),
            )),
            legacy: cert.with_file_name(crate::output::hidden_name(cert, "exec-pending")),
        }
    }

    /// The older nodecert's record (one name for every user), when it is there and this user's.
    fn legacy_mine(&self) -> bool {
        use std::os::unix::fs::MetadataExt as _;
        std::fs::symlink_metadata(&self.legacy)
            .is_ok_and(|meta| meta.uid() == nix::unistd::geteuid().as_raw())
    }

    /// Whether an earlier run of this user's left a record (said at info level). A record is a
    /// file (this user's by its name; its owner is not looked at, as root's record on a
    /// root-squashed NFS is nobody's): a directory planted under its name, which paying the
    /// debt cannot remove, would have the hook (a service restart) run on every run.
    pub(crate) fn by_an_earlier_run(&self) -> bool {
        let record = std::fs::symlink_metadata(&self.path).is_ok_and(|meta| meta.is_file());
        let owed = record || self.legacy_mine();
        if owed {
            log::info!(
                "{} is there: an earlier run changed the pair but its {} hook did not succeed; \
                 running it now",
                self.path.display(),
                crate::logging::setting("--exec")
            );
        }
        owed
    }

    /// Records the hook as owed, before the swap (the pair's directory fsync after the swap
    /// makes the record durable with it, unless the certificate's name is a link into another
    /// directory: then a power loss may lose the record). Returns whether an earlier run of
    /// this user had recorded it already (its per-user file; an older nodecert's shared
    /// record is not looked at), for [`Self::withdraw`].
    pub(crate) fn record(&self) -> Result<Recorded> {
        use std::os::unix::fs::OpenOptionsExt as _;
        let mut options = std::fs::OpenOptions::new();
        options
            .write(true)
            .create_new(true)
            .mode(crate::output::KEY_MODE);
        match crate::error::open_regular(&mut options, &self.path) {
            Ok(_) => Ok(Recorded::Now),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(Recorded::Earlier),
            Err(e) => Err(Error::output(
                &self.path,
                format!(
                    "cannot record the {} hook as owed ({e}): remove what is there",
                    crate::logging::setting("--exec")
                ),
            )),
        }
    }

    /// Takes back the record when the swap failed: only if this run made it, since a hook an
    /// earlier run owes is still owed.
    pub(crate) fn withdraw(self, recorded: Recorded) {
        if recorded == Recorded::Now {
            let _ = std::fs::remove_file(&self.path);
        }
    }

    /// Removes this user's records: the hook has succeeded.
    pub(crate) fn paid(self) {
        let legacy = self.legacy_mine().then_some(&self.legacy);
        for path in std::iter::once(&self.path).chain(legacy) {
            if let Err(e) = std::fs::remove_file(path)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                log::warn!("cannot remove {}: {e}", path.display());
            }
        }
    }
}

/// Who made the record of an owed hook ([`Owed::record`]).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Recorded {
    /// An earlier run, whose hook is still owed.
    Earlier,
    /// This run.
    Now,
}

/// Starts `/bin/sh -c -- command` (the shell `system()` runs, found without `PATH`; `--` so
/// that a command that begins with a dash is not read as the shell's options) in its own
/// process group (so that what it starts can be stopped with it), with no signal blocked,
/// SIGPIPE back at its default action (the Rust runtime ignores it in nodecert), stdout on
/// nodecert's stderr (stdout belongs to `--report json`) and the environment without the auth
/// keys' variables.
fn start(command: &str, cert: &Path, key: &Path) -> std::result::Result<Pid, String> {
    let command = CString::new(command).map_err(|_| "the command contains a NUL byte")?;
    let args = [
        c"sh".to_owned(),
        c"-c".to_owned(),
        c"--".to_owned(),
        command,
    ];

    let secret = crate::auth::secret_env_vars();
    // Absolute, so that a hook that changes directory first still finds them.
    let absolute = |path: &Path| std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let (cert, key) = (absolute(cert), absolute(key));
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
    posix_spawn(c"/bin/sh", &actions, &attr, &args, &env).map_err(errno)
}

/// How the hook ended.
enum Ended {
    Exited(i32),
    Killed(Signal),
    /// Stopped by SIGTTIN or SIGTTOU: it read from the terminal (a prompt, `read`) or changed
    /// its settings (a password prompt turning echo off), which a background process group
    /// may not. Left alone, it would wait, stopped, for `--exec-timeout`.
    WantsTerminal(Signal),
}

/// How the child ended, or None if it is still running at `deadline` (None: no deadline).
fn wait_until(child: Pid, deadline: Option<Instant>) -> Result<Option<Ended>> {
    let mut pause = Duration::from_millis(1);
    loop {
        match waitpid(child, Some(WaitPidFlag::WNOHANG | WaitPidFlag::WUNTRACED)) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(Some(Ended::Exited(code))),
            Ok(WaitStatus::Signaled(_, signal, _)) => return Ok(Some(Ended::Killed(signal))),
            Ok(WaitStatus::Stopped(_, signal @ (Signal::SIGTTIN | Signal::SIGTTOU))) => {
                return Ok(Some(Ended::WantsTerminal(signal)));
            }
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
    // The shell is reaped as soon as it ends (its zombie would keep the group alive), and once
    // only: its pid could be another hook's by then.
    let mut reaped = false;
    let mut reap = |flags| {
        if !reaped {
            reaped = !matches!(waitpid(child, flags), Ok(WaitStatus::StillAlive));
        }
    };
    end_groups(&[child], Signal::SIGTERM, Duration::from_secs(5), || {
        reap(Some(WaitPidFlag::WNOHANG));
    });
    reap(None);
}

/// Sends `signal` to each process group, then SIGCONT (a stopped member acts on a signal only
/// once it runs again); waits at most `grace` for the groups to be gone, calling `reap` as it
/// waits, and SIGKILLs what is left of them (not a group already gone: its id could be
/// another's by then).
fn end_groups(groups: &[Pid], signal: Signal, grace: Duration, mut reap: impl FnMut()) {
    for group in groups {
        let _ = killpg(*group, signal);
        let _ = killpg(*group, Signal::SIGCONT);
    }
    let deadline = Instant::now() + grace;
    loop {
        reap();
        let left: Vec<&Pid> = (groups.iter())
            .filter(|group| killpg(**group, None).is_ok())
            .collect();
        if left.is_empty() {
            return;
        }
        if Instant::now() >= deadline {
            for group in left {
                let _ = killpg(*group, Signal::SIGKILL);
            }
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
