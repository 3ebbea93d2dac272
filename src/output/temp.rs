//! Temporary files: made beside their target with its final mode, registered so that a
//! signal or a panic can remove them, swapped in with the file they replace, and swept by the
//! next run when a run was killed.

use std::fs::Permissions;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

use super::hidden_name;
use super::target::parent_dir;
use super::target::{check_replaceable, check_target};
use super::{Destination, KEY_MODE, Owner, write_target};
use crate::error::{Error, Result};

/// Removes temporary files a killed run left next to the targets of `destination`. Call it only
/// while holding the pair's lock: then no live run owns them.
pub fn remove_stale_temps(destination: &Destination) {
    let Destination::Files { cert, key, csr } = destination else {
        return;
    };
    // Temporary files are made beside the file a symlink names ([`write_target`]).
    let targets: Vec<PathBuf> = [cert.as_deref(), Some(key.as_path()), csr.as_deref()]
        .into_iter()
        .flatten()
        .map(|t| write_target(t).unwrap_or_else(|_| t.to_path_buf()))
        .collect();
    // Usually one directory for the three files: each is listed once.
    let mut dirs: Vec<PathBuf> = targets.iter().map(|t| parent_dir(t)).collect();
    dirs.sort();
    dirs.dedup();
    for dir in dirs {
        let prefixes: Vec<String> = targets
            .iter()
            .filter(|t| parent_dir(t) == dir)
            .map(|t| temp_prefix(t))
            .collect();
        remove_temps_in(&dir, &prefixes);
    }
}

/// Removes the temporary files of `target` that an interrupted run left; call it only while
/// holding the lock that serialises writers of `target`.
pub fn remove_stale_temps_of(target: &Path) {
    remove_temps_in(&parent_dir(target), &[temp_prefix(target)]);
}

/// Removes the files in `dir` that are temporary files of one of the targets with `prefixes`.
fn remove_temps_in(dir: &Path, prefixes: &[String]) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.ends_with(".tmp") && prefixes.iter().any(|p| name.starts_with(p.as_str())) {
            log::debug!("removing {name}, left by an interrupted run");
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// `.NAME.nodecert-` for target `dir/NAME`: temporary files name their target.
fn temp_prefix(target: &Path) -> String {
    hidden_name(target, "nodecert-")
        .to_string_lossy()
        .into_owned()
}

/// The temporary files of this process that are neither renamed into place nor removed yet.
static PENDING: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

pub(super) fn registry() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    PENDING.lock().unwrap_or_else(|e| e.into_inner())
}

/// Removes every temporary file of this process, for a run stopped by a signal (see
/// `signals`): one of them may hold the new private key. Returns with the registry held, so
/// no file is renamed into place after this; a swap under way finishes first.
pub fn remove_pending() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    let registry = registry();
    remove_all(&registry);
    registry
}

fn remove_all(paths: &[PathBuf]) {
    for path in paths {
        let _ = std::fs::remove_file(path);
    }
}

