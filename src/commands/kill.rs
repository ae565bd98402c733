//! `kiln kill [-s SIGNAL] CONTAINER...`: sends a signal (default SIGKILL)
//! to running containers.

use std::process::ExitCode;

use clap::Args;

use super::{CmdResult, runtime};
use crate::cli::GlobalArgs;

#[derive(Debug, Args)]
pub struct KillArgs {
    /// The signal: a name (KILL, SIGTERM) or a number.
    #[arg(short, long, default_value = "KILL")]
    pub signal: String,
    /// Containers: names, ids or id prefixes.
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn run(global: &GlobalArgs, args: KillArgs) -> CmdResult {
    let signal = kiln_runner::parse_signal(&args.signal).map_err(|e| runtime::diag(e.into()))?;
    let rt = runtime::open(global)?;
    let mut failed = false;
    for reference in &args.containers {
        match rt.kill(reference, signal) {
            Ok(_) => println!("{reference}"),
            Err(e) => {
                crate::report::print_error(&runtime::diag(e));
                failed = true;
            }
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
