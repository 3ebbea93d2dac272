//! cfssl's request profile (`config.json` on the client side) and the remotes it names.
//!
//! Resolution follows cfssl (`cfssl-protocol.md` §2), with its traps closed:
//! - a profile with `remote` + `auth_key` but no `auth_remote` is the authenticated request the
//!   user meant (cfssl sends it unauthenticated to `/sign`, which multirootca answers 404);
//! - an `env:` key that is unset or empty is an error (cfssl uses an empty HMAC key);
//! - a remote without a scheme is https (cfssl would speak plain http to `host:port`).

use std::path::{Path, PathBuf};

use reqwest::Url;
use serde_json::{Map, Value};

use crate::auth::AuthKey;
use crate::csr::{field, string_field, unambiguous};
use crate::error::{Error, Result};

/// Where to send the request and how to authenticate it.
#[derive(Debug)]
pub struct Target {
    /// Remotes in failover order (never empty).
    pub remotes: Vec<Remote>,
    /// Where they were given (`-remote`, or `remotes.NAME in FILE`), for messages about them.
    pub remotes_origin: String,
    /// The HMAC key; `None` means the unauthenticated `/sign` endpoint.
    pub auth_key: Option<AuthKey>,
    /// Where that key is configured (`auth_keys.NAME in FILE`), for a refusal of its token.
    pub auth_key_origin: Option<String>,
    /// Every file a `file:PATH` key of the profile names, the one used and the others: inputs
    /// no output may overwrite.
    pub auth_key_files: Vec<PathBuf>,
}

impl Target {
    /// The signing endpoint: `authsign` with an auth key, else the unauthenticated `sign`.
    pub fn sign_path(&self) -> &'static str {
        match self.auth_key {
            Some(_) => crate::protocol::AUTHSIGN_PATH,
            None => crate::protocol::SIGN_PATH,
        }
    }

    /// The auth key files with their role, for [`crate::output::check_distinct`].
    pub fn auth_key_inputs(&self) -> impl Iterator<Item = (&Path, &'static str)> {
        (self.auth_key_files.iter())
            .map(|p| (p.as_path(), "an auth key file (file: in the profile)"))
    }

    /// Refuses plain-http remotes unless `allowed`, and warns when they are allowed.
    pub fn check_plaintext(&self, allowed: bool) -> Result<()> {
        if let Some(remote) = self.remotes.iter().find(|r| r.is_plaintext()) {
            if !allowed {
                return Err(Error::Usage(format!(
                    "remote {remote} ({}) is plain http: what is sent (an auth token, a CSR) could be read \
                     and what comes back (certificates) replaced on the way. Use https://, or pass \
                     --allow-plaintext to accept that",
                    self.remotes_origin
                )));
            }
            log::warn!(
                "remote {remote} is plain http: what is sent can be read and what comes back \
                 replaced on the way (--allow-plaintext)"
            );
        }
        Ok(())
    }
}

/// One CA endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Remote {
    /// Base URL, always ending in `/`.
    pub base: Url,
}

