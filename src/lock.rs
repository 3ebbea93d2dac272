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
//! to. Root gives a lock file it makes to that user (or to the directory's owner), so that
//! root's runs and the owner's own (a first issuance by root with `--owner`, renewals by the
//! service user) can take turns on one pair; it takes back one of another user, who then
//! cannot open it anew. Root changes the owner or mode only of an empty file with one name: a
//! hard link planted at the lock's name is refused, not chowned.

use std::fs::{File, OpenOptions, TryLockError};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// Held for as long as the value lives.
#[derive(Debug)]
pub(crate) struct PairLock {
    /// The locked file, or why there is none: no lock file can be made (a read-only file
    /// system, a directory this user may not write) or opened (another user's). A pair may
    /// then still be kept, but nothing may be written ([`Self::unheld`]).
    file: std::result::Result<File, String>,
}

impl PairLock {
    /// Locks the pair whose certificate is `cert_path`, waiting at most `wait`. `given_to` is
    /// the uid `--owner` gives the pair to, who may own the lock file too.
    pub(crate) fn acquire(cert_path: &Path, wait: Duration, given_to: Option<u32>) -> Result<Self> {
        let path = lock_path(cert_path);
        let dir = crate::output::existing_parent_dir(cert_path, "directory")?;
        let Opened {
            file,
            holder,
            trusted,
        } = match open_private(&path, &dir, given_to)? {
            Ok(opened) => opened,
            Err(why) => {
                log::debug!("{}: {why}: not locking", path.display());
                return Ok(Self { file: Err(why) });
            }
        };
        // A wait too long to represent is a wait without end.
        let deadline = Instant::now().checked_add(wait);
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Self { file: Ok(file) }),
                Err(TryLockError::WouldBlock) if deadline.is_none_or(|d| Instant::now() < d) => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(TryLockError::WouldBlock) => {
                    // A lock file of someone root does not trust may be held by no nodecert
                    // run at all; any holder can be found with fuser.
                    let whose = if trusted {
                        String::new()
                    } else {
                        format!(", a lock file that was uid {holder}'s")
                    };
                    return Err(Error::Busy(format!(
                        "another run holds {}{whose} (waited {}): try again later; `fuser -v {}` \
                         shows who holds it",
                        path.display(),
                        humantime::format_duration(wait),
                        path.display()
                    )));
                }
                Err(TryLockError::Error(e)) => {
                    return Err(Error::output(&path, format!("cannot lock: {e}")));
                }
            }
        }
    }

    /// Why no lock is held, if none is: a run may then keep a pair but write nothing.
    pub(crate) fn unheld(&self) -> Option<&str> {
        self.file.as_ref().err().map(String::as_str)
    }
}

/// Whether `uid` is someone who could replace a pair anyway, so whose file beside it (a lock
/// file, a key to reuse) is no plant: the user running nodecert, root, the owner of the pair's
/// directory (`dir_owner`), or the user `--owner` gives the pair to (`given_to`).
pub(crate) fn could_spoil_the_pair(uid: u32, dir_owner: u32, given_to: Option<u32>) -> bool {
    [nix::unistd::geteuid().as_raw(), 0, dir_owner].contains(&uid) || given_to == Some(uid)
}

