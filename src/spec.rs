//! `nodecert sync` specs: one JSON file per certificate pair (certmgr-style), with the same
//! meaning as gencert's flags. Relative paths are relative to the spec file, so a directory of
//! specs can be moved as a whole.
//!
//! ```json
//! {"csr": "kubelet-csr.json", "config": "request-profile.json", "profile": "kubelet",
//!  "tls_remote_ca": "/etc/kubernetes/pki/ca.pem", "hostname": ["node1", "10.0.0.1"],
//!  "cert": "/var/lib/kubelet/pki/kubelet.crt", "key": "/var/lib/kubelet/pki/kubelet.key",
//!  "renew_before": "720h", "exec": "systemctl restart kubelet", "owner": "root:root", "mode": "0644"}
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::csr::CertificateRequest;
use crate::error::{Error, Result};
use crate::job::{Job, Renewal};
use crate::output::Destination;
use crate::transport::TlsOptions;

/// A spec file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Spec {
    pub csr: PathBuf,
    pub config: PathBuf,
    #[serde(default)]
    pub profile: String,
    #[serde(default)]
    pub label: String,
    pub tls_remote_ca: Option<PathBuf>,
    pub hostname: Option<Vec<String>>,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub csr_out: Option<PathBuf>,
    pub renew_before: Option<String>,
    pub exec: Option<String>,
    pub owner: Option<String>,
    pub mode: Option<String>,
    pub key_mode: Option<String>,
    #[serde(default)]
    pub reuse_key: bool,
    pub mutual_tls_client_cert: Option<PathBuf>,
    pub mutual_tls_client_key: Option<PathBuf>,
}

/// Settings that come from sync's command line and apply to every spec.
#[derive(Clone, Debug, Default)]
pub(crate) struct Shared {
    pub renewal: Renewal,
    pub allow_plaintext: bool,
}

/// Refuses a spec that someone other than its runner could have written: a spec names files
/// that nodecert (often root) overwrites and a command it runs, so a spec writable by group or
/// others, or owned by another user, is a way to write any file and run anything as root. The
/// same rule cron applies to /etc/cron.d; the directory is held to it too, since whoever can
/// write there can replace the file.
fn trusted(path: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let me = nix::unistd::geteuid().as_raw();
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    // A spec that is a link is the link's owner's word as much as its target's: one planted by
    // another user (in a directory they may write) would make root read a file of its choice
    // as a spec. So is every link after it, up to the file.
    let mut hop = path.to_path_buf();
    for _ in 0..8 {
        let Ok(link) = std::fs::symlink_metadata(&hop) else {
            break;
        };
        if !link.file_type().is_symlink() {
            break;
        }
        if link.uid() != me && link.uid() != 0 {
            return Err(Error::input_file(
                path,
                format!(
                    "is reached through {}, a link that belongs to uid {}, neither root nor this \
                     user (uid {me}): remove it",
                    hop.display(),
                    link.uid()
                ),
            ));
        }
        let Ok(next) = std::fs::read_link(&hop) else {
            break;
        };
        hop = relative_to(&hop, &next);
    }
    for (what, target) in [("the spec", path), ("the spec directory", dir)] {
        let Ok(meta) = std::fs::metadata(target) else {
            continue; // reading reports it
        };
        // Sticky or not: in a directory others may write, anyone may add a spec (or a link
        // to a file of root's), and a spec's existence is an instruction.
        if meta.mode() & 0o022 != 0 {
            return Err(Error::input_file(
                path,
                format!(
                    "{what} is writable by group or others (mode {:04o}): whoever can write it can \
                     have nodecert overwrite any file and run commands as this user; chmod go-w {}",
                    meta.mode() & 0o7777,
                    target.display()
                ),
            ));
        }
        if meta.uid() != me && meta.uid() != 0 {
            return Err(Error::input_file(
                path,
                format!(
                    "{what} belongs to uid {}, neither root nor this user (uid {me}): chown it",
                    meta.uid()
                ),
            ));
        }
    }
    Ok(())
}

/// `p` as written in the spec at `spec_path`: relative paths are relative to the spec's directory.
fn relative_to(spec_path: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        spec_path.parent().unwrap_or(Path::new(".")).join(p)
    }
}

impl Spec {
    /// Reads a spec file, refusing one that someone else could have written (`trusted`).
    pub(crate) fn read(path: &Path) -> Result<Vec<u8>> {
        trusted(path)?;
        crate::error::read_input(path, "sync spec")
    }

    /// Parses the spec `bytes` read from `path`.
    pub(crate) fn parse(path: &Path, bytes: &[u8]) -> Result<Self> {
        let invalid = |e: serde_json::Error| Error::input_file(path, format!("invalid spec: {e}"));
        let value: serde_json::Value =
            serde_json::from_slice(crate::csr::without_bom(bytes)).map_err(invalid)?;
        // serde would also fill a spec from a JSON array, field by field in declaration order.
        if !value.is_object() {
            return Err(Error::input_file(
                path,
                "invalid spec: expected a JSON object like {\"csr\":…,\"config\":…,\"cert\":…}",
            ));
        }
        serde_json::from_value(value).map_err(invalid)
    }

