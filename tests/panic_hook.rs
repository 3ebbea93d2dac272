//! A panic (a bug) ends a run as the README's exit table says: exit 1, one line on stderr, and
//! none of the run's temporary files left behind (one of them may hold the new private key).
//!
//! No test harness (`harness = false` in Cargo.toml): the program runs itself again as the run
//! that panics, since a panic hook ends the whole process.

use std::path::Path;
use std::process::Command;

use nodecert::output::{Destination, FileOptions, Reserved};

/// Set in the child: the directory its run writes in.
const CHILD_DIR: &str = "NODECERT_PANIC_TEST_DIR";

fn main() {
    if let Some(dir) = std::env::var_os(CHILD_DIR) {
        panicking_run(Path::new(&dir));
    }
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .env(CHILD_DIR, dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(
            "nodecert: error: internal error: a bug while staging at tests/panic_hook.rs:"
        ) && stderr.trim_end().ends_with("(a bug: please report it)"),
        "{stderr}"
    );
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "temporary files left: {left:?}");
    println!("test a_panic_is_exit_1_in_one_line_and_leaves_no_temporary_file ... ok");
}

/// Reserves the three temporary files of a pair, as a run does before the CA answers, and
/// panics with them in place.
fn panicking_run(dir: &Path) -> ! {
    nodecert::error::report_panics();
    let options = FileOptions::from_flags(None, None, None).unwrap();
    let _reserved = Reserved::new(Destination::bare(&dir.join("node")), &options).unwrap();
    let temporary = std::fs::read_dir(dir).unwrap().count();
    assert_eq!(temporary, 3, "the key, certificate and CSR are reserved");
    panic!("a bug while staging");
}
