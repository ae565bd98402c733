//! The real [`Sandbox`]: starts the helper (kiln re-executed through
//! `/proc/self/exe`, see [`super::helper`]) with the control socket as its
//! stdin and the container's stdout and stderr, sends it its order with the
//! container's stdin, and talks to it.

use std::collections::BTreeSet;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};

use super::protocol::{ExecConfig, FromHelper, RunConfig, ToHelper, recv, send};
use super::rootfs::EtcContents;
use super::{
    Cancel, CancelReason, ExecRequest, ExitOutcome, HELPER_ARG, LineSplitter, OutputSink,
    OutputStream, Running, Sandbox, SandboxError, SandboxHandle, SandboxRequest, Stdio,
};

/// The sandbox of namespaces, cgroups and pivot_root. Needs root (user
/// namespaces are not used yet).
#[derive(Debug, Clone)]
pub struct LinuxSandbox {
    helper: PathBuf,
}

impl Default for LinuxSandbox {
    fn default() -> Self {
        LinuxSandbox::new()
    }
}

impl LinuxSandbox {
    /// A sandbox whose helper is the running binary (`/proc/self/exe`),
    /// which must dispatch [`HELPER_ARG`] to [`super::helper_main`] first
    /// thing in `main` (the `kiln` binary does).
    pub fn new() -> LinuxSandbox {
        LinuxSandbox {
            helper: PathBuf::from("/proc/self/exe"),
        }
    }

    /// A sandbox using another binary as its helper (tests and benchmarks
    /// whose own binary is not kiln).
    pub fn with_helper(path: impl Into<PathBuf>) -> LinuxSandbox {
        LinuxSandbox {
            helper: path.into(),
        }
    }

    fn start(
        &self,
        id: String,
        order: ToHelper,
        stdio: [Stdio; 3],
        gate: Option<OwnedFd>,
    ) -> Result<LinuxRunning, SandboxError> {
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(|e| SandboxError::SpawnHelper {
            path: self.helper.clone(),
            source: e.into(),
        })?;
        // The control socket is the helper's stdin (it moves it to fd 3),
        // and the container's stdin travels with the order (SCM_RIGHTS):
        // with no pre-exec hook, std starts the helper with posix_spawn
        // (vfork) instead of fork, which would copy kiln's page tables —
        // costly for a large, multi-threaded build.
        let spawn_err = |source: std::io::Error| SandboxError::SpawnHelper {
            path: self.helper.clone(),
            source,
        };
        let [stdin, stdout, stderr] = stdio;
        let (child_stdin, stdin): (Option<OwnedFd>, Option<OwnedFd>) = match stdin {
            Stdio::Null => (None, None),
            Stdio::Inherit => (
                Some(
                    std::io::stdin()
                        .as_fd()
                        .try_clone_to_owned()
                        .map_err(spawn_err)?,
                ),
                None,
            ),
            Stdio::Piped => {
                let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
                    .map_err(|e| spawn_err(e.into()))?;
                (Some(r), Some(w))
            }
            Stdio::Fd(fd) => (Some(fd), None),
        };
        let mut cmd = std::process::Command::new(&self.helper);
        cmd.arg(HELPER_ARG)
            .stdin(std::process::Stdio::from(theirs))
            .stdout(std_stdio(stdout))
            .stderr(std_stdio(stderr));
        let mut child = cmd.spawn().map_err(spawn_err)?;
        // Our copy of the helper's end must go, or its exit is never seen.
        drop(cmd);
        let helper_err = |source: std::io::Error| SandboxError::Helper {
            id: id.clone(),
            source,
        };
        let stdout = child.stdout.take().map(OwnedFd::from);
        let stderr = child.stderr.take().map(OwnedFd::from);
        let sent = send(
            ours.as_fd(),
            &order,
            child_stdin.as_ref().map(|f| f.as_raw_fd()),
        );
        drop(child_stdin);
        let sent = sent.and_then(|()| match &gate {
            Some(g) => send(ours.as_fd(), &ToHelper::Gate, Some(g.as_raw_fd())),
            None => Ok(()),
        });
        drop(gate);
        if let Err(e) = sent {
            let _ = child.kill();
            let _ = child.wait();
            return Err(helper_err(e));
        }
        let mut pty = None;
        loop {
            match recv::<FromHelper>(ours.as_fd()) {
                Ok(Some((FromHelper::Pty, fd))) => pty = fd,
                Ok(Some((FromHelper::Started { handle, warnings }, _))) => {
                    warn_once(&warnings);
                    return Ok(LinuxRunning {
                        child: Some(child),
                        sock: Some(ours),
                        handle,
                        stdin,
                        stdout,
                        stderr,
                        pty,
                        outcome: None,
                        cancelled: None,
                        kill_sent: false,
                        detached: false,
                    });
                }
                Ok(Some((FromHelper::Failed(e), _))) => {
                    let _ = child.wait();
                    return Err(e.into_sandbox_error());
                }
                Ok(Some((FromHelper::Exited(_), _))) | Ok(None) => {
                    let _ = child.wait();
                    return Err(helper_err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the helper ended before the sandbox started",
                    )));
                }
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(helper_err(e));
                }
            }
        }
    }
}

