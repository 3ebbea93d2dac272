use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use predicates::str::contains;

use crate::support::ca::Multirootca;
use crate::support::{
    Pki, assert_key_matches, assert_verifies, listing, node_csr, nodecert, s, write,
};

/// A fresh directory with `specs/` (and `specs/out/`) and `conf/`, holding the primary CA as
/// `ca.pem` and an ECDSA `csr.json`.
fn layout(pki: &Pki) -> (tempfile::TempDir, PathBuf) {
    let work = tempfile::tempdir().unwrap();
    let specs = work.path().join("specs");
    let conf = work.path().join("conf");
    std::fs::create_dir_all(specs.join("out")).unwrap();
    std::fs::create_dir_all(&conf).unwrap();
    std::fs::copy(pki.primary_ca(), conf.join("ca.pem")).unwrap();
    write(&conf, "csr.json", &node_csr("ecdsa", 256));
    (work, specs)
}

/// A running CA, a [`layout`] directory, and the request profile "good" that reaches the CA.
struct Fleet {
    server: Multirootca,
    pki: Pki,
    work: tempfile::TempDir,
    specs: PathBuf,
    /// The profile's path as a spec names it.
    good: String,
}

impl Fleet {
    fn new() -> Self {
        let pki = Pki::new();
        let server = pki.start();
        let (work, specs) = layout(&pki);
        let good = profile(&pki, work.path(), "good", &server.url(), &pki.auth_key);
        Self {
            server,
            pki,
            work,
            specs,
            good,
        }
    }
}

/// Writes `conf/NAME/request-profile.json` for `remote` and the auth key `key`, and returns its
/// path as a spec names it.
fn profile(pki: &Pki, work: &Path, name: &str, remote: &str, key: &str) -> String {
    let dir = work.join("conf").join(name);
    std::fs::create_dir_all(&dir).unwrap();
    pki.request_profile(&dir, remote, key);
    format!("../conf/{name}/request-profile.json")
}

/// `nodecert sync FLAGS… SPECS` run in `dir`, which must exit with `code`; its stdout.
fn sync(dir: &Path, flags: &[&str], specs: &Path, code: i32) -> String {
    let out = nodecert(dir)
        .arg("sync")
        .args(flags)
        .arg(s(specs))
        .assert()
        .code(code)
        .get_output()
        .stdout
        .clone();
    String::from_utf8(out).unwrap()
}

/// Writes `specs/NAME.json` for the pair `out/NAME.pem`, `out/NAME-key.pem` from `conf/csr.json`
/// through `config`, pinned to `conf/ca.pem`, plus the fields in `extra` (a JSON object).
fn write_spec(specs: &Path, name: &str, config: &str, extra: serde_json::Value) {
    let mut spec = serde_json::json!({
        "csr": "../conf/csr.json",
        "config": config,
        "tls_remote_ca": "../conf/ca.pem",
        "cert": format!("out/{name}.pem"),
        "key": format!("out/{name}-key.pem"),
    });
    for (field, value) in extra.as_object().unwrap() {
        spec[field] = value.clone();
    }
    write(specs, &format!("{name}.json"), &spec.to_string());
}

/// Several specs, one broken: the good ones are issued, the broken one is reported on its own
/// line, the exit code says a spec failed and stderr's one error line which; a second run
/// leaves everything unchanged without contacting the CA.
#[test]
fn sync_handles_every_spec_and_isolates_a_broken_one() {
    let pki = Pki::new();
    let server = pki.start();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let specs = dir.join("specs");
    let conf = dir.join("conf");
    std::fs::create_dir_all(specs.join("out")).unwrap();
    std::fs::create_dir_all(&conf).unwrap();
    pki.request_profile(&conf, &server.url(), &pki.auth_key);
    std::fs::copy(pki.primary_ca(), conf.join("ca.pem")).unwrap();
    for (name, algo, size) in [
        ("alpha", "ecdsa", 256),
        ("beta", "ecdsa", 384),
        ("gamma", "rsa", 2048),
    ] {
        write(&conf, &format!("{name}-csr.json"), &node_csr(algo, size));
        write(
            &specs,
            &format!("{name}.json"),
            &format!(
                r#"{{"csr":"../conf/{name}-csr.json","config":"../conf/request-profile.json","tls_remote_ca":"../conf/ca.pem",
                "cert":"out/{name}.pem","key":"out/{name}-key.pem","csr_out":"out/{name}.csr",
                "renew_before":"720h","hostname":["{name}.example.com"]}}"#
            ),
        );
    }
    write(
        &specs,
        "broken.json",
        r#"{"csr":"missing-csr.json","config":"../conf/request-profile.json","cert":"out/b.pem","key":"out/b-key.pem"}"#,
    );

    let stdout = sync(dir, &["--metrics-file", "sync.prom"], &specs, 11);
    // The broken spec still counts as a failure of its certificate in the metrics.
    let metrics = std::fs::read_to_string(dir.join("sync.prom")).unwrap();
    let broken = format!(
        "nodecert_last_failure_timestamp_seconds{{name=\"{}\"}} ",
        s(&specs.join("out/b.pem"))
    );
    assert!(metrics.contains(&broken), "{metrics}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{stdout}");
    assert!(lines[0].starts_with("alpha: issued "), "{stdout}");
    assert!(lines[1].starts_with("beta: issued "), "{stdout}");
    assert!(
        lines[2].starts_with("broken: error: ") && lines[2].contains("missing-csr.json"),
        "{stdout}"
    );
    assert!(lines[3].starts_with("gamma: issued "), "{stdout}");
    for name in ["alpha", "beta", "gamma"] {
        let cert = specs.join(format!("out/{name}.pem"));
        assert_verifies(dir, &pki.primary_ca(), &cert);
        assert_key_matches(dir, &specs.join(format!("out/{name}-key.pem")), &cert);
        let text = crate::support::cert_text(dir, &cert);
        assert!(text.contains(&format!("DNS:{name}.example.com")), "{text}");
    }
    assert_eq!(server.signed_count(), 3);
    // The run's one error on stderr names the failed spec, as text or as JSON with the exit code.
    for (format, says) in [
        ("text", "nodecert: error: 1 of 4 specs failed: broken"),
        (
            "json",
            r#"{"exit_code":11,"level":"error","message":"1 of 4 specs failed: broken"}"#,
        ),
    ] {
        let out = nodecert(dir)
            .args(["--log-format", format, "sync", s(&specs)])
            .assert()
            .code(11);
        let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
        assert_eq!(stderr.lines().last(), Some(says), "{stderr}");
    }

    std::fs::remove_file(specs.join("broken.json")).unwrap();
    let out = sync(dir, &["--report", "json"], &specs, 0);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let actions: Vec<&str> = report
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["unchanged", "unchanged", "unchanged"]);
    assert_eq!(report[0]["spec"], "alpha");
    assert_eq!(server.signed_count(), 3, "an unchanged sync sends nothing");
}

