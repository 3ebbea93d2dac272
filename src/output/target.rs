//! The file a path leads to, and whether nodecert may write it: symlinks (followed only when
//! this user's or root's), the directory, the kind of file, sticky directories.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

pub(super) fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The directory `target` is written in, which must exist: nodecert creates files, never
/// directories (their owner and mode are the operator's choice). `what` names it in the error
/// ("directory", "metrics directory").
pub fn existing_parent_dir(target: &Path, what: &str) -> Result<PathBuf> {
    let dir = parent_dir(target);
    if dir.is_dir() {
        return Ok(dir);
    }
    let detail = if dir.exists() {
        format!("{what} {} is not a directory: fix the path", dir.display())
    } else {
        format!("{what} {} does not exist: create it first", dir.display())
    };
    Err(Error::output(target, detail))
}

/// The file that writing `path` replaces. A symlink there is followed, as cfssljson's
/// in-place write follows it: `node.pem -> versions/node-2026.pem` stays a link and the file it
/// names is renewed (atomically, in that file's directory). Only a link of this user's or
/// root's is followed: a link someone else put there is no instruction to overwrite what it
/// names (a planted `node-key.pem -> /etc/shadow`), and fails the run instead.
///
/// The same holds for the directories on the way: a directory link of another user's inside
/// the path (`check_directory_links`) fails the run too.
pub fn write_target(path: &Path) -> Result<PathBuf> {
    let mut current = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        let meta = match std::fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => meta,
            _ => {
                check_directory_links(path, &current)?;
                return Ok(current);
            }
        };
        if let Some(uid) = foreign_owner(&meta) {
            let which = if current == path {
                "it".to_string()
            } else {
                current.display().to_string()
            };
            return Err(Error::output(
                path,
                format!(
                    "{which} is a symlink of uid {uid}, neither this user's nor root's: not \
                     followed; replace it with the file, or run as its owner"
                ),
            ));
        }
        // /dev/stdout and /proc/self/fd/N lead through /proc to whatever a descriptor is open
        // on (the file a cron job's output is appended to): not a file to replace.
        if (parent_dir(&current).canonicalize()).is_ok_and(|dir| dir.starts_with("/proc")) {
            return Err(Error::output(
                path,
                "leads through /proc to an open file descriptor (as /dev/stdout does), not to a \
                 file nodecert may replace: give a file's own path (gencert, sign and genkey \
                 print cfssl's JSON on stdout when no output is given)",
            ));
        }
        let link = std::fs::read_link(&current).map_err(|e| Error::output(path, e))?;
        current = parent_dir(&current).join(link);
    }
    Err(Error::output(
        path,
        format!("more than {MAX_LINKS} symlinks lead from it: give the file's own path"),
    ))
}

/// Symlinks [`write_target`] follows from one path, at most.
const MAX_LINKS: usize = 8;

/// The owner of the symlink `meta` describes when it is someone nodecert does not follow:
/// neither this user nor root (the rule for a link at an output and for one on its way).
fn foreign_owner(meta: &std::fs::Metadata) -> Option<u32> {
    use std::os::unix::fs::MetadataExt as _;
    foreign_uid(meta.uid())
}

/// [`foreign_owner`] for a link's owner `uid`.
fn foreign_uid(uid: u32) -> Option<u32> {
    (uid != nix::unistd::geteuid().as_raw() && uid != 0).then_some(uid)
}