impl Remote {
    /// Parses one remote as written in `remotes` or `-remote`: `https://host:port`, `host:port`
    /// (https is assumed), `host` (port 8888, cfssl's default), or `http://…`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("is empty: use https://HOST:PORT".into());
        }
        let with_scheme = if text.contains("://") {
            text.to_string()
        } else {
            format!("https://{text}")
        };
        // A bare IPv6 address needs its brackets in a URL, as in Go's host:port.
        let brackets = if text.parse::<std::net::Ipv6Addr>().is_ok() {
            format!(" (an IPv6 address goes in brackets: https://[{text}]:PORT)")
        } else {
            String::new()
        };
        let mut url = Url::parse(&with_scheme).map_err(|e| {
            format!("{text:?} is not a valid remote ({e}): use https://HOST:PORT{brackets}")
        })?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err(format!(
                "{text:?} has scheme {}: use https://HOST:PORT",
                url.scheme()
            ));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(format!("{text:?} has no host: use https://HOST:PORT"));
        }
        // Not quoted back: what sits before the `@` may be a password, which would otherwise be
        // logged with every request URL (and sent to the CA as Basic auth).
        if !url.username().is_empty() || url.password().is_some() {
            return Err(format!(
                "a remote for host {} has a user or password in it: use https://HOST:PORT",
                url.host_str().unwrap_or_default()
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(format!(
                "{text:?} has a query or fragment: use https://HOST:PORT"
            ));
        }
        if url.port().is_none() && !text.contains("://") {
            // `host` alone: cfssl's default port.
            let _ = url.set_port(Some(DEFAULT_PORT));
        }
        if !url.path().ends_with('/') {
            let path = format!("{}/", url.path());
            url.set_path(&path);
        }
        Ok(Self { base: url })
    }

    /// Parses a comma-separated failover list. In a list, an error names the entry.
    pub fn parse_list(text: &str) -> Result<Vec<Self>, String> {
        let entries: Vec<&str> = text.split(',').collect();
        if let [one] = entries.as_slice() {
            return Self::parse(one).map(|remote| vec![remote]);
        }
        (entries.iter().enumerate())
            .map(|(i, entry)| {
                if entry.trim().is_empty() {
                    return Err(format!(
                        "entry {} of the list is empty: remove the stray comma",
                        i + 1
                    ));
                }
                Self::parse(entry).map_err(|e| format!("entry {}: {e}", i + 1))
            })
            .collect()
    }

    /// Whether this remote would carry the token and CSR in clear.
    pub fn is_plaintext(&self) -> bool {
        self.base.scheme() == "http"
    }

    /// The URL of an endpoint (`api/v1/cfssl/…`) on this remote.
    pub fn endpoint(&self, path: &str) -> Url {
        // `base` always ends in '/', and `path` is one of our relative constants.
        self.base
            .join(path)
            .unwrap_or_else(|e| unreachable!("joining {path}: {e}"))
    }

    /// `host:port` for messages.
    pub fn display_name(&self) -> String {
        let host = self.base.host_str().unwrap_or("?");
        match self.base.port_or_known_default() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        }
    }
}

impl std::fmt::Display for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.base.as_str().trim_end_matches('/'))
    }
}

/// cfssl's default port for a remote given as a bare host.
const DEFAULT_PORT: u16 = 8888;

/// Resolves the request profile at `path` (if any) and the `-remote` override into a [`Target`].
/// `profile_name` selects `signing.profiles.NAME`, falling back to `signing.default` as cfssl does.
pub fn resolve(
    path: Option<&Path>,
    profile_name: &str,
    remote_flag: Option<&str>,
) -> Result<Target> {
    let flag_remotes = remote_flag
        .map(|r| Remote::parse_list(r).map_err(|d| Error::Usage(format!("flag -remote: {d}"))))
        .transpose()?;
    let Some(path) = path else {
        return match flag_remotes {
            Some(remotes) => Ok(Target {
                remotes,
                remotes_origin: "-remote".into(),
                auth_key: None,
                auth_key_origin: None,
                auth_key_files: Vec::new(),
            }),
            None => Err(Error::Usage(
                "no CA given: pass -config REQUEST-PROFILE.json (or -remote https://CA:PORT)"
                    .into(),
            )),
        };
    };
    // The profile may hold the auth key inline: wiped when done, as the parsed tree is.
    let bytes = zeroize::Zeroizing::new(crate::error::read_input(path, "request profile")?);
    let base_dir = path.parent().unwrap_or(Path::new("."));
    parse(
        &bytes,
        &path.display().to_string(),
        base_dir,
        profile_name,
        flag_remotes,
    )
}

/// Remembers the `env:` variables the request profile at `path` names, whatever else is wrong
/// with it or with the spec that names it, so that no hook is given them: a sync spec that did
/// not become a job (a typo, a mode it is refused for) must not leave its CA's key in the
/// environment of the other specs' hooks. Nothing is reported: the spec's own error is.
pub fn remember_env_leniently(path: &Path) {
    let Ok(Some(bytes)) = crate::error::read_bounded(path, crate::error::MAX_INPUT_BYTES) else {
        return;
    };
    let bytes = zeroize::Zeroizing::new(bytes);
    if let Ok(value) = serde_json::from_slice(crate::csr::without_bom(&bytes)) {
        crate::auth::remember_env_sources(&WipedOnDrop(value));
    }
}