/// Specs that fail only when run (a dead remote; an auth key the CA refuses) fail alone, each
/// with its own exit code, while the others are issued; `--metrics-file` gets, per certificate,
/// the not-after and last success of each good spec and the last failure of each failed one.
#[test]
fn sync_isolates_run_time_failures_and_writes_metrics() {
    let Fleet {
        server,
        pki,
        work,
        specs,
        good,
    } = Fleet::new();
    let dir = work.path();
    let dead_remote = format!("127.0.0.1:{}", crate::support::ca::free_port());
    let dead = profile(&pki, dir, "dead", &dead_remote, &pki.auth_key);
    let wrong = profile(
        &pki,
        dir,
        "wrong",
        &server.url(),
        "00112233445566778899aabbccddeeff",
    );
    for (name, config) in [
        ("alpha", &good),
        ("beta", &good),
        ("dead", &dead),
        ("wrongkey", &wrong),
    ] {
        write_spec(&specs, name, config, serde_json::json!({}));
    }
    // A spec that does not parse (a misspelt field) still names its certificate, here through
    // `..`: its failure is recorded under the same normalised name as any other run's.
    write_spec(
        &specs,
        "typo",
        &good,
        serde_json::json!({"renew_befor": "720h", "cert": "../specs/out/typo.pem"}),
    );
    let started = crate::support::tool(dir, "date", &["+%s"]);
    let started: i64 = started.trim().parse().unwrap();
    let flags = ["--report", "json", "--metrics-file", "nodecert.prom"];
    let report: serde_json::Value = serde_json::from_str(&sync(dir, &flags, &specs, 11)).unwrap();
    let summary: Vec<(&str, &str, i64)> = report
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["spec"].as_str().unwrap(),
                r["action"].as_str().unwrap(),
                r["exit_code"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("alpha", "issued", 0),
            ("beta", "issued", 0),
            ("dead", "failed", 6),
            ("typo", "failed", 3),
            ("wrongkey", "failed", 5)
        ],
        "{report}"
    );
    assert!(
        report[2]["error"].as_str().unwrap().contains(&dead_remote),
        "{report}"
    );
    // A failed spec's object names its pair too, as far as the spec names it (even one that
    // does not parse).
    for (i, cert, key) in [
        (2, "out/dead.pem", "out/dead-key.pem"),
        (3, "../specs/out/typo.pem", "out/typo-key.pem"),
    ] {
        assert_eq!(report[i]["cert"], s(&specs.join(cert)), "{report}");
        assert_eq!(report[i]["key"], s(&specs.join(key)), "{report}");
    }
    assert!(
        report[3]["error"]
            .as_str()
            .unwrap()
            .contains("unknown field `renew_befor`"),
        "{report}"
    );
    assert!(
        report[4]["error"]
            .as_str()
            .unwrap()
            .contains("invalid token"),
        "{report}"
    );
    assert_eq!(
        listing(&specs.join("out")),
        ["alpha-key.pem", "alpha.pem", "beta-key.pem", "beta.pem"]
    );
    for name in ["alpha", "beta"] {
        assert_verifies(
            dir,
            &pki.primary_ca(),
            &specs.join(format!("out/{name}.pem")),
        );
    }
    assert_eq!(server.signed_count(), 2);

    let text = std::fs::read_to_string(dir.join("nodecert.prom")).unwrap();
    let value = |metric: &str, name: &str| {
        let prefix = format!(
            "nodecert_{metric}{{name=\"{}\"}} ",
            s(&specs.join(format!("out/{name}.pem")))
        );
        text.lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .map(|v| v.parse::<i64>().unwrap())
    };
    let now: i64 = crate::support::tool(dir, "date", &["+%s"])
        .trim()
        .parse()
        .unwrap();
    let recent = |t: Option<i64>| t.is_some_and(|t| (started..=now).contains(&t));
    for name in ["alpha", "beta"] {
        let cert = specs.join(format!("out/{name}.pem"));
        assert_eq!(
            value("certificate_not_after_seconds", name),
            Some(crate::support::ca::not_after_seconds(dir, &cert)),
            "{name}:\n{text}"
        );
        assert!(
            recent(value("last_success_timestamp_seconds", name)),
            "{name}:\n{text}"
        );
        assert_eq!(
            value("last_failure_timestamp_seconds", name),
            None,
            "{text}"
        );
    }
    for name in ["dead", "typo", "wrongkey"] {
        assert!(
            recent(value("last_failure_timestamp_seconds", name)),
            "{name}:\n{text}"
        );
        assert_eq!(
            value("last_success_timestamp_seconds", name),
            None,
            "{text}"
        );
        assert_eq!(
            value("certificate_not_after_seconds", name),
            Some(0),
            "{text}"
        );
    }

    // A failing spec whose certificate is in place (here alpha's, now pointed at the dead CA
    // and forced) keeps that certificate's expiry in a metrics file the failure begins.
    write_spec(&specs, "alpha", &dead, serde_json::json!({}));
    sync(
        dir,
        &["--force", "--metrics-file", "fresh.prom"],
        &specs,
        11,
    );
    let fresh = std::fs::read_to_string(dir.join("fresh.prom")).unwrap();
    let alpha = specs.join("out/alpha.pem");
    assert!(
        fresh.contains(&format!(
            "nodecert_certificate_not_after_seconds{{name=\"{}\"}} {}\n",
            s(&alpha),
            crate::support::ca::not_after_seconds(dir, &alpha)
        )),
        "{fresh}"
    );
}

