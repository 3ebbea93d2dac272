//! Where the key, CSR and certificate go, and writing them so that a failed run changes nothing.
//!
//! Each file is staged as a temporary file in its target directory, created with its final mode
//! (tempfile creates 0600; certificate and CSR are then widened to 0644 with fchmod, which the
//! umask does not touch, so the key is never readable by others, not even for an instant). The
//! temporary files are reserved *before* the CA is contacted, so an unwritable directory fails
//! the run early with nothing sent. The key and CSR are written and fsynced while the CA signs;
//! after the certificate has passed its checks it is written and fsynced too, every file is
//! renamed over its target, key first, and the directories are fsynced.

use std::fs::Permissions;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::Serialize;
use tempfile::NamedTempFile;
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// Ownership and modes of the written files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileOptions {
    /// `--owner USER[:GROUP]`, applied to every file.
    pub owner: Option<Owner>,
    /// Mode of the certificate and CSR (`--mode`).
    pub mode: u32,
    /// Whether `--mode` was given: a pair that stays is set to it only then ([`converge`]).
    pub mode_given: bool,
    /// Mode of the private key (`--key-mode`).
    pub key_mode: u32,
}

impl Default for FileOptions {
    fn default() -> Self {
        Self {
            owner: None,
            mode: PUBLIC_MODE,
            mode_given: false,
            key_mode: KEY_MODE,
        }
    }
}

impl FileOptions {
    /// From `--owner`, `--mode` and `--key-mode` as typed; the modes default to 0644 and 0600.
    pub fn from_flags(
        owner: Option<&str>,
        mode: Option<&str>,
        key_mode: Option<&str>,
    ) -> Result<Self> {
        let names = ["flag --owner", "flag --mode", "flag --key-mode"];
        Self::parse(owner, mode, key_mode, names).map_err(Error::Usage)
    }

    /// [`Self::from_flags`] for values given under other `names` (a sync spec's fields): the
    /// error names the one that is wrong.
    pub fn parse(
        owner: Option<&str>,
        mode: Option<&str>,
        key_mode: Option<&str>,
        [owner_name, mode_name, key_mode_name]: [&str; 3],
    ) -> Result<Self, String> {
        let flag = |name: &str, value: Option<&str>, check: fn(u32) -> Result<u32, String>| {
            value
                .map(|m| {
                    parse_mode(m)
                        .and_then(check)
                        .map_err(|d| format!("{name}: {d}"))
                })
                .transpose()
        };
        let owner = owner
            .map(|o| Owner::parse(o).map_err(|d| format!("{owner_name}: {d}")))
            .transpose()?;
        let mode = flag(mode_name, mode, check_public_mode)?;
        let key_mode = flag(key_mode_name, key_mode, check_key_mode)?;
        Ok(Self {
            owner,
            mode: mode.unwrap_or(PUBLIC_MODE),
            mode_given: mode.is_some(),
            key_mode: key_mode.unwrap_or(KEY_MODE),
        })
    }
}

/// A private key may be group-readable (for a service group), never more, and never executable.
fn check_key_mode(mode: u32) -> Result<u32, String> {
    if mode & 0o037 != 0 {
        return Err(format!(
            "{mode:04o} would expose the private key: use 0600, or 0640 for a service group"
        ));
    }
    if mode & 0o100 != 0 {
        return Err(format!(
            "{mode:04o} makes the private key executable: use 0600, or 0640 for a service group"
        ));
    }
    Ok(mode)
}

/// A certificate or CSR is public, but only its owner may change it, and it is no program.
fn check_public_mode(mode: u32) -> Result<u32, String> {
    if mode & 0o022 != 0 {
        return Err(format!(
            "{mode:04o} lets others than the owner replace the certificate: use 0644, or 0640"
        ));
    }
    if mode & 0o111 != 0 {
        return Err(format!(
            "{mode:04o} makes the certificate executable: use 0644, or 0640"
        ));
    }
    Ok(mode)
}

/// A file owner: `USER[:GROUP]`, names or numeric ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Owner {
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

