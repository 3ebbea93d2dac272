use std::process::ExitCode;

use clap::Parser;
use nodecert::cli::{Cli, argv};

fn main() -> ExitCode {
    let cli = match Cli::try_parse_from(argv::normalize(std::env::args_os())) {
        Ok(cli) => cli,
        Err(err) => {
            // clap prints help/version (exit 0) and usage errors (exit 2) itself.
            let _ = err.print();
            return ExitCode::from(err.exit_code() as u8);
        }
    };
    match nodecert::run(&cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            nodecert::logging::print_error(&err);
            ExitCode::from(err.exit_code())
        }
    }
}
