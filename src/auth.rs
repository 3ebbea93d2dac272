//! The HMAC auth key and cfssl's `standard` token (`auth/auth.go:Standard`).
//!
//! token = HMAC-SHA256(hex-decoded key, the exact inner request bytes). The key is a secret type:
//! no `Display`, a redacted `Debug`, zeroized on drop, and it only ever enters from the request
//! profile (hex, `env:VAR`, `file:PATH`), never from the command line, so it cannot show up in
//! `ps`, logs or error messages.

use std::fmt;
use std::path::{Path, PathBuf};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

/// A decoded HMAC key.
pub struct AuthKey(Zeroizing<Vec<u8>>);

impl fmt::Debug for AuthKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuthKey(redacted)")
    }
}

/// Why an auth key could not be loaded. The text never contains key material.
#[derive(Debug, PartialEq, Eq)]
pub enum KeySourceError {
    /// `env:VAR` names a variable that is unset or empty.
    EmptyEnv(String),
    /// The value is not hex (after trimming surrounding whitespace).
    NotHex(&'static str),
    /// `file:PATH` could not be read.
    Unreadable(String, String),
    /// A `prefix:` other than `env:` or `file:`.
    UnknownPrefix(String),
    /// The key decodes to zero bytes.
    Empty,
}

impl fmt::Display for KeySourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EmptyEnv(var) if var.is_empty() => f.write_str(
                "env: names no variable: write env:NAME, with the hex key exported in NAME",
            ),
            Self::EmptyEnv(var) => write!(
                f,
                "environment variable {var} is unset or empty: export the hex key in it"
            ),
            Self::NotHex(why) => write!(
                f,
                "the key is not hex ({why}): use the hex string from the CA's auth_keys"
            ),
            Self::Unreadable(path, why) => write!(f, "cannot read key file {path}: {why}"),
            Self::UnknownPrefix(prefix) => write!(
                f,
                "unknown key prefix {prefix:?}: use hex, env:VAR or file:PATH"
            ),
            Self::Empty => {
                f.write_str("the key is empty: use the hex string from the CA's auth_keys")
            }
        }
    }
}

/// Names of environment variables an auth key was read from in this process.
static SECRET_VARS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

fn remember_secret_var(var: &str) {
    let mut vars = SECRET_VARS.lock().unwrap_or_else(|e| e.into_inner());
    if !vars.iter().any(|v| v == var) {
        vars.push(var.to_string());
    }
}

/// Remembers every variable an `env:VAR` string anywhere in `profile` names, as soon as the
/// profile is JSON: each may hold a key that can mint certificates, whichever key this run
/// uses, and a profile that fails a later check (or a sync spec that fails before its key is
/// read) must still not hand it to another spec's hook.
pub(crate) fn remember_env_sources(profile: &serde_json::Value) {
    for text in strings(profile) {
        if let Some(("env", var)) = text.split_once(':')
            && !var.is_empty()
        {
            remember_secret_var(var);
        }
    }
}

/// Every file a `file:PATH` string anywhere in `profile` names (relative to `base_dir`, the
/// profile's folder): the key this run uses and the others, each of which a CA accepts, so no
/// output may overwrite any of them. A key read from the working directory ([`key_file`])
/// counts with the place beside the profile too: a file written there would be read first by
/// the next run, in place of the key.
pub(crate) fn file_sources(profile: &serde_json::Value, base_dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = Vec::new();
    for text in strings(profile) {
        let Some(file) = key_file(text, base_dir) else {
            continue;
        };
        let beside = text.split_once(':').map(|(_, path)| base_dir.join(path));
        for file in std::iter::once(file).chain(beside) {
            if !files.contains(&file) {
                files.push(file);
            }
        }
    }
    files
}

/// The strings of a JSON document, wherever they are.
fn strings(value: &serde_json::Value) -> Box<dyn Iterator<Item = &str> + '_> {
    match value {
        serde_json::Value::String(text) => Box::new(std::iter::once(text.as_str())),
        serde_json::Value::Array(items) => Box::new(items.iter().flat_map(strings)),
        serde_json::Value::Object(fields) => Box::new(fields.values().flat_map(strings)),
        _ => Box::new(std::iter::empty()),
    }
}

/// The environment variables that held an auth key (`env:VAR` in a request profile), so that
/// what nodecert starts (`--exec` hooks) does not inherit the CA's HMAC key: a hook restarts a
/// service, it has no business being able to mint certificates.
pub(crate) fn secret_env_vars() -> Vec<String> {
    SECRET_VARS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
}

/// The file a `file:PATH` key source reads, so that no output of the run is allowed to
/// overwrite it: relative to `base_dir`, the profile's folder, which holds whatever directory a
/// timer runs in. cfssl reads a relative path from the working directory instead, so a profile
/// written for it whose key is there alone (and not beside the profile) still reads it there,
/// if it is a key file this user could have put there ([`is_own_plain_file`]).
pub(crate) fn key_file(source: &str, base_dir: &Path) -> Option<PathBuf> {
    let Some(("file", path)) = source.split_once(':') else {
        return None;
    };
    let beside = base_dir.join(path);
    let as_cfssl = Path::new(path);
    if as_cfssl.is_relative()
        && std::fs::symlink_metadata(&beside).is_err()
        && is_own_plain_file(as_cfssl)
    {
        return Some(as_cfssl.to_path_buf());
    }
    Some(beside)
}

