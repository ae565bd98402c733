//! `kiln stop [-t SECONDS] CONTAINER...`: the container's stop signal
//! (the image's STOPSIGNAL, else SIGTERM), then SIGKILL after the grace
//! period.

use std::process::ExitCode;

use clap::Args;

use super::{CmdResult, runtime};
use crate::cli::GlobalArgs;

#[derive(Debug, Args)]
pub struct StopArgs {
    /// Seconds to wait before killing (default: the container's, else 10).
    #[arg(
        short = 't',
        long = "time",
        visible_alias = "timeout",
        value_name = "SECONDS"
    )]
    pub time: Option<u32>,
    /// Containers: names, ids or id prefixes.
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn run(global: &GlobalArgs, args: StopArgs) -> CmdResult {
    let rt = runtime::open(global)?;
    let mut failed = false;
    for reference in &args.containers {
        match rt.stop(reference, args.time) {
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
