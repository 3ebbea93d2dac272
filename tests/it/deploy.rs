//! The shipped Ansible playbook, run for real (ansible-core from PyPI) against localhost and a
//! real multirootca: the first run reports changed, the second ok.

use std::path::Path;
use std::process::Command;

use crate::support::{Pki, assert_key_matches, assert_verifies, node_csr, s, write};

#[test]
fn ansible_playbook_is_changed_then_ok() {
    let pki = Pki::new();
    let server = pki.start();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let profile = pki.request_profile(dir, &server.url(), "env:NODECERT_AUTH_KEY");
    let csr = write(dir, "csr.json", &node_csr("ecdsa", 256));
    std::fs::create_dir(dir.join("tls")).unwrap();
    // Interpreter discovery can pick a pyenv shim for a Python that is not installed; use the
    // python3 that ansible-core was installed into (scripts/setup-deps.sh uses `python3 -m pip`).
    let python = crate::support::tool(dir, "python3", &["-c", "import sys; print(sys.executable)"]);
    let vars = serde_json::json!({
        "ansible_python_interpreter": python.trim(),
        "nodecert_bin": assert_cmd::cargo::cargo_bin("nodecert"),
        "nodecert_config": profile,
        "nodecert_ca": pki.primary_ca(),
        "nodecert_csr": csr,
        "nodecert_cert": dir.join("tls/node.pem"),
        "nodecert_key": dir.join("tls/node-key.pem"),
        "nodecert_auth_key": pki.auth_key,
    });
    write(dir, "vars.json", &vars.to_string());
    let playbook = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/ansible/nodecert.yml");
    let run = || {
        let out = Command::new("ansible-playbook")
            .args([
                "-i",
                "localhost,",
                "-c",
                "local",
                "-e",
                "@vars.json",
                s(&playbook),
            ])
            .current_dir(dir)
            .env("ANSIBLE_NOCOLOR", "1")
            .env("ANSIBLE_LOCAL_TEMP", dir.join(".ansible-tmp"))
            .env("ANSIBLE_HOME", dir.join(".ansible"))
            .output()
            .expect("ansible-playbook runs: run scripts/setup-deps.sh to install ansible-core");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    };
    let first = run();
    assert!(
        first.contains("changed=1") && first.contains("failed=0"),
        "{first}"
    );
    assert_eq!(server.signed_count(), 1);
    let second = run();
    assert!(
        second.contains("changed=0") && second.contains("failed=0"),
        "{second}"
    );
    assert_eq!(server.signed_count(), 1, "the second run contacted no one");
    assert_verifies(dir, &pki.primary_ca(), &dir.join("tls/node.pem"));
    assert_key_matches(
        dir,
        &dir.join("tls/node-key.pem"),
        &dir.join("tls/node.pem"),
    );
}
