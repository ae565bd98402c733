//! `kiln stop [-t SECONDS] CONTAINER...`: the container's stop signal
//! (the image's STOPSIGNAL, else SIGTERM), then SIGKILL after the grace
//! period.

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
    Ok(runtime::each(&args.containers, |c| rt.stop(c, args.time)))
}
