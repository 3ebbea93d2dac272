//! The one error type of nodecert, and the exit-code contract built on it.
//!
//! Every failure a user or a script can act on is a variant here; foreign errors (reqwest, rustls,
//! serde, io) are classified once, where they arise, so `main` never has to guess. Each message is
//! a single line that names the file, field, flag or server and, where there is one, what to do.

use std::fmt;
use std::path::{Path, PathBuf};

/// Exit codes, the contract with scripts. [`exit::TABLE`] is rendered in `--help` and the man
/// pages; the README's table says the same in more words (kept by hand).
pub mod exit {
    /// The command did what was asked.
    pub const OK: u8 = 0;
    /// A bug or an unexpected condition inside nodecert.
    pub const INTERNAL: u8 = 1;
    /// The command line is wrong (unknown flag, bad value, missing argument).
    pub const USAGE: u8 = 2;
    /// An input file is missing, unreadable or invalid: csr.json, the request profile, the CA
    /// PEM, the mTLS files, or an auth key source.
    pub const INPUT: u8 = 3;
    /// TLS to the CA failed: untrusted or expired server certificate, name mismatch, protocol
    /// version, or a rejected client certificate. Fix the trust settings; retrying will not help.
    pub const TLS: u8 = 4;
    /// The CA answered and refused: bad auth key, unknown label or profile, policy violation.
    pub const REFUSED: u8 = 5;
    /// The CA could not be reached, timed out or failed (5xx). Worth retrying later.
    pub const UNAVAILABLE: u8 = 6;
    /// The CA's reply is unusable: not the envelope cfssl sends, or a certificate that fails
    /// nodecert's checks (wrong key, missing SAN, not valid now).
    pub const BAD_RESPONSE: u8 = 7;
    /// An output file could not be written. Nothing was replaced.
    pub const OUTPUT: u8 = 8;
    /// Another nodecert run holds the lock on this output pair; try again later.
    pub const BUSY: u8 = 9;
    /// The certificate was written, but the `--exec` command failed.
    pub const HOOK: u8 = 10;
    /// `sync`: at least one spec failed (each spec's line says why).
    pub const SYNC_FAILED: u8 = 11;
    /// `certinfo --check`: the certificate expires within the given time.
    pub const EXPIRING: u8 = 12;
    /// `certinfo`: the certificate (or one of its chain) has expired.
    pub const EXPIRED: u8 = 13;

    /// `(code, meaning)` rows for help text, man pages and the README.
    pub const TABLE: &[(u8, &str)] = &[
        (OK, "success"),
        (INTERNAL, "internal error (a bug: please report it)"),
        (
            USAGE,
            "usage: unknown flag, bad flag value, missing argument",
        ),
        (
            INPUT,
            "bad input file: csr.json, request profile, CA PEM, mTLS files, auth key",
        ),
        (TLS, "TLS or trust failure talking to the CA"),
        (
            REFUSED,
            "the CA refused the request (auth key, label, profile, policy)",
        ),
        (
            UNAVAILABLE,
            "the CA is unreachable, timed out or failed with 5xx: retry later",
        ),
        (
            BAD_RESPONSE,
            "the CA's reply is malformed or its certificate fails the checks",
        ),
        (OUTPUT, "an output file could not be written"),
        (
            BUSY,
            "another run holds the lock on this output pair: retry later",
        ),
        (
            HOOK,
            "the new certificate is in place, but the --exec command failed",
        ),
        (SYNC_FAILED, "sync: at least one spec failed"),
        (
            EXPIRING,
            "certinfo --check: the certificate expires within the given time",
        ),
        (EXPIRED, "certinfo: the certificate has expired"),
    ];
}

/// Everything that can make a nodecert command fail. Plain data (`Clone`), so one failure can
/// be reported for every sync spec it affects.
#[derive(Clone, Debug, thiserror::Error)]
pub enum Error {
    /// Another run holds the output pair's lock.
    #[error("{0}")]
    Busy(String),