/// Resolves request-profile `bytes` (named `source` in errors; `file:` keys are relative to
/// `base_dir`). `flag_remotes` replaces the profile's remotes, keeping its auth key.
///
/// An error never shows what looks like a key (`auth::conceal_key_like`): the profile
/// is the one file that holds it, and a key pasted into the wrong field would otherwise be
/// quoted back.
pub fn parse(
    bytes: &[u8],
    source: &str,
    base_dir: &Path,
    profile_name: &str,
    flag_remotes: Option<Vec<Remote>>,
) -> Result<Target> {
    parse_unconcealed(bytes, source, base_dir, profile_name, flag_remotes).map_err(|e| match e {
        Error::Input {
            source_name,
            detail,
        } => Error::Input {
            source_name: crate::auth::conceal_key_like(&source_name),
            detail: crate::auth::conceal_key_like(&detail),
        },
        other => other,
    })
}

fn parse_unconcealed(
    bytes: &[u8],
    source: &str,
    base_dir: &Path,
    profile_name: &str,
    flag_remotes: Option<Vec<Remote>>,
) -> Result<Target> {
    let root = WipedOnDrop(
        serde_json::from_slice(crate::csr::without_bom(bytes))
            .map_err(|e| Error::input(source, format!("not valid JSON: {e}")))?,
    );
    crate::auth::remember_env_sources(&root);
    let auth_key_files = crate::auth::file_sources(&root, base_dir);
    let root = root
        .as_object()
        .ok_or_else(|| Error::input(source, "expected a JSON object with a \"signing\" field"))?;
    unambiguous(root, &["signing", "auth_keys", "remotes"]).map_err(|d| Error::input(source, d))?;
    let (profile_path, profile) = chosen_profile(root, profile_name, source)?;
    let names = AuthRemote::of(profile, &profile_path, source)?;
    let (remotes, remotes_origin) = match flag_remotes {
        Some(remotes) => (remotes, "-remote".to_string()),
        None => (
            named_remotes(root, &names, source)?,
            crate::auth::conceal_key_like(&format!("remotes.{} in {source}", names.remote)),
        ),
    };
    let (auth_key, auth_key_origin) = if names.key.is_empty() {
        (None, None)
    } else {
        let (key, file) = named_auth_key(root, &names, base_dir, source)?;
        // Named as every profile error names it: a key pasted as a name is not shown. A key
        // read from a file names the file too: it may be the working directory's (as cfssl
        // reads a relative path), not the one beside the profile.
        let file = file.map_or_else(String::new, |file| {
            format!(" and its key file {}", file.display())
        });
        (
            Some(key),
            Some(crate::auth::conceal_key_like(&format!(
                "auth_keys.{} in {source}{file}",
                names.key
            ))),
        )
    };
    Ok(Target {
        remotes,
        remotes_origin,
        auth_key,
        auth_key_origin,
        auth_key_files,
    })
}

/// `signing.profiles.NAME` when there is one by that name, else `signing.default`, with its
/// path for messages.
fn chosen_profile<'a>(
    root: &'a Map<String, Value>,
    profile_name: &str,
    source: &str,
) -> Result<(String, &'a Map<String, Value>)> {
    let signing = object(root, "signing")
        .map_err(|d| Error::field(source, "signing", d))?
        .ok_or_else(|| {
            Error::field(
                source,
                "signing",
                "is missing: a request profile needs signing.default.auth_remote",
            )
        })?;
    unambiguous(signing, &["default", "profiles"])
        .map_err(|d| Error::field(source, "signing", &d))?;
    let (profile_path, profile) = match object(signing, "profiles")
        .map_err(|d| Error::field(source, "signing.profiles", d))?
    {
        // Names in `profiles`, `remotes` and `auth_keys` are Go map keys: matched exactly,
        // where field names (Go struct fields) match in any case.
        Some(profiles) if !profile_name.is_empty() && profiles.contains_key(profile_name) => {
            let path = format!("signing.profiles.{profile_name}");
            let p =
                as_object(&profiles[profile_name]).map_err(|d| Error::field(source, &path, d))?;
            (path, p)
        }
        _ => (
            "signing.default".to_string(),
            object(signing, "default").map_err(|d| Error::field(source, "signing.default", d))?,
        ),
    };
    match profile {
        Some(profile) => Ok((profile_path, profile)),
        None => Err(Error::field(
            source,
            &profile_path,
            "is missing: add auth_remote {\"remote\":…,\"auth_key\":…}",
        )),
    }
}

