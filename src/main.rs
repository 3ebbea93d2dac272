//! The binary: everything it does is [`nodecert::main`], so tests and tools reach the same code.

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(nodecert::main(std::env::args_os()))
}