/// Opens the lock file at `path` in `dir`, creating it (0600, `O_EXCL`) if there is none: a
/// regular file, not a symlink or FIFO, of a trusted owner (see the module's comment), readable
/// by no one else. Returns it with the uid it belonged to when opened and whether that was a
/// trusted one.
///
/// It is opened for writing (an exclusive `flock` on NFS needs that), or else for reading: one
/// made under a umask that took its owner's write bit still opens. Where none can be made (a
/// read-only file system, a directory this user may not write) or opened (another user's,
/// private to them) the inner `Err` says why: a valid pair is still kept with exit 0, and a due
/// one is refused before the CA is asked.
fn open_private(
    path: &Path,
    dir: &Path,
    given_to: Option<u32>,
) -> Result<std::result::Result<Opened, String>> {
    let refuse = |why: String| Error::output(path, why);
    let me = nix::unistd::geteuid().as_raw();
    let dir_owner = std::fs::metadata(dir).map_or(me, |meta| meta.uid());
    let existing =
        || match crate::error::open_regular(OpenOptions::new().read(true).write(true), path) {
            Err(e) if matches!(e.raw_os_error(), Some(nix::libc::EACCES | nix::libc::EROFS)) => {
                crate::error::open_regular(OpenOptions::new().read(true), path)
            }
            other => other,
        };
    let mut created = false;
    let opened = match existing() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut options = OpenOptions::new();
            options.create_new(true).write(true).mode(0o600);
            match crate::error::open_regular(&mut options, path) {
                Ok(file) => {
                    created = true;
                    Ok(file)
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => existing(),
                other => other,
            }
        }
        other => other,
    };
    let file = match opened {
        Ok(file) => file,
        Err(e) if e.raw_os_error() == Some(nix::libc::EACCES) => {
            return Ok(Err(match std::fs::symlink_metadata(path) {
                Ok(meta) if me == 0 => format!(
                    "cannot open the lock file ({e}), though this is root: a network file system \
                     that maps root to nobody? The file is uid {}'s: run as that user, or remove \
                     it (nodecert makes its own)",
                    meta.uid()
                ),
                Ok(meta) if meta.uid() != me => format!(
                    "cannot open the lock file ({e}): it belongs to uid {}; if that user's runs \
                     manage this pair, run as that user or root, else remove it (nodecert makes \
                     its own)",
                    meta.uid()
                ),
                Ok(_) => format!("cannot open the lock file ({e})"),
                Err(_) => format!("no lock file can be made in {} ({e})", dir.display()),
            }));
        }
        Err(e) if e.raw_os_error() == Some(nix::libc::EROFS) => {
            return Ok(Err(format!(
                "no lock file can be made in {} ({e})",
                dir.display()
            )));
        }
        Err(e) => {
            return Err(match (e.raw_os_error(), e.kind()) {
                (Some(nix::libc::ELOOP), _) => {
                    refuse("the lock file is a symlink: remove it (nodecert makes its own)".into())
                }
                (Some(nix::libc::ENXIO), _) | (_, std::io::ErrorKind::InvalidInput) => refuse(
                    "the lock file is not a regular file: remove it (nodecert makes its own)"
                        .into(),
                ),
                _ => refuse(format!("cannot open the lock file: {e}")),
            });
        }
    };
    let meta = file
        .metadata()
        .map_err(|e| refuse(format!("cannot inspect the lock file: {e}")))?;
    // nodecert's lock files are empty and have one name: anything else was put there.
    if meta.nlink() != 1 || meta.len() != 0 {
        return Err(refuse(format!(
            "the lock file has {} names (hard links) or content ({} bytes), so nodecert did not \
             make it: remove it (nodecert makes its own)",
            meta.nlink(),
            meta.len()
        )));
    }
    let holder = meta.uid();
    let trusted = could_spoil_the_pair(holder, dir_owner, given_to);
    if !trusted && me != 0 {
        return Err(refuse(format!(
            "the lock file belongs to uid {holder}, who neither runs nodecert (uid {me}) nor owns \
             the directory nor is {}, so could hold it and stall renewal: remove it \
             (nodecert makes its own)",
            crate::logging::setting("--owner")
        )));
    }
    // Neither change is possible, or needed, on a read-only file system: no one writes there.
    let read_only = |e: &std::io::Error| e.raw_os_error() == Some(nix::libc::EROFS);
    // Root gives the lock file to whoever the pair is for, so that their own runs can open it;
    // and takes one of a user it does not trust (one whose pair root took back, or one planted
    // there), who can then no longer open it anew.
    let wanted = match given_to {
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
                    "cannot give the lock file to uid {uid} ({e}): remove it (nodecert makes its \
                     own)"
                )));
            }
            _ if !trusted => log::warn!(
                "{}: belonged to uid {holder}, who neither owns the directory nor is {}: given \
                 to uid {uid}",
                path.display(),
                crate::logging::setting("--owner")
            ),
            _ => {}
        }
    }
    // Only the file's owner (or root) may narrow it; someone else's wider lock file is theirs.
    if meta.mode() & 0o077 != 0
        && (me == 0 || holder == me)
        && let Err(e) = file.set_permissions(std::fs::Permissions::from_mode(0o600))
        && !read_only(&e)
    {
        return Err(refuse(format!(
            "cannot make the lock file private ({e}): remove it (nodecert makes its own)"
        )));
    }
    Ok(Ok(Opened {
        file,
        holder,
        trusted,
    }))
}