impl Owner {
    /// Parses `USER`, `USER:GROUP`, `:GROUP` and `USER:` (the user's login group, as chown
    /// reads it), with names looked up in the system's user database.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (user, group) = match text.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (text, None),
        };
        let lookup = |u: &str| {
            let found = match u.parse::<u32>() {
                Ok(id) => nix::unistd::User::from_uid(id.into()),
                Err(_) => nix::unistd::User::from_name(u),
            };
            found.map_err(|e| format!("cannot look up user {u:?}: {e}"))
        };
        let uid = match user {
            "" => None,
            u => Some(match u.parse::<u32>() {
                Ok(id) => id,
                Err(_) => lookup(u)?
                    .ok_or_else(|| format!("no user {u:?} on this host"))?
                    .uid
                    .as_raw(),
            }),
        };
        let gid = match group {
            None => None,
            Some("") if user.is_empty() => None,
            Some("") => Some(
                lookup(user)?
                    .ok_or_else(|| {
                        format!("user {user:?} has no login group here: write USER:GROUP")
                    })?
                    .gid
                    .as_raw(),
            ),
            Some(g) => Some(match g.parse::<u32>() {
                Ok(id) => id,
                Err(_) => nix::unistd::Group::from_name(g)
                    .map_err(|e| format!("cannot look up group {g:?}: {e}"))?
                    .ok_or_else(|| format!("no group {g:?} on this host"))?
                    .gid
                    .as_raw(),
            }),
        };
        if uid.is_none() && gid.is_none() {
            return Err("is empty: use USER, USER:GROUP or :GROUP".into());
        }
        Ok(Self { uid, gid })
    }
}

/// Parses an octal mode such as `0644` or `640`.
pub fn parse_mode(text: &str) -> Result<u32, String> {
    u32::from_str_radix(text.trim_start_matches("0o"), 8)
        .ok()
        .filter(|m| *m <= 0o777)
        .ok_or_else(|| format!("{text:?} is not an octal file mode: use e.g. 0644"))
}

/// The three output shapes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destination {
    /// cfssl's JSON `{"cert","csr","key"}` on stdout, for `| cfssljson -bare NAME`.
    Stdout,
    /// Explicit paths (`--cert`, `--key`, optional `--csr`); genkey has no certificate.
    Files {
        cert: Option<PathBuf>,
        key: PathBuf,
        csr: Option<PathBuf>,
    },
}

impl Destination {
    /// `-bare NAME` for genkey: `NAME-key.pem` and `NAME.csr`.
    pub fn bare_without_cert(name: &Path) -> Self {
        match Self::bare(name) {
            Self::Files { key, csr, .. } => Self::Files {
                cert: None,
                key,
                csr,
            },
            Self::Stdout => Self::Stdout,
        }
    }

    /// Every file written, as the file a symlinked name leads to ([`write_target`]) with its
    /// directory resolved by the filesystem, so that `a.pem`, `./a.pem`, a path through a
    /// symlinked directory and a symlink to `a.pem` compare equal.
    pub fn resolved_files(&self) -> Vec<PathBuf> {
        match self {
            Self::Stdout => Vec::new(),
            Self::Files { cert, key, csr } => std::iter::once(key)
                .chain(cert)
                .chain(csr)
                .map(|path| resolved(&write_target(path).unwrap_or_else(|_| path.clone())))
                .collect(),
        }
    }

    /// The files written, each with what it is (for [`check_distinct`]).
    pub fn outputs(&self) -> Vec<(&Path, &'static str)> {
        match self {
            Self::Stdout => Vec::new(),
            Self::Files { cert, key, csr } => {
                let mut files = vec![(key.as_path(), "the private key output")];
                files.extend(cert.as_deref().map(|c| (c, "the certificate output")));
                files.extend(csr.as_deref().map(|c| (c, "the CSR output")));
                files
            }
        }
    }

    /// The pair's lock file (beside the file the certificate's name leads to), which no other
    /// output may be: `None` for stdout, or when the name is a link [`write_target`] refuses.
    pub fn lock_file(&self) -> Option<PathBuf> {
        match self {
            Self::Files {
                cert: Some(cert), ..
            } => Some(crate::lock::lock_path(&write_target(cert).ok()?)),
            _ => None,
        }
    }

    /// `-bare NAME`: `NAME.pem`, `NAME-key.pem`, `NAME.csr`, as cfssljson names them. NAME is
    /// taken byte for byte (a file name need not be UTF-8).
    pub fn bare(name: &Path) -> Self {
        Self::Files {
            cert: Some(bare_file(name, ".pem")),
            key: bare_file(name, "-key.pem"),
            csr: Some(bare_file(name, ".csr")),
        }
    }
}

/// `NAME` + `suffix`, as cfssljson names its files.
pub fn bare_file(name: &Path, suffix: &str) -> PathBuf {
    let mut file = name.as_os_str().to_os_string();
    file.push(suffix);
    PathBuf::from(file)
}

