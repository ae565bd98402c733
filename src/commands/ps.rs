//! `kiln ps [-a] [-q] [--no-trunc] [--format table|json]`: running
//! containers (all with `-a`), newest first, in docker's columns.

use std::process::ExitCode;

use clap::{Args, ValueEnum};
use kiln_runner::Status;
use kiln_runner::view::{PsRow, ps_json, ps_table};

use super::{CmdResult, runtime};
use crate::cli::GlobalArgs;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PsFormat {
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct PsArgs {
    /// Show every container (default: running ones).
    #[arg(short, long)]
    pub all: bool,
    /// Only print ids.
    #[arg(short, long)]
    pub quiet: bool,
    /// Do not truncate ids and commands.
    #[arg(long)]
    pub no_trunc: bool,
    /// Output: a table, or one JSON object per line.
    #[arg(long, value_enum, default_value = "table")]
    pub format: PsFormat,
}

pub fn run(global: &GlobalArgs, args: PsArgs) -> CmdResult {
    let rt = runtime::open(global)?;
    let now = chrono::Utc::now();
    let containers: Vec<_> = rt
        .containers()
        .list()
        .map_err(runtime::diag)?
        .into_iter()
        .filter(|c| args.all || c.state.status == Status::Running)
        .collect();
    if args.quiet {
        for c in &containers {
            println!("{}", if args.no_trunc { c.id() } else { c.short_id() });
        }
        return Ok(ExitCode::SUCCESS);
    }
    match args.format {
        PsFormat::Table => {
            let rows: Vec<PsRow> = containers
                .iter()
                .map(|c| PsRow::of(c, now, !args.no_trunc))
                .collect();
            print!("{}", ps_table(&rows));
        }
        PsFormat::Json => {
            for c in &containers {
                println!("{}", ps_json(c, now));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
