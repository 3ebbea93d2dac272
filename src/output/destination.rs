//! Which files a run writes (`-bare NAME`, explicit paths or stdout), and whether two paths
//! are one file.

use std::path::{Path, PathBuf};

use super::write_target;
use crate::error::{Error, Result};

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

/// Where the key that goes with a certificate at `cert` is by the usual naming: `X-key.pem`
/// beside `X.pem` (cfssljson) or `X.key` beside `X.crt` (kubelet, openssl). sign writes only a
/// certificate and is not told of a key; a pair there is the one it would break. Whether there
/// is one is for the caller to look at, under the pair's lock.
pub fn key_beside(cert: &Path) -> Option<PathBuf> {
    let name = cert.file_name()?.to_str()?;
    let key = if let Some(stem) = name.strip_suffix(".pem") {
        format!("{stem}-key.pem")
    } else {
        format!("{}.key", name.strip_suffix(".crt")?)
    };
    Some(cert.with_file_name(key))
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

/// Whether the mutual-TLS identity `cert` and `key` is the pair `destination` writes: a pair
/// that renews with itself as its client identity, as kubelet-style rotation does. Its files are
/// read when the transport is built, before anything is written, so a write cannot spoil them
/// as inputs: they are not refused as such ([`check_distinct`]).
pub fn is_own_identity(destination: &Destination, cert: &Path, key: &Path) -> bool {
    matches!(
        destination,
        Destination::Files { cert: Some(out_cert), key: out_key, .. }
            if FileId::of(out_cert) == FileId::of(cert) && FileId::of(out_key) == FileId::of(key)
    )
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
