//! A scripted [`Sandbox`] for unit tests of the code above it (the build
//! worker, the runner): it records every request and answers with what a
//! test's script returns, without namespaces, root or processes.

use std::io::Write;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex};

use oci_spec::runtime::{Process, Spec};

use super::{
    Cancel, ExecRequest, ExitOutcome, LineSplitter, OutputSink, OutputStream, Rootfs, Running,
    Sandbox, SandboxError, SandboxHandle, SandboxRequest, Stdio,
};

/// What the fake saw: a [`Sandbox::spawn`] (with `rootfs` and `spec`) or a
/// [`Sandbox::exec`] (with `target`).
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub id: String,
    pub rootfs: Option<Rootfs>,
    pub spec: Option<Spec>,
    pub target: Option<SandboxHandle>,
    pub process: Process,
    pub user: Option<String>,
}

impl RecordedRequest {
    /// The process's args (empty when unset).
    pub fn args(&self) -> Vec<String> {
        self.process.args().clone().unwrap_or_default()
    }
}

/// What the fake process "does": the bytes it prints and how it ends.
#[derive(Debug, Clone)]
pub struct FakeResult {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub outcome: ExitOutcome,
}

impl FakeResult {
    /// Exits 0 having printed `stdout`.
    pub fn ok(stdout: &str) -> FakeResult {
        FakeResult {
            stdout: stdout.as_bytes().to_vec(),
            stderr: Vec::new(),
            outcome: ExitOutcome::Exited { code: 0 },
        }
    }

    /// Exits with `code` having printed `stderr`.
    pub fn fail(code: i32, stderr: &str) -> FakeResult {
        FakeResult {
            stdout: Vec::new(),
            stderr: stderr.as_bytes().to_vec(),
            outcome: ExitOutcome::Exited { code },
        }
    }
}

type Script = dyn Fn(&RecordedRequest) -> FakeResult + Send + Sync;

/// A sandbox that runs nothing: each request is recorded and answered by
/// the script (which may also write into the request's rootfs to simulate
/// a step's changes). Clones share the record.
#[derive(Clone)]
pub struct FakeSandbox {
    script: Arc<Script>,
    recorded: Arc<Mutex<Vec<RecordedRequest>>>,
}

impl std::fmt::Debug for FakeSandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeSandbox").finish_non_exhaustive()
    }
}

