//! One writer per output pair: an exclusive `flock` on a lock file next to the certificate.
//!
//! Concurrent runs on one pair (a timer firing while an operator runs it by hand, two sync
//! processes) never interleave their writes: the second waits, bounded, and then reports busy.
//! The lock file is never deleted (deleting a flock'd file lets a third process lock a new inode).
//!
//! `flock` needs only an open file, so whoever can open the lock file can hold it and stall
//! renewal until the certificate expires. The file is therefore private to its owner (0600,
//! tightened if an older one is wider) and opened without following a symlink or blocking on a
//! FIFO planted in its place. Its owner must be someone who could replace the pair anyway: the
//! user running nodecert, root, the owner of the directory, or the user `--owner` gives the pair
//! to. Root makes a new lock file that user's (or the directory owner's), so that root's runs
//! and the owner's own (a first issuance by root with `--owner`, renewals by the service user)
//! can take turns on one pair.

use std::fs::{File, OpenOptions, TryLockError};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// Held for as long as the value lives.
#[derive(Debug)]
pub(crate) struct PairLock {
    /// None on a read-only file system without a lock file: no one can write there, so there
    /// is no other writer to keep out.
    _file: Option<File>,
}

impl PairLock {
    /// Locks the pair whose certificate is `cert_path`, waiting at most `wait`. `owners` says
    /// who else may own the lock file.
    pub(crate) fn acquire(cert_path: &Path, wait: Duration, owners: &Owners) -> Result<Self> {
        let path = lock_path(cert_path);
        let dir = crate::output::existing_parent_dir(cert_path, "directory")?;
        let Some(file) = open_private(&path, &dir, owners)? else {
            return Ok(Self { _file: None });
        };
        // A wait too long to represent is a wait without end.
        let deadline = Instant::now().checked_add(wait);
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Self { _file: Some(file) }),
                Err(TryLockError::WouldBlock) if deadline.is_none_or(|d| Instant::now() < d) => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(TryLockError::WouldBlock) => {
                    return Err(Error::Busy(format!(
                        "another nodecert run holds {} (waited {}): try again later",
                        path.display(),
                        humantime::format_duration(wait)
                    )));
                }
                Err(TryLockError::Error(e)) => {
                    return Err(Error::output(&path, format!("cannot lock: {e}")));
                }
            }
        }
    }
}

/// Who besides the running user, root and the directory's owner may own a pair's lock file:
/// users who could spoil the pair anyway.
#[derive(Debug, Default)]
pub(crate) struct Owners {
    /// The uid `--owner` gives the pair to: root makes the lock file theirs.
    pub given_to: Option<u32>,
    /// The owners of the pair's existing files, who may rewrite them.
    pub of_files: Vec<u32>,
}

