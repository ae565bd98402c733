//! `kiln logs [-f] [--tail N] [-t] CONTAINER`: what a detached container
//! wrote, stdout to stdout and stderr to stderr; `-f` follows until it
//! stops.

use std::process::ExitCode;

use clap::Args;
use kiln_runner::{LogOptions, print_logs};

use super::{CmdResult, runtime};
use crate::cli::GlobalArgs;

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Keep printing new output until the container stops.
    #[arg(short, long)]
    pub follow: bool,
    /// Only the last N lines ("all": everything).
    #[arg(short = 'n', long, value_name = "N", default_value = "all")]
    pub tail: String,
    /// Prefix each line with its time.
    #[arg(short, long)]
    pub timestamps: bool,
    /// The container: name, id or id prefix.
    pub container: String,
}

pub fn run(global: &GlobalArgs, args: LogsArgs) -> CmdResult {
    let rt = runtime::open(global)?;
    let c = rt
        .containers()
        .lookup(&args.container)
        .map_err(runtime::diag)?;
    let tail =
        match args.tail.as_str() {
            "all" | "-1" => None,
            n => Some(n.parse::<usize>().map_err(|_| {
                miette::miette!("invalid --tail {n:?}: a number of lines, or \"all\"")
            })?),
        };
    let opts = LogOptions {
        tail,
        follow: args.follow,
        timestamps: args.timestamps,
    };
    let id = c.id().to_string();
    let mut running = || {
        rt.containers()
            .get(&id)
            .map(|c| c.state.status.is_active())
            .unwrap_or(false)
    };
    let path = c.dir.join("container.log");
    let result = print_logs(
        &path,
        &opts,
        &mut running,
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
    );
    match result {
        Ok(()) => Ok(ExitCode::SUCCESS),
        // The reader went away (`kiln logs | head`).
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(e) => Err(super::store::other(e)),
    }
}
