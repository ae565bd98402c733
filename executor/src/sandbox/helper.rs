//! The sandbox helper: kiln re-executed as `kiln __kiln-sandbox-helper`, a
//! single-threaded process (no runtime, no threads), so forking the
//! container's init from it is safe. kiln starts it without a pre-exec
//! hook (so std uses `posix_spawn`, a vfork, not a fork copying kiln's page
//! tables), with the control socket as its stdin: the helper moves it to
//! fd 3, reads its order there and the container's stdin with it
//! (`SCM_RIGHTS`). It creates the cgroup, forks the init into a new PID
//! namespace, reports `Started`, then supervises: forwards signals, kills
//! the tree when kiln goes away (unless detached), reaps, removes the
//! cgroup and the mount stubs, and reports the [`ExitOutcome`].

use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sched::CloneFlags;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid};

use super::init::{self, Namespaces, Report, clone_flag};
use super::protocol::{CONTROL_FD, ExecConfig, FromHelper, RunConfig, ToHelper, recv, send};
use super::rootfs::Stub;
use super::setup_error::SetupError;
use super::{ExitOutcome, Rootfs, SandboxHandle};
use crate::cgroups::{self, Cgroup, Limits, RealFs};

static REAL_FS: RealFs = RealFs;

fn control() -> BorrowedFd<'static> {
    // SAFETY: fd 3 is the control socket kiln passed; it stays open for
    // the helper's whole life.
    unsafe { BorrowedFd::borrow_raw(CONTROL_FD) }
}

/// The helper's entry point: `main` calls this when its first argument is
/// [`super::HELPER_ARG`], before creating any thread or runtime. Never
/// returns.
pub fn helper_main() -> ! {
    reset_signals();
    // kiln passes the control socket as stdin: it lives on fd 3 from here
    // on, and the real stdin comes with the order.
    // SAFETY: duplicating our own stdin onto fd 3, close-on-exec.
    if unsafe { libc::dup3(0, CONTROL_FD, libc::O_CLOEXEC) } < 0 {
        std::process::exit(1);
    }
    // Nothing of kiln's but fds 0-3 may reach the container.
    // SAFETY: close_range on descriptors this process does not use.
    unsafe { libc::syscall(libc::SYS_close_range, 4u32, u32::MAX, 0u32) };
    let result = match recv::<ToHelper>(control()) {
        Ok(Some((ToHelper::Run(cfg), stdin))) => set_stdin(stdin).and_then(|()| run(*cfg)),
        Ok(Some((ToHelper::Exec(cfg), stdin))) => set_stdin(stdin).and_then(|()| exec(*cfg)),
        Ok(_) => Err(SetupError::invalid(
            "the helper expected a run or exec order",
        )),
        Err(e) => Err(SetupError::os("read the helper's order")(e)),
    };
    let code = match result {
        Ok(()) => 0,
        Err(e) => {
            let _ = send(control(), &FromHelper::Failed(e), None);
            1
        }
    };
    std::process::exit(code)
}

