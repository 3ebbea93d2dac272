//! Where the key, CSR and certificate go, and writing them so that a failed run changes nothing.
//!
//! Each file is staged as a temporary file in its target directory, created with its final mode
//! (tempfile creates 0600; certificate and CSR are then widened to 0644 with fchmod, which the
//! umask does not touch, so the key is never readable by others, not even for an instant). The
//! temporary files are reserved *before* the CA is contacted, so an unwritable directory fails
//! the run early with nothing sent. The key and CSR are written and fsynced while the CA signs;
//! after the certificate has passed its checks it is written and fsynced too, every file is
//! renamed over its target, key first, and the directories are fsynced.
//!
//! Here: the pair's reservation, its commit and `converge`. Around it: `options` (owner and
//! modes), `destination` (which files, and whether two paths are one file), `target` (the file
//! a path leads to, and whether nodecert may write it), `temp` (temporary files, their
//! registry for signals and panics, the swap and its undo, the sweep) and `stdout`.

mod destination;
mod options;
mod stdout;
mod target;
mod temp;

pub use destination::{
    Destination, FileId, bare_file, check_distinct, is_own_identity, key_beside, resolved,
};
pub use options::{FileOptions, KEY_MODE, Owner, PUBLIC_MODE, parse_mode};
pub use stdout::{print_product, print_report, stdout_keeps_output};
pub use target::{
    check_not_a_key, check_output_path, check_writable, existing_parent_dir, open_vetted,
    read_output_wiped, write_target,
};
pub use temp::{remove_pending, remove_pending_within, remove_stale_temps, remove_stale_temps_of};

use std::fs::Permissions;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::Serialize;
use zeroize::Zeroizing;

use crate::error::{Error, Result};
pub(crate) use stdout::stdout_error;
use target::parent_dir;
pub(crate) use target::unreadable;
use temp::{Pending, Undo, registry, reserve, roll_back};

/// Brings the files of a pair that stays to what `options` asks, contents untouched, so that
/// config management converges without waiting for the next renewal: the owner when `--owner`
/// is given, the certificate's and CSR's mode when `--mode` is, and a key readable beyond
/// `--key-mode` is narrowed to it (with a warning: someone widened it). A file that is missing,
/// or not a regular file, is left to the next issuance. Files are changed through a descriptor
/// opened without following a symlink. Returns whether anything changed.
///
/// A run that holds no lock on the pair (`unlocked` says why) changes nothing, but warns about
/// what it would have changed: a key left readable beyond `--key-mode` must not go unsaid.
pub fn converge(
    destination: &Destination,
    options: &FileOptions,
    unlocked: Option<&str>,
) -> Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let Destination::Files { cert, key, csr } = destination else {
        return Ok(false);
    };
    let mut changed = false;
    let files = [
        (Some(key), Role::Key),
        (cert.as_ref(), Role::Cert),
        (csr.as_ref(), Role::Csr),
    ];
    let owner_flag = crate::logging::setting("--owner");
    for (path, role) in files {
        let Some(name) = path else { continue };
        // Through the links a run writes through ([`write_target`]); one it refuses was
        // reported before the run got here.
        let Ok(path) = write_target(name) else {
            continue;
        };
        // Without the lock nothing is changed, so nothing is opened: a file this user may not
        // read is looked at too.
        let (file, meta) = if unlocked.is_some() {
            match std::fs::symlink_metadata(&path) {
                Ok(meta) if meta.is_file() => (None, meta),
                _ => continue,
            }
        } else {
            // One walk that follows only trusted links, as they are met: a directory swapped
            // for another user's link after write_target looked is not followed.
            let file = match open_vetted(&path) {
                Ok(file) => file,
                Err(e) if e.kind() == std::io::ErrorKind::Other => {
                    return Err(Error::output(&path, e));
                }
                Err(_) => continue,
            };
            let meta = file.metadata().map_err(|e| Error::output(&path, e))?;
            (Some(file), meta)
        };
        let path = path.as_path();
        // A file with other names (a hard link planted in the directory) is another file too:
        // its owner and mode are not nodecert's to change. The next issuance replaces the name.
        if meta.nlink() != 1 {
            log::warn!(
                "{}: has {} names (hard links), so its owner and mode are left as they are: \
                 remove the other names, or let the next renewal replace it",
                path.display(),
                meta.nlink()
            );
            continue;
        }
        let left = |what: &str| {
            log::warn!(
                "{}: {what}, left as it is: this run holds no lock on the pair ({})",
                path.display(),
                unlocked.unwrap_or_default()
            );
        };
        if let Some(owner) = options.owner
            && (owner.uid.is_some_and(|u| u != meta.uid())
                || owner.gid.is_some_and(|g| g != meta.gid()))
        {
            match &file {
                None => left(&format!("not owned as {owner_flag} asks")),
                Some(file) => {
                    std::os::unix::fs::fchown(file, owner.uid, owner.gid).map_err(|e| {
                        Error::output(path, format!("cannot set the owner ({owner_flag}): {e}"))
                    })?;
                    log::info!("{}: owner set as {owner_flag} asks", path.display());
                    changed = true;
                }
            }
        }
        let mode = meta.mode() & 0o7777;
        let wanted = match role {
            Role::Key if wider_than(mode, options.key_mode) => mode & options.key_mode,
            Role::Cert | Role::Csr if options.mode_given && mode != options.mode => options.mode,
            _ => continue,
        };
        let Some(file) = file else {
            left(&match role {
                Role::Key => format!(
                    "mode {mode:04o} is wider than {} {:04o}",
                    crate::logging::setting("--key-mode"),
                    options.key_mode
                ),
                _ => format!(
                    "mode {mode:04o} is not {} {wanted:04o}",
                    crate::logging::setting("--mode")
                ),
            });
            continue;
        };
        file.set_permissions(Permissions::from_mode(wanted))
            .map_err(|e| Error::output(path, format!("cannot set the mode: {e}")))?;
        // Said once done: a read-only file system refuses the change, and that error is the
        // run's.
        if role == Role::Key {
            warn_wider_key(path, mode, options.key_mode, "narrowed");
        } else {
            log::info!(
                "{}: mode set to {wanted:04o} ({})",
                path.display(),
                crate::logging::setting("--mode")
            );
        }
        changed = true;
    }
    Ok(changed)
}

