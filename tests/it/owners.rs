//! Root and an unprivileged user on one pair: a first issuance by root with `--owner`, renewals
//! by the service user (or root's timer) after it. Each run may only do what its user can, and
//! none may cost the pair the other relies on.

use std::os::unix::fs::{MetadataExt as _, PermissionsExt};
use std::path::{Path, PathBuf};

use predicates::prelude::PredicateBooleanExt as _;
use predicates::str::contains;

use crate::support::{Setup, gencert_in, nodecert_as, pair_bytes, s};

const NOBODY: u32 = 65534;

/// A set-up whose inputs `nobody` may read, and a directory `nobody` owns.
struct Shared {
    t: Setup,
    ca: PathBuf,
    out: PathBuf,
}

impl Shared {
    fn new() -> Self {
        let t = Setup::new();
        let dir = t.dir();
        let chmod = |path: &Path, mode: u32| {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        };
        chmod(dir, 0o755).unwrap();
        chmod(&t.profile, 0o644).unwrap();
        chmod(&t.csr, 0o644).unwrap();
        let ca = dir.join("ca.pem");
        std::fs::copy(t.pki.primary_ca(), &ca).unwrap();
        let out = dir.join("out");
        std::fs::create_dir(&out).unwrap();
        std::os::unix::fs::chown(&out, Some(NOBODY), Some(NOBODY)).unwrap();
        Self { t, ca, out }
    }

    /// `gencert -bare out/node EXTRA… csr.json` as root.
    fn as_root(&self, extra: &[&str]) -> crate::support::Nodecert {
        let mut cmd = gencert_in(self.t.dir(), &self.t.profile, &self.ca);
        cmd.args(["-bare", s(&self.out.join("node"))])
            .args(extra)
            .arg(s(&self.t.csr));
        cmd
    }

    /// The same, as `nobody`.
    fn as_nobody(&self, extra: &[&str]) -> crate::support::Nodecert {
        let mut cmd = nodecert_as(self.t.dir(), NOBODY, NOBODY);
        cmd.gencert(&self.t.profile, &self.ca)
            .args(["-bare", s(&self.out.join("node"))])
            .args(extra)
            .arg(s(&self.t.csr));
        cmd
    }

    /// `sign OUTPUT… out/CSR` as `nobody`.
    fn sign_as_nobody(&self, output: &[&str], csr: &str) -> crate::support::Nodecert {
        let mut cmd = nodecert_as(self.t.dir(), NOBODY, NOBODY);
        cmd.args([
            "sign",
            "-config",
            s(&self.t.profile),
            "-tls-remote-ca",
            s(&self.ca),
        ])
        .args(output)
        .arg(s(&self.out.join(csr)));
        cmd
    }

    /// The owner and group of the pair's files, and the owner of its lock file.
    fn owners(&self) -> ([(u32, u32); 3], u32) {
        let meta = |file: &str| std::fs::metadata(self.out.join(file)).unwrap();
        (
            ["node.pem", "node-key.pem", "node.csr"].map(|file| {
                let meta = meta(file);
                (meta.uid(), meta.gid())
            }),
            meta(".node.pem.lock").uid(),
        )
    }
}

