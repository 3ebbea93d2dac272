//! One writer per output pair: an exclusive `flock` on a lock file next to the certificate.
//!
//! Concurrent runs on one pair (a timer firing while an operator runs it by hand, two sync
//! processes) never interleave their writes: the second waits, bounded, and then reports busy.
//! The lock file is never deleted (deleting a flock'd file lets a third process lock a new inode).
//!
//! `flock` needs only an open file, so whoever can open the lock file can hold it and stall
//! renewal until the certificate expires. The file is therefore private to its owner (0600,
//! tightened if an older one is wider), must belong to the user running nodecert, and is opened
//! without following a symlink or blocking on a FIFO planted in its place.

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
    /// Locks the pair whose certificate is `cert_path`, waiting at most `wait`.
    pub(crate) fn acquire(cert_path: &Path, wait: Duration) -> Result<Self> {
        let path = lock_path(cert_path);
        let dir = crate::output::existing_parent_dir(cert_path, "directory")?;
        let Some(file) = open_private(&path)? else {
            log::debug!(
                "{} is on a read-only file system and has no lock file: not locking",
                dir.display()
            );
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

/// Opens (creating 0600) the lock file at `path`: a regular file of this user's, not a symlink,
/// FIFO or another user's file, and readable by no one else.
///
/// On a read-only file system an existing lock file is opened for reading (`flock` needs no
/// more), and a missing one is `None`: a valid pair there must still be kept with exit 0, and a
/// due one fails later, when its files are written.
fn open_private(path: &Path) -> Result<Option<File>> {
    let refuse = |why: String| Error::output(path, why);
    let mut options = OpenOptions::new();
    options.create(true).truncate(false).write(true).mode(0o600);
    let not_regular = || {
        refuse("the lock file is not a regular file: remove it (nodecert creates its own)".into())
    };
    let mut read_only = false;
    let opened = match crate::error::open_regular(&mut options, path) {
        Err(e) if e.raw_os_error() == Some(nix::libc::EROFS) => {
            read_only = true;
            match crate::error::open_regular(OpenOptions::new().read(true), path) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                other => other,
            }
        }
        other => other,
    };
    let file = opened.map_err(|e| match (e.raw_os_error(), e.kind()) {
        (Some(nix::libc::ELOOP), _) => {
            refuse("the lock file is a symlink: remove it (nodecert creates its own)".into())
        }
        (Some(nix::libc::ENXIO), _) | (_, std::io::ErrorKind::InvalidInput) => not_regular(),
        // Typically made by a run as root (with --owner, for this user's pair).
        (Some(nix::libc::EACCES), _) => match std::fs::symlink_metadata(path) {
            Ok(meta) if meta.uid() != nix::unistd::geteuid().as_raw() => refuse(format!(
                "cannot open the lock file ({e}): it belongs to uid {}, a run as another user \
                 made it; run as that user, or remove it",
                meta.uid()
            )),
            _ => refuse(format!("cannot open the lock file: {e}")),
        },
        _ => refuse(format!("cannot open the lock file: {e}")),
    })?;
    let meta = file
        .metadata()
        .map_err(|e| refuse(format!("cannot inspect the lock file: {e}")))?;
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != me {
        return Err(refuse(format!(
            "the lock file belongs to uid {}, not to this user (uid {me}), so another user could \
             hold it and stall renewal: remove it",
            meta.uid()
        )));
    }
    if meta.mode() & 0o077 != 0 && !read_only {
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| refuse(format!("cannot make the lock file private: {e}")))?;
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
        let first = PairLock::acquire(&cert, Duration::ZERO).unwrap();
        let err = PairLock::acquire(&cert, Duration::from_millis(120)).unwrap_err();
        assert_eq!(err.exit_code(), crate::error::exit::BUSY);
        drop(first);
        PairLock::acquire(&cert, Duration::ZERO).unwrap();
        let lock = dir.path().join(".node.pem.lock");
        assert_eq!(std::fs::metadata(&lock).unwrap().mode() & 0o777, 0o600);
        // A wait too long for Instant is a wait without end, not a panic.
        let _held = PairLock::acquire(&cert, Duration::ZERO).unwrap();
        let waiter = std::thread::spawn(move || PairLock::acquire(&cert, Duration::MAX));
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
        let err = PairLock::acquire(&cert, Duration::ZERO).unwrap_err();
        assert_eq!(err.exit_code(), crate::error::exit::OUTPUT);
        assert!(err.to_string().contains("is a symlink"), "{err}");
        assert!(!target.exists());
        std::fs::remove_file(&lock).unwrap();
        // A FIFO: refused at once instead of hanging in open().
        nix::unistd::mkfifo(&lock, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let err = PairLock::acquire(&cert, Duration::ZERO).unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");
        std::fs::remove_file(&lock).unwrap();
        // An existing world-readable lock file (an older nodecert's): tightened to 0600.
        std::fs::write(&lock, "").unwrap();
        std::fs::set_permissions(&lock, std::fs::Permissions::from_mode(0o644)).unwrap();
        PairLock::acquire(&cert, Duration::ZERO).unwrap();
        assert_eq!(std::fs::metadata(&lock).unwrap().mode() & 0o777, 0o600);
    }
}
