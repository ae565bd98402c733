//! The `kiln` binary: parse the command line, run one command, render its
//! error once, and turn the outcome into an exit status.
//!
//! Exit status: 0 on success, 1 for user errors (bad flags, bad Dockerfiles,
//! missing images, failed builds), and whatever a command chooses otherwise
//! (`kiln run` passes the container's status through, 125 for its own errors).

mod cli;
mod commands;
mod diagnostic;
mod human;
mod progress;
mod report;
mod worker;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // The sandbox helper is kiln re-executed by kiln-executor; it must run
    // before any runtime or thread exists (it forks), so it is dispatched
    // here, ahead of argument parsing.
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == kiln_executor::HELPER_ARG)
    {
        kiln_executor::helper_main();
    }
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // --help and --version print to stdout and succeed; usage errors are
            // user errors: exit 1, as every other user error does.
            let code = if err.use_stderr() { 1 } else { 0 };
            let _ = err.print();
            return ExitCode::from(code);
        }
    };
    report::init_tracing(cli.global.debug);
    diagnostic::install_hook();
    // One TLS crypto provider for every HTTPS client in the process.
    let _ = rustls::crypto::ring::default_provider().install_default();
    match commands::dispatch(cli) {
        Ok(code) => code,
        Err(err) => {
            report::print_error(&err);
            ExitCode::from(1)
        }
    }
}