/// A lock file [`open_private`] opened.
struct Opened {
    file: File,
    /// Its owner when it was opened (before root gave or took it).
    holder: u32,
    /// Whether that owner was one the lock may belong to.
    trusted: bool,
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
        let first = PairLock::acquire(&cert, Duration::ZERO, None).unwrap();
        let err = PairLock::acquire(&cert, Duration::from_millis(120), None).unwrap_err();
        assert_eq!(err.exit_code(), crate::error::exit::BUSY);
        drop(first);
        PairLock::acquire(&cert, Duration::ZERO, None).unwrap();
        let lock = dir.path().join(".node.pem.lock");
        assert_eq!(std::fs::metadata(&lock).unwrap().mode() & 0o777, 0o600);
        // A wait too long for Instant is a wait without end, not a panic.
        let _held = PairLock::acquire(&cert, Duration::ZERO, None).unwrap();
        let waiter = std::thread::spawn(move || PairLock::acquire(&cert, Duration::MAX, None));
        std::thread::sleep(Duration::from_millis(120));
        assert!(!waiter.is_finished());
        drop(_held);
        assert!(waiter.join().unwrap().is_ok());
    }

    /// A lock file of another user that root does not trust is taken, and if it is held, the
    /// busy message names whose it was: that may be no nodecert run at all.
    #[test]
    fn a_held_foreign_lock_file_is_named() {
        // Run as root, as the suite is (chown).
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("node.pem");
        let lock = dir.path().join(".node.pem.lock");
        let held = PairLock::acquire(&cert, Duration::ZERO, None).unwrap();
        std::os::unix::fs::chown(&lock, Some(12345), Some(12345)).unwrap();
        let err = PairLock::acquire(&cert, Duration::from_millis(60), None).unwrap_err();
        assert_eq!(err.exit_code(), crate::error::exit::BUSY);
        assert!(
            err.to_string().contains(&format!(
                "another run holds {}, a lock file that was uid 12345's (waited 60ms): try again \
                 later; `fuser -v {}` shows who holds it",
                lock.display(),
                lock.display()
            )),
            "{err}"
        );
        assert_eq!(std::fs::metadata(&lock).unwrap().uid(), 0, "taken by root");
        drop(held);
    }

    #[test]
    fn a_planted_lock_file_is_refused_or_made_private() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("node.pem");
        let lock = dir.path().join(".node.pem.lock");
        // A symlink (here dangling, pointing where root must not create files): refused.
        let target = dir.path().join("elsewhere");
        std::os::unix::fs::symlink(&target, &lock).unwrap();
        let err = PairLock::acquire(&cert, Duration::ZERO, None).unwrap_err();
        assert_eq!(err.exit_code(), crate::error::exit::OUTPUT);
        assert!(err.to_string().contains("is a symlink"), "{err}");
        assert!(!target.exists());
        std::fs::remove_file(&lock).unwrap();
        // A FIFO: refused at once instead of hanging in open().
        nix::unistd::mkfifo(&lock, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let err = PairLock::acquire(&cert, Duration::ZERO, None).unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");
        std::fs::remove_file(&lock).unwrap();
        // A hard link to another file, or a file with content: not a lock file nodecert made,
        // and not chowned or narrowed by root.
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "x").unwrap();
        std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::hard_link(&victim, &lock).unwrap();
        let err = PairLock::acquire(&cert, Duration::ZERO, Some(12345)).unwrap_err();
        assert_eq!(err.exit_code(), crate::error::exit::OUTPUT);
        assert!(err.to_string().contains("has 2 names"), "{err}");
        std::fs::remove_file(&lock).unwrap();
        std::fs::copy(&victim, &lock).unwrap();
        let err = PairLock::acquire(&cert, Duration::ZERO, Some(12345)).unwrap_err();
        assert_eq!(err.exit_code(), crate::error::exit::OUTPUT);
        assert!(err.to_string().contains("content (1 bytes)"), "{err}");
        let meta = std::fs::metadata(&victim).unwrap();
        assert_eq!((meta.uid(), meta.mode() & 0o777), (0, 0o644), "left alone");
        std::fs::remove_file(&lock).unwrap();
        // An existing world-readable lock file (an older nodecert's): tightened to 0600.
        std::fs::write(&lock, "").unwrap();
        std::fs::set_permissions(&lock, std::fs::Permissions::from_mode(0o644)).unwrap();
        PairLock::acquire(&cert, Duration::ZERO, None).unwrap();
        assert_eq!(std::fs::metadata(&lock).unwrap().mode() & 0o777, 0o600);
    }
}