/// Whether `path` is a regular file (not a link, FIFO or device) of this user's or root's that
/// nobody else may write: the working directory is wherever a run was started (a root shell in
/// /tmp), not a place vetted as the profile's is, so a file planted there is not read as a key.
fn is_own_plain_file(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|meta| is_own_plain(&meta))
}

/// [`is_own_plain_file`] for a file's metadata (of the file once opened, too).
fn is_own_plain(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    let euid = nix::unistd::geteuid().as_raw();
    meta.file_type().is_file()
        && (meta.uid() == euid || meta.uid() == 0)
        && meta.mode() & 0o022 == 0
}

/// Reads the key file at `path` in the working directory ([`key_file`]) as checked: opened
/// without following a link or blocking on a FIFO, and checked again once open, so that a file
/// swapped in after [`is_own_plain_file`] looked is not read.
fn read_from_working_dir(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    let file = crate::error::open_regular(std::fs::OpenOptions::new().read(true), path)?;
    if !is_own_plain(&file.metadata()?) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            "it changed after it was checked, and is no longer a file of this user's that \
             group and others may not write",
        ));
    }
    crate::error::read_at_most(file, MAX_KEY_FILE_BYTES)
}

impl AuthKey {
    /// Loads a key written as cfssl writes it in `auth_keys.NAME.key`: hex, `env:VAR` or
    /// `file:PATH`. Surrounding whitespace is trimmed (a file ending in a newline works, unlike
    /// cfssl 1.2). Relative `file:` paths are resolved against `base_dir`, the profile's folder
    /// (or, as cfssl does, the working directory: see [`key_file`]).
    pub fn from_source(source: &str, base_dir: &Path) -> Result<Self, KeySourceError> {
        let text: Zeroizing<String> = match source.split_once(':') {
            None => Zeroizing::new(source.to_string()),
            Some(("env", var)) => match std::env::var(var) {
                Ok(value) if !value.trim().is_empty() => {
                    remember_secret_var(var);
                    Zeroizing::new(value)
                }
                _ => return Err(KeySourceError::EmptyEnv(var.to_string())),
            },
            Some(("file", path)) => {
                let full = key_file(source, base_dir).expect("a file: source names a file");
                let beside = base_dir.join(path);
                let read = if full == beside {
                    crate::error::read_bounded(&full, MAX_KEY_FILE_BYTES)
                } else {
                    log::warn!(
                        "auth key file {path}: read from the working directory, as cfssl reads \
                         it, since there is none beside the profile ({}): write the path \
                         relative to the profile, or absolute, so runs from another directory \
                         (cron's is the home directory) find it",
                        beside.display()
                    );
                    read_from_working_dir(&full)
                };
                let unreadable =
                    |why: String| KeySourceError::Unreadable(full.display().to_string(), why);
                let bytes = read
                    .map_err(|e| {
                        // One of that name in the working directory, where cfssl would read it,
                        // passed over: said, or the operator is left looking for the reason.
                        let passed_over = Path::new(path).is_relative()
                            && e.kind() == std::io::ErrorKind::NotFound
                            && std::fs::symlink_metadata(path).is_ok();
                        let note = if passed_over {
                            " (the file of that name in the working directory is not read: a \
                             link, or writable by group or others, or another user's)"
                        } else {
                            ""
                        };
                        unreadable(format!("{}{note}", io_reason(&e)))
                    })?
                    .ok_or_else(|| unreadable("larger than 4 KiB: not a hex key".into()))?;
                warn_if_open(&full);
                let bytes = Zeroizing::new(bytes);
                Zeroizing::new(String::from_utf8_lossy(&bytes).into_owned())
            }
            Some((prefix, _)) => return Err(KeySourceError::UnknownPrefix(prefix.to_string())),
        };
        Self::from_hex(text.trim())
    }

    /// Decodes a hex key (either case).
    pub fn from_hex(hex: &str) -> Result<Self, KeySourceError> {
        if hex.is_empty() {
            return Err(KeySourceError::Empty);
        }
        if !hex.len().is_multiple_of(2) {
            return Err(KeySourceError::NotHex("odd number of digits"));
        }
        let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
        let mut key = Zeroizing::new(Vec::with_capacity(hex.len() / 2));
        for pair in hex.as_bytes().chunks(2) {
            match (digit(pair[0]), digit(pair[1])) {
                (Some(hi), Some(lo)) => key.push(hi << 4 | lo),
                _ => return Err(KeySourceError::NotHex("a character is not 0-9 or a-f")),
            }
        }
        Ok(Self(key))
    }

