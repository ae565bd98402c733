//! `kiln run [OPTIONS] IMAGE [COMMAND [ARG...]]` and `kiln create`: a
//! container from an image, as docker runs one. In the foreground kiln's
//! exit status is the container's (125 for kiln's own errors, 126 when the
//! command cannot be executed, 127 when it is not found); `-d` prints the
//! id and leaves the container to its supervisor.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use kiln_runner::{Container, CreateOptions, NetworkMode, Runtime};

use super::{CmdResult, runtime};
use crate::cli::GlobalArgs;

/// `--pull`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PullPolicy {
    Missing,
    Never,
}

/// The options `run` and `create` share.
#[derive(Debug, Args)]
pub struct ContainerArgs {
    /// Assign a name to the container.
    #[arg(long)]
    pub name: Option<String>,
    /// Remove the container when it exits.
    #[arg(long)]
    pub rm: bool,
    /// Keep stdin open.
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-terminal.
    #[arg(short, long)]
    pub tty: bool,
    /// Set an environment variable (KEY=VALUE, or KEY to pass kiln's own).
    #[arg(short, long = "env", value_name = "KEY[=VALUE]")]
    pub env: Vec<String>,
    /// Read environment variables from a file.
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_file: Vec<PathBuf>,
    /// Bind mount or volume: /host/path:/path[:ro], name:/path, or /path.
    #[arg(short, long = "volume", value_name = "SRC:DST[:ro]")]
    pub volume: Vec<String>,
    /// Mount a tmpfs: /path[:size=64m,mode=1777].
    #[arg(long, value_name = "PATH[:OPTIONS]")]
    pub tmpfs: Vec<String>,
    /// Publish a port: [IP:][HOST:]CONTAINER[/tcp|udp] (no HOST: a free port).
    #[arg(short, long = "publish", value_name = "HOST:CONTAINER")]
    pub publish: Vec<String>,
    /// Working directory inside the container.
    #[arg(short, long, value_name = "DIR")]
    pub workdir: Option<String>,
    /// User: name|uid[:group|gid].
    #[arg(short, long, value_name = "USER[:GROUP]")]
    pub user: Option<String>,
    /// Override the image's ENTRYPOINT (its CMD is cleared too).
    #[arg(long, value_name = "COMMAND")]
    pub entrypoint: Option<String>,
    /// Container hostname (default: the short id).
    #[arg(long)]
    pub hostname: Option<String>,
    /// Network: default (own namespace, published ports, outbound through
    /// pasta or slirp4netns), none (loopback only), host.
    #[arg(long, default_value = "default", value_name = "MODE")]
    pub network: NetworkMode,
    /// Memory limit (e.g. 64m, 1g).
    #[arg(short, long, value_name = "BYTES")]
    pub memory: Option<String>,
    /// CPU limit (e.g. 0.5, 1.5).
    #[arg(long, value_name = "N")]
    pub cpus: Option<String>,
    /// Maximum number of processes (-1: unlimited).
    #[arg(long = "pids-limit", value_name = "N", allow_negative_numbers = true)]
    pub pids_limit: Option<i64>,
    /// Signal `stop` sends first (default: the image's STOPSIGNAL, else SIGTERM).
    #[arg(long = "stop-signal", value_name = "SIGNAL")]
    pub stop_signal: Option<String>,
    /// Seconds `stop` waits before killing (default 10).
    #[arg(long = "stop-timeout", value_name = "SECONDS")]
    pub stop_timeout: Option<u32>,
    /// Set a label (KEY=VALUE).
    #[arg(short, long, value_name = "KEY=VALUE")]
    pub label: Vec<String>,
    /// Pull the image: missing (when not in the store) or never.
    #[arg(long, value_enum, default_value = "missing")]
    pub pull: PullPolicy,
    /// The image, then the command and its arguments (they replace CMD).
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "IMAGE [COMMAND [ARG...]]"
    )]
    pub image_and_command: Vec<String>,
}

impl ContainerArgs {
    fn options(&self) -> CreateOptions {
        let mut words = self.image_and_command.iter();
        let image = words.next().cloned().unwrap_or_default();
        CreateOptions {
            image,
            args: words.cloned().collect(),
            name: self.name.clone(),
            entrypoint: self.entrypoint.clone(),
            env: self.env.clone(),
            env_files: self.env_file.clone(),
            workdir: self.workdir.clone(),
            user: self.user.clone(),
            hostname: self.hostname.clone(),
            tty: self.tty,
            interactive: self.interactive,
            auto_remove: self.rm,
            volumes: self.volume.clone(),
            tmpfs: self.tmpfs.clone(),
            publish: self.publish.clone(),
            network: self.network,
            memory: self.memory.clone(),
            cpus: self.cpus.clone(),
            pids_limit: self.pids_limit,
            stop_signal: self.stop_signal.clone(),
            stop_timeout: self.stop_timeout,
            labels: self.label.clone(),
            pull_missing: self.pull == PullPolicy::Missing,
        }
    }
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Run in the background and print the container id.
    #[arg(short, long)]
    pub detach: bool,
    #[command(flatten)]
    pub container: ContainerArgs,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    #[command(flatten)]
    pub container: ContainerArgs,
}

/// Prints an error and gives the status `run` exits with for it.
fn fail(e: kiln_runner::RunnerError) -> ExitCode {
    let code = e.run_exit_code();
    crate::report::print_error(&runtime::diag(e));
    ExitCode::from(u8::try_from(code).unwrap_or(125))
}

fn create(rt: &Runtime, args: &ContainerArgs) -> Result<Container, kiln_runner::RunnerError> {
    if args.network == NetworkMode::Host && !args.publish.is_empty() {
        eprintln!("WARNING: published ports are discarded when using host network mode");
    }
    if args.network == NetworkMode::Default && kiln_runner::outbound_helper().is_none() {
        say_once_no_outbound(rt);
    }
    rt.create(&args.options())
}

/// Without pasta or slirp4netns containers get no outbound network: said
/// once per kiln root.
fn say_once_no_outbound(rt: &Runtime) {
    let marker = rt.root().join("containers/.no-outbound-network-said");
    if !marker.exists() {
        eprintln!(
            "kiln: neither pasta (package passt) nor slirp4netns is installed: containers get no \
             outbound network (published ports work). This is said once."
        );
        let _ = std::fs::write(&marker, b"");
    }
}

pub fn run(global: &GlobalArgs, args: RunArgs) -> CmdResult {
    let rt = match runtime::open(global) {
        Ok(rt) => rt,
        Err(e) => {
            crate::report::print_error(&e);
            return Ok(ExitCode::from(125));
        }
    };
    let c = match create(&rt, &args.container) {
        Ok(c) => c,
        Err(e) => return Ok(fail(e)),
    };
    if args.detach {
        return Ok(match rt.start_detached(c.id()) {
            Ok(()) => {
                println!("{}", c.id());
                ExitCode::SUCCESS
            }
            Err(e) => fail(e),
        });
    }
    let result = super::block_on(rt.run_attached(c.id()))?;
    Ok(match result {
        Ok(code) => ExitCode::from((code & 0xff) as u8),
        Err(e) => fail(e),
    })
}

pub fn create_cmd(global: &GlobalArgs, args: CreateArgs) -> CmdResult {
    let rt = match runtime::open(global) {
        Ok(rt) => rt,
        Err(e) => {
            crate::report::print_error(&e);
            return Ok(ExitCode::from(125));
        }
    };
    Ok(match create(&rt, &args.container) {
        Ok(c) => {
            println!("{}", c.id());
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    })
}