/// The remote and auth key a profile names, with the fields they were read from (for
/// messages): from `auth_remote`, or from cfssl's older `remote` + `auth_key` pair.
struct AuthRemote {
    remote_field: String,
    remote: String,
    key_field: String,
    key: String,
}

impl AuthRemote {
    fn of(profile: &Map<String, Value>, profile_path: &str, source: &str) -> Result<Self> {
        unambiguous(profile, &["auth_remote", "remote", "auth_key"])
            .map_err(|d| Error::field(source, profile_path, &d))?;
        // An all-empty auth_remote (what Go's json.Marshal writes for an unset one) is no
        // auth_remote, as cfssl treats its zero value.
        let auth_remote = object(profile, "auth_remote")
            .map_err(|d| Error::field(source, format!("{profile_path}.auth_remote"), d))?
            .filter(|ar| {
                !matches!(
                    (string_field(ar, "remote"), string_field(ar, "auth_key")),
                    (Ok(remote), Ok(key)) if remote.is_empty() && key.is_empty()
                )
            });
        // A string field's value, and its path for messages.
        let string_at = |map: &Map<String, Value>, parent: &str, name: &str| {
            let path = format!("{parent}.{name}");
            match string_field(map, name) {
                Ok(value) => Ok((value, path)),
                Err(detail) => Err(Error::field(source, &path, detail)),
            }
        };
        let (plain_remote, plain_remote_field) = string_at(profile, profile_path, "remote")?;
        let (plain_key, plain_key_field) = string_at(profile, profile_path, "auth_key")?;
        let Some(ar) = auth_remote else {
            if !plain_key.is_empty() {
                log::debug!(
                    "{}: {profile_path} has remote + auth_key without auth_remote; sending an \
                     authenticated request as intended",
                    source
                );
            }
            return Ok(Self {
                remote_field: plain_remote_field,
                remote: plain_remote,
                key_field: plain_key_field,
                key: plain_key,
            });
        };
        if !plain_remote.is_empty() {
            return Err(Error::field(
                source,
                profile_path,
                "has both remote and auth_remote: keep only auth_remote",
            ));
        }
        let f = format!("{profile_path}.auth_remote");
        unambiguous(ar, &["remote", "auth_key"]).map_err(|d| Error::field(source, &f, &d))?;
        let (remote, remote_field) = string_at(ar, &f, "remote")?;
        let (key, key_field) = string_at(ar, &f, "auth_key")?;
        if key.is_empty() {
            return Err(Error::field(
                source,
                &key_field,
                "is missing: name a key from auth_keys",
            ));
        }
        Ok(Self {
            remote_field,
            remote,
            key_field,
            key,
        })
    }
}

/// The remotes the profile's `remotes` section lists under the name the profile gives.
fn named_remotes(
    root: &Map<String, Value>,
    names: &AuthRemote,
    source: &str,
) -> Result<Vec<Remote>> {
    let name = &names.remote;
    if name.is_empty() {
        return Err(Error::field(
            source,
            &names.remote_field,
            "is missing: name a remote from the remotes section (or pass -remote)",
        ));
    }
    let field = format!("remotes.{name}");
    let table = object(root, "remotes").map_err(|d| Error::field(source, "remotes", d))?;
    let value = match table.and_then(|t| t.get(name)) {
        Some(Value::String(v)) => v,
        Some(_) => {
            return Err(Error::field(
                source,
                &field,
                "must be a string like \"https://ca.example:8888\"",
            ));
        }
        None => {
            // Go matches struct fields in any case, but map keys exactly.
            let hint = (table.into_iter().flat_map(|t| t.keys()))
                .find(|key| key.eq_ignore_ascii_case(name))
                .map(|key| format!(" (remote names are case-sensitive: {key:?} is there)"))
                .unwrap_or_default();
            return Err(Error::field(
                source,
                &names.remote_field,
                format!("names {name:?}, which is not in the remotes section{hint}"),
            ));
        }
    };
    let remotes = Remote::parse_list(value).map_err(|d| Error::field(source, &field, &d))?;
    // A key pasted here would parse as a host name and reach every later message.
    if remotes
        .iter()
        .any(|r| r.base.host_str().is_some_and(crate::auth::looks_like_key))
    {
        return Err(Error::field(
            source,
            &field,
            "holds a long hex string (not shown: it may be the auth key), not the CA's \
             address: write https://HOST:PORT there, and the key in auth_keys",
        ));
    }
    Ok(remotes)
}