    /// The token cfssl's `Standard.Token` computes over `request`: raw HMAC-SHA256 bytes.
    pub fn token(&self, request: &[u8]) -> Vec<u8> {
        // HMAC takes keys of any length, so `new_from_slice` cannot fail here.
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        mac.update(request);
        mac.finalize().into_bytes().to_vec()
    }
}

/// Whether `text` could be an auth key: cfssl keys are hex, 16 digits (8 bytes) or more. Key
/// names, variable names, paths and host names practically never are.
pub(crate) fn looks_like_key(text: &str) -> bool {
    text.len() >= KEY_LIKE_DIGITS && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `text` with every run of 16 or more hex digits replaced. A request profile with its key in
/// the wrong field (where the key's name, its type, `env:VAR` or `file:PATH` belongs) must not
/// have that key echoed into an error, which lands in cron mail and the journal.
pub(crate) fn conceal_key_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.len() >= KEY_LIKE_DIGITS {
            out.push_str("[hex digits, not shown: they may be the auth key]");
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.chars() {
        if c.is_ascii_hexdigit() {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

const KEY_LIKE_DIGITS: usize = 16;

/// Warns when a key file is open to group or others: whoever can read it can have the CA issue
/// certificates (as ssh warns about a private key). Not an error: the run would then fail on a
/// fleet for a permission that worked yesterday.
fn warn_if_open(path: &Path) {
    use std::os::unix::fs::MetadataExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.mode() & 0o077 != 0
    {
        log::warn!(
            "{}: the auth key file is open to group or others (mode {:04o}): chmod 600 it, since \
             whoever reads it can have certificates issued",
            path.display(),
            meta.mode() & 0o7777
        );
    }
}

/// A hex HMAC key is a few dozen bytes; a key file is never read past this.
const MAX_KEY_FILE_BYTES: u64 = 4096;

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The exchange captured from cfssl 1.2 → multirootca in `cfssl-protocol.md` §7.1: the token
    /// on the wire is HMAC-SHA256 under this throw-away key over the decoded `request` bytes.
    #[test]
    fn token_matches_the_captured_cfssl_exchange() {
        let key = AuthKey::from_hex("659523f913e9a1c2045c294f28e3e901").unwrap();
        let request = include_bytes!("../tests/fixtures/captured-authsign-request.json");
        let token = base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            key.token(request),
        );
        assert_eq!(token, "hVM/RApH88X1RmevEE/g3YWsOVMXU59SdIQiTMSDVxU=");
    }

    /// RFC 4231 test case 2 (HMAC-SHA256), to pin the primitive itself.
    #[test]
    fn token_is_hmac_sha256() {
        let key = AuthKey::from_hex(&hex_of(b"Jefe")).unwrap();
        let token = key.token(b"what do ya want for nothing?");
        assert_eq!(
            hex_of(&token),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn key_like_runs_are_concealed() {
        let key = "c6c9f651d79b0a3e24458fdba20a9825";
        let text = format!("names \"{key}\", which is not in auth_keys; env:{key}x, file:/k/{key}");
        let shown = conceal_key_like(&text);
        assert!(!shown.contains(&key[..16]), "{shown}");
        assert_eq!(shown.matches("not shown").count(), 3, "{shown}");
        // Names, paths and short hex (a port, a year, 15 digits) stay as they are.
        let plain = "remotes.ca-2027: 127.0.0.1:8888, file:/etc/nodecert/abcdef012345678.hex";
        assert_eq!(conceal_key_like(plain), plain);
        assert!(looks_like_key(key));
        assert!(!looks_like_key("primary"));
        assert!(!looks_like_key(&key[..15]));
    }

    #[test]
    fn key_sources() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("k"), "00FF\n").unwrap();
        assert_eq!(
            *AuthKey::from_source("file:k", dir.path()).unwrap().0,
            [0x00, 0xff]
        );
        assert_eq!(
            *AuthKey::from_source(" 0a0b ", dir.path()).unwrap().0,
            [0x0a, 0x0b]
        );
        assert_eq!(
            AuthKey::from_source("env:NODECERT_TEST_SURELY_UNSET", dir.path()).unwrap_err(),
            KeySourceError::EmptyEnv("NODECERT_TEST_SURELY_UNSET".into())
        );
        assert_eq!(
            AuthKey::from_source("env:", dir.path())
                .unwrap_err()
                .to_string(),
            "env: names no variable: write env:NAME, with the hex key exported in NAME"
        );
        assert!(matches!(
            AuthKey::from_source("vault:x", dir.path()),
            Err(KeySourceError::UnknownPrefix(_))
        ));
        assert!(matches!(
            AuthKey::from_source("abc", dir.path()),
            Err(KeySourceError::NotHex(_))
        ));
        assert!(matches!(
            AuthKey::from_source("zz", dir.path()),
            Err(KeySourceError::NotHex(_))
        ));
        assert!(matches!(
            AuthKey::from_source("file:missing", dir.path()),
            Err(KeySourceError::Unreadable(..))
        ));
        assert_eq!(
            format!("{:?}", AuthKey::from_hex("0a").unwrap()),
            "AuthKey(redacted)"
        );
    }

    fn hex_of(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}
