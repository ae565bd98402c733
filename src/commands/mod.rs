//! One module per command (or family of commands); `dispatch` runs the one
//! the user asked for. Each command returns its exit status or an error that
//! `main` renders once.

mod history;
mod images;
mod import;
mod inspect;
mod load;
mod prune;
mod rmi;
mod save;
mod store;
mod tag;

use std::process::ExitCode;

use clap::Subcommand;

use crate::cli::Cli;

pub mod debug;
mod login;

/// What a command returns: its exit status, or an error rendered by `main`
/// (exit status 1).
pub type CmdResult = miette::Result<ExitCode>;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List images.
    Images(images::ImagesArgs),
    /// Give an image another name.
    Tag(tag::TagArgs),
    /// Remove images.
    Rmi(rmi::RmiArgs),
    /// Show an image's details as JSON.
    Inspect(inspect::InspectArgs),
    /// Show an image's history.
    History(history::HistoryArgs),
    /// Create an image from a root filesystem tarball.
    Import(import::ImportArgs),
    /// Save images to a tar archive (OCI layout + docker archive).
    Save(save::SaveArgs),
    /// Load images from an OCI layout or docker archive tar.
    Load(load::LoadArgs),
    /// Remove unused images and data.
    Prune(prune::PruneArgs),
    /// Commands for kiln's developers (subject to change).
    #[command(subcommand)]
    Debug(debug::DebugCommand),
    /// Log in to a registry (credentials go to ~/.docker/config.json or its helper).
    Login(login::LoginArgs),
    /// Forget a registry's credentials.
    Logout(login::LogoutArgs),
}

pub fn dispatch(cli: Cli) -> CmdResult {
    let Cli { global, command } = cli;
    match command {
        Command::Images(args) => images::run(&global, args),
        Command::Tag(args) => tag::run(&global, args),
        Command::Rmi(args) => rmi::run(&global, args),
        Command::Inspect(args) => inspect::run(&global, args),
        Command::History(args) => history::run(&global, args),
        Command::Import(args) => import::run(&global, args),
        Command::Save(args) => save::run(&global, args),
        Command::Load(args) => load::run(&global, args),
        Command::Prune(args) => prune::run(&global, args),
        Command::Debug(cmd) => debug::run(&global, cmd),
        Command::Login(args) => login::login(&global, args),
        Command::Logout(args) => login::logout(&global, args),
    }
}

/// Runs an async command body on a multi-threaded tokio runtime (commands
/// that need no I/O concurrency stay synchronous).
#[allow(dead_code)]
pub fn block_on<F: std::future::Future>(fut: F) -> miette::Result<F::Output> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| miette::miette!("cannot start the async runtime: {e}"))?;
    Ok(rt.block_on(fut))
}
