//! `--metrics-file`: Prometheus text format for node_exporter's textfile collector.
//!
//! The file keeps one series set per certificate (label `name`, the certificate path), so one file
//! can serve every pair a host manages; a run updates its own series and keeps the others (but
//! those of certificates no longer there), and the file is replaced atomically so the collector
//! never reads half of it.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{Error, Result};

/// What a run learned about one certificate.
#[derive(Clone, Debug)]
pub(crate) struct Sample {
    /// The certificate path, the `name` label.
    pub name: String,
    /// Not-after of the certificate now in place; `None` when there is none that can be read
    /// (the series is then 0).
    pub not_after: Option<i64>,
    /// Whether this run succeeded.
    pub success: bool,
    /// When the run ended (Unix seconds).
    pub at: i64,
}

/// The `name` label for the certificate at `cert`: its absolute path, directory canonicalised,
/// so that the series stays the same however the run was spelled (a relative `-bare`, a sync
/// spec's `../out/node.pem`).
pub(crate) fn series_name(cert: &Path) -> String {
    std::path::absolute(crate::output::resolved(cert))
        .unwrap_or_else(|_| cert.to_path_buf())
        .display()
        .to_string()
}

const METRICS: [(&str, &str); 3] = [
    (
        "nodecert_certificate_not_after_seconds",
        "Not-after of the certificate in place, Unix seconds (0: none that can be read).",
    ),
    (
        "nodecert_last_success_timestamp_seconds",
        "End of the last successful run, Unix seconds.",
    ),
    (
        "nodecert_last_failure_timestamp_seconds",
        "End of the last failed run, Unix seconds.",
    ),
];

/// Checks, before any work, that the metrics file can be written where it is asked for: a run
/// must not renew a certificate and then fail on its metrics.
pub(crate) fn check_target(path: &Path) -> Result<()> {
    crate::output::existing_parent_dir(path, "metrics directory")?;
    crate::output::check_writable(path)
}

/// Checks, before any pair is issued and after the file is known to be none of the run's
/// inputs and outputs (which says more), that the metrics file holds only nodecert's series.
pub(crate) fn check_contents(path: &Path) -> Result<()> {
    match crate::error::read_bounded(path, MAX_BYTES) {
        // Wiped after: what a mistyped path names may be a private key.
        Ok(Some(bytes)) => only_metrics(path, &zeroize::Zeroizing::new(bytes)),
        _ => Ok(()),
    }
}

/// Refuses to replace a file that holds anything but nodecert's series: the whole file is
/// rewritten, and a mistyped `--metrics-file` (another pair's key, a config file) would
/// otherwise be lost without a word. The offending line is not quoted: it may be a secret.
fn only_metrics(path: &Path, text: &[u8]) -> Result<()> {
    let foreign = (text.split(|&b| b == b'\n').enumerate())
        .find(|(_, line)| {
            let line = line.trim_ascii();
            !(line.is_empty()
                || line.starts_with(b"# HELP nodecert_")
                || line.starts_with(b"# TYPE nodecert_")
                || line.starts_with(b"nodecert_"))
        })
        .map(|(index, _)| index + 1);
    match foreign {
        None => Ok(()),
        Some(line) => Err(Error::output(
            path,
            format!(
                "line {line} is not one of nodecert's metrics, and the metrics file is rewritten \
                 whole: give --metrics-file a file of its own (NAME.prom in the textfile \
                 collector's directory)"
            ),
        )),
    }
}

/// The largest metrics file read back: three series of about 150 bytes per certificate, so
/// room for tens of thousands of certificates.
const MAX_BYTES: u64 = 16 << 20;

