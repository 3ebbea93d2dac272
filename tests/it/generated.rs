//! completions/ and man/ are generated from the CLI definition and checked in; this test fails
//! when they drift. `NODECERT_BLESS=1 cargo test --test it generated` rewrites them. Also: CI
//! runs the README's test command.

use std::collections::BTreeMap;
use std::path::Path;

use clap::CommandFactory;
use clap_complete::Shell;
use nodecert::cli::Cli;

#[test]
fn completions_and_man_pages_are_current() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut expected: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for (shell, file) in [
        (Shell::Bash, "nodecert.bash"),
        (Shell::Zsh, "_nodecert"),
        (Shell::Fish, "nodecert.fish"),
    ] {
        let mut buf = Vec::new();
        clap_complete::generate(shell, &mut Cli::command(), "nodecert", &mut buf);
        expected.insert(format!("completions/{file}"), buf);
    }
    let command = Cli::command();
    let mut page = Vec::new();
    clap_mangen::Man::new(command.clone())
        .render(&mut page)
        .unwrap();
    expected.insert("man/nodecert.1".into(), page);
    for sub in command.get_subcommands().filter(|c| !c.is_hide_set()) {
        let name = format!("nodecert-{}", sub.get_name());
        // Named nodecert-sync (the page), used as `nodecert sync` (the synopsis).
        let sub = (sub.clone().name(name.clone())).bin_name(format!("nodecert {}", sub.get_name()));
        let mut page = Vec::new();
        clap_mangen::Man::new(sub).render(&mut page).unwrap();
        expected.insert(format!("man/{name}.1"), page);
    }

    let bless = std::env::var_os("NODECERT_BLESS").is_some();
    let mut stale = Vec::new();
    for dir in ["completions", "man"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let rel = format!("{dir}/{}", entry.unwrap().file_name().to_string_lossy());
            if !expected.contains_key(&rel) {
                if bless {
                    std::fs::remove_file(root.join(&rel)).unwrap();
                } else {
                    stale.push(format!("{rel} (no longer generated)"));
                }
            }
        }
    }
    for (rel, content) in &expected {
        let path = root.join(rel);
        if std::fs::read(&path).ok().as_ref() != Some(content) {
            if bless {
                std::fs::write(&path, content).unwrap();
            } else {
                stale.push(rel.clone());
            }
        }
    }
    assert!(
        stale.is_empty(),
        "completions/ or man/ is stale: {stale:?}; run `NODECERT_BLESS=1 cargo test --test it generated`"
    );
}

/// CI installs the dependencies and runs exactly the README's test command, and the README
/// lists what that command runs.
#[test]
fn ci_runs_the_readme_test_command() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let read = |rel: &str| std::fs::read_to_string(root.join(rel)).unwrap();
    let readme = read("README.md");
    let setup = &readme[readme
        .find("## Set-up: two commands")
        .expect("README has its set-up section")..];
    let block = setup
        .split("```sh\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the set-up section has a sh block");
    let test_command = block
        .lines()
        .map(|l| l.split('#').next().unwrap_or_default().trim())
        .find(|l| l.starts_with("scripts/test"))
        .expect("the set-up block names the test command");
    let ci = read(".ci/run");
    let ci_commands: Vec<&str> = ci
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter(|l| !l.starts_with("set ") && !l.starts_with("cd "))
        .collect();
    assert_eq!(
        ci_commands,
        ["scripts/setup-deps.sh", test_command],
        ".ci/run must install the dependencies, then run the README's test command"
    );
    let script = read(test_command);
    for step in [
        "scripts/setup-deps.sh",
        "cargo fmt --check",
        "cargo clippy --all-targets --locked -- -D warnings",
        "cargo test --locked",
        "scripts/fuzz-smoke.sh",
    ] {
        assert!(script.contains(step), "{test_command} does not run {step}");
        assert!(
            setup.contains(&format!("`{step}`")),
            "the README does not list {step}"
        );
    }
}

/// The README's exit table is written for people (it says what a script should do), so it is
/// not generated; it must still list every code `exit::TABLE` (and so `--help`) lists, in
/// order, and no other.
#[test]
fn the_readme_lists_every_exit_code() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let section = &readme[readme
        .find("### Exit status")
        .expect("README has its exit status section")..];
    let documented: Vec<u8> = section
        .lines()
        .skip_while(|l| !l.starts_with("| code |"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let cell = l.split('|').nth(1).unwrap().trim();
            cell.parse()
                .unwrap_or_else(|_| panic!("not an exit code: {l}"))
        })
        .collect();
    let codes: Vec<u8> = nodecert::error::exit::TABLE
        .iter()
        .map(|(code, _)| *code)
        .collect();
    assert_eq!(documented, codes, "README's exit table against exit::TABLE");
}
