//! Where the key, CSR and certificate go, and writing them so that a failed run changes nothing.
//!
//! Each file is staged as a temporary file in its target directory, created with its final mode
//! (tempfile creates 0600; certificate and CSR are then widened to 0644 with fchmod, which the
//! umask does not touch, so the key is never readable by others, not even for an instant). The
//! temporary files are reserved *before* the CA is contacted, so an unwritable directory fails
//! the run early with nothing sent. After the certificate has passed its checks, each file is
//! written, fsynced and renamed over its target, then the directories are fsynced.

use std::fs::Permissions;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::Serialize;
use tempfile::NamedTempFile;
use zeroize::Zeroizing;

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
    pub fn bare_without_cert(name: &str) -> Self {
        match Self::bare(name) {
            Self::Files { key, csr, .. } => Self::Files {
                cert: None,
                key,
                csr,
            },
            Self::Stdout => Self::Stdout,
        }
    }

    /// `-bare NAME`: `NAME.pem`, `NAME-key.pem`, `NAME.csr`, as cfssljson names them.
    pub fn bare(name: &str) -> Self {
        Self::Files {
            cert: Some(PathBuf::from(format!("{name}.pem"))),
            key: PathBuf::from(format!("{name}-key.pem")),
            csr: Some(PathBuf::from(format!("{name}.csr"))),
        }
    }
}

/// Mode of the private key file.
pub const KEY_MODE: u32 = 0o600;
/// Mode of the certificate and CSR files.
pub const PUBLIC_MODE: u32 = 0o644;

/// Output files reserved before the request is sent.
pub struct Reserved {
    destination: Destination,
    files: Vec<Slot>,
}

struct Slot {
    target: PathBuf,
    temp: NamedTempFile,
    role: Role,
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
    pub fn new(destination: Destination) -> Result<Self> {
        let mut files = Vec::new();
        if let Destination::Files { cert, key, csr } = &destination {
            let mut targets = vec![(key, Role::Key)];
            if let Some(cert) = cert {
                targets.push((cert, Role::Cert));
            }
            if let Some(csr) = csr {
                targets.push((csr, Role::Csr));
            }
            for (i, (a, _)) in targets.iter().enumerate() {
                if targets[..i].iter().any(|(b, _)| a == b) {
                    return Err(Error::Usage(format!(
                        "{} is given for two outputs: use distinct paths",
                        a.display()
                    )));
                }
            }
            for (target, role) in targets {
                files.push(Slot {
                    temp: reserve(target, role)?,
                    target: target.clone(),
                    role,
                });
            }
        }
        Ok(Self { destination, files })
    }

    /// Writes the bundle: to stdout, or each file atomically.
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
                .map_err(|e| Error::output(Path::new("<stdout>"), e));
        }
        let mut staged = Vec::new();
        for mut slot in self.files {
            let content = match slot.role {
                Role::Cert => bundle.cert.unwrap_or_default(),
                Role::Csr => bundle.csr,
                Role::Key => bundle.key,
            };
            let file = slot.temp.as_file_mut();
            file.write_all(content.as_bytes())
                .and_then(|()| file.sync_all())
                .map_err(|e| Error::output(&slot.target, e))?;
            staged.push(slot);
        }
        // Everything is on disk; now swap the files in. Key first, so that a reader that sees
        // the new certificate also finds its key.
        let mut dirs: Vec<PathBuf> = Vec::new();
        for slot in staged {
            let dir = parent_dir(&slot.target);
            slot.temp
                .persist(&slot.target)
                .map_err(|e| Error::output(&slot.target, e.error))?;
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
        for dir in dirs {
            std::fs::File::open(&dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| Error::output(&dir, format!("fsync of the directory failed: {e}")))?;
        }
        Ok(())
    }
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn reserve(target: &Path, role: Role) -> Result<NamedTempFile> {
    let dir = parent_dir(target);
    if !dir.is_dir() {
        return Err(Error::output(
            target,
            format!(
                "directory {} does not exist: create it first",
                dir.display()
            ),
        ));
    }
    if target.is_dir() {
        return Err(Error::output(target, "is a directory: give a file path"));
    }
    let temp = tempfile::Builder::new()
        .prefix(".nodecert-")
        .suffix(".tmp")
        .permissions(Permissions::from_mode(KEY_MODE))
        .tempfile_in(&dir)
        .map_err(|e| {
            Error::output(
                target,
                format!("cannot create a file in {}: {e}", dir.display()),
            )
        })?;
    if role != Role::Key {
        temp.as_file()
            .set_permissions(Permissions::from_mode(PUBLIC_MODE))
            .map_err(|e| Error::output(target, e))?;
    }
    Ok(temp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

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
        Reserved::new(dest)
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
        let reserved =
            Reserved::new(Destination::bare(&dir.path().join("x").to_string_lossy())).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 3);
        drop(reserved);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_missing_directory_is_reported() {
        let err = Reserved::new(Destination::bare("/nonexistent-dir-for-nodecert/x"))
            .err()
            .unwrap();
        assert!(err.to_string().contains("does not exist"), "{err}");
    }
}
