//! The shipped deployment files (deploy/), each run for real against a real multirootca: the
//! Ansible playbook (ansible-core from PyPI) and the Salt state (salt-call --local, Salt from
//! PyPI) against localhost, the cron line through `sh -c` with cron's environment, and the systemd
//! units through `systemd-analyze verify` and their ExecStart under the unit's UMask and
//! EnvironmentFile. Each runs twice: the first run issues, the second changes nothing and
//! contacts no one.
//!
//! The files are used as shipped, with only their absolute paths (and the hook, and a jitter of
//! minutes) moved into the test's directory by `rewrite`, which fails when a path it moves is no
//! longer in the file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::{
    Pki, assert_key_matches, assert_verifies, mode, node_csr, s, secrets, tool, write,
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

/// The cron line, run as cron runs it: its SHELL, its PATH (with /usr/local/bin holding the
/// nodecert under test), no other environment. The first run issues, runs the hook once and says
/// so in one line (cron mails it); the second prints nothing at all, so cron mails nothing.
#[test]
fn cron_line_issues_then_stays_silent() {
    let pki = Pki::new();
    let server = pki.start();
    let work = tempfile::tempdir().unwrap();
    let root = work.path();
    let fs = FakeRoot::new(root, &pki, &server.url());
    let hooks = root.join("hooks.log");

    let file = "deploy/cron/nodecert";
    let crontab = shipped(file);
    let mut vars = BTreeMap::new();
    let mut jobs = Vec::new();
    for line in crontab.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match line.split_once('=') {
            Some((name, value)) if !name.contains(' ') => {
                vars.insert(name, value);
            }
            _ => jobs.push(line),
        }
    }
    assert_eq!(jobs.len(), 1, "{file}: one job line expected: {jobs:?}");
    // /etc/cron.d format: five time fields, the user, then the command.
    let fields: Vec<&str> = jobs[0].splitn(7, ' ').collect();
    assert_eq!(fields.len(), 7, "{file}: {}", jobs[0]);
    for (field, max) in fields[..5].iter().zip([59, 23, 31, 12, 7]) {
        assert!(
            *field == "*" || field.parse::<u32>().is_ok_and(|n| n <= max),
            "{file}: time field {field:?}"
        );
    }
    assert_eq!(fields[5], "root", "{file}: the user field");
    let hook = format!("echo restarted >> {}", hooks.display());
    let command = rewrite(
        file,
        fields[6],
        &[
            ("/etc/nodecert/", &fs.path("etc/nodecert/")),
            ("/var/lib/kubelet/pki/", &fs.path("var/lib/kubelet/pki/")),
            ("systemctl restart kubelet", &hook),
            ("--jitter 10m ", "--jitter 10ms "),
        ],
    );
    let path = rewrite(
        file,
        vars["PATH"],
        &[("/usr/local/bin", &fs.path("usr/local/bin"))],
    );
    let run = || {
        checked(
            Command::new(vars["SHELL"])
                .args(["-c", &command])
                .env_clear()
                .env("PATH", &path)
                .env("HOME", root)
                .env("LOGNAME", "root")
                .current_dir(root),
            "the cron line",
        )
    };
    let hook_runs = || {
        std::fs::read_to_string(&hooks)
            .unwrap_or_default()
            .lines()
            .count()
    };

    let first = run();
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(first.stdout.is_empty(), "{first:?}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("nodecert: issued "), "{stderr}");
    assert_eq!(hook_runs(), 1);
    assert_eq!(server.signed_count(), 1);
    let (cert, key) = (
        root.join("var/lib/kubelet/pki/kubelet.crt"),
        root.join("var/lib/kubelet/pki/kubelet.key"),
    );
    assert_verifies(root, &pki.primary_ca(), &cert);
    assert_key_matches(root, &key, &cert);
    assert_eq!(mode(&key), 0o600);

    let second = run();
    assert!(
        second.stdout.is_empty() && second.stderr.is_empty(),
        "an unchanged run must print nothing (cron would mail it): {second:?}"
    );
    assert_eq!(hook_runs(), 1, "the hook ran on an unchanged run");
    assert_eq!(server.signed_count(), 1, "the second run contacted the CA");
}

