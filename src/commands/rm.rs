//! `kiln rm [-f] [-v] CONTAINER...`: removes stopped containers (running
//! ones too with `-f`, killed first), with their writable layer, logs and
//! image hold; `-v` also their anonymous volumes.

use clap::Args;

use super::{CmdResult, runtime};
use crate::cli::GlobalArgs;

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Kill and remove running containers.
    #[arg(short, long)]
    pub force: bool,
    /// Remove the containers' anonymous volumes too.
    #[arg(short, long)]
    pub volumes: bool,
    /// Containers: names, ids or id prefixes.
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn run(global: &GlobalArgs, args: RmArgs) -> CmdResult {
    let rt = runtime::open(global)?;
    Ok(runtime::each(&args.containers, |c| {
        rt.remove(c, args.force, args.volumes)
    }))
}