/// Root issues for `nobody` with `--owner`; `nobody` keeps and renews the pair itself; root
/// keeps and renews it again, with and without `--owner`. Every run exits 0, the lock file
/// (root's making) is `nobody`'s, and so is every file of the pair throughout.
#[test]
fn root_and_the_pairs_owner_take_turns() {
    let sh = Shared::new();
    let owner = format!("{NOBODY}:{NOBODY}");
    let keep = ["--renew-before", "720h"];
    sh.as_root(&["--owner", &owner]).assert().code(0);
    let nobodys = ([(NOBODY, NOBODY); 3], NOBODY);
    assert_eq!(sh.owners(), nobodys);
    let lock = std::fs::metadata(sh.out.join(".node.pem.lock")).unwrap();
    assert_eq!(lock.mode() & 0o777, 0o600);

    let signed = sh.t.server.signed_count();
    sh.as_nobody(&keep).assert().code(0);
    assert_eq!(
        sh.t.server.signed_count(),
        signed,
        "kept: the CA was not asked"
    );
    sh.as_nobody(&["--force"]).assert().code(0);
    assert_eq!(sh.owners(), nobodys);

    sh.as_root(&["--owner", &owner, "--renew-before", "720h"])
        .assert()
        .code(0);
    sh.as_root(&["--owner", &owner, "--force"]).assert().code(0);
    assert_eq!(sh.owners(), nobodys);
    // Without --owner, root's renewal of a pair in its owner's directory leaves it the owner's:
    // the service can still read its key.
    let before = pair_bytes(&sh.out, "node");
    sh.as_root(&["--force"]).assert().code(0).stderr("");
    assert_ne!(pair_bytes(&sh.out, "node"), before);
    assert_eq!(sh.owners(), nobodys);
    // A CSR root restores there (it was deleted) is the owner's too.
    std::fs::remove_file(sh.out.join("node.csr")).unwrap();
    sh.as_root(&["--renew-before", "720h"]).assert().code(0);
    assert_eq!(sh.owners(), nobodys);
    sh.as_nobody(&["--force"]).assert().code(0);
    assert_eq!(sh.t.server.signed_count(), signed + 4);
}