/// The key the profile's `auth_keys` section holds under the name the profile gives, and the
/// file it was read from (a `file:` key).
fn named_auth_key(
    root: &Map<String, Value>,
    names: &AuthRemote,
    base_dir: &Path,
    source: &str,
) -> Result<(AuthKey, Option<std::path::PathBuf>)> {
    let name = &names.key;
    let keys = object(root, "auth_keys").map_err(|d| Error::field(source, "auth_keys", d))?;
    let entry = keys.and_then(|k| k.get(name)).ok_or_else(|| {
        Error::field(
            source,
            &names.key_field,
            format!("names {name:?}, which is not in the auth_keys section"),
        )
    })?;
    let entry_field = format!("auth_keys.{name}");
    let entry = entry.as_object().ok_or_else(|| {
        Error::field(
            source,
            &entry_field,
            "must be an object {\"type\":\"standard\",\"key\":…}",
        )
    })?;
    unambiguous(entry, &["type", "key"]).map_err(|d| Error::field(source, &entry_field, &d))?;
    let kind = string_field(entry, "type")
        .map_err(|d| Error::field(source, format!("{entry_field}.type"), d))?;
    if kind != "standard" {
        return Err(Error::field(
            source,
            format!("{entry_field}.type"),
            format!("is {kind:?}: only \"standard\" is supported"),
        ));
    }
    let key_text = string_field(entry, "key")
        .map_err(|d| Error::field(source, format!("{entry_field}.key"), d))?;
    let key = AuthKey::from_source(&key_text, base_dir)
        .map_err(|e| Error::field(source, format!("{entry_field}.key"), e.to_string()))?;
    Ok((key, crate::auth::key_file(&key_text, base_dir)))
}

/// A parsed request profile whose strings are zeroized when it is dropped: an inline auth key
/// is one of them, and a freed `String` keeps its bytes until the allocator reuses them.
struct WipedOnDrop(Value);

impl std::ops::Deref for WipedOnDrop {
    type Target = Value;

    fn deref(&self) -> &Value {
        &self.0
    }
}

impl Drop for WipedOnDrop {
    fn drop(&mut self) {
        fn wipe(value: &mut Value) {
            use zeroize::Zeroize as _;
            match value {
                Value::String(text) => text.zeroize(),
                Value::Array(items) => items.iter_mut().for_each(wipe),
                Value::Object(map) => map.values_mut().for_each(wipe),
                _ => {}
            }
        }
        wipe(&mut self.0);
    }
}

/// An optional object-valued field.
fn object<'a>(
    parent: &'a Map<String, Value>,
    name: &str,
) -> Result<Option<&'a Map<String, Value>>, &'static str> {
    field(parent, name).map_or(Ok(None), as_object)
}