/// A spec's `exec`, `owner` and `mode`: the hook runs once, when the pair is issued, with the
/// pair's paths, and not on the unchanged run after; the files belong to the owner (given by
/// name), the certificate with the spec's mode and the key 0600.
#[test]
fn sync_spec_hook_owner_and_mode() {
    let Fleet {
        server,
        pki: _pki, // kept alive: the CA files behind the running server
        work,
        specs,
        good,
    } = Fleet::new();
    let dir = work.path();
    let hook_log = dir.join("hook.log");
    write_spec(
        &specs,
        "svc",
        &good,
        serde_json::json!({
            "renew_before": "720h",
            "owner": "nobody:nogroup",
            "mode": "0640",
            "exec": format!(r#"echo "$NODECERT_CERT $NODECERT_KEY" >> {}"#, s(&hook_log)),
        }),
    );
    for expected in ["svc: issued ", "svc: kept "] {
        let out = sync(dir, &[], &specs, 0);
        assert!(out.starts_with(expected), "{out}");
    }
    // An unchanged spec says nothing above info level, so a cron job mails only on news.
    assert_eq!(sync(dir, &["-loglevel", "2"], &specs, 0), "");
    assert_eq!(sync(dir, &["--quiet"], &specs, 0), "");
    let (cert, key) = (specs.join("out/svc.pem"), specs.join("out/svc-key.pem"));
    assert_eq!(
        std::fs::read_to_string(&hook_log).unwrap(),
        format!("{} {}\n", s(&cert), s(&key)),
        "the hook ran once, with the pair's paths"
    );
    for (file, want) in [(&cert, 0o640), (&key, 0o600)] {
        let meta = std::fs::metadata(file).unwrap();
        assert_eq!(
            (meta.uid(), meta.gid(), meta.mode() & 0o777),
            (65534, 65534, want),
            "{}: owner, group, mode",
            file.display()
        );
    }
    assert_key_matches(dir, &key, &cert);
    assert_eq!(server.signed_count(), 1);
    // A change is news: shown at -loglevel 2 too.
    let out = sync(dir, &["--force", "-loglevel", "2"], &specs, 0);
    assert!(out.starts_with("svc: renewed "), "{out}");
}

/// Specs that write one file (here the same certificate, spelt `out/a.pem`,
/// `./out/../out/a.pem` and `out/link.pem -> a.pem`) would undo each other on every run: both fail, naming the file and the
/// other spec, and write nothing; the other specs run.
#[test]
fn sync_refuses_specs_that_share_a_file() {
    let pki = Pki::new();
    let server = pki.start();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let specs = dir.join("specs");
    std::fs::create_dir_all(specs.join("out")).unwrap();
    pki.request_profile(dir, &server.url(), &pki.auth_key);
    write(dir, "csr.json", &node_csr("ecdsa", 256));
    let spec = |cert: &str, key: &str| {
        format!(
            r#"{{"csr":"../csr.json","config":"../request-profile.json","tls_remote_ca":"{}",
                "cert":"{cert}","key":"{key}"}}"#,
            s(&pki.primary_ca())
        )
    };
    write(&specs, "alpha.json", &spec("out/a.pem", "out/a-key.pem"));
    write(
        &specs,
        "beta.json",
        &spec("./out/../out/a.pem", "out/b-key.pem"),
    );
    write(&specs, "gamma.json", &spec("out/g.pem", "out/g-key.pem"));
    // A symlink to out/a.pem (written through) is the same file again.
    std::os::unix::fs::symlink("a.pem", specs.join("out/link.pem")).unwrap();
    write(&specs, "delta.json", &spec("out/link.pem", "out/d-key.pem"));
    let stdout = sync(dir, &[], &specs, 11);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{stdout}");
    for (line, other) in [(lines[0], "beta"), (lines[1], "alpha"), (lines[2], "alpha")] {
        assert!(
            line.contains("out/a.pem, which spec ")
                && line.contains(other)
                && line.contains("also writes: give each spec its own files"),
            "{stdout}"
        );
    }
    assert!(lines[2].starts_with("delta: error: "), "{stdout}");
    assert!(lines[3].starts_with("gamma: issued "), "{stdout}");
    assert_eq!(server.signed_count(), 1);
    assert_eq!(
        crate::support::listing(&specs.join("out")),
        ["g-key.pem", "g.pem", "link.pem"]
    );
    assert!(!specs.join("out/a.pem").exists());
}

