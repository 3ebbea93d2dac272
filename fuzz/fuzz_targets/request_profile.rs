//! The request profile (`-config`): `profile::parse` under several profile names and with a
//! `-remote` override, and `Remote::parse_list` (the `remotes` values and `-remote`) on the raw
//! input.
//!
//! Input: the bytes of a request-profile JSON file, or a comma-separated remotes list.
//! `file:` keys resolve against a temporary directory that holds one file, `auth.key`;
//! `env:NODECERT_FUZZ_KEY` is set, any other variable is whatever the environment has.
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use nodecert::profile::{Remote, Target};
use nodecert::protocol::{AUTHSIGN_PATH, INFO_PATH, SIGN_PATH};

fn base_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // SAFETY: set once, before any other thread could read the environment (libFuzzer runs
        // the target on one thread).
        unsafe { std::env::set_var("NODECERT_FUZZ_KEY", "00112233445566778899aabbccddeeff") };
        let dir = std::env::temp_dir().join("nodecert-fuzz-request-profile");
        std::fs::create_dir_all(&dir).expect("creating the fuzz key directory");
        std::fs::write(dir.join("auth.key"), "0a0b0c0d\n").expect("writing auth.key");
        dir
    })
}

fn exercise(remote: &Remote) {
    for path in [AUTHSIGN_PATH, SIGN_PATH, INFO_PATH] {
        let url = remote.endpoint(path);
        assert!(url.as_str().ends_with(path), "{remote}: endpoint {url}");
    }
    let _ = remote.display_name();
    let _ = remote.to_string();
    let _ = remote.is_plaintext();
    // The form nodecert prints in messages must read back as a remote that prints the same.
    let shown = remote.to_string();
    let again =
        Remote::parse(&shown).unwrap_or_else(|e| panic!("{shown} does not parse back: {e}"));
    assert_eq!(again.to_string(), shown, "{shown} parses back differently");
}

fn check(target: &Target) {
    assert!(!target.remotes.is_empty(), "a Target with no remotes");
    target.remotes.iter().for_each(exercise);
    if let Some(key) = &target.auth_key {
        let _ = key.token(b"{}");
    }
    let _ = target.check_plaintext(false);
}

fuzz_target!(|data: &[u8]| {
    let dir = base_dir();
    for name in ["", "kubelet-client", "Etcd-Server"] {
        if let Ok(target) = nodecert::profile::parse(data, "request-profile.json", dir, name, None)
        {
            check(&target);
        }
    }
    let flag = Remote::parse_list("127.0.0.1:1,https://[::1]:2").expect("a fixed remote list");
    if let Ok(target) = nodecert::profile::parse(data, "request-profile.json", dir, "", Some(flag))
    {
        check(&target);
    }

    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(remotes) = Remote::parse_list(text) {
            assert!(!remotes.is_empty());
            remotes.iter().for_each(exercise);
        }
    }
});
