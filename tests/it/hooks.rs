//! The `--exec` hook is owed until it succeeds: a run whose hook fails (or that is killed after
//! the swap, before the hook) leaves `.CERT.exec-pending.UID`, and the next run runs the hook even
//! though the pair itself stays as it is.

use crate::support::{Setup, s};

/// An owed hook belongs to the user whose run recorded it (`.CERT.exec-pending.UID`): another
/// user's runs of the pair (root's timer beside the service user's own) neither run their
/// command for it nor clear it, and record their own debt beside it; each user's next run pays
/// its own, with its `--exec` as it is now (a command fixed since).
#[test]
fn an_owed_hook_is_paid_only_by_its_users_runs() {
    let t = Setup::new();
    let dir = t.dir();
    let mine = dir.join(".node.pem.exec-pending.0");
    let theirs = dir.join(".node.pem.exec-pending.65534");
    let run = |hook: &str, extra: &[&str], code: i32| {
        t.gencert(&[&["--exec", hook][..], extra].concat())
            .assert()
            .code(code);
    };
    let log = || std::fs::read_to_string(dir.join("hook.log")).unwrap_or_default();
    run("echo issued >> hook.log", &["--renew-before", "1h"], 0);
    // Another user's debt, as their run records it.
    std::fs::write(&theirs, "").unwrap();
    std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
    run("echo root >> hook.log", &["--renew-before", "1h"], 0);
    assert_eq!(
        log(),
        "issued\n",
        "root's command is not run for nobody's debt"
    );
    // Root's own failure is recorded beside theirs, and paid by root's command as it is now.
    run("echo failed >> hook.log; false", &["--force"], 10);
    assert!(mine.exists() && theirs.exists());
    run("echo fixed >> hook.log", &["--renew-before", "1h"], 0);
    assert_eq!(log(), "issued\nfailed\nfixed\n");
    assert!(!mine.exists(), "paid");
    assert!(theirs.exists(), "nobody's debt is left to nobody's runs");
    assert_eq!(t.server.signed_count(), 2);
    // What is planted under root's record's name (a directory, in a directory others may
    // write) is no debt of root's: the hook is not run for it.
    std::fs::create_dir(&mine).unwrap();
    run("echo planted >> hook.log", &["--renew-before", "1h"], 0);
    assert_eq!(log(), "issued\nfailed\nfixed\n");
}

#[test]
fn a_hook_that_failed_is_run_again_until_it_succeeds() {
    let t = Setup::new();
    let (pki, server, dir) = (&t.pki, &t.server, t.dir());
    let marker = dir.join(".node.pem.exec-pending.0");
    // The hook appends a line, then fails while the file `healthy` is missing.
    let hook = "echo ran >> hook.log; test -f healthy";
    let run = |code: i32| -> serde_json::Value {
        let out = crate::support::nodecert(dir)
            .args(["gencert", "-config", s(&t.profile), "-tls-remote-ca"])
            .arg(pki.primary_ca())
            .args(["-bare", "node", "--renew-before", "1h", "--report", "json"])
            .args(["--exec", hook, s(&t.csr)])
            .assert()
            .code(code)
            .get_output()
            .stdout
            .clone();
        serde_json::from_slice(&out).unwrap()
    };
    let hook_runs = || {
        std::fs::read_to_string(dir.join("hook.log"))
            .unwrap_or_default()
            .lines()
            .count()
    };

    let first = run(10);
    assert_eq!(first["action"], "issued");
    assert_eq!(first["exit_code"], 10, "{first}");
    assert!(
        first["error"].as_str().unwrap().contains("--exec"),
        "{first}"
    );
    assert_eq!(hook_runs(), 1);
    assert!(marker.exists(), "a failed hook is owed");

    let second = run(10);
    assert_eq!(second["action"], "unchanged");
    assert_eq!(hook_runs(), 2, "the owed hook ran again");
    assert!(marker.exists());

    std::fs::write(dir.join("healthy"), "").unwrap();
    let third = run(0);
    assert_eq!(third["action"], "unchanged");
    assert!(
        third["reason"].as_str().unwrap().contains("earlier run"),
        "{third}"
    );
    assert_eq!(hook_runs(), 3);
    assert!(!marker.exists(), "paid once the hook succeeded");
    // The service reloaded at last: news to config management.
    assert_eq!(third["changed"], true, "{third}");

    let fourth = run(0);
    assert_eq!(fourth["action"], "unchanged");
    assert_eq!(fourth["changed"], false, "{fourth}");
    assert_eq!(hook_runs(), 3, "nothing owed, nothing run");
    assert_eq!(server.signed_count(), 1, "the CA signed once in four runs");
    assert_eq!(first["serial"], fourth["serial"]);
}

/// nodecert blocks SIGTERM, SIGINT and SIGHUP in its own threads (one thread waits for them, to
/// remove its temporary files first) and, as every Rust program, ignores SIGPIPE; a hook must
/// inherit neither, or `systemctl` and the services it starts could not be stopped by those
/// signals, and a pipeline in the hook (`journalctl | head`) would not end when its reader does.
/// dash clears the blocked mask for itself and its foreground commands but gives a background
/// job the mask it started with, so the mask is read from a background job; ignored signals
/// stay ignored in a non-interactive shell, so a foreground command shows them.
#[test]
fn a_hook_starts_with_no_signal_blocked_or_ignored() {
    let t = Setup::new();
    let dir = t.dir();
    t.gencert(&[
        "--exec",
        "grep SigBlk /proc/self/status > mask.txt & wait; grep SigIgn /proc/self/status > ign.txt",
    ])
    .assert()
    .code(0);
    let field = |file: &str, name: &str| {
        crate::support::signal_mask(&std::fs::read_to_string(dir.join(file)).unwrap(), name)
    };
    assert_eq!(field("mask.txt", "SigBlk:"), 0, "no signal blocked");
    let sigpipe = 1 << (13 - 1);
    assert_eq!(
        field("ign.txt", "SigIgn:") & sigpipe,
        0,
        "SIGPIPE not ignored"
    );
}

