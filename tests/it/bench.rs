//! bench/compare.sh runs end to end against the debug builds, so the benchmark cannot rot between
//! the runs that produce BENCHMARKS.md. One round, and no timing is asserted: only that every
//! row and table is there, with numbers in it.

use std::path::Path;
use std::process::Command;

#[test]
fn the_benchmark_runs_every_row_and_prints_every_table() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let nodecert = assert_cmd::cargo::cargo_bin!("nodecert");
    // `cargo test` builds the examples next to the binaries.
    let floor = nodecert.with_file_name("examples").join("floor");
    assert!(floor.is_file(), "{} is not built", floor.display());
    let out = Command::new(root.join("bench/compare.sh"))
        .env("RUNS", "1")
        .env("COLD_RUNS", "1")
        .env("NODECERT", nodecert)
        .env("FLOOR", &floor)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "compare.sh failed:\n{stdout}\n{stderr}"
    );

    let numbers = |line: &str| -> Vec<f64> {
        line.split_whitespace()
            .filter_map(|w| w.trim_end_matches('x').parse().ok())
            .collect()
    };
    // Table lines: the row's name, then a number (not the legend, "sync-8   = nodecert sync …").
    let lines_of = |row: &str| -> Vec<&str> {
        stdout
            .lines()
            .filter(|l| {
                let mut words = l.split_whitespace();
                words.next() == Some(row) && words.next().is_some_and(|w| w.parse::<f64>().is_ok())
            })
            .collect()
    };
    for row in ["ecdsa-256", "ecdsa-384", "rsa-2048", "rsa-4096"] {
        // End to end, local floor (genkey), and the floor table.
        let lines = lines_of(row);
        assert_eq!(lines.len(), 3, "{row}: {lines:?}\n{stdout}");
        let end_to_end = numbers(lines[0]);
        assert_eq!(end_to_end.len(), 8, "{row}: {}", lines[0]);
        assert!(end_to_end.iter().all(|n| *n > 0.0), "{row}: {}", lines[0]);
        assert_eq!(numbers(lines[1]).len(), 4, "{row}: {}", lines[1]);
        assert_eq!(numbers(lines[2]).len(), 7, "{row}: {}", lines[2]);
    }
    let sync = lines_of("sync-8");
    assert_eq!(sync.len(), 1, "{stdout}");
    assert_eq!(numbers(sync[0]).len(), 8, "{}", sync[0]);
    for heading in [
        "Floor per row",
        "Cold start",
        "nodecert --version",
        "Binary size",
    ] {
        assert!(stdout.contains(heading), "no {heading:?} in\n{stdout}");
    }
}