/// Whether a file of `mode` grants what `allowed` (a `--key-mode`) does not.
fn wider_than(mode: u32, allowed: u32) -> bool {
    mode & 0o7777 & !allowed != 0
}

/// Warns that the key at `path`, of `mode`, is readable beyond `key_mode` and has been (or is
/// about to be, by the new key) `done` to it: a service group that read the old key cannot read
/// the new one, and the flag that keeps it is named, since cfssljson kept a key's mode.
fn warn_wider_key(path: &Path, mode: u32, key_mode: u32, done: &str) {
    let setting = crate::logging::setting("--key-mode");
    let keep = if mode & 0o040 != 0 && key_mode & 0o040 == 0 {
        format!(
            " (set {setting} {:04o} if its group must read it)",
            key_mode | 0o040
        )
    } else {
        String::new()
    };
    log::warn!(
        "{} had mode {mode:04o}, wider than {setting} {key_mode:04o}: {done}{keep}",
        path.display()
    );
}

/// Output files reserved before the request is sent.
pub struct Reserved {
    destination: Destination,
    files: Vec<Slot>,
}

struct Slot {
    target: PathBuf,
    temp: Pending,
    role: Role,
    /// Written and fsynced already ([`Reserved::stage`]).
    staged: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Cert,
    Csr,
    Key,
}

/// What a run produced.
pub struct Bundle<'a> {
    /// `None` for genkey.
    pub cert: Option<&'a str>,
    pub csr: &'a str,
    pub key: &'a str,
}

/// cfssl's stdout object; field order = sorted keys, as Go's map marshalling gives.
#[derive(Serialize)]
struct CfsslJson<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    cert: Option<&'a str>,
    csr: &'a str,
    key: &'a str,
}

impl Reserved {
    /// Reserves temporary files next to every target (none for stdout).
    pub fn new(destination: Destination, options: &FileOptions) -> Result<Self> {
        if destination == Destination::Stdout {
            stdout_keeps_output()?;
        }
        let mut files = Vec::new();
        if let Destination::Files { cert, key, csr } = &destination {
            let mut targets = vec![(key, Role::Key)];
            if let Some(cert) = cert {
                targets.push((cert, Role::Cert));
            }
            if let Some(csr) = csr {
                targets.push((csr, Role::Csr));
            }
            check_distinct(&destination.outputs(), &[])?;
            for (target, role) in targets {
                let mode = if role == Role::Key {
                    options.key_mode
                } else {
                    options.mode
                };
                let target = write_target(target)?;
                if role != Role::Key {
                    check_not_a_key(&target, Some(key))?;
                }
                let old_mode = (std::fs::metadata(&target).ok())
                    .filter(std::fs::Metadata::is_file)
                    .map(|meta| meta.permissions().mode());
                let temp = reserve(&target, mode, options.owner)?;
                if role == Role::Key
                    && let Some(old) = old_mode.filter(|&old| wider_than(old, mode))
                {
                    let new = format!("the new key will be {mode:04o}");
                    warn_wider_key(&target, old & 0o7777, mode, &new);
                }
                files.push(Slot {
                    temp,
                    target,
                    role,
                    staged: false,
                });
            }
        }
        Ok(Self { destination, files })
    }