impl FakeSandbox {
    /// A fake answering every request with `script(request)`.
    pub fn new(script: impl Fn(&RecordedRequest) -> FakeResult + Send + Sync + 'static) -> Self {
        FakeSandbox {
            script: Arc::new(script),
            recorded: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// A fake where every process exits 0 silently.
    pub fn succeeding() -> Self {
        FakeSandbox::new(|_| FakeResult::ok(""))
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.recorded.lock().map(|r| r.clone()).unwrap_or_default()
    }

    fn start(
        &self,
        rec: RecordedRequest,
        stdio: [Stdio; 3],
    ) -> Result<Box<dyn Running>, SandboxError> {
        let result = (self.script)(&rec);
        let handle = SandboxHandle {
            id: rec.id.clone(),
            init_pid: 0,
            init_start_time: 0,
            helper_pid: 0,
            cgroup_dirs: Vec::new(),
        };
        if let Ok(mut r) = self.recorded.lock() {
            r.push(rec);
        }
        let [_stdin, stdout, stderr] = stdio;
        let mut running = FakeRunning {
            handle,
            outcome: result.outcome,
            stdout: None,
            stderr: None,
            pending: Vec::new(),
        };
        for (stdio, bytes, stream) in [
            (stdout, result.stdout, OutputStream::Stdout),
            (stderr, result.stderr, OutputStream::Stderr),
        ] {
            match stdio {
                Stdio::Piped => {
                    // Small outputs only: the pipe buffer holds them.
                    let (r, w) = nix::unistd::pipe().map_err(|e| SandboxError::Io {
                        op: "create a pipe",
                        source: e.into(),
                    })?;
                    std::fs::File::from(w).write_all(&bytes).map_err(|source| {
                        SandboxError::Io {
                            op: "write fake output",
                            source,
                        }
                    })?;
                    match stream {
                        OutputStream::Stdout => running.stdout = Some(r),
                        OutputStream::Stderr => running.stderr = Some(r),
                    }
                    running.pending.push((stream, bytes));
                }
                Stdio::Fd(fd) => {
                    let _ = std::fs::File::from(fd).write_all(&bytes);
                }
                Stdio::Inherit | Stdio::Null => {}
            }
        }
        Ok(Box::new(running))
    }
}

impl Sandbox for FakeSandbox {
    fn spawn(&self, request: SandboxRequest) -> Result<Box<dyn Running>, SandboxError> {
        let process = request.spec.process().clone().unwrap_or_default();
        let rec = RecordedRequest {
            id: request.id,
            rootfs: Some(request.rootfs),
            spec: Some(request.spec),
            target: None,
            process,
            user: request.user,
        };
        self.start(rec, [request.stdin, request.stdout, request.stderr])
    }

    fn exec(
        &self,
        target: &SandboxHandle,
        request: ExecRequest,
    ) -> Result<Box<dyn Running>, SandboxError> {
        let rec = RecordedRequest {
            id: target.id.clone(),
            rootfs: None,
            spec: None,
            target: Some(target.clone()),
            process: request.process,
            user: request.user,
        };
        self.start(rec, [request.stdin, request.stdout, request.stderr])
    }
}

struct FakeRunning {
    handle: SandboxHandle,
    outcome: ExitOutcome,
    stdout: Option<OwnedFd>,
    stderr: Option<OwnedFd>,
    /// Piped output not taken by the caller, streamed by `wait_with_output`.
    pending: Vec<(OutputStream, Vec<u8>)>,
}

impl Running for FakeRunning {
    fn handle(&self) -> &SandboxHandle {
        &self.handle
    }
    fn take_stdin(&mut self) -> Option<OwnedFd> {
        None
    }
    fn take_stdout(&mut self) -> Option<OwnedFd> {
        self.pending.retain(|(s, _)| *s != OutputStream::Stdout);
        self.stdout.take()
    }
    fn take_stderr(&mut self) -> Option<OwnedFd> {
        self.pending.retain(|(s, _)| *s != OutputStream::Stderr);
        self.stderr.take()
    }
    fn take_pty(&mut self) -> Option<OwnedFd> {
        None
    }
    fn signal(&mut self, signal: i32) -> Result<(), SandboxError> {
        if signal == libc::SIGKILL {
            self.outcome = ExitOutcome::Signaled { signal };
        }
        Ok(())
    }
    fn wait(&mut self, cancel: &Cancel) -> Result<ExitOutcome, SandboxError> {
        if let Some(reason) = cancel.reason() {
            return Ok(ExitOutcome::Cancelled { reason });
        }
        Ok(self.outcome)
    }
    fn wait_with_output(
        &mut self,
        cancel: &Cancel,
        sink: &mut OutputSink<'_>,
    ) -> Result<ExitOutcome, SandboxError> {
        for (stream, bytes) in std::mem::take(&mut self.pending) {
            let mut lines = LineSplitter::new();
            lines.push(&bytes, &mut |l| sink(stream, l));
            lines.finish(&mut |l| sink(stream, l));
        }
        self.wait(cancel)
    }
    fn detach(self: Box<Self>) -> Result<SandboxHandle, SandboxError> {
        Ok(self.handle.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::default_spec;

    #[test]
    fn records_and_streams_scripted_output() {
        let fake = FakeSandbox::new(|req| {
            if req.args() == ["false"] {
                FakeResult::fail(1, "nope\n")
            } else {
                FakeResult::ok("hello\nworld")
            }
        });
        let mut spec = default_spec(&["echo".to_string()]);
        let mut lines = Vec::new();
        let out = fake
            .run(
                SandboxRequest::new(Rootfs::Dir("/nonexistent".into()), spec.clone()),
                &Cancel::new(),
                &mut |s, l| lines.push((s, String::from_utf8_lossy(l).into_owned())),
            )
            .unwrap();
        assert!(out.success());
        assert_eq!(
            lines,
            vec![
                (OutputStream::Stdout, "hello".to_string()),
                (OutputStream::Stdout, "world".to_string())
            ]
        );
        spec.process_mut()
            .as_mut()
            .unwrap()
            .set_args(Some(vec!["false".into()]));
        let out = fake
            .run(
                SandboxRequest::new(Rootfs::Dir("/nonexistent".into()), spec),
                &Cancel::new(),
                &mut |_, _| {},
            )
            .unwrap();
        assert_eq!(out, ExitOutcome::Exited { code: 1 });
        assert_eq!(fake.requests().len(), 2);
        assert_eq!(fake.requests()[1].args(), ["false"]);
    }

    #[test]
    fn cancelled_wait_reports_cancel() {
        let fake = FakeSandbox::succeeding();
        let cancel = Cancel::new();
        cancel.cancel(super::super::CancelReason::Interrupted);
        let out = fake
            .run(
                SandboxRequest::new(Rootfs::Dir("/x".into()), default_spec(&["true".into()])),
                &cancel,
                &mut |_, _| {},
            )
            .unwrap();
        assert_eq!(out.code(), 130);
    }
}
