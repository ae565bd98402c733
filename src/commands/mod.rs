//! One module per command (or family of commands); `dispatch` runs the one
//! the user asked for. Each command returns its exit status or an error that
//! `main` renders once.

mod build;
mod history;
mod images;
mod import;
mod inspect;
mod load;
mod prune;
mod rmi;
mod save;
mod store;
mod system;
mod tag;

mod container;
mod exec;
mod kill;
mod logs;
mod ps;
mod rm;
mod run;
mod runtime;
mod start;
mod stop;
mod volume;

use std::process::ExitCode;

use clap::Subcommand;

use crate::cli::Cli;

pub mod debug;
mod login;
mod pull;
mod push;
mod transfer_progress;

/// What a command returns: its exit status, or an error rendered by `main`
/// (exit status 1).
pub type CmdResult = miette::Result<ExitCode>;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build an image from a Dockerfile.
    Build(build::BuildArgs),
    /// List images.
    Images(images::ImagesArgs),
    /// Give an image another name.
    Tag(tag::TagArgs),
    /// Remove images.
    Rmi(rmi::RmiArgs),
    /// Show an image's or a container's details as JSON.
    Inspect(inspect::InspectArgs),
    /// Show an image's history.
    History(history::HistoryArgs),
    /// Log in to a registry (credentials go to ~/.docker/config.json or its helper).
    Login(login::LoginArgs),
    /// Forget a registry's credentials.
    Logout(login::LogoutArgs),
    /// Download an image from a registry.
    Pull(pull::PullArgs),
    /// Upload an image to a registry.
    Push(push::PushArgs),
    /// Create an image from a root filesystem tarball.
    Import(import::ImportArgs),
    /// Save images to a tar archive (OCI layout + docker archive).
    Save(save::SaveArgs),
    /// Load images from an OCI layout or docker archive tar.
    Load(load::LoadArgs),
    /// Remove unused images and data.
    Prune(prune::PruneArgs),
    /// Run a command in a new container.
    Run(run::RunArgs),
    /// Create a container without starting it.
    Create(run::CreateArgs),
    /// Start stopped containers.
    Start(start::StartArgs),
    /// List containers.
    Ps(ps::PsArgs),
    /// Show a container's output.
    Logs(logs::LogsArgs),
    /// Stop running containers.
    Stop(stop::StopArgs),
    /// Send a signal to running containers.
    Kill(kill::KillArgs),
    /// Remove containers.
    Rm(rm::RmArgs),
    /// Run a command in a running container.
    Exec(exec::ExecArgs),
    /// Manage containers.
    #[command(subcommand)]
    Container(container::ContainerCommand),
    /// Manage volumes.
    #[command(subcommand)]
    Volume(volume::VolumeCommand),
    /// Disk usage of the kiln root (`system df`).
    #[command(subcommand)]
    System(system::SystemCommand),
    /// Commands for kiln's developers (subject to change).
    #[command(subcommand)]
    Debug(debug::DebugCommand),
}

impl Command {
    /// Whether the command only reads local state and prints it: when its
    /// standard output closes early (`kiln images | head -1`) it should end
    /// quietly, as other command-line tools do, instead of failing on the
    /// write. Every other command keeps SIGPIPE ignored (Rust's default):
    /// they write to sockets (registries through hyper's `writev`, which
    /// has no MSG_NOSIGNAL; supervisors) and to pipes of processes that may
    /// be gone (credential helpers, containers), and handle those errors
    /// themselves.
    fn only_prints(&self) -> bool {
        match self {
            Command::Images(_)
            | Command::Inspect(_)
            | Command::History(_)
            | Command::Save(_)
            | Command::Ps(_)
            | Command::Logs(_)
            | Command::System(_)
            | Command::Volume(volume::VolumeCommand::Ls(_)) => true,
            Command::Debug(cmd) => cmd.only_prints(),
            _ => false,
        }
    }
}

pub fn dispatch(cli: Cli) -> CmdResult {
    let Cli { global, command } = cli;
    if command.only_prints() {
        // SAFETY: restoring a default signal disposition before any thread
        // or runtime of this command exists.
        let _ = unsafe {
            nix::sys::signal::signal(
                nix::sys::signal::Signal::SIGPIPE,
                nix::sys::signal::SigHandler::SigDfl,
            )
        };
    }
    match command {
        Command::Build(args) => build::run(&global, args),
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
        Command::Run(args) => run::run(&global, args),
        Command::Create(args) => run::create_cmd(&global, args),
        Command::Start(args) => start::run(&global, args),
        Command::Ps(args) => ps::run(&global, args),
        Command::Logs(args) => logs::run(&global, args),
        Command::Stop(args) => stop::run(&global, args),
        Command::Kill(args) => kill::run(&global, args),
        Command::Rm(args) => rm::run(&global, args),
        Command::Exec(args) => exec::run(&global, args),
        Command::Container(cmd) => container::run(&global, cmd),
        Command::Volume(cmd) => volume::run(&global, cmd),
        Command::System(cmd) => system::run(&global, cmd),
        Command::Login(args) => login::login(&global, args),
        Command::Logout(args) => login::logout(&global, args),
        Command::Pull(args) => pull::pull(&global, args),
        Command::Push(args) => push::push(&global, args),
    }
}

/// Runs an async command body on a multi-threaded tokio runtime (commands
/// that need no I/O concurrency stay synchronous).
pub fn block_on<F: std::future::Future>(fut: F) -> miette::Result<F::Output> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| miette::miette!("cannot start the async runtime: {e}"))?;
    Ok(rt.block_on(fut))
}