/// [`remove_pending`] for a run that is ending on a bug (a panic, see
/// [`crate::error::report_panics`]): the panicking thread may hold the registry itself, so it
/// waits at most `wait` for it and otherwise leaves the files to the next run's sweep.
pub fn remove_pending_within(wait: std::time::Duration) {
    use std::sync::TryLockError;
    let deadline = std::time::Instant::now() + wait;
    let registry = loop {
        match PENDING.try_lock() {
            Ok(registry) => break registry,
            Err(TryLockError::Poisoned(poisoned)) => break poisoned.into_inner(),
            Err(TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Err(TryLockError::WouldBlock) => return,
        }
    };
    remove_all(&registry);
    // Held until the process exits: nothing is renamed into place after this.
    std::mem::forget(registry);
}

/// A temporary file of this run, registered for [`remove_pending`] until it is renamed into
/// place or removed.
pub(super) struct Pending(Option<NamedTempFile>);

impl Pending {
    /// Creates the file with `create`, holding the registry meanwhile: a signal handled in
    /// between would otherwise remove the files registered so far and leave this one (the
    /// signal thread keeps the registry until the process ends). The price: a create that
    /// hangs (a dead NFS server) holds up a signal's clean-up, and with it the signal, and
    /// parallel sync workers create their files one at a time.
    fn create(create: impl FnOnce() -> std::io::Result<NamedTempFile>) -> std::io::Result<Self> {
        let mut registry = registry();
        let temp = create()?;
        registry.push(temp.path().to_path_buf());
        Ok(Self(Some(temp)))
    }

    fn file(&self) -> &std::fs::File {
        match &self.0 {
            Some(temp) => temp.as_file(),
            None => unreachable!("a temporary file is used after it was renamed"),
        }
    }

    pub(super) fn file_mut(&mut self) -> &mut std::fs::File {
        match &mut self.0 {
            Some(temp) => temp.as_file_mut(),
            None => unreachable!("a temporary file is used after it was renamed"),
        }
    }

    /// Puts the file at `target` and the file `target` held, if any, at the temporary name
    /// (removed with it), in one step; says how to undo that. The caller holds [`registry()`].
    pub(super) fn swap_in(&self, target: &Path) -> std::io::Result<Undo> {
        use nix::errno::Errno;
        use nix::fcntl::{AT_FDCWD, RenameFlags, renameat2};
        let temp = self.path();
        match renameat2(
            AT_FDCWD,
            temp,
            AT_FDCWD,
            target,
            RenameFlags::RENAME_EXCHANGE,
        ) {
            Ok(()) => Ok(Undo::Exchange(temp.to_path_buf())),
            // Nothing to exchange with: a new file.
            Err(Errno::ENOENT) => std::fs::rename(temp, target).map(|()| Undo::Remove),
            // A file system without RENAME_EXCHANGE (NFS): replaced as before, with no way back.
            Err(Errno::EINVAL | Errno::EOPNOTSUPP | Errno::ENOSYS) => {
                std::fs::rename(temp, target).map(|()| Undo::Impossible)
            }
            Err(errno) => Err(errno.into()),
        }
    }

    fn path(&self) -> &Path {
        match &self.0 {
            Some(temp) => temp.path(),
            None => unreachable!("a temporary file is used after it was renamed"),
        }
    }

    /// Renames the file to `target` (or removes it, if that fails); `registry` is
    /// [`registry()`], held by the caller.
    pub(super) fn persist(
        &mut self,
        target: &Path,
        registry: &mut Vec<PathBuf>,
    ) -> std::io::Result<()> {
        let Some(temp) = self.0.take() else {
            return Ok(());
        };
        let path = temp.path().to_path_buf();
        // On failure the temporary file comes back in the error, and goes with it.
        let result = temp.persist(target).map(drop).map_err(|e| e.error);
        registry.retain(|p| *p != path);
        result
    }
}

/// How to take back one file of a swap.
pub(super) enum Undo {
    /// Exchange the target with this temporary name again: the old file comes back.
    Exchange(PathBuf),
    /// Remove the target: there was no file before.
    Remove,
    /// The file system could not exchange, so the old file is gone.
    Impossible,
}

/// Undoes the swaps in `done` (latest first) after `failure`, and says what happened, for the
/// error line: the pair is the old one again, or (rarely) it may not match.
pub(super) fn roll_back(failure: &std::io::Error, done: &[(&Path, Undo)]) -> String {
    let mut lost = Vec::new();
    for (target, undo) in done.iter().rev() {
        let undone = match undo {
            Undo::Exchange(temp) => nix::fcntl::renameat2(
                nix::fcntl::AT_FDCWD,
                temp.as_path(),
                nix::fcntl::AT_FDCWD,
                *target,
                nix::fcntl::RenameFlags::RENAME_EXCHANGE,
            )
            .is_ok(),
            Undo::Remove => std::fs::remove_file(target).is_ok(),
            Undo::Impossible => false,
        };
        if !undone {
            lost.push(target.display().to_string());
        }
    }
    let hint = match failure.raw_os_error() {
        Some(nix::libc::EBUSY) => {
            ": it is a mount point (a bind-mounted file?), and a file is replaced by rename: \
             mount its directory instead"
        }
        Some(nix::libc::EPERM) => {
            ": it is immutable or append-only (lsattr), or belongs to another user in a sticky \
             directory"
        }
        _ => "",
    };
    let after = match (done.is_empty(), lost.is_empty()) {
        (true, _) => String::new(),
        (false, true) => "; the files replaced before it were put back".into(),
        (false, false) => format!(
            "; {} could not be put back, so the pair may not match: the next run replaces it",
            lost.join(", ")
        ),
    };
    format!("cannot replace it: {failure}{hint}{after}")
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(temp) = self.0.take() {
            let mut registry = registry();
            let path = temp.path().to_path_buf();
            drop(temp);
            registry.retain(|p| *p != path);
        }
    }
}

