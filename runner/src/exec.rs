//! `kiln exec`: a new process inside a running container — its
//! namespaces (so it sees the same filesystem, processes and network) and
//! its cgroup (so it counts against the same limits) — with the
//! container's environment plus `-e`, its working directory unless `-w`,
//! its user unless `-u`; attached to the caller's terminal like `run`.

use kiln_executor::spec::default_process;
use kiln_executor::{Cancel, ExecRequest, Stdio};

use crate::attach::{PtyAttachment, SignalForwarder};
use crate::container::Status;
use crate::env::{process_env, user_env};
use crate::error::RunnerError;
use crate::runtime::Runtime;
use crate::session::chain;

/// `kiln exec` options.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub tty: bool,
    pub interactive: bool,
    /// Start it and return at once.
    pub detach: bool,
}

impl Runtime {
    /// Runs a process in a running container; returns its exit status
    /// (0 at once with `detach`).
    pub async fn exec(&self, reference: &str, opts: &ExecOptions) -> Result<i32, RunnerError> {
        let c = self.store.lookup(reference)?;
        c.require(Status::can_exec, "exec", "running")?;
        let Some(target) = c.state.sandbox.clone() else {
            return Err(RunnerError::WrongState {
                id: c.name().to_string(),
                status: c.state.status,
                action: "exec",
                needed: "running",
            });
        };
        if opts.args.is_empty() {
            return Err(crate::error::CommandError::NoCommand.into());
        }
        let lookup = |k: &str| std::env::var(k).ok();
        let extra = user_env(&[], &opts.env, &lookup)?;
        let mut env = c.config.env.clone();
        env.extend(extra);
        let mut process = default_process(&opts.args);
        process.set_env(Some(process_env(&env, &c.config.hostname, opts.tty)));
        let cwd = opts
            .workdir
            .clone()
            .filter(|w| !w.is_empty())
            .or_else(|| Some(c.config.working_dir.clone()).filter(|w| !w.is_empty()))
            .unwrap_or_else(|| "/".to_string());
        process.set_cwd(cwd.into());
        process.set_terminal(Some(opts.tty));
        process.set_no_new_privileges(Some(false));
        let (stdin, stdout, stderr) = if opts.detach || opts.tty {
            // Detached: nowhere to write; with a terminal: the pty instead.
            (Stdio::Null, Stdio::Null, Stdio::Null)
        } else {
            (
                if opts.interactive {
                    Stdio::Inherit
                } else {
                    Stdio::Null
                },
                Stdio::Inherit,
                Stdio::Inherit,
            )
        };
        let request = ExecRequest {
            process,
            user: Some(opts.user.clone().unwrap_or_else(|| c.config.user.clone())),
            stdin,
            stdout,
            stderr,
        };
        let mut forwarder = SignalForwarder::install(None).map_err(|source| RunnerError::Io {
            what: "install signal handlers",
            source,
        })?;
        let sandbox = self.sandbox.clone();
        let mut running =
            tokio::task::block_in_place(|| sandbox.exec(&target, request)).map_err(|source| {
                RunnerError::Start {
                    id: c.name().to_string(),
                    source,
                }
            })?;
        if opts.detach {
            running.detach().map_err(|source| RunnerError::Start {
                id: c.name().to_string(),
                source,
            })?;
            return Ok(0);
        }
        let handle = running.handle().clone();
        let attachment = match running.take_pty() {
            Some(pty) => Some(
                PtyAttachment::start(pty, opts.interactive).map_err(|source| RunnerError::Io {
                    what: "attach the terminal",
                    source,
                })?,
            ),
            None => None,
        };
        forwarder.forward_to(handle);
        let result = tokio::task::spawn_blocking(move || running.wait(&Cancel::new()))
            .await
            .map_err(|e| RunnerError::Io {
                what: "wait for the process",
                source: std::io::Error::other(e.to_string()),
            })?;
        drop(forwarder);
        if let Some(a) = attachment {
            a.finish();
        }
        match result {
            Ok(outcome) => Ok(outcome.code()),
            Err(source) => {
                tracing::debug!(error = %chain(&source), "exec wait failed");
                Err(RunnerError::Wait {
                    id: c.name().to_string(),
                    source,
                })
            }
        }
    }
}