/// Merges `samples` into the metrics file at `path`. Runs that share the file (several gencert
/// timers, sync) take turns under a lock next to it, so none loses another's series.
/// The lock, the sweep and the read go to the file the name leads to, as the write does: runs
/// that reach it through different names (a link) still take turns.
pub(crate) fn update(path: &Path, samples: &[Sample]) -> Result<()> {
    let path = &crate::output::write_target(path)?;
    let _turn = crate::lock::PairLock::acquire(path, LOCK_WAIT, None)?;
    crate::output::remove_stale_temps_of(path);
    let mut series: BTreeMap<(String, String), i64> = BTreeMap::new();
    let old = match crate::error::read_bounded(path, MAX_BYTES) {
        Ok(Some(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
        Ok(None) => {
            return Err(Error::output(
                path,
                format!(
                    "the metrics file is larger than {} MiB, which nodecert never writes: \
                     give another path",
                    MAX_BYTES >> 20
                ),
            ));
        }
        Err(_) => String::new(),
    };
    only_metrics(path, old.as_bytes())?;
    for line in old.lines().filter(|l| !l.starts_with('#')) {
        if let Some((metric, name, value)) = parse_line(line) {
            series.insert((metric, name), value);
        }
    }
    // A certificate that is gone from its directory (its pair deleted) leaves no series behind
    // to raise expiry alerts for ever; one this run reports stays, there or not (a first
    // issuance that failed), and so does one whose directory this run cannot see (another
    // mount, a sandbox's ProtectHome=).
    series.retain(|(_, name), _| {
        let path = Path::new(name);
        let gone = path.is_absolute()
            && path.parent().is_some_and(Path::is_dir)
            && std::fs::symlink_metadata(path)
                .is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound);
        !gone || samples.iter().any(|sample| &sample.name == name)
    });
    for sample in samples {
        let mut set = |metric: &str, value: i64| {
            series.insert((metric.to_string(), sample.name.clone()), value)
        };
        // No certificate in place (deleted, or garbage): 0, long expired, so that an alert on
        // `not_after - time()` fires. An expiry kept from an earlier run would tell it all is
        // well for months, and no value at all would leave it silent.
        set(METRICS[0].0, sample.not_after.unwrap_or(0));
        set(
            if sample.success {
                METRICS[1].0
            } else {
                METRICS[2].0
            },
            sample.at,
        );
    }
    let mut text = String::new();
    for (metric, help) in METRICS {
        text.push_str(&format!("# HELP {metric} {help}\n# TYPE {metric} gauge\n"));
        for ((m, name), value) in &series {
            if m == metric {
                text.push_str(&format!("{metric}{{name=\"{}\"}} {value}\n", escape(name)));
            }
        }
    }
    crate::output::write_file_atomically(path, text.as_bytes(), crate::output::PUBLIC_MODE).map_err(
        |e| match e {
            Error::Output { path, detail } => Error::Output {
                path,
                detail: format!("metrics file: {detail}"),
            },
            other => other,
        },
    )
}

fn parse_line(line: &str) -> Option<(String, String, i64)> {
    let (metric, rest) = line.split_once("{name=\"")?;
    let (name, value) = rest.rsplit_once("\"} ")?;
    Some((
        metric.to_string(),
        unescape(name),
        value.trim().parse().ok()?,
    ))
}

fn escape(name: &str) -> String {
    name.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The inverse of [`escape`], in one pass (`\\n` is a backslash and an n, not a newline).
fn unescape(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut chars = name.chars();
    while let Some(c) = chars.next() {
        match (c, chars.clone().next()) {
            ('\\', Some('n')) => {
                out.push('\n');
                chars.next();
            }
            ('\\', Some(next @ ('"' | '\\'))) => {
                out.push(next);
                chars.next();
            }
            _ => out.push(c),
        }
    }
    out
}

/// How long an update waits for another run to finish its own.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_survive_escaping() {
        for name in [
            "/a.pem",
            "/b \"x\".pem",
            "C:\\new\\n.pem",
            "two\nlines",
            "end\\",
        ] {
            assert_eq!(unescape(&escape(name)), name, "{name:?}");
        }
    }

    /// A certificate at `dir/file`, for its series to be kept ([`update`] drops those of
    /// certificates that are gone): its path, the series name.
    fn certificate(dir: &Path, file: &str) -> String {
        let path = dir.join(file);
        std::fs::write(&path, "").unwrap();
        path.display().to_string()
    }

    #[test]
    fn a_link_to_the_file_shares_its_lock_and_series() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("m.prom");
        let link = dir.path().join("l.prom");
        std::os::unix::fs::symlink("m.prom", &link).unwrap();
        let sample = |name: &str| Sample {
            name: name.into(),
            not_after: Some(100),
            success: true,
            at: 10,
        };
        let (a, b) = (
            certificate(dir.path(), "a.pem"),
            certificate(dir.path(), "b.pem"),
        );
        update(&link, &[sample(&a)]).unwrap();
        update(&real, &[sample(&b)]).unwrap();
        let text = std::fs::read_to_string(&link).unwrap();
        assert!(text.contains(&a) && text.contains(&b), "{text}");
        assert!(link.is_symlink());
        assert!(dir.path().join(".m.prom.lock").exists());
        assert!(!dir.path().join(".l.prom.lock").exists());
        // A file far larger than any metrics file nodecert writes is not read in.
        std::fs::write(&real, vec![b'#'; (MAX_BYTES + 1) as usize]).unwrap();
        let err = update(&link, &[sample(&a)]).unwrap_err();
        assert_eq!(err.exit_code(), crate::error::exit::OUTPUT);
        assert!(err.to_string().contains("larger than 16 MiB"), "{err}");
    }

    #[test]
    fn only_nodecerts_series_may_be_replaced() {
        let path = Path::new("m.prom");
        let own = "# HELP nodecert_x y\n# TYPE nodecert_x gauge\nnodecert_x{name=\"a\"} 1\n  \n\n";
        assert!(only_metrics(path, own.as_bytes()).is_ok());
        for (text, line) in [
            ("nodecert_x 1\n# my notes\n", 2),
            ("-----BEGIN EC PRIVATE KEY-----\n", 1),
            ("node_load1 0.5\n", 1),
        ] {
            let err = only_metrics(path, text.as_bytes()).unwrap_err().to_string();
            assert!(
                err.contains(&format!("line {line} is not one of nodecert's")),
                "{err}"
            );
            assert!(!err.contains("PRIVATE"), "the line is not quoted: {err}");
        }
    }

    #[test]
    fn runs_update_their_own_series_and_keep_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nodecert.prom");
        let a = certificate(dir.path(), "a.pem");
        let b = certificate(dir.path(), "b \"x\".pem");
        let gone = dir.path().join("gone.pem").display().to_string();
        let sample = |name: &str, not_after, success, at| Sample {
            name: name.into(),
            not_after,
            success,
            at,
        };
        update(&path, &[sample(&a, Some(100), true, 10)]).unwrap();
        update(&path, &[sample(&b, None, false, 20)]).unwrap();
        // In a directory this run cannot see (another mount, a sandbox): kept.
        let unseen = dir.path().join("unmounted/c.pem").display().to_string();
        update(&path, &[sample(&unseen, Some(50), true, 24)]).unwrap();
        update(&path, &[sample(&gone, None, false, 25)]).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("gone.pem"),
            "a run's own series stays: {text}"
        );
        update(&path, &[sample(&a, Some(200), true, 30)]).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        // What a killed run leaves is cleaned by the next update.
        let stale = dir.path().join(".nodecert.prom.nodecert-x1y2z3.tmp");
        std::fs::write(&stale, "partial").unwrap();
        update(&path, &[]).unwrap();
        assert!(!stale.exists());
        assert!(
            text.contains(&format!(
                "nodecert_certificate_not_after_seconds{{name=\"{a}\"}} 200\n"
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "nodecert_last_success_timestamp_seconds{{name=\"{a}\"}} 30\n"
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "nodecert_last_failure_timestamp_seconds{{name=\"{}\"}} 20\n",
                escape(&b)
            )),
            "{text}"
        );
        assert!(
            !text.contains("gone.pem"),
            "a certificate not there is dropped: {text}"
        );
        assert!(text.contains("unmounted/c.pem"), "{text}");
        assert_eq!(text.matches("# TYPE").count(), 3);
    }
}