/// Refuses a run whose outputs would overwrite each other or a file it reads: `-bare ca` beside
/// `-tls-remote-ca ca.pem`, `--key rp.json` beside `-config rp.json`, `--metrics-file node.pem`.
/// The run would succeed and leave a CA file, profile, csr.json or private key destroyed.
/// `outputs` and `inputs` are (path, what it is) pairs; checked before the pair's lock is taken
/// and before any key is made.
pub fn check_distinct(outputs: &[(&Path, &str)], inputs: &[(&Path, &str)]) -> Result<()> {
    let outputs: Vec<(FileId, &Path, &str)> = outputs
        .iter()
        .map(|&(path, what)| (FileId::of(path), path, what))
        .collect();
    for (i, (resolved_out, path, what)) in outputs.iter().enumerate() {
        if let Some((_, _, first)) = outputs[..i].iter().find(|(r, ..)| r == resolved_out) {
            return Err(Error::Usage(format!(
                "{} is given for two outputs ({first} and {what}): use distinct paths",
                path.display()
            )));
        }
        let overwritten = inputs
            .iter()
            .filter(|(input, _)| *input != Path::new("-"))
            .find(|(input, _)| FileId::of(input) == *resolved_out);
        if let Some((_, input_role)) = overwritten {
            return Err(Error::Usage(format!(
                "{} is both {what} and {input_role}, which would be overwritten: write it elsewhere",
                path.display()
            )));
        }
    }
    Ok(())
}

/// What makes two paths one file: the file itself when it exists (a symlink, a hard link or
/// `..` lead to the same inode), else the path with its directory canonicalised.
#[derive(PartialEq, Eq, Hash)]
pub enum FileId {
    Inode(u64, u64),
    Path(PathBuf),
}

impl FileId {
    /// The identity of the file at `path`, or of the file it would be.
    pub fn of(path: &Path) -> Self {
        use std::os::unix::fs::MetadataExt as _;
        match std::fs::metadata(path) {
            Ok(meta) => Self::Inode(meta.dev(), meta.ino()),
            Err(_) => Self::Path(resolved(
                &write_target(path).unwrap_or_else(|_| path.into()),
            )),
        }
    }
}

/// `path` with its directory canonicalised (as given when the directory does not exist).
pub fn resolved(path: &Path) -> PathBuf {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    match (dir.canonicalize(), path.file_name()) {
        (Ok(dir), Some(name)) => dir.join(name),
        _ => path.to_path_buf(),
    }
}

/// Mode of the private key file.
pub const KEY_MODE: u32 = 0o600;
/// Mode of the certificate and CSR files.
pub const PUBLIC_MODE: u32 = 0o644;

/// Brings the files of a pair that stays to what `options` asks, contents untouched, so that
/// config management converges without waiting for the next renewal: the owner when `--owner`
/// is given, the certificate's and CSR's mode when `--mode` is, and a key readable beyond
/// `--key-mode` is narrowed to it (with a warning: someone widened it). A file that is missing,
/// or not a regular file, is left to the next issuance. Files are changed through a descriptor
/// opened without following a symlink.
pub fn converge(destination: &Destination, options: &FileOptions) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let Destination::Files { cert, key, csr } = destination else {
        return Ok(());
    };
    let files = [
        (Some(key), Role::Key),
        (cert.as_ref(), Role::Cert),
        (csr.as_ref(), Role::Csr),
    ];
    for (path, role) in files {
        let Some(name) = path else { continue };
        // Through the links a run writes through ([`write_target`]); one it refuses was
        // reported before the run got here.
        let Ok(path) = write_target(name) else {
            continue;
        };
        let Ok(file) = crate::error::open_regular(std::fs::OpenOptions::new().read(true), &path)
        else {
            continue;
        };
        let path = path.as_path();
        let meta = file.metadata().map_err(|e| Error::output(path, e))?;
        if let Some(owner) = options.owner
            && (owner.uid.is_some_and(|u| u != meta.uid())
                || owner.gid.is_some_and(|g| g != meta.gid()))
        {
            std::os::unix::fs::fchown(&file, owner.uid, owner.gid)
                .map_err(|e| Error::output(path, format!("cannot set the owner (--owner): {e}")))?;
            log::info!("{}: owner set as --owner asks", path.display());
        }
        let mode = meta.mode() & 0o7777;
        let wanted = match role {
            Role::Key if mode & !options.key_mode != 0 => {
                log::warn!(
                    "{} had mode {mode:04o}, wider than --key-mode {:04o}: narrowed",
                    path.display(),
                    options.key_mode
                );
                mode & options.key_mode
            }
            Role::Cert | Role::Csr if options.mode_given && mode != options.mode => {
                log::info!(
                    "{}: mode set to {:04o} (--mode)",
                    path.display(),
                    options.mode
                );
                options.mode
            }
            _ => continue,
        };
        file.set_permissions(Permissions::from_mode(wanted))
            .map_err(|e| Error::output(path, format!("cannot set the mode: {e}")))?;
    }
    Ok(())
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
                let temp = reserve(&target, mode, options.owner)?;
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
            let mut done: Vec<(&Slot, Undo)> = Vec::new();
            for slot in &staged {
                match slot.temp.swap_in(&slot.target) {
                    Ok(undo) => done.push((slot, undo)),
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

/// Prints what the command was run to get (a certificate from `sign`, the CA's from `info`) on
/// stdout: any failure to deliver it, a reader that has gone too, is an output error (exit 8).
pub fn print_product(text: &str) -> Result<()> {
    write_stdout(text).map_err(stdout_error)
}

/// Prints a report or a description on stdout. A reader that has gone away (`| head -1`) is not
/// an error, so the command's own exit status stands (certinfo's 12 and 13); a full disk behind
/// `>` is (exit 8). Either way, never the standard library's panic.
pub fn print_report(text: &str) -> Result<()> {
    match write_stdout(text) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(stdout_error(e)),
        _ => Ok(()),
    }
}

fn write_stdout(text: &str) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()
}