/// A run that cannot read the pair (root's key, in the directory `nobody` owns) cannot tell
/// whether it may stay: exit 8 naming the key, the pair untouched, the CA not asked. With a
/// valid pair of its own in a directory it may not write, a run keeps the pair (exit 0, no lock
/// file needed); once the pair is due, it is refused before the CA is asked, naming the
/// directory.
#[test]
fn a_pair_the_user_cannot_read_or_replace_is_left_as_it_is() {
    let sh = Shared::new();
    sh.as_root(&[]).assert().code(0);
    let key = std::fs::metadata(sh.out.join("node-key.pem")).unwrap();
    assert_eq!((key.uid(), key.mode() & 0o777), (0, 0o600));
    let before = pair_bytes(&sh.out, "node");
    let signed = sh.t.server.signed_count();
    sh.as_nobody(&["--renew-before", "720h"])
        .assert()
        .code(8)
        .stderr(contains(
            "node-key.pem: it is there but this user cannot read it (Permission denied",
        ))
        .stderr(contains(
            "run as its owner (uid 0) or root, or move it aside",
        ));
    // Nor does a run that would replace it anyway (no --renew-before, or --force): cfssljson's
    // write fails there too.
    for extra in [&[][..], &["--force"]] {
        sh.as_nobody(extra)
            .assert()
            .code(8)
            .stderr(contains("this user cannot read it"));
    }
    assert_eq!(pair_bytes(&sh.out, "node"), before);
    assert_eq!(sh.t.server.signed_count(), signed, "the CA was not asked");

    // nobody's pair in root's directory, which nobody may not write, first without a lock file
    // there, then with root's (which nobody may not open: no lock is needed to keep a pair).
    let root_dir = sh.t.dir().join("root-dir");
    std::fs::create_dir(&root_dir).unwrap();
    let bare = root_dir.join("svc");
    let mut issue = gencert_in(sh.t.dir(), &sh.t.profile, &sh.ca);
    issue
        .args(["-bare", s(&bare), "--owner", &format!("{NOBODY}:{NOBODY}")])
        .arg(s(&sh.t.csr))
        .assert()
        .code(0);
    std::fs::remove_file(root_dir.join(".svc.pem.lock")).unwrap();
    let before = pair_bytes(&root_dir, "svc");
    let signed = sh.t.server.signed_count();
    let run = |extra: &[&str]| {
        let mut cmd = nodecert_as(sh.t.dir(), NOBODY, NOBODY);
        cmd.gencert(&sh.t.profile, &sh.ca)
            .args(["-bare", s(&bare)])
            .args(extra)
            .arg(s(&sh.t.csr));
        cmd
    };
    run(&["--renew-before", "720h"]).assert().code(0);
    run(&["--force"]).assert().code(8).stderr(contains(format!(
        "svc-key.pem: its directory {} is not writable by this user (uid {NOBODY}; the \
             directory is uid 0's)",
        root_dir.display()
    )));
    assert_eq!(pair_bytes(&root_dir, "svc"), before);
    assert!(!root_dir.join(".svc.pem.lock").exists());
    std::fs::write(root_dir.join(".svc.pem.lock"), "").unwrap();
    std::fs::set_permissions(
        root_dir.join(".svc.pem.lock"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    run(&["--renew-before", "720h"]).assert().code(0);
    // Without the lock, nothing is changed, but a key left readable beyond --key-mode is said.
    let key = root_dir.join("svc-key.pem");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    run(&["--renew-before", "720h"])
        .assert()
        .code(0)
        .stderr(contains(
            "svc-key.pem: mode 0644 is wider than --key-mode 0600, left as it is: this run holds \
         no lock on the pair",
        ));
    assert_eq!(std::fs::metadata(&key).unwrap().mode() & 0o777, 0o644);
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    run(&["--force"])
        .assert()
        .code(8)
        .stderr(contains("is not writable by this user"));
    assert_eq!(pair_bytes(&root_dir, "svc"), before);
    assert_eq!(sh.t.server.signed_count(), signed, "the CA was not asked");
}

/// A lock file made under a umask that takes its owner's write bit (0400) does not stop the
/// next run: a lock file is opened for reading, which is all `flock` needs.
#[test]
fn a_lock_file_made_under_a_narrow_umask_still_opens() {
    use std::os::unix::process::CommandExt as _;
    let sh = Shared::new();
    let nodecert = assert_cmd::cargo::cargo_bin!("nodecert");
    let run = |extra: &str| {
        let script = format!(
            "umask 222; exec {} gencert -config {} -tls-remote-ca {} -bare {} {extra} {}",
            nodecert.display(),
            s(&sh.t.profile),
            s(&sh.ca),
            s(&sh.out.join("node")),
            s(&sh.t.csr)
        );
        let mut cmd = std::process::Command::new("/bin/sh");
        cmd.args(["-c", &script])
            .uid(NOBODY)
            .gid(NOBODY)
            .current_dir(sh.t.dir())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default());
        assert_cmd::Command::from_std(cmd)
    };
    run("--renew-before 720h").assert().code(0);
    let lock = std::fs::metadata(sh.out.join(".node.pem.lock")).unwrap();
    assert_eq!(lock.mode() & 0o777, 0o400);
    run("--renew-before 720h").assert().code(0);
    run("--force").assert().code(0);
    assert_eq!(sh.t.server.signed_count(), 2);
}

/// A lock file of a user root no longer trusts does not stop root: one left by the user root
/// took the pair back from (here by `--force` without `--owner`), or one planted in the
/// directory. Root gives it to the directory's owner, with a warning. The user's own run is
/// told whose the planted file is and to remove it.
#[test]
fn root_takes_a_lock_file_it_no_longer_trusts() {
    let sh = Shared::new();
    let root_dir = sh.t.dir().join("root-dir");
    std::fs::create_dir(&root_dir).unwrap();
    let lock = root_dir.join(".svc.pem.lock");
    let run = |extra: &[&str]| {
        let mut cmd = gencert_in(sh.t.dir(), &sh.t.profile, &sh.ca);
        cmd.args(["-bare", s(&root_dir.join("svc"))])
            .args(extra)
            .arg(s(&sh.t.csr));
        cmd
    };
    run(&["--owner", &format!("{NOBODY}:{NOBODY}")])
        .assert()
        .code(0);
    assert_eq!(std::fs::metadata(&lock).unwrap().uid(), NOBODY);
    run(&["--force"])
        .assert()
        .code(0)
        .stderr(contains(format!(
            "{}: belonged to uid 65534, who neither owns the directory nor is --owner: given to \
             uid 0",
            lock.display()
        )))
        .stderr(contains("belonged to uid 65534; the new file is root's"));
    assert_eq!(std::fs::metadata(&lock).unwrap().uid(), 0);
    run(&["--renew-before", "720h"])
        .assert()
        .code(0)
        .stderr(predicates::str::contains("lock").not());

    // Planted in nobody's directory by a third user.
    sh.as_nobody(&[]).assert().code(0);
    let planted = sh.out.join(".node.pem.lock");
    std::os::unix::fs::chown(&planted, Some(12345), Some(12345)).unwrap();
    // nobody cannot open it: a valid pair is still kept (no lock is needed to keep one, as
    // in a shared directory with root's lock); a due one is refused, saying whose file it is.
    sh.as_nobody(&["--renew-before", "720h"]).assert().code(0);
    sh.as_nobody(&["--force"]).assert().code(8).stderr(contains(
        ".node.pem.lock: cannot open the lock file (Permission denied (os error 13)): it \
             belongs to uid 12345; if that user's runs manage this pair, run as that user or \
             root, else remove it (nodecert makes its own); a due pair is not written without \
             its lock",
    ));
    // Nor does sign write the pair's certificate without it.
    let cert = sh.out.join("node.pem");
    let before = std::fs::read(&cert).unwrap();
    sh.sign_as_nobody(&["-bare", s(&sh.out.join("node"))], "node.csr")
        .assert()
        .code(8)
        .stderr(contains(
            "a certificate is not written without the pair's lock",
        ));
    assert_eq!(std::fs::read(&cert).unwrap(), before);
    sh.as_root(&["--renew-before", "720h"])
        .assert()
        .code(0)
        .stderr(contains("belonged to uid 12345"));
    assert_eq!(std::fs::metadata(&planted).unwrap().uid(), NOBODY);
    sh.as_nobody(&["--renew-before", "720h"]).assert().code(0);
}

/// What whoever may write a service's directory plants there earns nothing from root: a key of
/// theirs in place of root's (a pair root issued there without `--owner`), or a whole pair they
/// made themselves, gets root's new pair root's own files, with a warning, not theirs; and a
/// planted key's group is not followed by `--owner USER`.
#[test]
fn a_planted_key_earns_its_planter_nothing() {
    let sh = Shared::new();
    sh.as_root(&[]).assert().code(0);
    let key = sh.out.join("node-key.pem");
    let plant_key = || {
        std::fs::remove_file(&key).unwrap();
        std::fs::write(&key, "garbage").unwrap();
        std::os::unix::fs::chown(&key, Some(NOBODY), Some(NOBODY)).unwrap();
    };
    // root's renewal takes the planted files, says so, and keeps the new key to itself.
    let renewal_takes_them = || {
        sh.as_root(&["--renew-before", "720h"])
            .assert()
            .code(0)
            .stderr(contains(
                "node-key.pem: belonged to uid 65534; the new file is root's",
            ));
        let meta = std::fs::metadata(&key).unwrap();
        assert_eq!((meta.uid(), meta.gid(), meta.mode() & 0o777), (0, 0, 0o600));
    };
    plant_key();
    renewal_takes_them();

    // A whole pair of theirs, self-made for the same CN (not the pinned CA's): the same.
    crate::support::self_signed(&sh.out, "node", "P-256", "/CN=node1.example.com", &[]);
    for file in ["node.pem", "node-key.pem"] {
        std::os::unix::fs::chown(sh.out.join(file), Some(NOBODY), Some(NOBODY)).unwrap();
    }
    renewal_takes_them();

    // --owner 12345 (no group): the planted key's group (nobody's) is not followed.
    plant_key();
    sh.as_root(&["--owner", "12345", "--key-mode", "0640", "--force"])
        .assert()
        .code(0);
    let meta = std::fs::metadata(&key).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (12345, 0));
}

