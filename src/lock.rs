//! One writer per output pair: an exclusive `flock` on a lock file next to the certificate.
//!
//! Concurrent runs on one pair (a timer firing while an operator runs it by hand, two sync
//! processes) never interleave their writes: the second waits, bounded, and then reports busy.
//! The lock file is never deleted (deleting a flock'd file lets a third process lock a new inode).

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// Held for as long as the value lives.
#[derive(Debug)]
pub struct PairLock {
    _file: File,
}

impl PairLock {
    /// Locks the pair whose certificate is `cert_path`, waiting at most `wait`.
    pub fn acquire(cert_path: &Path, wait: Duration) -> Result<Self> {
        let path = lock_path(cert_path);
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if !dir.is_dir() {
            return Err(Error::output(
                cert_path,
                format!(
                    "directory {} does not exist: create it first",
                    dir.display()
                ),
            ));
        }
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::output(&path, format!("cannot open the lock file: {e}")))?;
        let deadline = Instant::now() + wait;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Self { _file: file }),
                Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
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

/// `dir/.NAME.lock` for the certificate `dir/NAME`.
pub fn lock_path(cert_path: &Path) -> PathBuf {
    let name = cert_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    cert_path.with_file_name(format!(".{name}.lock"))
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
        assert!(dir.path().join(".node.pem.lock").exists());
    }
}
