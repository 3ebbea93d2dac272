//! Shared test harness.

pub mod ca;
pub mod fault;
pub mod gate;
pub mod proxy;

use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;

pub use ca::Pki;

/// A `nodecert` command with a scrubbed environment, run in `dir`. Everything it prints is
/// checked against every secret registered in this test process (see [`secrets`]).
pub fn nodecert(dir: &Path) -> Nodecert {
    let cmd = assert_cmd::Command::cargo_bin("nodecert").expect("the nodecert binary is built");
    scrubbed(cmd, dir)
}

/// [`nodecert`] run as another user (the suite runs as root): for what root's privileges would
/// hide, such as a file it may not read or a directory it may not write.
pub fn nodecert_as(dir: &Path, uid: u32, gid: u32) -> Nodecert {
    use std::os::unix::process::CommandExt as _;
    let mut std_cmd = StdCommand::new(assert_cmd::cargo::cargo_bin!("nodecert"));
    std_cmd.uid(uid).gid(gid);
    scrubbed(assert_cmd::Command::from_std(std_cmd), dir)
}

fn scrubbed(mut cmd: assert_cmd::Command, dir: &Path) -> Nodecert {
    cmd.current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .timeout(std::time::Duration::from_secs(60));
    Nodecert(cmd)
}

/// `assert_cmd::Command` with a secrets check on its output.
pub struct Nodecert(assert_cmd::Command);

impl Nodecert {
    pub fn arg(&mut self, arg: impl AsRef<std::ffi::OsStr>) -> &mut Self {
        self.0.arg(arg);
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: AsRef<std::ffi::OsStr>>(
        &mut self,
        args: I,
    ) -> &mut Self {
        self.0.args(args);
        self
    }

    /// `gencert -config PROFILE -tls-remote-ca CA`: the start of most gencert runs.
    pub fn gencert(&mut self, profile: &Path, ca: &Path) -> &mut Self {
        self.args(["gencert", "-config", s(profile), "-tls-remote-ca", s(ca)])
    }

    pub fn env(&mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) -> &mut Self {
        self.0.env(key, value);
        self
    }

    pub fn write_stdin(&mut self, input: impl Into<Vec<u8>>) -> &mut Self {
        self.0.write_stdin(input);
        self
    }

    /// Runs the command, checks its output for secrets, and hands it to assert_cmd.
    pub fn assert(&mut self) -> assert_cmd::assert::Assert {
        use assert_cmd::assert::OutputAssertExt as _;
        let output = self.0.output().expect("nodecert runs");
        secrets::assert_absent(&output.stdout, &output.stderr);
        output.assert()
    }
}

/// Auth keys made or used by tests. Every nodecert run in the suite is checked against all of
/// them: the key must never be printed, hex (either case), raw or base64.
pub mod secrets {
    use std::sync::Mutex;

    use base64::Engine as _;

    static KEYS: Mutex<Vec<String>> = Mutex::new(Vec::new());

    /// Registers a hex auth key.
    pub fn register(hex: &str) {
        KEYS.lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(hex.to_string());
    }

    /// Panics when any registered key appears in `stdout` or `stderr`.
    pub fn assert_absent(stdout: &[u8], stderr: &[u8]) {
        // Copy the list first: the check panics on a find, which must not poison the registry.
        let keys = KEYS.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for hex in keys.iter() {
            let raw: Vec<u8> = (0..hex.len() / 2)
                .filter_map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok())
                .collect();
            let forms = [
                hex.to_lowercase().into_bytes(),
                hex.to_uppercase().into_bytes(),
                base64::engine::general_purpose::STANDARD
                    .encode(&raw)
                    .trim_end_matches('=')
                    .as_bytes()
                    .to_vec(),
                raw,
            ];
            for output in [stdout, stderr] {
                for form in &forms {
                    assert!(
                        form.len() < 8 || !output.windows(form.len()).any(|w| w == form.as_slice()),
                        "an auth key was printed:\n{}",
                        String::from_utf8_lossy(output)
                    );
                }
            }
        }
    }
}

/// A CA with a running multirootca, a work directory, a request profile for it and an ECDSA
/// csr.json: what most tests start from.
pub struct Setup {
    pub pki: Pki,
    pub server: ca::Multirootca,
    pub work: tempfile::TempDir,
    pub profile: std::path::PathBuf,
    pub csr: std::path::PathBuf,
}

impl Setup {
    pub fn new() -> Self {
        let pki = Pki::new();
        let server = pki.start();
        let work = tempfile::tempdir().unwrap();
        let profile = pki.request_profile(work.path(), &server.url(), &pki.auth_key);
        let csr = write(work.path(), "csr.json", &node_csr("ecdsa", 256));
        Self {
            pki,
            server,
            work,
            profile,
            csr,
        }
    }

    pub fn dir(&self) -> &Path {
        self.work.path()
    }

    /// `nodecert gencert` for the pair `node` with the given extra flags.
    pub fn gencert(&self, extra: &[&str]) -> Nodecert {
        self.gencert_bare("node", &self.csr, extra)
    }