/// A spec that others could have written (it names files nodecert overwrites and a command it
/// runs) is refused, as cron refuses such files; so is every spec in a directory others can
/// write to.
#[test]
fn sync_refuses_specs_others_can_write() {
    use std::os::unix::fs::PermissionsExt;
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let specs = dir.join("specs");
    std::fs::create_dir(&specs).unwrap();
    let spec = write(
        &specs,
        "open.json",
        r#"{"csr":"c.json","config":"p.json","cert":"a.pem","key":"a-key.pem","exec":"id"}"#,
    );
    std::fs::set_permissions(&spec, std::fs::Permissions::from_mode(0o666)).unwrap();
    nodecert(dir)
        .args(["sync", s(&specs)])
        .assert()
        .code(11)
        .stdout(contains("open: error: "))
        .stdout(contains(
            "the spec is writable by group or others (mode 0666)",
        ))
        .stdout(contains("chmod go-w"));
    std::fs::set_permissions(&spec, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::set_permissions(&specs, std::fs::Permissions::from_mode(0o777)).unwrap();
    nodecert(dir)
        .args(["sync", s(&specs)])
        .assert()
        .code(11)
        .stdout(contains(
            "the spec directory is writable by group or others (mode 0777)",
        ));
    // Sticky too (as /tmp): anyone may still add a spec there.
    std::fs::set_permissions(&specs, std::fs::Permissions::from_mode(0o1777)).unwrap();
    nodecert(dir)
        .args(["sync", s(&specs)])
        .assert()
        .code(11)
        .stdout(contains(
            "the spec directory is writable by group or others (mode 1777)",
        ));
    std::fs::set_permissions(&specs, std::fs::Permissions::from_mode(0o755)).unwrap();
    // A spec that is a link of another user's (to a file of root's it may not read, whose
    // contents would be read as a spec and reported): refused before it is read.
    let secret = write(
        dir,
        "secret.json",
        r#"{"cert":"-----BEGIN EC PRIVATE KEY-----"}"#,
    );
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let link = specs.join("zz.json");
    // The spec `zz.json` as a link to `target`, owned by `owner`: refused with `says`, nothing
    // of the file shown.
    let refused_through = |target: &Path, owner: u32, says: &str| {
        std::os::unix::fs::symlink(target, &link).unwrap();
        std::os::unix::fs::lchown(&link, Some(owner), Some(owner)).unwrap();
        let out = nodecert(dir)
            .args(["sync", "--report", "json", s(&specs)])
            .assert()
            .code(11);
        let stdout = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
        assert!(stdout.contains(says), "{stdout}");
        assert!(!stdout.contains("PRIVATE KEY"), "{stdout}");
        std::fs::remove_file(&link).unwrap();
    };
    refused_through(
        &secret,
        65534,
        "a link that belongs to uid 65534, neither root nor this user",
    );
    // Nor through a link of root's that leads to one of theirs.
    let theirs = dir.join("theirs.json");
    std::os::unix::fs::symlink(&secret, &theirs).unwrap();
    std::os::unix::fs::lchown(&theirs, Some(65534), Some(65534)).unwrap();
    refused_through(&theirs, 0, "theirs.json, a link that belongs to uid 65534");
    // Past that check, the spec is read (and fails for its missing profile).
    nodecert(dir)
        .args(["sync", s(&specs)])
        .assert()
        .code(11)
        .stdout(contains("p.json: cannot read the request profile"));
}

/// A directory without specs is nothing to do (a fleet-wide timer on a host with no pair):
/// exit 0, said at info level (not at cron's `-loglevel 2`), `[]` as the JSON report. A missing
/// directory is an input error.
#[test]
fn sync_needs_specs() {
    let work = tempfile::tempdir().unwrap();
    // A hidden file is not a spec (an editor's `.#node.json`, a spec moved aside).
    write(work.path(), ".node.json", "{}");
    nodecert(work.path())
        .args(["sync", "."])
        .assert()
        .code(0)
        .stdout("")
        .stderr("nodecert: info: . holds no *.json spec: nothing to do\n");
    nodecert(work.path())
        .args(["sync", "-loglevel", "2", "."])
        .assert()
        .code(0)
        .stderr("");
    nodecert(work.path())
        .args(["sync", "--report", "json", "-loglevel", "3", "."])
        .assert()
        .code(0)
        .stdout("[]\n")
        .stderr("");
    nodecert(work.path())
        .args(["sync", "--parallel", "0", "."])
        .assert()
        .code(2)
        .stderr(contains("--parallel"));
    nodecert(work.path())
        .args(["sync", "nowhere"])
        .assert()
        .code(3)
        .stderr(contains(
            "nowhere: cannot read the spec directory: no such directory",
        ));
}

/// A spec whose output is one of its own inputs (here its CA file) fails on its own line, the
/// file intact, while the others are issued; a `--metrics-file` that is a spec's output is a
/// usage error before anything is issued.
#[test]
fn sync_refuses_outputs_that_overwrite_inputs() {
    let fleet = Fleet::new();
    let specs = &fleet.specs;
    let dir = fleet.work.path();
    write_spec(specs, "good", &fleet.good, serde_json::json!({}));
    write_spec(
        specs,
        "selfish",
        &fleet.good,
        serde_json::json!({"cert": "../conf/ca.pem", "key": "out/selfish-key.pem"}),
    );
    // "greedy" would write the csr.json that only "reader" reads, and the auth key file of the
    // profile that only "keyed" uses: greedy fails on its own line, the two readers are issued.
    write(
        &dir.join("conf"),
        "reader-csr.json",
        &node_csr("ecdsa", 256),
    );
    write_spec(
        specs,
        "reader",
        &fleet.good,
        serde_json::json!({"csr": "../conf/reader-csr.json"}),
    );
    let keyed_dir = dir.join("conf/keyed");
    std::fs::create_dir(&keyed_dir).unwrap();
    let auth_key = write(&keyed_dir, "ak.hex", &fleet.pki.auth_key);
    std::fs::set_permissions(
        auth_key,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    fleet
        .pki
        .request_profile(&keyed_dir, &fleet.server.url(), "file:ak.hex");
    write_spec(
        specs,
        "keyed",
        "../conf/keyed/request-profile.json",
        serde_json::json!({}),
    );
    write_spec(
        specs,
        "greedy",
        &fleet.good,
        serde_json::json!({"key": "../conf/reader-csr.json", "csr_out": "../conf/keyed/ak.hex"}),
    );
    // A spec that would name nothing: an empty hostname list (sent, it strips every SAN), or
    // a csr.json with neither CN nor hosts.
    write_spec(
        specs,
        "empty",
        &fleet.good,
        serde_json::json!({"hostname": []}),
    );
    write(
        &dir.join("conf"),
        "nameless.json",
        r#"{"CN":"","hosts":[]}"#,
    );
    write_spec(
        specs,
        "nameless",
        &fleet.good,
        serde_json::json!({"csr": "../conf/nameless.json"}),
    );
    // A bad mode is named by its field, not by a flag the spec does not have.
    write_spec(
        specs,
        "wide",
        &fleet.good,
        serde_json::json!({"mode": "0777"}),
    );
    let read_inputs = || {
        ["conf/reader-csr.json", "conf/keyed/ak.hex"].map(|f| std::fs::read(dir.join(f)).unwrap())
    };
    let inputs = read_inputs();
    let ca = std::fs::read(dir.join("conf/ca.pem")).unwrap();

    // The metrics file may not be any spec's input either.
    for (metrics, says) in [
        ("conf/reader-csr.json", "and the csr.json of spec reader,"),
        (
            "conf/keyed/ak.hex",
            "and an auth key file (file: in the profile) of spec keyed,",
        ),
        (
            "specs/out/.good.pem.lock",
            "and the pair's lock file of spec good,",
        ),
        ("specs/good.json", "and the spec file of spec good,"),
    ] {
        let out = nodecert(dir)
            .args(["sync", "--metrics-file", metrics, s(specs)])
            .assert()
            .code(2);
        let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
        assert!(stderr.contains(says), "{metrics}: {stderr}");
    }
    let metrics = specs.join("out/good.pem");
    let out = nodecert(dir)
        .args(["sync", "--metrics-file", s(&metrics), s(specs)])
        .assert()
        .code(2);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(
        stderr.contains(
            "is both the metrics file (--metrics-file) and the certificate output of spec good,"
        ),
        "{stderr}"
    );
    assert_eq!(fleet.server.signed_count(), 0);

    let stdout = sync(dir, &[], specs, 11);
    assert!(
        stdout.contains("selfish: error: ")
            && stdout.contains("is both the certificate output and the CA certificate,"),
        "{stdout}"
    );
    assert!(
        stdout.contains("greedy: error: ")
            && stdout.contains("reader-csr.json, which is the csr.json of spec reader:"),
        "{stdout}"
    );
    assert!(
        stdout.contains("empty: error: ")
            && stdout.contains("field hostname: is an empty list: leave the field out"),
        "{stdout}"
    );
    assert!(
        stdout.contains("nameless: error: ") && stdout.contains("has neither CN nor hosts"),
        "{stdout}"
    );
    let wide = stdout
        .lines()
        .find(|l| l.starts_with("wide: error: "))
        .unwrap_or_default();
    assert!(
        wide.contains("wide.json: field mode: 0777") && !wide.contains("flag"),
        "{stdout}"
    );
    for issued in ["good", "reader", "keyed"] {
        assert!(stdout.contains(&format!("{issued}: issued")), "{stdout}");
    }
    assert_eq!(std::fs::read(dir.join("conf/ca.pem")).unwrap(), ca);
    assert_eq!(read_inputs(), inputs);
    assert_eq!(fleet.server.signed_count(), 3);
}

/// No hook inherits a variable any spec's profile reads a key from (`env:VAR`), even when that
/// spec fails before its key is read (here on its csr.json), or never becomes a job at all (an
/// unknown field, a spec file others may write), and even for a key of the profile that this
/// run does not use: each can mint certificates.
#[test]
fn no_hook_inherits_a_key_variable_of_any_profile() {
    let fleet = Fleet::new();
    let (dir, specs) = (fleet.work.path(), &fleet.specs);
    write_spec(
        specs,
        "a",
        &fleet.good,
        serde_json::json!({"exec": "env > hook-env.txt"}),
    );
    std::fs::create_dir(dir.join("conf/env")).unwrap();
    let env_profile = fleet.pki.request_profile_with_keys(
        &dir.join("conf/env"),
        &fleet.server.url(),
        &["env:NODECERT_TEST_B_KEY", "env:NODECERT_TEST_SPARE_KEY"],
    );
    write_spec(
        specs,
        "b",
        "../conf/env/request-profile.json",
        serde_json::json!({"csr": "../conf/missing-csr.json"}),
    );
    assert!(env_profile.is_file());
    // Specs that never become jobs: one with a typo, one whose mode gets it refused.
    for (name, var, extra, mode) in [
        (
            "c",
            "NODECERT_TEST_C_KEY",
            serde_json::json!({"bogus": 1}),
            0o644,
        ),
        ("d", "NODECERT_TEST_D_KEY", serde_json::json!({}), 0o664),
    ] {
        std::fs::create_dir(dir.join("conf").join(name)).unwrap();
        let key = format!("env:{var}");
        fleet.pki.request_profile_with_keys(
            &dir.join("conf").join(name),
            &fleet.server.url(),
            &[&key],
        );
        write_spec(
            specs,
            name,
            &format!("../conf/{name}/request-profile.json"),
            extra,
        );
        let spec = specs.join(format!("{name}.json"));
        std::fs::set_permissions(&spec, std::os::unix::fs::PermissionsExt::from_mode(mode))
            .unwrap();
    }
    let out = nodecert(dir)
        .env("NODECERT_TEST_C_KEY", "00ee")
        .env("NODECERT_TEST_D_KEY", "00dd")
        .env("NODECERT_TEST_B_KEY", &fleet.pki.auth_key)
        .env("NODECERT_TEST_SPARE_KEY", "00ff")
        .env("NODECERT_TEST_OTHER", "kept")
        .args(["sync", s(specs)])
        .assert()
        .code(11);
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(stdout.contains("a: issued"), "{stdout}");
    assert!(stdout.contains("missing-csr.json"), "{stdout}");
    let seen = std::fs::read_to_string(dir.join("hook-env.txt")).unwrap();
    assert!(seen.contains("NODECERT_TEST_OTHER=kept"), "{seen}");
    assert!(!seen.contains("NODECERT_TEST_B_KEY"), "{seen}");
    assert!(!seen.contains("NODECERT_TEST_SPARE_KEY"), "{seen}");
    assert!(
        stdout.contains("c: error: ") && stdout.contains("d: error: "),
        "{stdout}"
    );
    assert!(!seen.contains("NODECERT_TEST_C_KEY"), "{seen}");
    assert!(!seen.contains("NODECERT_TEST_D_KEY"), "{seen}");
}

/// A spec's `exec` that no shell can be given (empty, a NUL byte, longer than the kernel takes
/// as one argument) fails that spec before the CA is asked: otherwise the pair would be issued
/// and the hook, failing to start, stay owed on every later run.
#[test]
fn a_spec_whose_exec_cannot_run_is_refused() {
    let fleet = Fleet::new();
    let (dir, specs) = (fleet.work.path(), &fleet.specs);
    let long = "true; ".repeat(30_000);
    for (name, exec) in [
        ("blank", " "),
        ("nul", "echo a\u{0}b"),
        ("long", long.as_str()),
    ] {
        write_spec(
            specs,
            name,
            &fleet.good,
            serde_json::json!({ "exec": exec }),
        );
    }
    let stdout = sync(dir, &[], specs, 11);
    for (name, says) in [
        ("blank", "field exec: is empty"),
        ("nul", "field exec: contains a NUL byte"),
        ("long", "field exec: is 180000 bytes"),
    ] {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("{name}: error: ")))
            .unwrap_or_default();
        assert!(line.contains(says), "{name}: {stdout}");
        assert!(
            line.len() < 400,
            "{name}: the command is not quoted in full"
        );
    }
    assert_eq!(fleet.server.signed_count(), 0);
    assert_eq!(listing(&specs.join("out")), Vec::<String>::new());
}

