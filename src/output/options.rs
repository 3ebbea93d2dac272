//! `--owner`, `--mode` and `--key-mode`: who owns the written files and who may read them.

use crate::error::{Error, Result};

/// Ownership and modes of the written files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileOptions {
    /// `--owner USER[:GROUP]`, applied to every file.
    pub owner: Option<Owner>,
    /// Mode of the certificate and CSR (`--mode`).
    pub mode: u32,
    /// Whether `--mode` was given: a pair that stays is set to it only then ([`converge`](super::converge)).
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

/// Mode of the private key file.
pub const KEY_MODE: u32 = 0o600;
/// Mode of the certificate and CSR files.
pub const PUBLIC_MODE: u32 = 0o644;

#[cfg(test)]
mod tests {
    use super::*;

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
}