/// The systemd units pass `systemd-analyze verify` (with nothing to say), and the service's
/// ExecStart, run with its EnvironmentFile and UMask, syncs every spec in the directory: the
/// first run issues both, the second leaves both unchanged without contacting the CA. UMask=0077
/// does not make the certificates unreadable to the services that use them.
#[test]
fn systemd_units_verify_and_their_command_syncs() {
    let pki = Pki::new();
    let server = pki.start();
    let work = tempfile::tempdir().unwrap();
    let root = work.path();
    let fs = FakeRoot::new(root, &pki, &server.url());
    let bin = assert_cmd::cargo::cargo_bin("nodecert");
    let specs = root.join("etc/nodecert/specs.d");
    std::fs::create_dir_all(&specs).unwrap();
    for (role, profile) in [
        ("kubelet-serving", Some("kubelet-serving")),
        ("server", None),
    ] {
        let mut spec = serde_json::json!({
            "csr": format!("../{role}-csr.json"),
            "config": "../request-profile.json",
            "tls_remote_ca": "../ca.pem",
            "cert": fs.path(&format!("etc/ssl/node/{role}.pem")),
            "key": fs.path(&format!("etc/ssl/node/{role}-key.pem")),
        });
        if let Some(profile) = profile {
            spec["profile"] = profile.into();
        }
        write(&specs, &format!("{role}.json"), &spec.to_string());
    }

    let (service_file, timer_file) = (
        "deploy/systemd/nodecert-sync.service",
        "deploy/systemd/nodecert-sync.timer",
    );
    let service = rewrite(
        service_file,
        &shipped(service_file),
        &[("/usr/local/bin/nodecert", s(&bin))],
    );
    let units = root.join("units");
    std::fs::create_dir(&units).unwrap();
    let unit = write(&units, "nodecert-sync.service", &service);
    let timer = write(&units, "nodecert-sync.timer", &shipped(timer_file));
    let verify = checked(
        Command::new("systemd-analyze")
            .args(["verify", "--man=no", s(&unit), s(&timer)])
            .current_dir(root),
        "systemd-analyze verify",
    );
    assert!(
        verify.stdout.is_empty() && verify.stderr.is_empty(),
        "systemd-analyze verify has something to say: {verify:?}"
    );

    let setting = |name: &str| -> String {
        let values: Vec<&str> = service
            .lines()
            .filter_map(|l| l.strip_prefix(name)?.strip_prefix('='))
            .collect();
        assert_eq!(values.len(), 1, "{service_file}: one {name}= expected");
        values[0].to_owned()
    };
    let exec_start = rewrite(
        service_file,
        &setting("ExecStart"),
        &[
            ("/etc/nodecert/specs.d", s(&specs)),
            ("--jitter 5m ", "--jitter 5ms "),
        ],
    );
    assert!(
        !exec_start.contains(['"', '\'', '$', '%', '\\']),
        "{service_file}: ExecStart= needs systemd's quoting or expansion, which this test does not do"
    );
    let env_file = rewrite(
        service_file,
        &setting("EnvironmentFile"),
        &[("-/etc/nodecert/env", &fs.path("etc/nodecert/env"))],
    );
    let umask = setting("UMask");
    let run = || {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", r#"umask "$0" && exec "$@""#, &umask])
            .args(exec_start.split_whitespace())
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .current_dir("/");
        for line in std::fs::read_to_string(&env_file).unwrap().lines() {
            let (name, value) = line.split_once('=').expect("NAME=value");
            cmd.env(name, value);
        }
        let out = checked(&mut cmd, "the service's ExecStart");
        String::from_utf8(out.stdout).unwrap()
    };

    let first = run();
    let lines: Vec<&str> = first.lines().collect();
    assert_eq!(lines.len(), 2, "{first}");
    assert!(lines[0].starts_with("kubelet-serving: issued "), "{first}");
    assert!(lines[1].starts_with("server: issued "), "{first}");
    assert_eq!(server.signed_count(), 2);
    for role in ["kubelet-serving", "server"] {
        let cert = root.join(format!("etc/ssl/node/{role}.pem"));
        let key = root.join(format!("etc/ssl/node/{role}-key.pem"));
        assert_verifies(root, &pki.primary_ca(), &cert);
        assert_key_matches(root, &key, &cert);
        assert_eq!((mode(&cert), mode(&key)), (0o644, 0o600), "{role}");
    }
    let text = crate::support::cert_text(root, &root.join("etc/ssl/node/kubelet-serving.pem"));
    assert!(
        text.contains("TLS Web Server Authentication")
            && !text.contains("TLS Web Client Authentication"),
        "the kubelet-serving spec's profile was not used: {text}"
    );

    let second = run();
    let lines: Vec<&str> = second.lines().collect();
    assert_eq!(lines.len(), 2, "{second}");
    assert!(lines.iter().all(|l| l.contains(": kept ")), "{second}");
    assert_eq!(server.signed_count(), 2, "the second run contacted the CA");
}