fn std_stdio(s: Stdio) -> std::process::Stdio {
    match s {
        Stdio::Inherit => std::process::Stdio::inherit(),
        Stdio::Null => std::process::Stdio::null(),
        Stdio::Piped => std::process::Stdio::piped(),
        Stdio::Fd(fd) => std::process::Stdio::from(fd),
    }
}

/// Logs each distinct warning once per process ("running without limits").
fn warn_once(warnings: &[String]) {
    static SEEN: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
    for w in warnings {
        let new = SEEN.lock().map(|mut s| s.insert(w.clone())).unwrap_or(true);
        if new {
            tracing::warn!("{w}");
        }
    }
}

fn new_id() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{:x}{:x}{:04x}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        nanos & 0xffff
    )
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && !id.starts_with('.')
}

/// The default `/etc` files for a spec (see [`super::EtcFiles`]).
pub(crate) fn default_etc(
    spec: &oci_spec::runtime::Spec,
    given: Option<super::EtcFiles>,
) -> EtcContents {
    let given = given.unwrap_or_default();
    let hostname = spec.hostname().clone().unwrap_or_default();
    let own_net = crate::spec::has_own_network(spec);
    let hosts = given.hosts.unwrap_or_else(|| {
        let mut h = String::from("127.0.0.1\tlocalhost");
        if !hostname.is_empty() {
            h.push(' ');
            h.push_str(&hostname);
        }
        h.push_str("\n::1\tlocalhost ip6-localhost ip6-loopback\n");
        h
    });
    let resolv_conf = given.resolv_conf.unwrap_or_else(|| {
        let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        if !own_net {
            return host;
        }
        // Loopback resolvers are unreachable from another namespace.
        host.lines()
            .filter(|l| {
                let mut w = l.split_whitespace();
                !(w.next() == Some("nameserver")
                    && w.next()
                        .is_some_and(|a| a.starts_with("127.") || a == "::1"))
            })
            .map(|l| format!("{l}\n"))
            .collect()
    });
    let hostname_file = given.hostname.unwrap_or_else(|| format!("{hostname}\n"));
    EtcContents {
        hosts,
        resolv_conf,
        hostname: hostname_file,
    }
}

impl Sandbox for LinuxSandbox {
    fn spawn(&self, request: SandboxRequest) -> Result<Box<dyn Running>, SandboxError> {
        let id = if request.id.is_empty() {
            new_id()
        } else {
            request.id
        };
        if !valid_id(&id) {
            return Err(SandboxError::InvalidId(id));
        }
        let args_empty = request
            .spec
            .process()
            .as_ref()
            .and_then(|p| p.args().as_ref())
            .is_none_or(|a| a.is_empty());
        if args_empty {
            return Err(SandboxError::NoArgs);
        }
        let etc = default_etc(&request.spec, request.etc);
        let order = ToHelper::Run(Box::new(RunConfig {
            id: id.clone(),
            rootfs: request.rootfs,
            spec: request.spec,
            user: request.user,
            etc,
            exit_file: request.exit_file,
            gated: request.gate.is_some(),
        }));
        let running = self.start(
            id,
            order,
            [request.stdin, request.stdout, request.stderr],
            request.gate,
        )?;
        Ok(Box::new(running))
    }