    /// Whether there are files to write (not stdout).
    pub fn writes_files(&self) -> bool {
        !self.files.is_empty()
    }

    /// Writes and fsyncs the temporary key and CSR files now, nothing renamed yet. Both are
    /// known before the CA answers, so a job does this while it waits for the certificate
    /// (on another thread): two of the three fsyncs then cost no time. If the run fails or is
    /// killed, the temporary files go as before (removed, or by the next run under the lock);
    /// the key in them has its final mode (0600 by default) from before its first byte. The
    /// price: a key the CA then refuses to certify has been on disk, in a file that is unlinked,
    /// its blocks not overwritten (as with any deleted file).
    pub fn stage(&mut self, key: &str, csr: &str) -> Result<()> {
        for slot in &mut self.files {
            let content = match slot.role {
                Role::Key => key,
                Role::Csr => csr,
                Role::Cert => continue,
            };
            write_synced(slot, content)?;
        }
        Ok(())
    }

    /// Writes the bundle: to stdout, or each file atomically (the files [`Self::stage`] wrote
    /// keep what it wrote).
    pub fn commit(self, bundle: &Bundle<'_>) -> Result<()> {
        if self.destination == Destination::Stdout {
            let json = CfsslJson {
                cert: bundle.cert,
                csr: bundle.csr,
                key: bundle.key,
            };
            let mut line = Zeroizing::new(
                serde_json::to_vec(&json)
                    .map_err(|e| Error::Internal(format!("encoding output: {e}")))?,
            );
            line.push(b'\n');
            let mut stdout = std::io::stdout().lock();
            return stdout
                .write_all(&line)
                .and_then(|()| stdout.flush())
                .map_err(stdout_error);
        }
        let mut staged = Vec::new();
        for mut slot in self.files {
            let content = match slot.role {
                Role::Cert => bundle.cert.unwrap_or_default(),
                Role::Csr => bundle.csr,
                Role::Key => bundle.key,
            };
            if !slot.staged {
                write_synced(&mut slot, content)?;
            }
            staged.push(slot);
        }
        // Everything is on disk; now swap the files in. Key first, so that a reader that sees
        // the new certificate also finds its key. A signal waits for the whole swap
        // ([`remove_pending`] takes the registry this holds), so it never splits a pair. Nor does
        // a file that cannot be replaced (a bind-mounted or immutable certificate): the files
        // swapped before it are swapped back, so a failed run leaves the old pair as it was.
        let mut dirs: Vec<PathBuf> = Vec::new();
        {
            let _registry = registry();
            let mut done: Vec<(&Path, Undo)> = Vec::new();
            for slot in &staged {
                match slot.temp.swap_in(&slot.target) {
                    Ok(undo) => done.push((&slot.target, undo)),
                    Err(e) => return Err(Error::output(&slot.target, roll_back(&e, &done))),
                }
                let dir = parent_dir(&slot.target);
                if !dirs.contains(&dir) {
                    dirs.push(dir);
                }
            }
        }
        // The new files are in place now (the files they replaced are at the temporary names,
        // and go with `staged`): a failure here must not hide that (the run would
        // report an error and skip --exec, and the next run, finding a good pair, would never
        // run it), so it is a warning. A pair that did not reach the disk is healed by the next
        // run after a power loss, as after any crash.
        for dir in dirs {
            if let Err(e) = std::fs::File::open(&dir).and_then(|d| d.sync_all()) {
                log::warn!(
                    "{}: the new files are in place, but the directory could not be synced ({e}): \
                     a power loss now could undo the change",
                    dir.display()
                );
            }
        }
        Ok(())
    }
}

/// Writes `content` into the slot's temporary file and fsyncs it.
fn write_synced(slot: &mut Slot, content: &str) -> Result<()> {
    let file = slot.temp.file_mut();
    file.write_all(content.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::output(&slot.target, e))?;
    slot.staged = true;
    Ok(())
}

/// Writes one file atomically with `mode` (the metrics file, sign's certificate, info --out).
pub fn write_file_atomically(path: &Path, content: &[u8], mode: u32) -> Result<()> {
    write_file_owned(path, content, mode, None)
}

