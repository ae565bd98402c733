//! `kiln debug sandbox --rootfs DIR [options] -- CMD...`: runs one command
//! in kiln's sandbox on a root filesystem directory (written to in place),
//! with the container's exit status as kiln's. Ctrl-C or `--timeout` kills
//! the whole tree.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, ValueEnum};
use kiln_executor::{Cancel, CancelReason, LinuxSandbox, Rootfs, Sandbox, SandboxRequest, Stdio};
use miette::{IntoDiagnostic, WrapErr};

use crate::cli::GlobalArgs;
use crate::commands::CmdResult;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum NetworkMode {
    /// Own network namespace with only `lo`.
    None,
    /// The host's network namespace.
    Host,
}

#[derive(Debug, Args)]
pub struct SandboxArgs {
    /// The root filesystem directory (used in place: changes are kept).
    #[arg(long, value_name = "DIR")]
    pub rootfs: PathBuf,
    #[arg(long, value_enum, default_value = "none")]
    pub network: NetworkMode,
    /// Memory limit (bytes, or with a k/m/g suffix).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub memory: Option<i64>,
    /// Most processes the sandbox may have.
    #[arg(long, value_name = "N")]
    pub pids_limit: Option<i64>,
    /// CPU quota in cores (e.g. 0.5).
    #[arg(long, value_name = "N")]
    pub cpus: Option<f64>,
    /// User (name, uid, user:group), resolved in the rootfs.
    #[arg(short, long)]
    pub user: Option<String>,
    /// Working directory inside the sandbox.
    #[arg(short, long, value_name = "DIR")]
    pub workdir: Option<PathBuf>,
    /// Environment variable (K=V), repeatable.
    #[arg(short, long = "env", value_name = "K=V")]
    pub env: Vec<String>,
    #[arg(long)]
    pub hostname: Option<String>,
    /// Kill the sandbox after this many seconds.
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<f64>,
    /// Mount the rootfs read-only.
    #[arg(long)]
    pub read_only: bool,
    /// The sandbox's name (its cgroup is kiln/<helper pid>-<name>).
    #[arg(long)]
    pub name: Option<String>,
    /// Start from this OCI runtime config.json instead of docker's
    /// defaults (`root.path` is ignored: --rootfs is the root); the other
    /// options are applied on top of it.
    #[arg(long, value_name = "FILE")]
    pub spec: Option<PathBuf>,
    /// The command and its arguments (default with --spec: the spec's).
    #[arg(last = true)]
    pub command: Vec<String>,
}

fn parse_size(s: &str) -> Result<i64, String> {
    let s = s.trim().to_ascii_lowercase();
    let (num, mult) = match s.trim_end_matches('b').chars().last() {
        Some('k') => (&s[..s.trim_end_matches('b').len() - 1], 1i64 << 10),
        Some('m') => (&s[..s.trim_end_matches('b').len() - 1], 1 << 20),
        Some('g') => (&s[..s.trim_end_matches('b').len() - 1], 1 << 30),
        _ => (s.trim_end_matches('b'), 1),
    };
    num.parse::<i64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("invalid size {s:?} (e.g. 64m, 1g, 1048576)"))
}

/// Turns SIGINT and SIGTERM into a cancellation (a thread waits for them;
/// the helper resets the signal mask for the container).
pub fn cancel_on_signals() -> Cancel {
    use nix::sys::signal::{SigSet, Signal};
    let cancel = Cancel::new();
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    if set.thread_block().is_ok() {
        let c = cancel.clone();
        std::thread::spawn(move || {
            if set.wait().is_ok() {
                c.cancel(CancelReason::Interrupted);
            }
        });
    }
    cancel
}

pub fn run(_global: &GlobalArgs, args: SandboxArgs) -> CmdResult {
    use oci_spec::runtime::{LinuxCpu, LinuxMemory, LinuxPids, LinuxResources};
    let rootfs = std::fs::canonicalize(&args.rootfs)
        .into_diagnostic()
        .wrap_err_with(|| format!("rootfs {}", args.rootfs.display()))?;
    let mut spec = match &args.spec {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .into_diagnostic()
                .wrap_err_with(|| format!("read {}", path.display()))?;
            let mut spec: oci_spec::runtime::Spec =
                serde_json::from_str(&text)
                    .into_diagnostic()
                    .wrap_err_with(|| format!("parse {}", path.display()))?;
            if !args.command.is_empty()
                && let Some(p) = spec.process_mut()
            {
                p.set_args(Some(args.command.clone()));
            }
            spec
        }
        None if args.command.is_empty() => {
            miette::bail!("no command given (kiln debug sandbox --rootfs DIR -- CMD...)")
        }
        None => kiln_executor::spec::default_spec(&args.command),
    };
    if args.network == NetworkMode::Host {
        kiln_executor::spec::set_host_network(&mut spec);
    }
    if let Some(h) = args.hostname {
        spec.set_hostname(Some(h));
    }
    if let Some(p) = spec.process_mut() {
        if let Some(w) = args.workdir {
            p.set_cwd(w);
        }
        if let Some(env) = p.env_mut() {
            env.extend(args.env);
        }
    }
    if args.read_only
        && let Some(root) = spec.root_mut()
    {
        root.set_readonly(Some(true));
    }
    let mut resources = LinuxResources::default();
    if let Some(m) = args.memory {
        let mut mem = LinuxMemory::default();
        mem.set_limit(Some(m));
        resources.set_memory(Some(mem));
    }
    if let Some(n) = args.pids_limit {
        let mut pids = LinuxPids::default();
        pids.set_limit(n);
        resources.set_pids(Some(pids));
    }
    if let Some(c) = args.cpus {
        let mut cpu = LinuxCpu::default();
        cpu.set_period(Some(100_000));
        cpu.set_quota(Some((c * 100_000.0) as i64));
        resources.set_cpu(Some(cpu));
    }
    if resources != LinuxResources::default()
        && let Some(linux) = spec.linux_mut()
    {
        linux.set_resources(Some(resources));
    }
    let mut request = SandboxRequest::new(Rootfs::Dir(rootfs), spec);
    request.id = args.name.unwrap_or_default();
    request.user = args.user;
    request.stdin = Stdio::Inherit;
    request.stdout = Stdio::Inherit;
    request.stderr = Stdio::Inherit;
    let mut cancel = cancel_on_signals();
    if let Some(t) = args.timeout {
        cancel = cancel.with_timeout(Duration::from_secs_f64(t.max(0.0)));
    }
    let sandbox = LinuxSandbox::new();
    let mut running = sandbox.spawn(request).into_diagnostic()?;
    let outcome = running.wait(&cancel).into_diagnostic()?;
    match outcome {
        kiln_executor::ExitOutcome::Exited { .. } => {}
        other => eprintln!("kiln: sandbox {other}"),
    }
    Ok(ExitCode::from(outcome.code().clamp(0, 255) as u8))
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes() {
        assert_eq!(super::parse_size("64m"), Ok(64 << 20));
        assert_eq!(super::parse_size("1G"), Ok(1 << 30));
        assert_eq!(super::parse_size("4096"), Ok(4096));
        assert!(super::parse_size("x").is_err());
    }
}