fn stdout_error(err: impl std::fmt::Display) -> Error {
    Error::output(Path::new("<stdout>"), err)
}

/// Fails when stdout goes nowhere: to /dev/null, or closed (`>&-`, which the Rust runtime
/// replaces with /dev/null at start). A new private key printed there is lost, with exit 0 and a
/// certificate signed for nothing; checked before the key is made and the CA is asked.
pub fn stdout_keeps_output() -> Result<()> {
    use std::os::unix::fs::MetadataExt as _;
    let (Ok(null), Ok(out)) = (
        std::fs::metadata("/dev/null"),
        nix::sys::stat::fstat(std::io::stdout()),
    ) else {
        return Ok(());
    };
    let is_char_device = out.st_mode & nix::libc::S_IFMT == nix::libc::S_IFCHR;
    if is_char_device && out.st_rdev == null.rdev() {
        return Err(stdout_error(
            "standard output is closed or /dev/null, and the new key or certificate printed \
             there would be lost: redirect it to a file, or write files (-bare NAME)",
        ));
    }
    Ok(())
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

fn parent_dir(path: &Path) -> PathBuf {
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

/// Writes one file atomically with `mode` (the metrics file, sign's certificate, info --out).
pub fn write_file_atomically(path: &Path, content: &[u8], mode: u32) -> Result<()> {
    let path = &write_target(path)?;
    let mut temp = reserve(path, mode, None)?;
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

/// The temporary files of this process that are neither renamed into place nor removed yet.
static PENDING: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

fn registry() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
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
struct Pending(Option<NamedTempFile>);

impl Pending {
    fn new(temp: NamedTempFile) -> Self {
        registry().push(temp.path().to_path_buf());
        Self(Some(temp))
    }

    fn file_mut(&mut self) -> &mut std::fs::File {
        match &mut self.0 {
            Some(temp) => temp.as_file_mut(),
            None => unreachable!("a temporary file is used after it was renamed"),
        }
    }

    /// Puts the file at `target` and the file `target` held, if any, at the temporary name
    /// (removed with it), in one step; says how to undo that. The caller holds [`registry()`].
    fn swap_in(&self, target: &Path) -> std::io::Result<Undo> {
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
    fn persist(&mut self, target: &Path, registry: &mut Vec<PathBuf>) -> std::io::Result<()> {
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
enum Undo {
    /// Exchange the target with this temporary name again: the old file comes back.
    Exchange(PathBuf),
    /// Remove the target: there was no file before.
    Remove,
    /// The file system could not exchange, so the old file is gone.
    Impossible,
}

/// Undoes the swaps in `done` (latest first) after `failure`, and says what happened, for the
/// error line: the pair is the old one again, or (rarely) it may not match.
fn roll_back(failure: &std::io::Error, done: &[(&Slot, Undo)]) -> String {
    let mut lost = Vec::new();
    for (slot, undo) in done.iter().rev() {
        let undone = match undo {
            Undo::Exchange(temp) => nix::fcntl::renameat2(
                nix::fcntl::AT_FDCWD,
                temp.as_path(),
                nix::fcntl::AT_FDCWD,
                slot.target.as_path(),
                nix::fcntl::RenameFlags::RENAME_EXCHANGE,
            )
            .is_ok(),
            Undo::Remove => std::fs::remove_file(&slot.target).is_ok(),
            Undo::Impossible => false,
        };
        if !undone {
            lost.push(slot.target.display().to_string());
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
    let uid = meta.uid();
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

/// Checks, before any work, that the file `path` names (through its symlinks, see
/// [`write_target`]) can be written: [`check_target`] on it.
pub fn check_writable(path: &Path) -> Result<()> {
    check_target(&write_target(path)?).map(drop)
}

/// Checks that `target` can be a file nodecert writes: its directory exists and it is not a
/// directory, device, FIFO or socket (a file is replaced by rename, which would put a regular
/// file in place of `/dev/null`). Returns the directory.
pub fn check_target(target: &Path) -> Result<PathBuf> {
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

fn reserve(target: &Path, mode: u32, owner: Option<Owner>) -> Result<Pending> {
    let dir = check_target(target)?;
    // Created 0600 (narrowed further by the umask, never widened), then set to its final mode
    // with fchmod before a byte is written: a key file is never readable by others.
    let temp = tempfile::Builder::new()
        .prefix(&temp_prefix(target))
        .suffix(".tmp")
        .permissions(Permissions::from_mode(KEY_MODE))
        .tempfile_in(&dir)
        .map_err(|e| {
            Error::output(
                target,
                format!("cannot create a file in {}: {e}", dir.display()),
            )
        })?;
    match owner {
        Some(owner) => {
            std::os::unix::fs::fchown(temp.as_file(), owner.uid, owner.gid).map_err(|e| {
                Error::output(target, format!("cannot change the owner (--owner): {e}"))
            })?;
        }
        None => keep_group(target, temp.as_file()),
    }
    temp.as_file()
        .set_permissions(Permissions::from_mode(mode))
        .map_err(|e| Error::output(target, e))?;
    Ok(Pending::new(temp))
}

/// Without `--owner`, a file that replaces one of this user's keeps that file's group, as
/// cfssljson's in-place write does: a key shared with a service group (`--key-mode 0640`, the
/// group set once with chgrp) stays readable by that group after renewal. Only a file of this
/// user's: the group of a file someone else put there is no instruction to follow.
fn keep_group(target: &Path, new: &std::fs::File) {
    use std::os::unix::fs::MetadataExt as _;
    let (Ok(old), Ok(created)) = (std::fs::symlink_metadata(target), new.metadata()) else {
        return;
    };
    if !old.is_file() || old.uid() != created.uid() || old.gid() == created.gid() {
        return;
    }
    if let Err(e) = std::os::unix::fs::fchown(new, None, Some(old.gid())) {
        log::warn!(
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
    fn owners_and_modes() {
        assert_eq!(
            Owner::parse("0:0"),
            Ok(Owner {
                uid: Some(0),
                gid: Some(0)
            })
        );
        assert_eq!(
            Owner::parse("root"),
            Ok(Owner {
                uid: Some(0),
                gid: None
            })
        );
        assert_eq!(
            Owner::parse(":root"),
            Ok(Owner {
                uid: None,
                gid: Some(0)
            })
        );
        assert!(
            Owner::parse("no-such-user-nodecert")
                .unwrap_err()
                .contains("no user")
        );
        assert_eq!(parse_mode("0640"), Ok(0o640));
        assert!(parse_mode("0999").is_err());
        assert!(check_key_mode(0o644).unwrap_err().contains("expose"));
        assert!(check_key_mode(0o700).unwrap_err().contains("executable"));
        assert_eq!(check_key_mode(0o640), Ok(0o640));
        assert!(check_public_mode(0o664).unwrap_err().contains("replace"));
        assert!(check_public_mode(0o755).unwrap_err().contains("executable"));
        assert_eq!(check_public_mode(0o640), Ok(0o640));
        let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
        assert_eq!(
            Owner::parse("nobody:"),
            Ok(Owner {
                uid: Some(nobody.uid.as_raw()),
                gid: Some(nobody.gid.as_raw())
            }),
            "USER: is the user's login group, as chown reads it"
        );
        assert!(Owner::parse(":").is_err());
    }

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
