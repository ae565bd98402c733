//! `kiln exec [-i] [-t] [-d] [-e K=V] [-w DIR] [-u USER] CONTAINER CMD...`:
//! runs a command inside a running container (its namespaces and cgroup);
//! exits with the command's status (126/127 when it cannot run).

use std::process::ExitCode;

use clap::Args;
use kiln_runner::ExecOptions;

use super::{CmdResult, runtime};
use crate::cli::GlobalArgs;

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Keep stdin open.
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-terminal.
    #[arg(short, long)]
    pub tty: bool,
    /// Start the command and return at once.
    #[arg(short, long)]
    pub detach: bool,
    /// Set an environment variable.
    #[arg(short, long = "env", value_name = "KEY[=VALUE]")]
    pub env: Vec<String>,
    /// Working directory.
    #[arg(short, long, value_name = "DIR")]
    pub workdir: Option<String>,
    /// User: name|uid[:group|gid].
    #[arg(short, long, value_name = "USER[:GROUP]")]
    pub user: Option<String>,
    /// The container, then the command and its arguments.
    #[arg(required = true, num_args = 2.., trailing_var_arg = true, allow_hyphen_values = true, value_name = "CONTAINER COMMAND [ARG...]")]
    pub container_and_command: Vec<String>,
}

pub fn run(global: &GlobalArgs, args: ExecArgs) -> CmdResult {
    let rt = runtime::open(global)?;
    let mut words = args.container_and_command.into_iter();
    let container = words.next().unwrap_or_default();
    let opts = ExecOptions {
        args: words.collect(),
        env: args.env,
        workdir: args.workdir,
        user: args.user,
        tty: args.tty,
        interactive: args.interactive,
        detach: args.detach,
    };
    let result = super::block_on(rt.exec(&container, &opts))?;
    Ok(match result {
        Ok(code) => ExitCode::from((code & 0xff) as u8),
        Err(e) => {
            let code = e.run_exit_code();
            crate::report::print_error(&runtime::diag(e));
            ExitCode::from(u8::try_from(code).unwrap_or(125))
        }
    })
}