/// [`write_file_atomically`], the file given to `owner` when there is one.
pub(crate) fn write_file_owned(
    path: &Path,
    content: &[u8],
    mode: u32,
    owner: Option<Owner>,
) -> Result<()> {
    let path = &write_target(path)?;
    let mut temp = reserve(path, mode, owner)?;
    let file = temp.file_mut();
    file.write_all(content)
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::output(path, e))?;
    temp.persist(path, &mut registry())
        .map_err(|e| Error::output(path, e))?;
    let dir = parent_dir(path);
    std::fs::File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::output(&dir, e))
}

/// `.NAME.SUFFIX` for `dir/NAME`. The files nodecert keeps beside one it writes (its
/// temporaries, the pair's lock, an owed `--exec`) are hidden and carry that file's name, so
/// `ls -a` shows whose they are.
pub fn hidden_name(target: &Path, suffix: &str) -> std::ffi::OsString {
    let mut name = std::ffi::OsString::from(".");
    name.push(target.file_name().unwrap_or_default());
    name.push(".");
    name.push(suffix);
    name
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn hidden_names_carry_the_file_name_byte_for_byte() {
        use std::os::unix::ffi::OsStrExt as _;
        let target = Path::new(std::ffi::OsStr::from_bytes(b"/etc/pki/n\xffde.pem"));
        assert_eq!(hidden_name(target, "lock").as_bytes(), b".n\xffde.pem.lock");
        assert_eq!(
            hidden_name(Path::new("node.pem"), "exec-pending"),
            ".node.pem.exec-pending"
        );
    }

    #[test]
    fn files_get_their_modes_whatever_the_old_file_had() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("n-key.pem");
        std::fs::write(&key, "old").unwrap();
        std::fs::set_permissions(&key, Permissions::from_mode(0o644)).unwrap();
        let dest = Destination::Files {
            cert: Some(dir.path().join("n.pem")),
            key: key.clone(),
            csr: None,
        };
        Reserved::new(dest, &FileOptions::default())
            .unwrap()
            .commit(&Bundle {
                cert: Some("c"),
                csr: "r",
                key: "k",
            })
            .unwrap();
        assert_eq!(std::fs::read_to_string(&key).unwrap(), "k");
        assert_eq!(std::fs::metadata(&key).unwrap().mode() & 0o777, 0o600);
        assert_eq!(
            std::fs::metadata(dir.path().join("n.pem")).unwrap().mode() & 0o777,
            0o644
        );
        let leftovers = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers, 2, "no temporary files remain");
    }

    #[test]
    fn a_dropped_reservation_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let reserved = Reserved::new(
            Destination::bare(&dir.path().join("x")),
            &FileOptions::default(),
        )
        .unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 3);
        drop(reserved);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn staged_files_wait_for_the_commit_and_go_with_a_dropped_reservation() {
        let dir = tempfile::tempdir().unwrap();
        let name = dir.path().join("x");
        let temps = |suffix: &str| -> Vec<String> {
            std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.to_string_lossy().contains(suffix))
                .map(|p| std::fs::read_to_string(p).unwrap())
                .collect()
        };
        let mut reserved =
            Reserved::new(Destination::bare(&name), &FileOptions::default()).unwrap();
        reserved.stage("k", "r").unwrap();
        // On disk under temporary names, the key 0600; no target exists before the commit.
        assert_eq!(temps("x-key.pem.nodecert-"), ["k"]);
        assert_eq!(temps("x.csr.nodecert-"), ["r"]);
        assert_eq!(temps("x.pem.nodecert-"), [""]);
        for target in ["x.pem", "x-key.pem", "x.csr"] {
            assert!(!dir.path().join(target).exists(), "{target}");
        }
        reserved
            .commit(&Bundle {
                cert: Some("c"),
                csr: "r",
                key: "k",
            })
            .unwrap();
        for (target, content) in [("x.pem", "c"), ("x-key.pem", "k"), ("x.csr", "r")] {
            let path = dir.path().join(target);
            assert_eq!(std::fs::read_to_string(&path).unwrap(), content, "{target}");
        }
        let key_mode = std::fs::metadata(dir.path().join("x-key.pem"))
            .unwrap()
            .mode();
        assert_eq!(key_mode & 0o777, 0o600);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 3);

        // A run that fails after staging (the CA refused, the reply was bad) leaves nothing new.
        let mut reserved =
            Reserved::new(Destination::bare(&name), &FileOptions::default()).unwrap();
        reserved.stage("k2", "r2").unwrap();
        drop(reserved);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 3);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("x-key.pem")).unwrap(),
            "k"
        );
    }

    #[test]
    fn a_missing_directory_is_reported() {
        let err = Reserved::new(
            Destination::bare(Path::new("/nonexistent-dir-for-nodecert/x")),
            &FileOptions::default(),
        )
        .err()
        .unwrap();
        assert!(err.to_string().contains("does not exist"), "{err}");
    }
}
