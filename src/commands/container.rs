//! `kiln container ...`: `ls` (= ps), `inspect`, `prune`, and the hidden
//! `supervise` that a detached container's supervisor process runs.

use std::io::{BufRead, Write};
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::{CmdResult, runtime};
use crate::cli::GlobalArgs;

#[derive(Debug, Subcommand)]
pub enum ContainerCommand {
    /// List containers (as `kiln ps`).
    #[command(alias = "list")]
    Ls(super::ps::PsArgs),
    /// Show containers' details as JSON.
    Inspect(InspectArgs),
    /// Remove every stopped container.
    Prune(PruneArgs),
    /// Run as a detached container's supervisor (started by kiln itself).
    #[command(hide = true)]
    Supervise(SuperviseArgs),
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Containers: names, ids or id prefixes.
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Do not ask for confirmation.
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct SuperviseArgs {
    pub id: String,
}

pub fn run(global: &GlobalArgs, cmd: ContainerCommand) -> CmdResult {
    match cmd {
        ContainerCommand::Ls(args) => super::ps::run(global, args),
        ContainerCommand::Inspect(args) => inspect(global, args),
        ContainerCommand::Prune(args) => prune(global, args),
        ContainerCommand::Supervise(args) => supervise(global, args),
    }
}

fn inspect(global: &GlobalArgs, args: InspectArgs) -> CmdResult {
    let rt = runtime::open(global)?;
    let mut out = Vec::new();
    let mut failed = false;
    for reference in &args.containers {
        match rt.containers().lookup(reference) {
            Ok(c) => out.push(kiln_runner::view::inspect_json(&c)),
            Err(e) => {
                crate::report::print_error(&runtime::diag(e));
                failed = true;
            }
        }
    }
    let text = serde_json::to_string_pretty(&out).map_err(super::store::other)?;
    println!("{text}");
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn prune(global: &GlobalArgs, args: PruneArgs) -> CmdResult {
    if !args.force {
        eprint!(
            "WARNING! This will remove all stopped containers.\nAre you sure you want to continue? [y/N] "
        );
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        // No terminal and no input: the answer is no, as docker's.
        let _ = std::io::stdin().lock().read_line(&mut answer);
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            eprintln!();
            return Ok(ExitCode::SUCCESS);
        }
    }
    let rt = runtime::open(global)?;
    let report = rt.prune().map_err(runtime::diag)?;
    if !report.removed.is_empty() {
        println!("Deleted Containers:");
        for id in &report.removed {
            println!("{id}");
        }
        println!();
    }
    println!(
        "Total reclaimed space: {}",
        crate::human::size(report.reclaimed_bytes)
    );
    Ok(ExitCode::SUCCESS)
}

fn supervise(global: &GlobalArgs, args: SuperviseArgs) -> CmdResult {
    let rt = runtime::open(global)?;
    let code = super::block_on(rt.supervise_detached(&args.id))?;
    Ok(ExitCode::from((code & 0xff) as u8))
}
