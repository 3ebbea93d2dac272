use std::process::ExitCode;

use clap::error::ErrorKind;
use nodecert::cli::{argv, usage};

fn main() -> ExitCode {
    nodecert::error::report_panics();
    let (args, parsed) = argv::parse(std::env::args_os());
    let cli = match parsed {
        Ok(cli) => cli,
        Err(err)
            if err.use_stderr()
                && err.kind() != ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand =>
        {
            let message = usage::one_line(&err, &args);
            nodecert::logging::print_usage_error(&message, usage::log_format(&args));
            return ExitCode::from(nodecert::error::exit::USAGE);
        }
        Err(err) => {
            // --help and --version (stdout, exit 0), and the help for a bare `nodecert`. A
            // stdout that takes nothing (a full disk) fails as any other output does; a reader
            // that has gone away (`| head -1`) does not.
            if let Err(e) = err.print()
                && e.kind() != std::io::ErrorKind::BrokenPipe
            {
                let err = nodecert::error::Error::output(std::path::Path::new("<stdout>"), e);
                nodecert::logging::print_error(&err);
                return ExitCode::from(err.exit_code());
            }
            return ExitCode::from(err.exit_code() as u8);
        }
    };
    if cli.command.writes_files() {
        // Before any other thread starts: they inherit the blocked signals.
        nodecert::signals::install();
    }
    match nodecert::run(&cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            nodecert::logging::print_error(&err);
            ExitCode::from(err.exit_code())
        }
    }
}
