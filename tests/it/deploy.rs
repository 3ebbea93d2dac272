//! The shipped Ansible playbook, run for real (ansible-core from PyPI) against localhost and a
//! real multirootca: the first run writes csr.json and the request profile and issues (changed),
//! the second changes nothing (ok) and contacts no one.

use std::path::Path;
use std::process::Command;

use crate::support::{
    Pki, assert_key_matches, assert_verifies, mode, node_csr, secrets, tool, write,
};

/// The nodecert task's name in deploy/ansible/nodecert.yml.
const TASK: &str = "Certificate and key, issued or renewed when due";

#[test]
fn ansible_playbook_is_changed_then_ok() {
    let pki = Pki::new();
    let server = pki.start();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    // The playbook writes csr.json and the request profile from these (into conf/, which does not
    // exist yet), and creates tls/ for the pair.
    let template = pki.request_profile(dir, &server.url(), "env:NODECERT_AUTH_KEY");
    let profile: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(template).unwrap()).unwrap();
    let csr: serde_json::Value = serde_json::from_str(&node_csr("ecdsa", 256)).unwrap();
    let (cert, key) = (dir.join("tls/node.pem"), dir.join("tls/node-key.pem"));
    // Interpreter discovery can pick a pyenv shim for a Python that is not installed; use the
    // python3 on PATH (any Python 3.8+ runs the command module; ansible need not be in it).
    let python = tool(dir, "python3", &["-c", "import sys; print(sys.executable)"]);
    let vars = serde_json::json!({
        "ansible_python_interpreter": python.trim(),
        "nodecert_bin": assert_cmd::cargo::cargo_bin("nodecert"),
        "nodecert_ca": pki.primary_ca(),
        "nodecert_csr": dir.join("conf/csr.json"),
        "nodecert_csr_json": csr,
        "nodecert_config": dir.join("conf/request-profile.json"),
        "nodecert_request_profile": profile,
        "nodecert_cert": cert,
        "nodecert_key": key,
        "nodecert_auth_key": pki.auth_key,
    });
    write(dir, "vars.json", &vars.to_string());
    // No ansible.cfg from the machine or the user may change the output this test reads.
    let config = write(dir, "ansible.cfg", "");
    let playbook = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/ansible/nodecert.yml");
    let run = || {
        let out = Command::new("ansible-playbook")
            .args(["-i", "localhost,", "-c", "local", "-e", "@vars.json"])
            .arg(&playbook)
            .current_dir(dir)
            .env("ANSIBLE_CONFIG", &config)
            .env("ANSIBLE_STDOUT_CALLBACK", "default")
            .env("ANSIBLE_NOCOLOR", "1")
            .env("ANSIBLE_LOCAL_TEMP", dir.join(".ansible-tmp"))
            .env("ANSIBLE_HOME", dir.join(".ansible"))
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run ansible-playbook ({e}): run scripts/setup-deps.sh, which installs \
                     ansible-core from PyPI"
                )
            });
        secrets::assert_absent(&out.stdout, &out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "ansible-playbook failed:\n{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    };

    let first = run();
    assert_eq!(task_status(&first, TASK), "changed", "{first}");
    assert!(recap(&first).contains(" failed=0 "), "{first}");
    assert_eq!(server.signed_count(), 1);
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("conf/csr.json")).unwrap()).unwrap();
    assert_eq!(written, vars["nodecert_csr_json"]);
    assert_eq!(mode(&dir.join("conf/request-profile.json")), 0o600);

    let second = run();
    assert_eq!(task_status(&second, TASK), "ok", "{second}");
    let recap2 = recap(&second);
    assert!(
        recap2.contains(" changed=0 ") && recap2.contains(" failed=0 "),
        "the second run changed something:\n{second}"
    );
    assert_eq!(server.signed_count(), 1, "the second run contacted the CA");

    assert_verifies(dir, &pki.primary_ca(), &cert);
    assert_key_matches(dir, &key, &cert);
    assert_eq!(mode(&key), 0o600);
}

/// The localhost line of the PLAY RECAP, e.g. `localhost : ok=4 changed=0 … failed=0 …`.
fn recap(stdout: &str) -> String {
    let at = stdout.find("PLAY RECAP").expect("no PLAY RECAP");
    let line = stdout[at..]
        .lines()
        .find(|l| l.starts_with("localhost"))
        .expect("no localhost line in the PLAY RECAP");
    format!("{} ", line.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// `ok`, `changed`, `skipping`, `fatal`… for the task named `name`, from the default callback's
/// `TASK [name] ***` header and the status line after it.
fn task_status<'a>(stdout: &'a str, name: &str) -> &'a str {
    let header = format!("TASK [{name}]");
    let mut lines = stdout.lines().skip_while(|l| !l.starts_with(&header));
    assert!(lines.next().is_some(), "no task {name:?} in:\n{stdout}");
    let status = lines.find(|l| !l.trim().is_empty()).unwrap_or_default();
    status.split(':').next().unwrap_or_default()
}