/// A spec's pair may be its own mutual-TLS identity (kubelet-style rotation): read before
/// anything is written, so it is not refused as an input its own output would overwrite.
#[test]
fn a_spec_renews_with_its_own_pair_as_client_identity() {
    let fleet = Fleet::new();
    let (dir, specs, config) = (fleet.work.path(), &fleet.specs, fleet.good.as_str());
    let spec = |extra: serde_json::Value| {
        let mut fields = serde_json::json!({"csr_out": "out/self.csr"});
        for (field, value) in extra.as_object().unwrap() {
            fields[field] = value.clone();
        }
        write_spec(specs, "self", config, fields);
    };
    spec(serde_json::json!({}));
    sync(dir, &[], specs, 0);
    let before = crate::support::pair_bytes(&specs.join("out"), "self");
    spec(serde_json::json!({
        "mutual_tls_client_cert": "out/self.pem",
        "mutual_tls_client_key": "out/self-key.pem",
    }));
    sync(dir, &["--force"], specs, 0);
    assert_ne!(
        crate::support::pair_bytes(&specs.join("out"), "self"),
        before
    );
    assert_eq!(fleet.server.signed_count(), 2);
}

/// A spec may not write another spec's lock file (the other's run would hold a lock on a file
/// then replaced by a key), nor a `*.json` file in the spec directory (the next sync would read
/// a certificate as a broken spec, and fail on it for ever): each is refused on its own line on
/// the first run, nothing written for it; so is a --metrics-file there.
#[test]
fn sync_refuses_outputs_that_would_take_a_lock_or_become_a_spec() {
    let fleet = Fleet::new();
    let (dir, specs) = (fleet.work.path(), &fleet.specs);
    write_spec(specs, "a", &fleet.good, serde_json::json!({}));
    write_spec(
        specs,
        "b",
        &fleet.good,
        serde_json::json!({"key": "out/.a.pem.lock"}),
    );
    write_spec(
        specs,
        "c",
        &fleet.good,
        serde_json::json!({"cert": "zz.json"}),
    );
    let stdout = sync(dir, &[], specs, 11);
    let line = |name: &str| {
        (stdout.lines())
            .find(|l| l.starts_with(&format!("{name}: ")))
            .unwrap_or_default()
            .to_string()
    };
    assert!(line("a").starts_with("a: issued"), "{stdout}");
    assert!(
        line("b").contains("which is the pair's lock file of spec a"),
        "{stdout}"
    );
    assert!(
        line("c").contains("which the next sync would read as a spec"),
        "{stdout}"
    );
    assert!(!specs.join("zz.json").exists());
    assert!(!specs.join("out/b.pem").exists());
    assert_eq!(
        std::fs::metadata(specs.join("out/.a.pem.lock"))
            .unwrap()
            .len(),
        0
    );
    assert_eq!(fleet.server.signed_count(), 1);
    let metrics = specs.join("metrics.json");
    nodecert(dir)
        .args(["sync", "--metrics-file", s(&metrics), s(specs)])
        .assert()
        .code(2)
        .stderr(contains("would be read as a spec by the next sync"));
    assert!(!metrics.exists());
}