/// Makes `fd` (or `/dev/null` without one) the helper's stdin, which the
/// container inherits.
fn set_stdin(fd: Option<OwnedFd>) -> Result<(), SetupError> {
    let fd = match fd {
        Some(fd) => fd,
        None => std::fs::File::open("/dev/null")
            .map_err(SetupError::at("open", "/dev/null"))?
            .into(),
    };
    // SAFETY: dup2 of a descriptor we own onto stdin (the control socket's
    // old slot, now also on fd 3).
    if unsafe { libc::dup2(fd.as_raw_fd(), 0) } < 0 {
        return Err(SetupError::os("set the sandbox's stdin")(
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// Gives the helper (and so the container) default signal dispositions
/// and an empty signal mask: Rust ignores SIGPIPE at startup and callers
/// may block signals, and both would be inherited through `exec`.
fn reset_signals() {
    use nix::sys::signal::{SigHandler, SigSet, SigmaskHow, Signal, signal, sigprocmask};
    for sig in Signal::iterator() {
        if matches!(sig, Signal::SIGKILL | Signal::SIGSTOP) {
            continue;
        }
        // SAFETY: installing the default disposition.
        let _ = unsafe { signal(sig, SigHandler::SigDfl) };
    }
    let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
}

fn run(cfg: RunConfig) -> Result<(), SetupError> {
    // Own session: a terminal's Ctrl-C reaches kiln, which cancels.
    let _ = nix::unistd::setsid();
    let ns = Namespaces::of(&cfg.spec)?;
    let limits = Limits::from_resources(
        cfg.spec
            .linux()
            .as_ref()
            .and_then(|l| l.resources().as_ref()),
    );
    let layout = cgroups::detect_host();
    let cgroup2 = matches!(layout, cgroups::Layout::V2 { .. });
    let name = format!("{}-{}", std::process::id(), cfg.id);
    let (cgroup, warnings) = if limits.is_empty() {
        (None, Vec::new())
    } else {
        cgroups::create(&REAL_FS, &layout, &name, &limits)
    };
    if ns.new.contains(CloneFlags::CLONE_NEWPID) {
        nix::sched::unshare(CloneFlags::CLONE_NEWPID)
            .map_err(|e| SetupError::os("create the PID namespace")(e.into()))?;
    }
    let (go_r, go_w) = pipe()?;
    let (rep_r, rep_w) = pipe()?;
    // SAFETY: this process is single-threaded (see the module docs).
    let child = match unsafe { nix::unistd::fork() } {
        Ok(ForkResult::Child) => {
            drop(go_w);
            drop(rep_r);
            init::run(&cfg, go_r, rep_w, cgroup2)
        }
        Ok(ForkResult::Parent { child }) => child,
        Err(e) => {
            destroy_cgroup(cgroup.as_deref());
            return Err(SetupError::os("fork the sandbox's init")(e.into()));
        }
    };
    drop(go_r);
    drop(rep_w);
    let base = match &cfg.rootfs {
        Rootfs::Dir(d) => d.clone(),
        Rootfs::Overlay(o) => o.upper.clone(),
    };
    if let Some(cg) = &cgroup
        && let Err(e) = cg.add_pid(child.as_raw())
    {
        kill_and_reap(child);
        destroy_cgroup(Some(cg.as_ref()));
        return Err(SetupError::os("add the sandbox to its cgroup")(e));
    }
    let _ = nix::unistd::write(&go_w, b"g");
    drop(go_w);
    let (stubs, failure) = read_reports(rep_r);
    if let Some(err) = failure {
        kill_and_reap(child);
        destroy_cgroup(cgroup.as_deref());
        remove_stubs(&base, &stubs);
        return Err(err);
    }
    let start = crate::proc::start_time(child.as_raw()).unwrap_or(0);
    let handle = SandboxHandle {
        id: cfg.id.clone(),
        init_pid: child.as_raw(),
        init_start_time: start,
        helper_pid: std::process::id() as i32,
        cgroup_dirs: cgroup.as_ref().map(|c| c.dirs()).unwrap_or_default(),
    };
    let (outcome, listening) = supervise(child, handle, warnings, cgroup.as_deref());
    destroy_cgroup(cgroup.as_deref());
    remove_stubs(&base, &stubs);
    finish(outcome, cfg.exit_file.as_deref(), listening);
    Ok(())
}

fn exec(cfg: ExecConfig) -> Result<(), SetupError> {
    let _ = nix::unistd::setsid();
    let target = &cfg.target;
    let pidfd = crate::proc::pidfd_open(target.init_pid)
        .map_err(SetupError::os("find the sandbox's init"))?;
    if crate::proc::start_time(target.init_pid).ok() != Some(target.init_start_time) {
        return Err(SetupError::os("find the sandbox's init")(
            std::io::Error::from_raw_os_error(libc::ESRCH),
        ));
    }
    for dir in &target.cgroup_dirs {
        std::fs::write(dir.join("cgroup.procs"), std::process::id().to_string())
            .map_err(SetupError::at("join the cgroup", dir))?;
    }
    // /proc as the host sees it, for reading the exec'd process's stat
    // after joining the sandbox's mount namespace.
    let host_proc = std::fs::File::open("/proc").map_err(SetupError::at("open", "/proc"))?;
    let mut flags = CloneFlags::empty();
    for (name, t) in [
        ("mnt", oci_spec::runtime::LinuxNamespaceType::Mount),
        ("uts", oci_spec::runtime::LinuxNamespaceType::Uts),
        ("ipc", oci_spec::runtime::LinuxNamespaceType::Ipc),
        ("net", oci_spec::runtime::LinuxNamespaceType::Network),
        ("pid", oci_spec::runtime::LinuxNamespaceType::Pid),
        ("cgroup", oci_spec::runtime::LinuxNamespaceType::Cgroup),
    ] {
        let ours = std::fs::read_link(format!("/proc/self/ns/{name}")).ok();
        let theirs = std::fs::read_link(format!("/proc/{}/ns/{name}", target.init_pid)).ok();
        if ours != theirs {
            flags |= clone_flag(t);
        }
    }
    nix::sched::setns(pidfd.as_fd(), flags)
        .map_err(|e| SetupError::os("join the sandbox's namespaces")(e.into()))?;
    let (rep_r, rep_w) = pipe()?;
    // SAFETY: single-threaded process.
    let child = match unsafe { nix::unistd::fork() } {
        Ok(ForkResult::Child) => {
            drop(rep_r);
            let err = match init::become_process(&cfg.process, cfg.user.as_deref()) {
                Ok(never) => match never {},
                Err(e) => e,
            };
            init::write_report(&rep_w, &Report::Failed(err));
            // SAFETY: leave without the parent's atexit handlers.
            unsafe { libc::_exit(127) }
        }
        Ok(ForkResult::Parent { child }) => child,
        Err(e) => return Err(SetupError::os("fork the exec'd process")(e.into())),
    };
    drop(rep_w);
    let (_, failure) = read_reports(rep_r);
    if let Some(err) = failure {
        kill_and_reap(child);
        return Err(err);
    }
    let start = stat_start_time(&host_proc, child.as_raw()).unwrap_or(0);
    let handle = SandboxHandle {
        id: target.id.clone(),
        init_pid: child.as_raw(),
        init_start_time: start,
        helper_pid: std::process::id() as i32,
        cgroup_dirs: target.cgroup_dirs.clone(),
    };
    let (outcome, listening) = supervise(child, handle, Vec::new(), None);
    finish(outcome, None, listening);
    Ok(())
}

fn stat_start_time(proc_dir: &std::fs::File, pid: i32) -> Option<u64> {
    let fd = nix::fcntl::openat(
        proc_dir.as_fd(),
        format!("{pid}/stat").as_str(),
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .ok()?;
    let mut s = String::new();
    std::fs::File::from(fd).read_to_string(&mut s).ok()?;
    let rest = &s[s.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

fn pipe() -> Result<(OwnedFd, OwnedFd), SetupError> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| SetupError::os("create a pipe")(e.into()))
}

/// Reads the init's reports until the pipe closes (a successful exec).
fn read_reports(rep: OwnedFd) -> (Vec<Stub>, Option<SetupError>) {
    let mut text = String::new();
    let _ = std::fs::File::from(rep).read_to_string(&mut text);
    let mut stubs = Vec::new();
    let mut failure = None;
    for line in text.lines() {
        match serde_json::from_str::<Report>(line) {
            Ok(Report::Stubs(s)) => stubs.extend(s),
            Ok(Report::Failed(e)) => failure = Some(e),
            Err(e) => failure = Some(SetupError::invalid(&format!("bad report from init: {e}"))),
        }
    }
    (stubs, failure)
}

/// Waits for `child` while serving the control socket; returns its outcome
/// and whether kiln still listens.
fn supervise(
    child: Pid,
    handle: SandboxHandle,
    warnings: Vec<String>,
    cgroup: Option<&dyn Cgroup>,
) -> (ExitOutcome, bool) {
    // The container holds its own copies of stdio now; ours must not keep
    // kiln's pipes open after it ends.
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        for fd in 0..3 {
            // SAFETY: dup2 onto our standard descriptors.
            unsafe { libc::dup2(null.as_raw_fd(), fd) };
        }
    }
    let mut control_open = send(control(), &FromHelper::Started { handle, warnings }, None).is_ok();
    let mut detached = false;
    let pidfd = crate::proc::pidfd_open(child.as_raw()).ok();
    loop {
        let mut fds = Vec::with_capacity(2);
        if let Some(p) = &pidfd {
            fds.push(PollFd::new(p.as_fd(), PollFlags::POLLIN));
        }
        if control_open {
            fds.push(PollFd::new(control(), PollFlags::POLLIN));
        }
        let timeout = if pidfd.is_some() {
            PollTimeout::NONE
        } else {
            PollTimeout::from(50u16)
        };
        match poll(&mut fds, timeout) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => break,
            Ok(_) => {}
        }
        let child_done = pidfd.is_some() && fds[0].any().unwrap_or(false);
        let control_ready = control_open && fds.last().and_then(|f| f.any()).unwrap_or(false);
        drop(fds);
        if control_ready {
            match recv::<ToHelper>(control()) {
                Ok(Some((ToHelper::Signal(sig), _))) => {
                    // SAFETY: signalling our own unreaped child.
                    unsafe { libc::kill(child.as_raw(), sig) };
                }
                Ok(Some((ToHelper::Detach, _))) => detached = true,
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => {
                    control_open = false;
                    if !detached {
                        // SAFETY: as above.
                        unsafe { libc::kill(child.as_raw(), libc::SIGKILL) };
                    }
                }
            }
        }
        if child_done || pidfd.is_none() {
            match waitpid(child, Some(nix::sys::wait::WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => continue,
                Ok(status) => return (outcome_of(status, cgroup), control_open),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => {
                    return (
                        ExitOutcome::Signaled {
                            signal: libc::SIGKILL,
                        },
                        control_open,
                    );
                }
            }
        }
    }
    kill_and_reap(child);
    (
        ExitOutcome::Signaled {
            signal: libc::SIGKILL,
        },
        control_open,
    )
}

fn outcome_of(status: WaitStatus, cgroup: Option<&dyn Cgroup>) -> ExitOutcome {
    let raw = match status {
        WaitStatus::Exited(_, code) => ExitOutcome::Exited { code },
        WaitStatus::Signaled(_, sig, _) => ExitOutcome::Signaled { signal: sig as i32 },
        _ => ExitOutcome::Signaled {
            signal: libc::SIGKILL,
        },
    };
    if !raw.success() && cgroup.is_some_and(|c| c.oom_kills() > 0) {
        return ExitOutcome::OomKilled;
    }
    raw
}

/// Reports the outcome to kiln (if it still listens) and to the exit file.
fn finish(outcome: ExitOutcome, exit_file: Option<&Path>, listening: bool) {
    if let Some(path) = exit_file {
        let _ = write_atomically(path, &serde_json::to_vec(&outcome).unwrap_or_default());
    }
    if listening {
        let _ = send(control(), &FromHelper::Exited(outcome), None);
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

fn kill_and_reap(child: Pid) {
    // SAFETY: our own unreaped child.
    unsafe { libc::kill(child.as_raw(), libc::SIGKILL) };
    let _ = waitpid(child, None);
}

fn destroy_cgroup(cgroup: Option<&dyn Cgroup>) {
    if let Some(cg) = cgroup {
        let _ = cg.destroy();
    }
}

/// Removes the mount targets the init created (deepest first) if they are
/// still empty, and gives their parents back their modification times.
fn remove_stubs(base: &Path, stubs: &[Stub]) {
    for stub in stubs.iter().rev() {
        let path: PathBuf = base.join(&stub.rel);
        let untouched = path
            .parent()
            .and_then(|p| std::fs::symlink_metadata(p).ok())
            .is_some_and(|m| {
                use std::os::unix::fs::MetadataExt;
                (m.mtime(), m.mtime_nsec()) == stub.parent_mtime_after
            });
        let removed = match std::fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => std::fs::remove_dir(&path).is_ok(),
            Ok(m) if m.is_file() && m.len() == 0 => std::fs::remove_file(&path).is_ok(),
            _ => false,
        };
        if removed
            && untouched
            && let Some(parent) = path.parent()
        {
            let (s, ns) = stub.parent_mtime;
            let times = [
                nix::sys::time::TimeSpec::new(0, libc::UTIME_OMIT),
                nix::sys::time::TimeSpec::new(s, ns),
            ];
            let _ = nix::sys::stat::utimensat(
                nix::fcntl::AT_FDCWD,
                parent,
                &times[0],
                &times[1],
                nix::sys::stat::UtimensatFlags::NoFollowSymlink,
            );
        }
    }
}