/// Refuses a `target` (reached from the output `path`) whose directory is reached through a
/// symlink that neither this user nor root owns: whoever owns it decides where the files go (a
/// run as root told to write `certs/node.pem`, with `certs -> /etc/kubernetes/pki` planted by
/// another user, would replace the cluster's files). Each component is looked at as the
/// kernel resolves it, links inside links included. A link created after this check is not
/// seen: the directories an output is written in should not be writable by others anyway.
fn check_directory_links(path: &Path, target: &Path) -> Result<()> {
    use std::path::Component;
    let dir = parent_dir(target);
    // Resolved from the physical working directory, so that `..` means what it means to the
    // kernel; a path that cannot be resolved is left to the write to report.
    let Ok(mut resolved) = std::env::current_dir() else {
        return Ok(());
    };
    let mut pending: Vec<PathBuf> = dir
        .components()
        .rev()
        .map(|c| PathBuf::from(c.as_os_str()))
        .collect();
    let mut followed = 0;
    while let Some(component) = pending.pop() {
        match component.components().next() {
            Some(Component::RootDir) => resolved = PathBuf::from("/"),
            Some(Component::ParentDir) => {
                resolved.pop();
            }
            Some(Component::Normal(name)) => {
                let next = resolved.join(name);
                match std::fs::symlink_metadata(&next) {
                    Ok(meta) if meta.file_type().is_symlink() => {
                        if let Some(uid) = foreign_owner(&meta) {
                            return Err(Error::output(
                                path,
                                format!(
                                    "its directory is reached through {}, a symlink of uid \
                                     {uid}, neither this user's nor root's: not followed; give \
                                     the directory's own path, or run as the link's owner",
                                    next.display(),
                                ),
                            ));
                        }
                        followed += 1;
                        let Ok(link) = std::fs::read_link(&next) else {
                            return Ok(());
                        };
                        if followed > MAX_DIRECTORY_LINKS {
                            return Ok(());
                        }
                        pending.extend(
                            (link.components().rev()).map(|c| PathBuf::from(c.as_os_str())),
                        );
                    }
                    Ok(_) => resolved = next,
                    // Missing or unreadable: the write itself says so.
                    Err(_) => return Ok(()),
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Directory links [`check_directory_links`] follows, at most (the kernel's limit).
const MAX_DIRECTORY_LINKS: usize = 40;

/// Opens the existing file `target` (a [`write_target`]) for reading, its directory reached by
/// one walk of open directories that follows only links of this user's or root's, each as it
/// is met, and the file itself not through a link. A link of another user's on the way is an
/// error of kind `Other`. For a file whose owner or mode a run
/// changes: a path checked first and opened after can be redirected between the two, by a
/// directory on the way swapped for a link (the service user racing root's timer in the
/// service's own directory), and root would then chown another directory's key to them.
pub fn open_vetted(target: &Path) -> std::io::Result<std::fs::File> {
    use rustix::fs::{CWD, FileType, Mode, OFlags, fstat, openat, readlinkat};
    use std::os::unix::ffi::OsStringExt as _;
    use std::path::Component;
    let invalid = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidInput, what);
    let dir = parent_dir(target);
    let name = target.file_name().ok_or_else(|| invalid("no file name"))?;
    let walk = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let directory = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let mut current = openat(CWD, ".", directory, Mode::empty())?;
    let mut pending: Vec<PathBuf> = (dir.components().rev())
        .map(|c| PathBuf::from(c.as_os_str()))
        .collect();
    let mut followed = 0;
    while let Some(component) = pending.pop() {
        match component.components().next() {
            Some(Component::RootDir) => {
                current = openat(CWD, "/", directory, Mode::empty())?;
            }
            Some(Component::ParentDir) => {
                current = openat(&current, "..", directory, Mode::empty())?;
            }
            Some(Component::Normal(part)) => {
                let next = openat(&current, part, walk, Mode::empty())?;
                let stat = fstat(&next)?;
                match FileType::from_raw_mode(stat.st_mode) {
                    FileType::Symlink => {
                        if let Some(uid) = foreign_uid(stat.st_uid) {
                            return Err(std::io::Error::other(format!(
                                "a directory on its way is now a symlink of uid {uid}, neither \
                                 this user's nor root's: not followed"
                            )));
                        }
                        followed += 1;
                        if followed > MAX_DIRECTORY_LINKS {
                            return Err(invalid("too many symlinks on the way"));
                        }
                        // Read through the link just checked, not by its name again.
                        let link = readlinkat(&next, "", Vec::new())?;
                        let link = PathBuf::from(std::ffi::OsString::from_vec(link.into_bytes()));
                        pending.extend(
                            (link.components().rev()).map(|c| PathBuf::from(c.as_os_str())),
                        );
                    }
                    FileType::Directory => current = next,
                    _ => return Err(invalid("a component of its directory is not a directory")),
                }
            }
            _ => {}
        }
    }
    let file = openat(
        &current,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let file = std::fs::File::from(file);
    if !file.metadata()?.is_file() {
        return Err(invalid("not a regular file"));
    }
    Ok(file)
}

/// Checks, before any work, that the file `path` names (through its symlinks, see
/// [`write_target`]) can be written and replaced: its directory exists, it is a regular file
/// or absent and not another user's in a sticky directory, and a rename can replace it (not a
/// mount point, not immutable or append-only). For a file every run writes (the metrics file,
/// sign's and info's output).
pub fn check_writable(path: &Path) -> Result<()> {
    let target = write_target(path)?;
    let dir = check_target(&target)?;
    check_replaceable(&target, &dir)
}

/// What the output `path` holds now, read through the links a run writes through
/// ([`write_target`]), as a regular file of reasonable size; wiped when dropped, since it may
/// be a private key. None when there is nothing such to read.
pub fn read_output_wiped(path: &Path) -> Option<zeroize::Zeroizing<Vec<u8>>> {
    let target = write_target(path).ok()?;
    crate::error::read_regular_bounded(&target, crate::error::MAX_INPUT_BYTES)
        .ok()
        .flatten()
        .map(zeroize::Zeroizing::new)
}

/// Refuses to put a certificate or CSR in place of a file that holds a private key: a mistyped
/// output path (another pair's key, the key's own name given to `--cert`) would lose the key.
/// A key that is the pair's own (`own_key`'s file, whose text a hook appended to the
/// certificate for a server that wants both in one file) is no loss. What was read is wiped.
pub fn check_not_a_key(path: &Path, own_key: Option<&Path>) -> Result<()> {
    let contains = |haystack: &[u8], needle: &[u8]| {
        !needle.is_empty()
            && haystack
                .windows(needle.len())
                .any(|window| window == needle)
    };
    let Some(bytes) = read_output_wiped(path) else {
        return Ok(());
    };
    if !contains(&bytes, b"PRIVATE KEY-----") {
        return Ok(());
    }
    if let Some(own) = own_key.and_then(read_output_wiped)
        && contains(&bytes, own.trim_ascii())
    {
        return Ok(());
    }
    Err(Error::output(
        path,
        "holds a private key (not this pair's), and this output is a certificate or CSR: check \
         the path",
    ))
}

/// Checks, before any work, that the file `path` names could be written (its directory exists,
/// it is a regular file or absent, not another user's in a sticky directory: a run refused
/// there only after taking the pair's lock would leave its lock file, which the owner's runs
/// then refuse), for a file that a run may keep: whether it can be replaced
/// matters only once it is to be (when the pair's files are reserved, still before the CA is
/// asked), so that a pair that stays is kept (and an owed hook run) even where it could not be
/// replaced.
pub fn check_output_path(path: &Path) -> Result<()> {
    check_target(&write_target(path)?).map(drop)
}

/// Checks that `target` can be a file nodecert writes: its directory exists, it is not a
/// directory, device, FIFO or socket (a file is replaced by rename, which would put a regular
/// file in place of `/dev/null`), and not another user's in a sticky directory. Returns the
/// directory.
pub(super) fn check_target(target: &Path) -> Result<PathBuf> {
    use std::os::unix::fs::MetadataExt as _;
    let dir = existing_parent_dir(target, "directory")?;
    if target.is_dir() {
        return Err(Error::output(target, "is a directory: give a file path"));
    }
    if let Ok(meta) = std::fs::symlink_metadata(target)
        && !meta.is_file()
    {
        return Err(Error::output(
            target,
            "is not a regular file (a device, FIFO or socket), and nodecert replaces files: \
             give the path of a file",
        ));
    }
    // In a sticky directory (/tmp-like) only a file's owner, the directory's or root may
    // replace it: known now, before the CA signs a certificate that could not be written.
    let me = nix::unistd::geteuid().as_raw();
    if let (Ok(dir_meta), Ok(file)) = (std::fs::metadata(&dir), std::fs::symlink_metadata(target))
        && dir_meta.mode() & nix::libc::S_ISVTX != 0
        && me != 0
        && file.uid() != me
        && dir_meta.uid() != me
    {
        return Err(Error::output(
            target,
            format!(
                "belongs to uid {} in a sticky directory, where only its owner may replace it: \
                 run as that user, or remove it",
                file.uid()
            ),
        ));
    }
    Ok(dir)
}

/// Checks that the file at `target`, in `dir`, can be replaced by a rename, before the CA
/// signs a certificate that could then not be written: see [`unreplaceable`].
pub(super) fn check_replaceable(target: &Path, dir: &Path) -> Result<()> {
    if let Err(e) = crate::error::open_regular(std::fs::OpenOptions::new().read(true), target)
        && e.raw_os_error() == Some(nix::libc::EACCES)
    {
        return Err(unreadable(target, &e));
    }
    if let Some(why) = unreplaceable(target, dir) {
        return Err(Error::output(target, why));
    }
    Ok(())
}

/// The error for a file that is there but this user cannot read (another user's key). Such a
/// file is never replaced: cfssljson's write fails on it too, and a run that cannot see a file
/// cannot tell what it would destroy (a valid pair in use).
pub(crate) fn unreadable(path: &Path, e: &std::io::Error) -> Error {
    use std::os::unix::fs::MetadataExt as _;
    let owner = std::fs::symlink_metadata(path)
        .map(|meta| format!(" (uid {})", meta.uid()))
        .unwrap_or_default();
    Error::output(
        path,
        format!(
            "it is there but this user cannot read it ({e}), and a file a run cannot see is not \
             replaced: run as its owner{owner} or root, or move it aside"
        ),
    )
}

/// Whether this user may create and rename files in `dir`, by the effective ids, as the kernel
/// will check the rename. Anything but a refusal for lack of permission counts as writable (a
/// read-only file system, for one, is told by the write itself).
fn dir_writable(dir: &Path) -> bool {
    rustix::fs::accessat(
        rustix::fs::CWD,
        dir,
        rustix::fs::Access::WRITE_OK | rustix::fs::Access::EXEC_OK,
        rustix::fs::AtFlags::EACCESS,
    ) != Err(rustix::io::Errno::ACCESS)
}

/// Why the file at `target` cannot be replaced by a rename, as nodecert replaces files: a
/// directory this user may not write, a mount
/// point (a bind-mounted file, as a container gets its certificate), a file marked immutable
/// or append-only (`chattr +i`, `+a`), or a directory so marked (no name in it can change).
/// Known before the CA is asked, so that no run spends a certificate it cannot write (and a
/// timer would spend one on every run). The swap still undoes itself if one of them appears
/// after this check ([`super::Reserved::commit`]). Kernels before 5.8 do not report mount
/// points; their rename fails after the signing, and the swap is undone.
fn unreplaceable(target: &Path, dir: &Path) -> Option<String> {
    use rustix::fs::StatxAttributes as Attribute;
    // The attributes the file system reports as set (none, if it reports none).
    let attributes = |path: &Path| {
        use rustix::fs::{AtFlags, CWD, StatxFlags, statx};
        statx(CWD, path, AtFlags::SYMLINK_NOFOLLOW, StatxFlags::empty())
            .map_or(Attribute::empty(), |found| {
                found.stx_attributes_mask & found.stx_attributes
            })
    };
    let (file, dir_attributes) = (attributes(target), attributes(dir));
    let locked = Attribute::IMMUTABLE | Attribute::APPEND;
    if !dir_writable(dir) {
        use std::os::unix::fs::MetadataExt as _;
        let owner = std::fs::metadata(dir)
            .map(|meta| format!("; the directory is uid {}'s", meta.uid()))
            .unwrap_or_default();
        Some(format!(
            "its directory {} is not writable by this user (uid {}{owner}): run as a user who \
             may write there, or write it elsewhere",
            dir.display(),
            nix::unistd::geteuid().as_raw()
        ))
    } else if file.contains(Attribute::MOUNT_ROOT) {
        Some(
            "is a mount point (a bind-mounted file?), and nodecert replaces a file by rename: \
             mount its directory instead"
                .into(),
        )
    } else if file.intersects(locked) {
        Some(
            "is immutable or append-only (lsattr), so it cannot be replaced: chattr -i -a it \
             first, or write it elsewhere"
                .into(),
        )
    } else if dir_attributes.intersects(locked) {
        Some(format!(
            "its directory {} is immutable or append-only (lsattr -d), so no file in it can \
             be replaced: chattr -i -a it first, or write it elsewhere",
            dir.display()
        ))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::open_vetted;

    /// The walk follows this user's and root's links and refuses another user's, met as it
    /// opens each directory (a link swapped in after a path check is met here).
    #[test]
    fn open_vetted_follows_only_trusted_links() {
        let work = tempfile::tempdir().unwrap();
        let dir = work.path();
        std::fs::create_dir(dir.join("real")).unwrap();
        std::fs::write(dir.join("real/f.pem"), "x").unwrap();
        std::os::unix::fs::symlink("real", dir.join("link")).unwrap();
        assert!(open_vetted(&dir.join("real/f.pem")).is_ok());
        assert!(
            open_vetted(&dir.join("link/f.pem")).is_ok(),
            "this user's link"
        );
        assert!(open_vetted(&dir.join("link/../link/f.pem")).is_ok());
        // Not the file itself through a link.
        std::os::unix::fs::symlink("f.pem", dir.join("real/g.pem")).unwrap();
        assert!(open_vetted(&dir.join("real/g.pem")).is_err());
        // Another user's link (only root can make one to test with).
        if nix::unistd::geteuid().is_root() {
            std::os::unix::fs::lchown(dir.join("link"), Some(65534), Some(65534)).unwrap();
            let err = open_vetted(&dir.join("link/f.pem")).unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::Other, "{err}");
            assert!(err.to_string().contains("symlink of uid 65534"), "{err}");
        }
    }
}