/// The Salt state, applied with `salt-call --local` (file roots and pillar in the test's
/// directory): the first run writes csr.json and the request profile and issues (the nodecert
/// state has changes), the second has none and contacts no one. A refused request fails the
/// state with nodecert's one-line error as its comment, and writes nothing.
#[test]
fn salt_state_is_changed_then_clean_and_fails_loudly() {
    let pki = Pki::new();
    let server = pki.start();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let states = dir.join("states");
    let pillar = dir.join("pillar");
    std::fs::create_dir_all(&states).unwrap();
    std::fs::create_dir_all(&pillar).unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/salt/nodecert.sls"),
        states.join("nodecert.sls"),
    )
    .unwrap();
    write(
        dir,
        "minion",
        &format!(
            "file_client: local\nroot_dir: {root}\nfile_roots:\n  base: [{states}]\n\
             pillar_roots:\n  base: [{pillar}]\n",
            root = dir.join("salt").display(),
            states = states.display(),
            pillar = pillar.display(),
        ),
    );
    write(&pillar, "top.sls", "base:\n  '*':\n    - nodecert\n");
    let template = pki.request_profile(dir, &server.url(), "env:NODECERT_AUTH_KEY");
    let profile: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(template).unwrap()).unwrap();
    let (cert, key) = (dir.join("tls/node.pem"), dir.join("tls/node-key.pem"));
    let set_pillar = |auth_key: &str| {
        // JSON is YAML: the pillar file is the mapping the state documents.
        let nodecert = serde_json::json!({ "nodecert": {
            "bin": assert_cmd::cargo::cargo_bin("nodecert"),
            "config": dir.join("conf/request-profile.json"),
            "request_profile": profile,
            "ca": pki.primary_ca(),
            "csr": dir.join("conf/csr.json"),
            "csr_json": serde_json::from_str::<serde_json::Value>(&node_csr("ecdsa", 256)).unwrap(),
            "cert": cert,
            "key": key,
            "auth_key": auth_key,
        }});
        write(&pillar, "nodecert.sls", &nodecert.to_string());
    };
    let apply = || -> (bool, serde_json::Value) {
        let out = Command::new("salt-call")
            .args(["--local", "-c", s(dir), "--out=json", "--retcode-passthrough"])
            .args(["state.apply", "nodecert"])
            .current_dir(dir)
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run salt-call ({e}): run scripts/setup-deps.sh, which installs Salt from PyPI")
            });
        secrets::assert_absent(&out.stdout, &out.stderr);
        let result: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("salt-call printed no JSON ({e}): {out:?}"));
        let states = result["local"].as_object().expect("no local result");
        let state = states
            .iter()
            .find(|(id, _)| id.starts_with("cmd_|-nodecert-certificate_|-"))
            .map(|(_, state)| state.clone())
            .unwrap_or_else(|| panic!("no nodecert-certificate state in {result}"));
        (out.status.success(), state)
    };
    set_pillar(&pki.auth_key);
    let (ok, first) = apply();
    assert!(ok && first["result"] == true, "{first}");
    assert_eq!(first["changes"]["action"], "issued", "{first}");
    assert_eq!(first["changes"]["changed"], true, "{first}");
    assert_eq!(server.signed_count(), 1);
    assert_eq!(mode(&dir.join("conf/request-profile.json")), 0o600);
    assert_verifies(dir, &pki.primary_ca(), &cert);
    assert_key_matches(dir, &key, &cert);
    assert_eq!(mode(&key), 0o600);

    let (ok, second) = apply();
    assert!(ok && second["result"] == true, "{second}");
    assert_eq!(second["changes"], serde_json::json!({}), "{second}");
    assert_eq!(server.signed_count(), 1, "the second run contacted the CA");

    // A pair that is due (the certificate is gone) and a wrong auth key: the CA refuses.
    std::fs::remove_file(&cert).unwrap();
    let old_key = std::fs::read(&key).unwrap();
    set_pillar(&"0f".repeat(16));
    let (ok, refused) = apply();
    let comment = refused["comment"].as_str().unwrap_or_default();
    assert!(!ok && refused["result"] == false, "{refused}");
    assert!(
        comment.starts_with("nodecert: error: ") && comment.lines().count() == 1,
        "{refused}"
    );
    assert!(!cert.exists(), "a refused run wrote a certificate");
    assert_eq!(
        std::fs::read(&key).unwrap(),
        old_key,
        "a refused run touched the key"
    );
}

