//! `kiln kill [-s SIGNAL] CONTAINER...`: sends a signal (default SIGKILL)
//! to running containers.

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
    Ok(runtime::each(&args.containers, |c| rt.kill(c, signal)))
}