    /// `nodecert gencert … -bare NAME EXTRA… CSR`, with this set-up's profile and pinned CA.
    pub fn gencert_bare(&self, name: &str, csr: &Path, extra: &[&str]) -> Nodecert {
        let mut cmd = gencert_in(self.dir(), &self.profile, &self.pki.primary_ca());
        cmd.args(["-bare", name]).args(extra).arg(s(csr));
        cmd
    }
}

/// `nodecert gencert -config PROFILE -tls-remote-ca CA`, run in `dir`; the caller adds the rest.
pub fn gencert_in(dir: &Path, profile: &Path, ca: &Path) -> Nodecert {
    let mut cmd = nodecert(dir);
    cmd.gencert(profile, ca);
    cmd
}

/// `openssl req -x509` in `dir`: a self-signed certificate `NAME.pem` for `subject` (and the
/// `-addext` values in `extensions`), with its key `NAME-key.pem` on the EC `curve`, valid 30
/// days; CA:TRUE, as openssl makes it.
pub fn self_signed(dir: &Path, name: &str, curve: &str, subject: &str, extensions: &[&str]) {
    let (curve, key, cert) = (
        format!("ec_paramgen_curve:{curve}"),
        format!("{name}-key.pem"),
        format!("{name}.pem"),
    );
    let mut args = vec![
        "req", "-x509", "-newkey", "ec", "-pkeyopt", &curve, "-nodes", "-subj", subject, "-days",
        "30", "-keyout", &key, "-out", &cert,
    ];
    for extension in extensions {
        args.extend(["-addext", extension]);
    }
    tool(dir, "openssl", &args);
}

/// Runs an external tool and returns its stdout; panics with its stderr when it fails.
pub fn tool(dir: &Path, program: &str, args: &[&str]) -> String {
    let out = StdCommand::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    // Some runs of nodecert go through `sh -c` (to set a umask): their output is checked too.
    secrets::assert_absent(&out.stdout, &out.stderr);
    assert!(
        out.status.success(),
        "{program} {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Asserts `openssl verify -CAfile ca cert` succeeds.
pub fn assert_verifies(dir: &Path, ca: &Path, cert: &Path) {
    let out = tool(dir, "openssl", &["verify", "-CAfile", s(ca), s(cert)]);
    assert!(out.trim_end().ends_with(": OK"), "openssl verify: {out}");
}

/// Asserts the private key in `key` belongs to the certificate in `cert` (openssl's view).
pub fn assert_key_matches(dir: &Path, key: &Path, cert: &Path) {
    let from_key = tool(dir, "openssl", &["pkey", "-in", s(key), "-pubout"]);
    let from_cert = tool(
        dir,
        "openssl",
        &["x509", "-in", s(cert), "-noout", "-pubkey"],
    );
    assert_eq!(
        from_key,
        from_cert,
        "key {} does not match {}",
        key.display(),
        cert.display()
    );
}

/// `openssl x509 -text` of a certificate.
pub fn cert_text(dir: &Path, cert: &Path) -> String {
    tool(dir, "openssl", &["x509", "-in", s(cert), "-noout", "-text"])
}

/// Unix permission bits of a file.
pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .mode()
        & 0o777
}

/// The names of the files in `dir`, sorted, without the pair lock files (`.NAME.lock`, which
/// stay by design: deleting a lock file would let two runs lock different inodes).
pub fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| !(name.starts_with('.') && name.ends_with(".lock")))
        .collect();
    names.sort();
    names
}

/// The stderr of a finished run, which must be exactly one line, as every nodecert error is.
pub fn one_line_stderr(assert: &assert_cmd::assert::Assert) -> String {
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    stderr
}

/// The bytes of NAME.pem, NAME-key.pem and NAME.csr in `dir`.
pub fn pair_bytes(dir: &Path, name: &str) -> [Vec<u8>; 3] {
    [".pem", "-key.pem", ".csr"]
        .map(|suffix| std::fs::read(dir.join(format!("{name}{suffix}"))).unwrap())
}

/// A signal mask from the text of a /proc status file (`field` is `SigBlk:` or `SigIgn:`):
/// bit n-1 stands for signal n.
pub fn signal_mask(status: &str, field: &str) -> u64 {
    let mask = (status.lines())
        .find_map(|line| line.strip_prefix(field))
        .unwrap_or_else(|| panic!("no {field} in {status}"));
    u64::from_str_radix(mask.trim(), 16).unwrap()
}

/// Writes `content` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path
}

/// A path as &str (test paths are UTF-8).
pub fn s(path: &Path) -> &str {
    path.to_str().expect("test paths are UTF-8")
}

/// A typical node csr.json.
pub fn node_csr(algo: &str, size: u32) -> String {
    format!(
        r#"{{"CN":"node1.example.com","hosts":["node1.example.com","127.0.0.1"],
            "key":{{"algo":"{algo}","size":{size}}},
            "names":[{{"C":"US","ST":"CA","L":"San Francisco","O":"Example","OU":"Nodes"}}]}}"#
    )
}