/// Opens the lock file at `path` in `dir`, creating it (0600) if there is none: a regular file,
/// not a symlink or FIFO, of a trusted owner (see the module's comment), readable by no one
/// else.
///
/// An existing lock file is opened for reading, which is all `flock` needs: one made under a
/// umask that took its owner's write bit still opens. Where no lock file can be made (a
/// read-only file system, a directory this user may not write) there is `None`: no run of this
/// user's can write the pair there either, a valid pair is still kept with exit 0, and a due
/// one is refused before the CA is asked ([`crate::output`]'s check of the directory).
fn open_private(path: &Path, dir: &Path, owners: &Owners) -> Result<Option<File>> {
    let refuse = |why: String| Error::output(path, why);
    let me = nix::unistd::geteuid().as_raw();
    let dir_owner = std::fs::metadata(dir).map_or(me, |meta| meta.uid());
    let mut created = false;
    let opened = match crate::error::open_regular(OpenOptions::new().read(true), path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut options = OpenOptions::new();
            options.create(true).truncate(false).write(true).mode(0o600);
            created = true;
            match crate::error::open_regular(&mut options, path) {
                Err(e)
                    if matches!(e.raw_os_error(), Some(nix::libc::EROFS | nix::libc::EACCES)) =>
                {
                    log::debug!(
                        "no lock file can be made in {} ({e}): not locking",
                        dir.display()
                    );
                    return Ok(None);
                }
                other => other,
            }
        }
        other => other,
    };
    let file = opened.map_err(|e| match (e.raw_os_error(), e.kind()) {
        (Some(nix::libc::ELOOP), _) => {
            refuse("the lock file is a symlink: remove it (nodecert creates its own)".into())
        }
        (Some(nix::libc::ENXIO), _) | (_, std::io::ErrorKind::InvalidInput) => refuse(
            "the lock file is not a regular file: remove it (nodecert creates its own)".into(),
        ),
        (Some(nix::libc::EACCES), _) => match std::fs::symlink_metadata(path) {
            Ok(meta) if meta.uid() != me => refuse(format!(
                "cannot open the lock file ({e}): it belongs to uid {}; if that user's runs \
                 manage this pair, run as that user or root, else remove it (nodecert makes its \
                 own)",
                meta.uid()
            )),
            _ => refuse(format!("cannot open the lock file: {e}")),
        },
        _ => refuse(format!("cannot open the lock file: {e}")),
    })?;
    let meta = file
        .metadata()
        .map_err(|e| refuse(format!("cannot inspect the lock file: {e}")))?;
    let holder = meta.uid();
    let trusted = [me, 0, dir_owner].contains(&holder)
        || owners.given_to == Some(holder)
        || owners.of_files.contains(&holder);
    // Neither change is possible, or needed, on a read-only file system: no one writes there.
    let read_only = |e: &std::io::Error| e.raw_os_error() == Some(nix::libc::EROFS);
    if !trusted && me != 0 {
        return Err(refuse(format!(
            "the lock file belongs to uid {holder}, who neither runs nodecert (uid {me}) nor owns \
             the directory, the pair's files or the pair (--owner), so could hold it and stall \
             renewal: remove it (nodecert makes its own)"
        )));
    }
    // Root gives the lock file to whoever the pair is for, so that their own runs can open it;
    // and takes one of a user it no longer trusts (one whose pair root took over, or one planted
    // there), who can then no longer open it anew.
    let wanted = match owners.given_to {
        Some(uid) => Some(uid),
        None if !trusted => Some(dir_owner),
        None => (created && dir_owner != me).then_some(dir_owner),
    };
    if me == 0
        && let Some(uid) = wanted.filter(|&uid| uid != holder)
    {
        match std::os::unix::fs::fchown(&file, Some(uid), None) {
            Err(e) if !read_only(&e) => {
                return Err(refuse(format!(
                    "cannot give the lock file to uid {uid}: {e}"
                )));
            }
            _ if !trusted => log::warn!(
                "{}: belonged to uid {holder}, who no longer owns the pair or its directory: \
                 given to uid {uid}",
                path.display()
            ),
            _ => {}
        }
    }
    if meta.mode() & 0o077 != 0
        && let Err(e) = file.set_permissions(std::fs::Permissions::from_mode(0o600))
        && !read_only(&e)
    {
        return Err(refuse(format!("cannot make the lock file private: {e}")));
    }
    Ok(Some(file))
}

/// `dir/.NAME.lock` for the certificate `dir/NAME`.
pub(crate) fn lock_path(cert_path: &Path) -> PathBuf {
    cert_path.with_file_name(crate::output::hidden_name(cert_path, "lock"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_waits_then_is_busy() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("node.pem");
        let first = PairLock::acquire(&cert, Duration::ZERO, &Owners::default()).unwrap();
        let err =
            PairLock::acquire(&cert, Duration::from_millis(120), &Owners::default()).unwrap_err();
        assert_eq!(err.exit_code(), crate::error::exit::BUSY);
        drop(first);
        PairLock::acquire(&cert, Duration::ZERO, &Owners::default()).unwrap();
        let lock = dir.path().join(".node.pem.lock");
        assert_eq!(std::fs::metadata(&lock).unwrap().mode() & 0o777, 0o600);
        // A wait too long for Instant is a wait without end, not a panic.
        let _held = PairLock::acquire(&cert, Duration::ZERO, &Owners::default()).unwrap();
        let waiter =
            std::thread::spawn(move || PairLock::acquire(&cert, Duration::MAX, &Owners::default()));
        std::thread::sleep(Duration::from_millis(120));
        assert!(!waiter.is_finished());
        drop(_held);
        assert!(waiter.join().unwrap().is_ok());
    }

    #[test]
    fn a_planted_lock_file_is_refused_or_made_private() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("node.pem");
        let lock = dir.path().join(".node.pem.lock");
        // A symlink (here dangling, pointing where root must not create files): refused.
        let target = dir.path().join("elsewhere");
        std::os::unix::fs::symlink(&target, &lock).unwrap();
        let err = PairLock::acquire(&cert, Duration::ZERO, &Owners::default()).unwrap_err();
        assert_eq!(err.exit_code(), crate::error::exit::OUTPUT);
        assert!(err.to_string().contains("is a symlink"), "{err}");
        assert!(!target.exists());
        std::fs::remove_file(&lock).unwrap();
        // A FIFO: refused at once instead of hanging in open().
        nix::unistd::mkfifo(&lock, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let err = PairLock::acquire(&cert, Duration::ZERO, &Owners::default()).unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");
        std::fs::remove_file(&lock).unwrap();
        // An existing world-readable lock file (an older nodecert's): tightened to 0600.
        std::fs::write(&lock, "").unwrap();
        std::fs::set_permissions(&lock, std::fs::Permissions::from_mode(0o644)).unwrap();
        PairLock::acquire(&cert, Duration::ZERO, &Owners::default()).unwrap();
        assert_eq!(std::fs::metadata(&lock).unwrap().mode() & 0o777, 0o600);
    }
}
