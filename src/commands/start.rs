//! `kiln start [-a] CONTAINER...`: starts stopped containers again (same
//! configuration, same writable layer), detached unless `-a`.

use std::process::ExitCode;

use clap::Args;

use super::{CmdResult, runtime};
use crate::cli::GlobalArgs;

#[derive(Debug, Args)]
pub struct StartArgs {
    /// Attach to the container's output and exit with its status (one
    /// container only).
    #[arg(short, long)]
    pub attach: bool,
    /// Containers: names, ids or id prefixes.
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn run(global: &GlobalArgs, args: StartArgs) -> CmdResult {
    let rt = runtime::open(global)?;
    if args.attach {
        if args.containers.len() != 1 {
            return Err(miette::miette!("start -a takes one container"));
        }
        let c = rt
            .containers()
            .lookup(&args.containers[0])
            .map_err(runtime::diag)?;
        let code = super::block_on(rt.run_attached(c.id()))?.map_err(runtime::diag)?;
        return Ok(ExitCode::from((code & 0xff) as u8));
    }
    Ok(runtime::each(&args.containers, |reference| {
        let c = rt.containers().lookup(reference)?;
        if c.state.status.is_active() {
            // Docker: starting a running container is a no-op.
            return Ok(());
        }
        rt.start_detached(c.id())
    }))
}