pub(super) fn reserve(target: &Path, mode: u32, owner: Option<Owner>) -> Result<Pending> {
    let dir = check_target(target)?;
    check_replaceable(target, &dir)?;
    // Created 0600 (narrowed further by the umask, never widened), then set to its final mode
    // with fchmod before a byte is written: a key file is never readable by others.
    let prefix = temp_prefix(target);
    let mut builder = tempfile::Builder::new();
    builder
        .prefix(&prefix)
        .suffix(".tmp")
        .permissions(Permissions::from_mode(KEY_MODE));
    let temp = Pending::create(|| builder.tempfile_in(&dir)).map_err(|e| {
        // tempfile's error ends with the random temporary path (`… at path "…"`), which says
        // nothing to a reader; the error it wraps is not reachable otherwise.
        let why = e.to_string();
        let why = why
            .rsplit_once(" at path ")
            .map_or(why.as_str(), |(why, _)| why);
        Error::output(
            target,
            format!("cannot create a file in {}: {why}", dir.display()),
        )
    })?;
    match owner {
        Some(owner) => {
            // `--owner USER` leaves the group as chown does: the group of the file replaced,
            // if that file was the user's or this run's user's (the group of a file someone
            // else put there is no instruction to follow).
            let gid = owner.gid.or_else(|| {
                use std::os::unix::fs::MetadataExt as _;
                let old = std::fs::symlink_metadata(target).ok()?;
                let me = nix::unistd::geteuid().as_raw();
                (old.is_file() && (owner.uid == Some(old.uid()) || old.uid() == me))
                    .then(|| old.gid())
            });
            std::os::unix::fs::fchown(temp.file(), owner.uid, gid).map_err(|e| {
                Error::output(
                    target,
                    format!(
                        "cannot change the owner ({}): {e}",
                        crate::logging::setting("--owner")
                    ),
                )
            })?;
        }
        None => keep_owner(target, temp.file()),
    }
    temp.file()
        .set_permissions(Permissions::from_mode(mode))
        .map_err(|e| Error::output(target, e))?;
    Ok(temp)
}

/// Without `--owner`, a file that replaces one of this user's keeps its group, as cfssljson's
/// in-place write does: a key shared with a service group (`--key-mode 0640`, the group set
/// once with chgrp) stays readable by that group after renewal. (Root renewing a service's own
/// pair gives the new files to that service: see `Job::inherited_owner`.)
///
/// The owner of a file someone else put there is no instruction to follow: root takes such a
/// file, and says so.
fn keep_owner(target: &Path, new: &std::fs::File) {
    use std::os::unix::fs::MetadataExt as _;
    let (Ok(old), Ok(created)) = (std::fs::symlink_metadata(target), new.metadata()) else {
        return;
    };
    if !old.is_file() || (old.uid(), old.gid()) == (created.uid(), created.gid()) {
        return;
    }
    if old.uid() != created.uid() {
        if created.uid() == 0 {
            log::warn!(
                "{}: belonged to uid {}; the new file is root's (root keeps the owner only of a \
                 pair of the directory owner's that the pinned CA issued for this CN, checked \
                 with -tls-remote-ca): set {} {} to keep it theirs",
                target.display(),
                old.uid(),
                crate::logging::setting("--owner"),
                old.uid()
            );
        }
        return;
    }
    if let Err(e) = std::os::unix::fs::fchown(new, None, Some(old.gid())) {
        // A group given no more than everyone else (0600, 0644) is no loss: said only with
        // -loglevel 0, or a user outside it would be warned on every renewal.
        let level = if (old.mode() >> 3) & 0o7 == old.mode() & 0o7 {
            log::Level::Debug
        } else {
            log::Level::Warn
        };
        log::log!(
            level,
            "{}: cannot keep its group (gid {}): {e}; the new file has gid {}",
            target.display(),
            old.gid(),
            created.gid()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_temps_of_this_pair_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let dest = Destination::bare(&dir.path().join("n"));
        std::fs::write(dir.path().join(".n.pem.nodecert-abc.tmp"), "x").unwrap();
        std::fs::write(dir.path().join(".other.pem.nodecert-abc.tmp"), "x").unwrap();
        std::fs::write(dir.path().join(".n-key.pem.nodecert-abc.tmp"), "x").unwrap();
        std::fs::write(dir.path().join(".n.csr.nodecert-abc.tmp"), "x").unwrap();
        remove_stale_temps(&dest);
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, [".other.pem.nodecert-abc.tmp"]);

        // The key in another directory than the certificate and the CSR.
        let keys = tempfile::tempdir().unwrap();
        let dest = Destination::Files {
            cert: Some(dir.path().join("c.pem")),
            key: keys.path().join("k.pem"),
            csr: Some(dir.path().join("c.csr")),
        };
        for (d, name) in [(&dir, "c.pem"), (&keys, "k.pem"), (&dir, "c.csr")] {
            std::fs::write(d.path().join(format!(".{name}.nodecert-x.tmp")), "x").unwrap();
        }
        std::fs::write(keys.path().join(".c.pem.nodecert-x.tmp"), "x").unwrap();
        remove_stale_temps(&dest);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let left: Vec<_> = std::fs::read_dir(keys.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            left,
            [".c.pem.nodecert-x.tmp"],
            "not a target in that directory"
        );
    }
}
