//! `kiln volume ls|create|rm`: the named volumes of the kiln root
//! (`-v name:/path`).

use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::{CmdResult, runtime};
use crate::cli::GlobalArgs;

#[derive(Debug, Subcommand)]
pub enum VolumeCommand {
    /// List volumes.
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Create a volume.
    Create(NamesArgs),
    /// Remove volumes no container uses.
    #[command(alias = "remove")]
    Rm(NamesArgs),
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// Only print names.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct NamesArgs {
    #[arg(required = true)]
    pub names: Vec<String>,
}

pub fn run(global: &GlobalArgs, cmd: VolumeCommand) -> CmdResult {
    let rt = runtime::open(global)?;
    match cmd {
        VolumeCommand::Ls(args) => {
            let names = rt.volumes().list().map_err(runtime::diag)?;
            if !args.quiet {
                println!("DRIVER    VOLUME NAME");
            }
            for n in names {
                if args.quiet {
                    println!("{n}");
                } else {
                    println!("local     {n}");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        VolumeCommand::Create(args) => {
            for n in &args.names {
                rt.volumes().ensure(n).map_err(runtime::diag)?;
                println!("{n}");
            }
            Ok(ExitCode::SUCCESS)
        }
        VolumeCommand::Rm(args) => Ok(runtime::each(&args.names, |n| rt.remove_volume(n))),
    }
}