    /// The path a spec's `field` (`cert`, `config`) names, read leniently from its `bytes`
    /// (read from `path`), so that a spec that does not parse (an unknown field, a wrong type
    /// or a missing field elsewhere) still gets its failure into its certificate's metrics, and
    /// its profile's `env:` variables kept from hooks. None when the bytes are not JSON or hold
    /// no such string.
    pub(crate) fn path_named(path: &Path, bytes: &[u8], field: &str) -> Option<PathBuf> {
        let value: serde_json::Value =
            serde_json::from_slice(crate::csr::without_bom(bytes)).ok()?;
        let named = value.get(field)?.as_str().filter(|p| !p.is_empty())?;
        Some(relative_to(path, Path::new(named)))
    }

    /// Turns the spec at `path` into a job.
    pub(crate) fn into_job(self, path: &Path, shared: &Shared) -> Result<Job> {
        let at = |p: &Path| relative_to(path, p);
        let field = |name: &str, detail: String| Error::field(path.display(), name, detail);

        // The profile first: the `env:` variables it names are kept from every spec's hook
        // even when this spec fails on its csr.json.
        let target = crate::profile::resolve(Some(&at(&self.config)), &self.profile, None)?;
        let csr_path = at(&self.csr);
        let bytes = crate::error::read_input(&csr_path, "csr.json")?;
        let mut request = CertificateRequest::parse(&bytes, &csr_path.display().to_string())?;
        if let Some(hosts) = &self.hostname {
            // An empty list would be sent as `"hosts":[]`, which strips every SAN; gencert's
            // `-hostname ""` counts as not given, but a spec that writes `[]` means something
            // else by it, so it is refused rather than guessed at.
            if hosts.is_empty() {
                return Err(field(
                    "hostname",
                    "is an empty list: leave the field out to use csr.json's hosts".into(),
                ));
            }
            for host in hosts {
                crate::csr::check_host(host)
                    .map_err(|d| field("hostname", format!("entry {d}")))?;
            }
            request.hosts = hosts.clone();
        }
        request.check_names_something(&csr_path.display().to_string())?;
        if let Some(command) = &self.exec {
            crate::hook::check_command(command).map_err(|d| field("exec", d))?;
        }
        target.check_plaintext(shared.allow_plaintext)?;
        let renew_before = self
            .renew_before
            .as_deref()
            .map(|d| crate::cli::parse_duration(d).map_err(|e| field("renew_before", e)))
            .transpose()?;
        let files = crate::output::FileOptions::parse(
            self.owner.as_deref(),
            self.mode.as_deref(),
            self.key_mode.as_deref(),
            ["field owner", "field mode", "field key_mode"],
        )
        .map_err(|detail| Error::input(path.display().to_string(), detail))?;
        let client_identity = match (self.mutual_tls_client_cert, self.mutual_tls_client_key) {
            (Some(cert), Some(key)) => Some((at(&cert), at(&key))),
            (None, None) => None,
            _ => {
                return Err(field(
                    "mutual_tls_client_cert",
                    "and mutual_tls_client_key come together".into(),
                ));
            }
        };
        let destination = Destination::Files {
            cert: Some(at(&self.cert)),
            key: at(&self.key),
            csr: self.csr_out.as_deref().map(at),
        };
        let pinned_ca = self.tls_remote_ca.as_deref().map(at);
        let config = at(&self.config);
        let mut inputs = vec![
            (path, "the spec file"),
            (csr_path.as_path(), "the csr.json"),
            (config.as_path(), "the request profile"),
        ];
        inputs.extend(pinned_ca.as_deref().map(|p| (p, "the CA certificate")));
        inputs.extend(target.auth_key_inputs());
        if let Some((cert, key)) = &client_identity
            && !crate::output::is_own_identity(&destination, cert, key)
        {
            inputs.extend([
                (cert.as_path(), "the client certificate"),
                (key.as_path(), "the client key"),
            ]);
        }
        crate::output::check_distinct(&destination.outputs(), &inputs)
            .map_err(|e| Error::input(path.display().to_string(), e.to_string()))?;
        let inputs = (inputs.into_iter())
            .map(|(p, what)| (p.to_path_buf(), what))
            .collect();
        let mut renewal = shared.renewal.clone();
        renewal.renew_before = renew_before.or(renewal.renew_before);
        renewal.exec = self.exec;
        renewal.reuse_key |= self.reuse_key;
        Ok(Job {
            request,
            hostname_override: self.hostname,
            target,
            tls: TlsOptions {
                pinned_ca,
                client_identity,
            },
            profile: self.profile,
            crl_override: String::new(),
            label: self.label,
            destination,
            inputs,
            files,
            renewal,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.json");
        std::fs::write(
            &path,
            r#"{"csr":"c","config":"r","cert":"a","key":"b","hostnames":["x"]}"#,
        )
        .unwrap();
        let err = Spec::parse(&path, &Spec::read(&path).unwrap())
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `hostnames`"), "{err}");
    }

    /// A spec is an object: serde would read an array into it too, value by value.
    #[test]
    fn an_array_is_no_spec() {
        let path = Path::new("x.json");
        let err = Spec::parse(path, br#"["c","r","",null,"a","b"]"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("expected a JSON object"), "{err}");
        assert!(Spec::parse(path, br#"{"csr":"c","config":"r","cert":"a","key":"b"}"#).is_ok());
    }
}