/// A signal that ends nodecert while its hook runs reaches the hook too: the hook runs in a
/// process group of its own (so that `--exec-timeout` can stop all of it), which a Ctrl-C,
/// `timeout` or a kill of nodecert's group does not reach, and it must not run on outside the
/// pair's lock after nodecert is gone. What ignores the signal (here the whole hook) is killed
/// after a short grace.
#[test]
fn a_signal_that_ends_the_run_ends_its_hook() {
    use std::os::unix::process::ExitStatusExt as _;
    use std::time::{Duration, Instant};
    let t = Setup::new();
    let dir = t.dir();
    let mut run = std::process::Command::new(assert_cmd::cargo::cargo_bin!("nodecert"))
        .current_dir(dir)
        .args(["gencert", "-config", s(&t.profile), "-tls-remote-ca"])
        .arg(t.pki.primary_ca())
        .args(["-bare", "node", "--exec"])
        .arg("trap '' TERM; sleep 30 & echo \"$$ $!\" > hook.pid.tmp && mv hook.pid.tmp hook.pid; wait; echo late > late.txt")
        .arg(s(&t.csr))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    // The hook's shell and the command it waits for: both must end.
    let hook: Vec<u32> = loop {
        if let Ok(pids) = std::fs::read_to_string(dir.join("hook.pid")) {
            break pids
                .split_whitespace()
                .map(|p| p.parse().unwrap())
                .collect();
        }
        assert!(Instant::now() < deadline, "the hook never started");
        assert!(run.try_wait().unwrap().is_none(), "nodecert ended early");
        std::thread::sleep(Duration::from_millis(20));
    };
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &run.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    assert_eq!(
        run.wait().unwrap().signal(),
        Some(15),
        "nodecert died of SIGTERM"
    );
    // Gone, or a zombie waiting for whoever adopted it.
    let alive = |pid: &u32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            stat.rsplit(") ")
                .next()
                .is_some_and(|s| !s.starts_with('Z'))
        })
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while hook.iter().any(alive) {
        assert!(
            Instant::now() < deadline,
            "the hook (pids {hook:?}) runs on"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!dir.join("late.txt").exists());
}

/// `--exec ""` (a variable that was never set) is a usage error, not a hook that does nothing
/// on every renewal; a hook killed by a signal is reported with the signal's name.
#[test]
fn an_empty_exec_is_refused_and_a_killed_hook_named() {
    let t = Setup::new();
    let out = t.gencert(&["--exec", ""]).assert().code(2);
    let stderr = crate::support::one_line_stderr(&out);
    assert!(stderr.contains("flag --exec: is empty"), "{stderr}");
    assert_eq!(t.server.signed_count(), 0);
    assert!(!t.dir().join("node.pem").exists());

    let out = t.gencert(&["--exec", "kill -KILL $$"]).assert().code(10);
    let stderr = crate::support::one_line_stderr(&out);
    assert!(stderr.contains("was killed by SIGKILL"), "{stderr}");
}

/// Run by hand from a terminal, a hook that asks (`read`, a password prompt) is stopped by the
/// kernel with SIGTTIN, since it runs in a process group of its own (so that `--exec-timeout`
/// can stop all of it) that is not the terminal's foreground group; one that prints under
/// `stty tostop` gets SIGTTOU. That is reported at once, saying why, instead of waiting,
/// stopped, for `--exec-timeout`. `script` gives the run a terminal of its own.
#[test]
fn a_hook_that_uses_the_terminal_is_reported_at_once() {
    let t = Setup::new();
    let dir = t.dir();
    let nodecert = assert_cmd::cargo::cargo_bin!("nodecert");
    let in_terminal = |before: &str, hook: &str| {
        let command = format!(
            "{before}{} gencert -config {} -tls-remote-ca {} -bare node --force \
             --exec-timeout 10m --exec '{hook}' {}",
            s(nodecert),
            s(&t.profile),
            s(&t.pki.primary_ca()),
            s(&t.csr),
        );
        let out = std::process::Command::new("script")
            .current_dir(dir)
            .args(["-q", "-e", "-c", &command, "/dev/null"])
            .stdin(std::process::Stdio::null())
            .output()
            .expect("script(1), from util-linux, runs the command in a terminal");
        let seen = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(out.status.code(), Some(10), "{seen}");
        assert!(!seen.contains("did not finish within"), "{seen}");
        assert!(dir.join("node.pem").is_file(), "the new certificate stays");
        assert!(
            dir.join(".node.pem.exec-pending.0").exists(),
            "the hook is owed"
        );
        seen
    };

    let seen = in_terminal(
        "",
        r#"printf "reload? "; read answer; echo "answer=$answer" > answer.txt"#,
    );
    assert!(
        seen.contains("was stopped (SIGTTIN) as it tried to read from the terminal")
            && seen.contains("sudo -n"),
        "{seen}"
    );
    assert!(!dir.join("answer.txt").exists());

    let seen = in_terminal("stty tostop; ", "echo printed");
    assert!(
        seen.contains("was stopped (SIGTTOU)") && seen.contains("redirect its output"),
        "{seen}"
    );
}