    /// The `--exec` hook failed after the files were written.
    #[error("{0}")]
    Hook(String),

    /// The CA's reply could not be used.
    #[error("{server}: {detail}")]
    BadResponse { server: String, detail: String },

    /// A file or value the user supplied is wrong. `source_name` names it (a path, `csr.json field
    /// key.size`, an environment variable), `detail` says what is wrong and what to do.
    #[error("{source_name}: {detail}")]
    Input { source_name: String, detail: String },

    /// A condition that should not happen.
    #[error("internal error: {0}")]
    Internal(String),

    /// An output file could not be written.
    #[error("cannot write {}: {detail}", path.display())]
    Output { path: PathBuf, detail: String },

    /// The CA answered with an error. `message` is the CA's own text, verbatim. `by_the_ca`
    /// is false for an error status without cfssl's envelope (a web server's 404 at the
    /// address): another remote may answer, so it is passed over like a down one.
    #[error("{server} refused the request: {message}")]
    Refused {
        server: String,
        message: String,
        by_the_ca: bool,
    },

    /// TLS to the CA failed.
    #[error("TLS with {server} failed: {detail}")]
    Tls { server: String, detail: String },

    /// The CA could not be reached or failed.
    #[error("{server}: {detail}")]
    Unavailable { server: String, detail: String },

    /// The command line is inconsistent in a way clap cannot express.
    #[error("{0}")]
    Usage(String),
}

impl Error {
    /// The exit code for this error (see [`exit`]).
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::BadResponse { .. } => exit::BAD_RESPONSE,
            Self::Busy(_) => exit::BUSY,
            Self::Hook(_) => exit::HOOK,
            Self::Input { .. } => exit::INPUT,
            Self::Internal(_) => exit::INTERNAL,
            Self::Output { .. } => exit::OUTPUT,
            Self::Refused { .. } => exit::REFUSED,
            Self::Tls { .. } => exit::TLS,
            Self::Unavailable { .. } => exit::UNAVAILABLE,
            Self::Usage(_) => exit::USAGE,
        }
    }

    /// An input error about `source` (a path, a field, a variable).
    pub fn input(source: impl fmt::Display, detail: impl fmt::Display) -> Self {
        Self::Input {
            source_name: source.to_string(),
            detail: detail.to_string(),
        }
    }

    /// An [`Error::Input`] about one field of a JSON input (`FILE: field signing.default: …`).
    pub(crate) fn field(
        source: impl fmt::Display,
        field: impl fmt::Display,
        detail: impl fmt::Display,
    ) -> Self {
        Self::input(format_args!("{source}: field {field}"), detail)
    }

    /// Whether trying again later may succeed (the CA was unreachable, slow or failing).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }

    /// An input error about the file at `path`.
    pub fn input_file(path: &Path, detail: impl fmt::Display) -> Self {
        Self::input(path.display(), detail)
    }

    /// An output error about the file at `path`.
    pub fn output(path: &Path, detail: impl fmt::Display) -> Self {
        Self::Output {
            path: path.to_path_buf(),
            detail: detail.to_string(),
        }
    }
}

/// Reads a whole input file, mapping failures to an [`Error::Input`] naming it and its role
/// (for example "request profile").
pub fn read_input(path: &Path, role: &str) -> Result<Vec<u8>, Error> {
    if path.is_dir() {
        return Err(Error::input_file(
            path,
            format!("is a directory, expected the {role} file"),
        ));
    }
    let why = |e: std::io::Error| {
        let why = match e.kind() {
            std::io::ErrorKind::NotFound => "no such file".to_string(),
            std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
            _ => e.to_string(),
        };
        Error::input_file(path, format!("cannot read the {role}: {why}"))
    };
    read_bounded(path, MAX_INPUT_BYTES)
        .map_err(why)?
        .ok_or_else(|| {
            Error::input_file(
                path,
                format!(
                    "is larger than {} KiB: not a {role}",
                    MAX_INPUT_BYTES / 1024
                ),
            )
        })
}