/// A sync run's log lines interleave many specs': each names its spec (here the warning about
/// an auth key file others may read, made while the spec's profile is read), so that the
/// operator knows which of them to fix, and no other spec's name is attached to it.
#[test]
fn sync_log_lines_name_their_spec() {
    let fleet = Fleet::new();
    let (dir, specs) = (fleet.work.path(), &fleet.specs);
    let conf = dir.join("conf/filekey");
    std::fs::create_dir(&conf).unwrap();
    let key = write(&conf, "key.hex", &fleet.pki.auth_key);
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    fleet
        .pki
        .request_profile_with_keys(&conf, &fleet.server.url(), &["file:key.hex"]);
    write_spec(specs, "quiet", &fleet.good, serde_json::json!({}));
    write_spec(
        specs,
        "loose",
        "../conf/filekey/request-profile.json",
        serde_json::json!({}),
    );
    let out = nodecert(dir).args(["sync", s(specs)]).assert().code(0);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    let warning = (stderr.lines())
        .find(|l| l.contains("the auth key file is open to group or others"))
        .unwrap_or_default();
    assert!(
        warning.starts_with("nodecert: warning: spec loose: "),
        "{stderr}"
    );
    assert!(!stderr.contains("spec quiet"), "{stderr}");
}

/// `--jitter` is one window for the whole run: specs that wait one after another (here on one
/// worker) each contact the CA at a point of the same window from the start of the run, so
/// their waits add up to no more than the window (they used to add up to specs × window).
#[test]
fn sync_jitter_is_one_window_for_the_run() {
    let fleet = Fleet::new();
    let (dir, specs) = (fleet.work.path(), &fleet.specs);
    let names = ["a", "b", "c", "d", "e", "f"];
    for name in names {
        write_spec(specs, name, &fleet.good, serde_json::json!({}));
    }
    let window = std::time::Duration::from_millis(1500);
    let out = nodecert(dir)
        .args([
            "sync",
            "--parallel",
            "1",
            "--jitter",
            "1500ms",
            "-loglevel",
            "0",
        ])
        .arg(s(specs))
        .assert()
        .code(0);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    let waits: Vec<std::time::Duration> = (stderr.lines())
        .filter_map(|l| {
            let (_, wait) = l.split_once("waiting ")?;
            let wait = wait.strip_suffix(" (--jitter) before contacting the CA")?;
            Some(humantime::parse_duration(wait).unwrap())
        })
        .collect();
    assert_eq!(waits.len(), names.len(), "{stderr}");
    let total: std::time::Duration = waits.iter().sum();
    assert!(total <= window, "waits {waits:?} add up to {total:?}");
    for name in names {
        let out = specs.join("out");
        assert_key_matches(
            dir,
            &out.join(format!("{name}-key.pem")),
            &out.join(format!("{name}.pem")),
        );
    }
}