/// A due run whose outputs could not be written says so at once, not after a --jitter wait
/// (10 minutes in the shipped cron line): here `nobody` in root's directory, and root printing
/// JSON to a stdout that keeps nothing (/dev/null). Exit 8 each, nothing asked of the CA.
#[test]
fn an_unwritable_output_fails_before_the_jitter_wait() {
    let sh = Shared::new();
    let started = std::time::Instant::now();
    let mut cmd = nodecert_as(sh.t.dir(), NOBODY, NOBODY);
    cmd.gencert(&sh.t.profile, &sh.ca)
        .args(["-bare", s(&sh.t.dir().join("root-owned")), "--jitter", "1h"])
        .arg(s(&sh.t.csr))
        .assert()
        .code(8)
        .stderr(contains("not writable"));
    let status = std::process::Command::new(assert_cmd::cargo::cargo_bin!("nodecert"))
        .current_dir(sh.t.dir())
        .args([
            "gencert",
            "-config",
            s(&sh.t.profile),
            "-tls-remote-ca",
            s(&sh.ca),
        ])
        .args(["--jitter", "1h", s(&sh.t.csr)])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(8));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "waited for --jitter before failing"
    );
    assert_eq!(sh.t.server.signed_count(), 0);
}

/// `--reuse-key` does not reuse a key someone else put where the pair's key goes (a directory
/// others may write, as a sticky /tmp-like one): the planter would know the private key of a
/// certificate the CA issued for the node. Exit 3, nothing written, the CA not asked.
#[test]
fn reuse_key_does_not_take_a_planted_key() {
    let t = crate::support::Setup::new();
    let dir = t.dir().join("shared");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
    crate::support::self_signed(&dir, "planted", "P-256", "/CN=x", &[]);
    std::fs::rename(dir.join("planted-key.pem"), dir.join("node-key.pem")).unwrap();
    std::os::unix::fs::chown(dir.join("node-key.pem"), Some(NOBODY), Some(NOBODY)).unwrap();
    t.gencert_bare(s(&dir.join("node")), &t.csr, &["--reuse-key"])
        .assert()
        .code(3)
        .stderr(contains(
            "it belongs to uid 65534, who neither runs nodecert",
        ));
    assert!(!dir.join("node.pem").exists());
    assert_eq!(t.server.signed_count(), 0);
    // The directory's owner's key is theirs to reuse.
    std::os::unix::fs::chown(dir.join("node-key.pem"), Some(0), Some(0)).unwrap();
    t.gencert_bare(s(&dir.join("node")), &t.csr, &["--reuse-key"])
        .assert()
        .code(0);
}

/// sign run by a user who may write the pair's directory but not read its key (root's pair in
/// a service's directory) cannot tell whether the CSR is for the certificate's key: it replaces
/// nothing (exit 8), where it used to write the certificate and break root's working pair.
#[test]
fn sign_does_not_replace_a_certificate_whose_key_it_cannot_read() {
    let sh = Shared::new();
    sh.as_root(&[]).assert().code(0);
    let before = pair_bytes(&sh.out, "node");
    let csr = crate::support::write(
        sh.t.dir(),
        "other-csr.json",
        &crate::support::node_csr("ecdsa", 256),
    );
    nodecert_as(sh.t.dir(), NOBODY, NOBODY)
        .args(["genkey", "-bare", s(&sh.out.join("other")), s(&csr)])
        .assert()
        .code(0);
    sh.sign_as_nobody(&["--cert", s(&sh.out.join("node.pem"))], "other.csr")
        .assert()
        .code(8)
        .stderr(contains("node-key.pem"));
    assert_eq!(pair_bytes(&sh.out, "node"), before);
}