    fn exec(
        &self,
        target: &SandboxHandle,
        request: ExecRequest,
    ) -> Result<Box<dyn Running>, SandboxError> {
        if request.process.args().as_ref().is_none_or(|a| a.is_empty()) {
            return Err(SandboxError::NoArgs);
        }
        if !target.is_running() {
            return Err(SandboxError::NotRunning {
                id: target.id.clone(),
            });
        }
        let order = ToHelper::Exec(Box::new(ExecConfig {
            target: target.clone(),
            process: request.process,
            user: request.user,
        }));
        let running = self.start(
            target.id.clone(),
            order,
            [request.stdin, request.stdout, request.stderr],
            None,
        )?;
        Ok(Box::new(running))
    }
}

/// A sandbox (or exec'd process) started by [`LinuxSandbox`].
struct LinuxRunning {
    child: Option<std::process::Child>,
    sock: Option<OwnedFd>,
    handle: SandboxHandle,
    stdin: Option<OwnedFd>,
    stdout: Option<OwnedFd>,
    stderr: Option<OwnedFd>,
    pty: Option<OwnedFd>,
    outcome: Option<ExitOutcome>,
    cancelled: Option<CancelReason>,
    kill_sent: bool,
    detached: bool,
}

/// How long output pipes may stay open after the sandbox ended (a process
/// outside it holding them) before kiln stops reading.
const DRAIN_GRACE: Duration = Duration::from_secs(2);

impl LinuxRunning {
    fn helper_error(&self, source: std::io::Error) -> SandboxError {
        SandboxError::Helper {
            id: self.handle.id.clone(),
            source,
        }
    }

    fn wait_inner(
        &mut self,
        cancel: &Cancel,
        mut sink: Option<&mut OutputSink<'_>>,
    ) -> Result<ExitOutcome, SandboxError> {
        let mut pipes: Vec<(OutputStream, OwnedFd, LineSplitter)> = Vec::new();
        if sink.is_some() {
            if let Some(fd) = self.stdout.take() {
                pipes.push((OutputStream::Stdout, fd, LineSplitter::new()));
            }
            if let Some(fd) = self.stderr.take() {
                pipes.push((OutputStream::Stderr, fd, LineSplitter::new()));
            }
        }
        let mut ended_at: Option<Instant> = None;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            if self.outcome.is_none()
                && !self.kill_sent
                && let Some(reason) = cancel.reason()
            {
                self.cancelled = Some(reason);
                self.kill_sent = true;
                if let Some(sock) = &self.sock {
                    let _ = send(sock.as_fd(), &ToHelper::Signal(libc::SIGKILL), None);
                }
            }
            if self.outcome.is_some() {
                let ended = *ended_at.get_or_insert_with(Instant::now);
                if pipes.is_empty() || ended.elapsed() > DRAIN_GRACE {
                    break;
                }
            }
            let sock = self
                .sock
                .as_ref()
                .filter(|_| self.outcome.is_none())
                .map(|s| s.as_fd());
            let event = cancel.event_fd().filter(|_| !self.kill_sent);
            let mut fds: Vec<PollFd<'_>> = Vec::new();
            if let Some(s) = sock {
                fds.push(PollFd::new(s, PollFlags::POLLIN));
            }
            if let Some(e) = event {
                fds.push(PollFd::new(e, PollFlags::POLLIN));
            }
            let first_pipe = fds.len();
            for (_, fd, _) in &pipes {
                fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
            }
            let max = if self.outcome.is_some() {
                Some(Duration::from_millis(100))
            } else if self.kill_sent {
                None
            } else {
                cancel.poll_timeout(None)
            };
            let timeout = match max {
                Some(d) => PollTimeout::try_from(d).unwrap_or(PollTimeout::MAX),
                None => PollTimeout::NONE,
            };
            match poll(&mut fds, timeout) {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => {
                    return Err(SandboxError::Io {
                        op: "poll",
                        source: e.into(),
                    });
                }
            }
            let ready: Vec<bool> = fds.iter().map(|f| f.any().unwrap_or(false)).collect();
            drop(fds);
            if sock.is_some() && ready[0] {
                let sock = self.sock.as_ref().map(|s| s.as_fd());
                match sock.map(recv::<FromHelper>) {
                    Some(Ok(Some((FromHelper::Exited(o), _)))) => self.outcome = Some(o),
                    Some(Ok(Some(_))) => {}
                    Some(Ok(None)) | None => {
                        return Err(self.helper_error(std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            "the helper ended without reporting the sandbox's exit",
                        )));
                    }
                    Some(Err(e)) => return Err(self.helper_error(e)),
                }
            }
            let mut closed = Vec::new();
            for (i, (stream, fd, lines)) in pipes.iter_mut().enumerate() {
                if !ready[first_pipe + i] {
                    continue;
                }
                let n = match nix::unistd::read(fd.as_fd(), &mut buf) {
                    Ok(n) => n,
                    Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => continue,
                    Err(_) => 0,
                };
                if n == 0 {
                    closed.push(i);
                    if let Some(sink) = sink.as_deref_mut() {
                        let stream = *stream;
                        lines.finish(&mut |l| sink(stream, l));
                    }
                } else if let Some(sink) = sink.as_deref_mut() {
                    let stream = *stream;
                    lines.push(&buf[..n], &mut |l| sink(stream, l));
                }
            }
            for i in closed.into_iter().rev() {
                pipes.remove(i);
            }
        }
        for (stream, _, lines) in &mut pipes {
            if let Some(sink) = sink.as_deref_mut() {
                let stream = *stream;
                lines.finish(&mut |l| sink(stream, l));
            }
        }
        self.sock = None;
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
        let outcome = self.outcome.unwrap_or(ExitOutcome::Signaled {
            signal: libc::SIGKILL,
        });
        Ok(match self.cancelled {
            Some(reason) => ExitOutcome::Cancelled { reason },
            None => outcome,
        })
    }
}