/// A value that must be an object, or null (absent).
fn as_object(value: &Value) -> Result<Option<&Map<String, Value>>, &'static str> {
    match value {
        Value::Null => Ok(None),
        Value::Object(o) => Ok(Some(o)),
        _ => Err("must be an object"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_forms() {
        let base = |s: &str| Remote::parse(s).unwrap().base.to_string();
        assert_eq!(base("https://127.0.0.1:8888"), "https://127.0.0.1:8888/");
        assert_eq!(base("127.0.0.1:8888"), "https://127.0.0.1:8888/");
        assert_eq!(base("ca.example"), "https://ca.example:8888/");
        assert_eq!(base("[::1]:9000"), "https://[::1]:9000/");
        assert_eq!(base("https://ca.example"), "https://ca.example/");
        assert_eq!(
            base("https://ca.example:1/pki"),
            "https://ca.example:1/pki/"
        );
        assert!(Remote::parse("http://127.0.0.1:1").unwrap().is_plaintext());
        assert!(Remote::parse("ftp://x").is_err());
        assert!(Remote::parse("").is_err());
        assert_eq!(
            Remote::parse("127.0.0.1:1")
                .unwrap()
                .endpoint(crate::protocol::AUTHSIGN_PATH)
                .as_str(),
            "https://127.0.0.1:1/api/v1/cfssl/authsign"
        );
        assert_eq!(Remote::parse_list("a:1, b:2").unwrap().len(), 2);
        // A bare IPv6 address is told to take its brackets.
        let err = Remote::parse("::1").unwrap_err();
        assert!(
            err.ends_with(
                "use https://HOST:PORT (an IPv6 address goes in brackets: https://[::1]:PORT)"
            ),
            "{err}"
        );
        assert_eq!(base("[::1]"), "https://[::1]:8888/");
        // Credentials are refused, a password alone too, and never quoted back.
        for remote in [
            "https://:s3cret@ca:8888",
            "https://u:s3cret@ca:8888",
            "https://u@ca",
        ] {
            let err = Remote::parse(remote).unwrap_err();
            assert!(err.contains("has a user or password in it"), "{err}");
            assert!(!err.contains("s3cret"), "{err}");
        }
        assert!(
            Remote::parse("https://ca?x=1")
                .unwrap_err()
                .contains("query or fragment")
        );
    }

    fn write(dir: &Path, json: &str) -> std::path::PathBuf {
        let path = dir.join("rp.json");
        std::fs::write(&path, json).unwrap();
        path
    }

    #[test]
    fn a_remote_with_credentials_is_bad_input_never_quoted() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            r#"{"signing":{"default":{"auth_remote":{"remote":"ca","auth_key":"k"}}},
            "auth_keys":{"k":{"type":"standard","key":"00"}},"remotes":{"ca":"https://:s3cret@ca:1"}}"#,
        );
        let err = resolve(Some(&p), "", None).unwrap_err();
        assert_eq!(err.exit_code(), crate::error::exit::INPUT);
        let text = err.to_string();
        assert!(
            text.contains("has a user or password in it") && !text.contains("s3cret"),
            "{text}"
        );
    }

    #[test]
    fn remote_plus_auth_key_is_authenticated() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            r#"{"signing":{"default":{"remote":"ca","auth_key":"k"}},
            "auth_keys":{"k":{"type":"standard","key":"00"}},"remotes":{"ca":"127.0.0.1:1"}}"#,
        );
        let target = resolve(Some(&p), "", None).unwrap();
        assert!(target.auth_key.is_some());
    }

    #[test]
    fn names_are_exact_and_an_empty_auth_remote_is_absent() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            r#"{"SIGNING":{"default":{"auth_remote":{"remote":"a","auth_key":"k"}},
            "profiles":{"srv":{"remote":"b","auth_remote":{"remote":"","auth_key":""}}}},
            "auth_keys":{"k":{"type":"standard","key":"00"}},"remotes":{"a":"a:1","b":"b:2"}}"#,
        );
        // Field names in any case; profile names exactly, as Go's map lookup (else default).
        let remote = |name: &str| resolve(Some(&p), name, None).unwrap().remotes[0].display_name();
        assert_eq!(remote("Srv"), "a:1");
        // The empty auth_remote is absent: the plain remote applies, unauthenticated.
        assert_eq!(remote("srv"), "b:2");
        assert!(resolve(Some(&p), "srv", None).unwrap().auth_key.is_none());
        let p = write(
            dir.path(),
            r#"{"signing":{"default":{"auth_remote":{"remote":"A","auth_key":"k"}}},
            "auth_keys":{"k":{"type":"standard","key":"00"}},"remotes":{"a":"a:1"}}"#,
        );
        let err = resolve(Some(&p), "", None).unwrap_err().to_string();
        assert!(
            err.contains("names \"A\", which is not in the remotes section"),
            "{err}"
        );
        // Field names differing only in case: refused, naming where.
        let p = write(
            dir.path(),
            r#"{"signing":{"default":{"auth_remote":{"remote":"a","auth_key":"k","Auth_Key":"j"}}},
            "auth_keys":{"k":{"type":"standard","key":"00"}},"remotes":{"a":"a:1"}}"#,
        );
        let err = resolve(Some(&p), "", None).unwrap_err().to_string();
        assert!(
            err.contains("field signing.default.auth_remote")
                && err.contains("both set auth_key (keys match in any case): keep one"),
            "{err}"
        );
    }

    #[test]
    fn profiles_fall_back_to_default() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            r#"{"signing":{"default":{"auth_remote":{"remote":"a","auth_key":"k"}},
            "profiles":{"srv":{"auth_remote":{"remote":"b","auth_key":"k"}}}},
            "auth_keys":{"k":{"type":"standard","key":"00"}},"remotes":{"a":"a:1","b":"b:2"}}"#,
        );
        assert_eq!(
            resolve(Some(&p), "srv", None).unwrap().remotes[0].display_name(),
            "b:2"
        );
        assert_eq!(
            resolve(Some(&p), "other", None).unwrap().remotes[0].display_name(),
            "a:1"
        );
        assert_eq!(
            resolve(Some(&p), "", Some("c:3")).unwrap().remotes[0].display_name(),
            "c:3"
        );
    }

    #[test]
    fn errors_name_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            (r#"{}"#, "field signing"),
            (
                r#"{"signing":{"default":{"auth_remote":{"remote":"a","auth_key":"k"}}}}"#,
                "auth_remote.remote",
            ),
            (
                r#"{"signing":{"default":{"auth_remote":{"remote":"a","auth_key":"k"}}},"remotes":{"a":"a:1"}}"#,
                "auth_remote.auth_key",
            ),
            (
                r#"{"signing":{"default":{"auth_remote":{"remote":"a","auth_key":"k"}}},"remotes":{"a":"a:1"},"auth_keys":{"k":{"key":"00"}}}"#,
                "auth_keys.k.type",
            ),
            (
                r#"{"signing":{"default":{"auth_remote":{"remote":"a","auth_key":"k"}}},"remotes":{"a":"a:1"},"auth_keys":{"k":{"type":"standard","key":"0g"}}}"#,
                "auth_keys.k.key",
            ),
            (
                r#"{"signing":{"default":{"auth_remote":{"remote":"a","auth_key":"k"}}},"remotes":{"a":["a:1"]}}"#,
                "remotes.a",
            ),
            (
                r#"{"signing":{"default":{"remote":"a","auth_remote":{"remote":"a","auth_key":"k"}}}}"#,
                "both remote and auth_remote",
            ),
            (
                r#"{"signing":{"default":{"auth_remote":{"remote":"a"}}}}"#,
                "auth_remote.auth_key",
            ),
            (
                r#"{"signing":{"default":{"auth_remote":{"remote":"CA","auth_key":"k"}}},"remotes":{"ca":"a:1"}}"#,
                r#"names "CA", which is not in the remotes section (remote names are case-sensitive: "ca" is there)"#,
            ),
            (
                r#"{"signing":{"default":{"auth_remote":{"remote":"a","auth_key":"k"}}},"remotes":{"a":"https://a:1,"}}"#,
                "remotes.a: entry 2 of the list is empty: remove the stray comma",
            ),
            (
                r#"{"signing":{"default":{"auth_remote":{"remote":"a","auth_key":"k"}}},"remotes":{"a":"a:1,ftp://b"}}"#,
                r#"remotes.a: entry 2: "ftp://b" has scheme ftp"#,
            ),
        ];
        for (json, expected) in cases {
            let p = write(dir.path(), json);
            let err = resolve(Some(&p), "", None).unwrap_err().to_string();
            assert!(err.contains(expected), "{json}: {err}");
        }
    }
}