/// A directory laid out like a node's filesystem (etc/nodecert, var/lib/kubelet/pki,
/// etc/ssl/node, usr/local/bin) for the deployment files' absolute paths: the env file with the
/// auth key, the shipped request profile pointed at the test's CA, the CA, the shipped csr.json
/// files, and nodecert itself in usr/local/bin.
struct FakeRoot {
    root: PathBuf,
}

impl FakeRoot {
    fn new(root: &Path, pki: &Pki, remote: &str) -> Self {
        let fs = Self {
            root: root.to_owned(),
        };
        let etc = root.join("etc/nodecert");
        for dir in [
            "etc/nodecert",
            "var/lib/kubelet/pki",
            "etc/ssl/node",
            "usr/local/bin",
        ] {
            std::fs::create_dir_all(root.join(dir)).unwrap();
        }
        std::os::unix::fs::symlink(
            assert_cmd::cargo::cargo_bin("nodecert"),
            root.join("usr/local/bin/nodecert"),
        )
        .unwrap();
        secrets::register(&pki.auth_key);
        let env = write(
            &etc,
            "env",
            &format!("NODECERT_AUTH_KEY={}\n", pki.auth_key),
        );
        std::fs::set_permissions(&env, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        let profile = "profiles/request-profile.json";
        write(
            &etc,
            "request-profile.json",
            &rewrite(
                profile,
                &shipped(profile),
                &[(
                    "https://ca1.example.internal:8888,https://ca2.example.internal:8888",
                    remote,
                )],
            ),
        );
        std::fs::copy(pki.primary_ca(), etc.join("ca.pem")).unwrap();
        for role in ["kubelet-serving", "server"] {
            std::fs::copy(
                Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("profiles/csr/{role}.json")),
                etc.join(format!("{role}-csr.json")),
            )
            .unwrap();
        }
        fs
    }

    /// `rel` under the fake root, as a string (keeps a trailing slash).
    fn path(&self, rel: &str) -> String {
        format!("{}/{rel}", self.root.display())
    }
}

/// A file of the repository, as text.
fn shipped(rel: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `text` (from `file`) with every `from` replaced by its `to`. Panics when a `from` is absent:
/// a shipped file that changed so the test no longer moves its paths must fail, not write to /etc.
fn rewrite(file: &str, text: &str, swaps: &[(&str, &str)]) -> String {
    let mut text = text.to_owned();
    for (from, to) in swaps {
        assert!(text.contains(from), "{file} no longer contains {from:?}");
        text = text.replace(from, to);
    }
    text
}

/// Runs `cmd`, asserts it succeeded and printed no auth key, and returns its output.
fn checked(cmd: &mut Command, what: &str) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    secrets::assert_absent(&out.stdout, &out.stderr);
    assert!(out.status.success(), "{what} failed: {out:?}");
    out
}