impl Running for LinuxRunning {
    fn handle(&self) -> &SandboxHandle {
        &self.handle
    }
    fn take_stdin(&mut self) -> Option<OwnedFd> {
        self.stdin.take()
    }
    fn take_stdout(&mut self) -> Option<OwnedFd> {
        self.stdout.take()
    }
    fn take_stderr(&mut self) -> Option<OwnedFd> {
        self.stderr.take()
    }
    fn take_pty(&mut self) -> Option<OwnedFd> {
        self.pty.take()
    }

    fn signal(&mut self, signal: i32) -> Result<(), SandboxError> {
        match &self.sock {
            Some(sock) if self.outcome.is_none() => {
                send(sock.as_fd(), &ToHelper::Signal(signal), None).map_err(|source| {
                    SandboxError::Signal {
                        id: self.handle.id.clone(),
                        signal,
                        source,
                    }
                })
            }
            _ => Err(SandboxError::NotRunning {
                id: self.handle.id.clone(),
            }),
        }
    }

    fn wait(&mut self, cancel: &Cancel) -> Result<ExitOutcome, SandboxError> {
        self.wait_inner(cancel, None)
    }

    fn wait_with_output(
        &mut self,
        cancel: &Cancel,
        sink: &mut OutputSink<'_>,
    ) -> Result<ExitOutcome, SandboxError> {
        self.wait_inner(cancel, Some(sink))
    }

    fn detach(mut self: Box<Self>) -> Result<SandboxHandle, SandboxError> {
        if let Some(sock) = self.sock.take() {
            send(sock.as_fd(), &ToHelper::Detach, None).map_err(|e| self.helper_error(e))?;
        }
        self.detached = true;
        if let Some(mut child) = self.child.take() {
            // Reap the helper whenever it ends, without blocking the caller.
            std::thread::spawn(move || {
                let _ = child.wait();
            });
        }
        Ok(self.handle.clone())
    }
}

impl Drop for LinuxRunning {
    fn drop(&mut self) {
        // Closing the socket makes the helper kill the tree (unless
        // detached); waiting for it means everything is gone on return.
        self.sock = None;
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(valid_id("step-1.a_b"));
        assert!(!valid_id("../x"));
        assert!(!valid_id(""));
        assert!(valid_id(&new_id()));
    }

    #[test]
    fn default_etc_files() {
        let spec = crate::spec::default_spec(&["sh".into()]);
        let etc = default_etc(&spec, None);
        assert!(etc.hosts.starts_with("127.0.0.1\tlocalhost kiln\n"));
        assert_eq!(etc.hostname, "kiln\n");
        assert!(!etc.resolv_conf.contains("nameserver 127."));
    }
}