/// sync's `--metrics-file` is refused as gencert's is when it holds anything but nodecert's
/// series (here a pair's private key): exit 8 before any spec runs, the file as it was.
#[test]
fn sync_refuses_a_metrics_file_that_is_not_nodecerts() {
    let fleet = Fleet::new();
    let (dir, specs) = (fleet.work.path(), &fleet.specs);
    write_spec(specs, "node", &fleet.good, serde_json::json!({}));
    let key = write(
        dir,
        "other-key.pem",
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    );
    let before = std::fs::read(&key).unwrap();
    nodecert(dir)
        .args(["sync", "--metrics-file", s(&key), s(specs)])
        .assert()
        .code(8)
        .stderr(contains("is not one of nodecert's metrics"));
    assert_eq!(std::fs::read(&key).unwrap(), before);
    assert!(!specs.join("out/node.pem").exists());
    assert_eq!(fleet.server.signed_count(), 0);
}

/// A spec that is a JSON array (serde would fill the fields from it in order) fails on its own
/// line with exit 11, and the other specs are issued.
#[test]
fn sync_fails_a_spec_that_is_an_array() {
    let fleet = Fleet::new();
    let (dir, specs) = (fleet.work.path(), &fleet.specs);
    write_spec(specs, "good", &fleet.good, serde_json::json!({}));
    write(
        specs,
        "listed.json",
        &serde_json::json!(["../conf/csr.json", fleet.good, "out/listed.pem"]).to_string(),
    );
    let out = nodecert(dir).args(["sync", s(specs)]).assert().code(11);
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    let line = (stdout.lines().find(|l| l.starts_with("listed"))).unwrap_or_default();
    assert!(line.contains("expected a JSON object"), "{stdout}");
    assert!(stderr.contains("1 of 2 specs failed: listed"), "{stderr}");
    assert!(specs.join("out/good.pem").exists());
    assert!(!specs.join("out/listed.pem").exists());
}

/// Messages about a spec's settings name the spec's fields, not gencert's flags: a sync user
/// told to pass `--key-mode` would add a flag sync refuses (exit 2 on every timer run).
#[test]
fn sync_messages_name_spec_fields() {
    let fleet = Fleet::new();
    let (dir, specs) = (fleet.work.path(), &fleet.specs);
    write_spec(specs, "svc", &fleet.good, serde_json::json!({}));
    sync(dir, &[], specs, 0);
    let key = specs.join("out/svc-key.pem");
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o640)).unwrap();
    let out = nodecert(dir)
        .args(["sync", "--force", s(specs)])
        .assert()
        .code(0);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(
        stderr.contains("spec svc: ",)
            && stderr.contains(
                "had mode 0640, wider than spec field key_mode 0600: the new key will be 0600 \
             (set spec field key_mode 0640 if its group must read it)"
            ),
        "{stderr}"
    );
    assert!(!stderr.contains("--key-mode"), "{stderr}");
    // The reason of a spec without renew_before names the field too.
    let line = sync(dir, &[], specs, 0);
    assert!(
        line.contains("no renew_before (spec field, or sync --renew-before): always issue"),
        "{line}"
    );
}