/// The largest input file nodecert reads (csr.json, profiles, PEM files are a few KiB): a
/// mistaken `/dev/zero` or a log file must not exhaust memory.
pub const MAX_INPUT_BYTES: u64 = 1 << 20;

/// Makes a panic (a bug) end the run as the README's exit table says: one line on stderr in the
/// chosen log format, exit [`exit::INTERNAL`], and no temporary file left behind, one of which
/// may hold the new private key. Without it a release build (`panic = "abort"`) printed the
/// standard library's lines and died of SIGABRT (134), leaving the files for the next run.
pub fn report_panics() {
    std::panic::set_hook(Box::new(|info| {
        crate::output::remove_pending_within(std::time::Duration::from_secs(1));
        let payload = info.payload();
        let what = (payload.downcast_ref::<&str>().copied())
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("a panic");
        let at = (info.location())
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let what = crate::auth::conceal_key_like(what);
        let err = Error::Internal(format!("{what}{at} (a bug: please report it)"));
        crate::logging::print_error(&err);
        std::process::exit(exit::INTERNAL.into());
    }));
}

/// Reads at most `limit` bytes of `path`; `None` when the file is longer.
pub fn read_bounded(path: &Path, limit: u64) -> std::io::Result<Option<Vec<u8>>> {
    read_at_most(std::fs::File::open(path)?, limit)
}

/// The whole of `file` if it holds at most `limit` bytes, else None (reading stops past it).
pub(crate) fn read_at_most(file: std::fs::File, limit: u64) -> std::io::Result<Option<Vec<u8>>> {
    use std::io::Read;
    // Sized from the start: a buffer that grows leaves the bytes read so far behind in freed
    // memory, and this reads key files too (see `keygen`, which wipes what it is given).
    let expected = file.metadata().map_or(0, |m| m.len().min(limit));
    let mut bytes = Vec::with_capacity(usize::try_from(expected).unwrap_or(0) + 1);
    file.take(limit + 1).read_to_end(&mut bytes)?;
    Ok((bytes.len() as u64 <= limit).then_some(bytes))
}

/// The text of the key file at `path` (the file itself, not through a symlink:
/// [`read_regular_bounded`]), wiped when dropped, as are the bytes it was decoded from; `None`
/// when it is over [`MAX_INPUT_BYTES`].
pub(crate) fn read_key_text(path: &Path) -> std::io::Result<Option<zeroize::Zeroizing<String>>> {
    Ok(read_regular_bounded(path, MAX_INPUT_BYTES)?.map(|bytes| {
        let bytes = zeroize::Zeroizing::new(bytes);
        zeroize::Zeroizing::new(String::from_utf8_lossy(&bytes).into_owned())
    }))
}

/// [`read_bounded`] for a file nodecert may hand on (a key to reuse): it must be a regular
/// file at `path` itself. A symlink there is refused (`ELOOP`), so whoever can write the
/// directory cannot point nodecert at another key it can read and have it certified and
/// rewritten with this pair's owner and mode; a FIFO is refused instead of blocking.
pub fn read_regular_bounded(path: &Path, limit: u64) -> std::io::Result<Option<Vec<u8>>> {
    read_at_most(
        open_regular(std::fs::OpenOptions::new().read(true), path)?,
        limit,
    )
}

/// Opens the regular file at `path` itself with `options`: a symlink there fails with `ELOOP`,
/// a FIFO or device with `ENXIO` (a FIFO without a reader) or `InvalidInput`, never blocking.
pub fn open_regular(
    options: &mut std::fs::OpenOptions,
    path: &Path,
) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = options
        .custom_flags((nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_NONBLOCK).bits())
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    Ok(file)
}

/// The result type of the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::exit;

    /// The table printed in --help and the man pages lists every code, in order.
    #[test]
    fn exit_table_is_complete() {
        let codes: Vec<u8> = exit::TABLE.iter().map(|(code, _)| *code).collect();
        assert_eq!(codes, (exit::OK..=exit::EXPIRED).collect::<Vec<_>>());
    }
}
