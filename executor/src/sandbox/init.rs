//! The container's first process, forked by the helper: it joins the new
//! namespaces, prepares the rootfs, pivots into it, becomes the requested
//! user with the requested capabilities and limits, and `exec`s the
//! process — which then is PID 1 of the sandbox. The exec path of
//! `kiln exec` shares the second half ([`become_process`]).
//!
//! Runs in a freshly forked child of the single-threaded helper, so
//! allocating is safe. It reports to the helper over a pipe (JSON lines):
//! the stubs it created, then an error if one occurs; the pipe closes on a
//! successful `exec` (close-on-exec).

use std::convert::Infallible;
use std::ffi::CString;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::mount::MsFlags;
use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxNamespaceType, Process};
use serde::{Deserialize, Serialize};

use super::protocol::{CONTROL_FD, FromHelper, RunConfig, send};
use super::rootfs::{self, RootfsSetup, Stub};
use super::setup_error::SetupError;
use super::{Rootfs, caps, network, rlimits};
use crate::syscall::{LinuxSyscall, Syscall};
use crate::user::{ExecUser, resolve_user, resolve_user_in_rootfs};

/// What the init tells the helper.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Report {
    Stubs(Vec<Stub>),
    Failed(SetupError),
}

pub(crate) fn write_report(fd: &OwnedFd, report: &Report) {
    if let Ok(mut line) = serde_json::to_vec(report) {
        line.push(b'\n');
        let mut rest = &line[..];
        while !rest.is_empty() {
            match nix::unistd::write(fd, rest) {
                Ok(n) => rest = &rest[n..],
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => break,
            }
        }
    }
}

/// The namespaces of a spec: those to create (flags) and those to join.
pub(crate) struct Namespaces {
    pub new: CloneFlags,
    pub join: Vec<(CloneFlags, PathBuf)>,
}

pub(crate) fn clone_flag(t: LinuxNamespaceType) -> CloneFlags {
    match t {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        LinuxNamespaceType::Time => CloneFlags::empty(),
    }
}

impl Namespaces {
    pub fn of(spec: &oci_spec::runtime::Spec) -> Result<Namespaces, SetupError> {
        let mut ns = Namespaces {
            new: CloneFlags::empty(),
            join: Vec::new(),
        };
        for n in spec
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().as_ref())
            .into_iter()
            .flatten()
        {
            let flag = clone_flag(n.typ());
            if flag == CloneFlags::CLONE_NEWUSER {
                return Err(SetupError::invalid("user namespaces are not supported yet"));
            }
            match n.path() {
                Some(p) => ns.join.push((flag, p.clone())),
                None => ns.new |= flag,
            }
        }
        if !ns.new.contains(CloneFlags::CLONE_NEWNS) {
            return Err(SetupError::invalid(
                "a sandbox needs its own mount namespace",
            ));
        }
        Ok(ns)
    }
}

/// The init's whole life: returns only by exiting.
pub(crate) fn run(
    cfg: &RunConfig,
    go: OwnedFd,
    report: OwnedFd,
    cgroup2: bool,
    gate: Option<OwnedFd>,
) -> ! {
    let err = match init(cfg, go, &report, cgroup2, gate) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    let (error, stubs) = err;
    if !stubs.is_empty() {
        write_report(&report, &Report::Stubs(stubs));
    }
    write_report(&report, &Report::Failed(error));
    // SAFETY: _exit ends the process without running the parent's atexit
    // handlers or flushing its buffers.
    unsafe { libc::_exit(127) }
}

fn init(
    cfg: &RunConfig,
    go: OwnedFd,
    report: &OwnedFd,
    cgroup2: bool,
    gate: Option<OwnedFd>,
) -> Result<Infallible, (SetupError, Vec<Stub>)> {
    let bare = |e: SetupError| (e, Vec::new());
    // SAFETY: prctl with integer arguments: die with the helper.
    unsafe {
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    // Wait until the helper has put us into the cgroup.
    let mut b = [0u8; 1];
    let n = std::fs::File::from(go)
        .read(&mut b)
        .map_err(SetupError::os("wait for the helper"))
        .map_err(bare)?;
    if n != 1 {
        // The helper is gone.
        // SAFETY: plain exit.
        unsafe { libc::_exit(1) }
    }
    let ns = Namespaces::of(&cfg.spec).map_err(bare)?;
    for (flag, path) in &ns.join {
        let f = std::fs::File::open(path)
            .map_err(SetupError::at("open namespace", path))
            .map_err(bare)?;
        nix::sched::setns(f.as_fd(), *flag)
            .map_err(|e| SetupError::at("join namespace", path)(e.into()))
            .map_err(bare)?;
    }
    nix::sched::unshare(ns.new - CloneFlags::CLONE_NEWPID)
        .map_err(|e| SetupError::os("create namespaces")(e.into()))
        .map_err(bare)?;
    // Nothing mounted from here on propagates back to the host.
    nix::mount::mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| SetupError::os("make / a slave mount")(e.into()))
    .map_err(bare)?;
    if ns.new.contains(CloneFlags::CLONE_NEWNET) {
        network::loopback_up()
            .map_err(SetupError::os("bring up lo"))
            .map_err(bare)?;
    }
    let sys = LinuxSyscall;
    if ns.new.contains(CloneFlags::CLONE_NEWUTS)
        && let Some(h) = cfg.spec.hostname()
    {
        sys.sethostname(h)
            .map_err(SetupError::os("set the hostname"))
            .map_err(bare)?;
    }
    let root = match &cfg.rootfs {
        Rootfs::Dir(d) => d.clone(),
        Rootfs::Overlay(o) => o.mountpoint.clone(),
    };
    let linux = cfg.spec.linux().clone().unwrap_or_default();
    let mounts = cfg.spec.mounts().clone().unwrap_or_default();
    let setup = RootfsSetup {
        root: &root,
        rootfs: &cfg.rootfs,
        mounts: &mounts,
        devices: linux.devices().as_deref().unwrap_or(&[]),
        masked_paths: linux.masked_paths().as_deref().unwrap_or(&[]),
        readonly_paths: linux.readonly_paths().as_deref().unwrap_or(&[]),
        etc: &cfg.etc,
        cgroup2,
    };
    let prepared = rootfs::prepare(&sys, &setup)?;
    write_report(report, &Report::Stubs(prepared.stubs.clone()));
    drop(prepared);
    sys.pivot_root(&root)
        .map_err(SetupError::at("pivot_root into", &root))
        .map_err(bare)?;
    if cfg.spec.root().as_ref().and_then(|r| r.readonly()) == Some(true) {
        nix::mount::mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            None::<&str>,
        )
        .map_err(|e| SetupError::os("make the rootfs read-only")(e.into()))
        .map_err(bare)?;
    }
    if let Some(gate) = gate {
        wait_for_gate(gate).map_err(bare)?;
    }
    let process = cfg.spec.process().clone().unwrap_or_default();
    become_process(&process, cfg.user.as_deref()).map_err(bare)
}

/// Blocks until kiln opens the gate (one byte: the network is ready); end
/// of file means kiln called the start off.
fn wait_for_gate(gate: OwnedFd) -> Result<(), SetupError> {
    let mut b = [0u8; 1];
    let mut gate = std::fs::File::from(gate);
    loop {
        match gate.read(&mut b) {
            Ok(1) => return Ok(()),
            Ok(_) => {
                return Err(SetupError::os("wait for the network")(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "kiln called the start off",
                )));
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(SetupError::os("wait for the network")(e)),
        }
    }
}

/// Turns the current process (inside the sandbox's root) into `process`:
/// user, environment, cwd, rlimits, terminal, capabilities, then `exec`.
pub(crate) fn become_process(
    process: &Process,
    user_spec: Option<&str>,
) -> Result<Infallible, SetupError> {
    let user = match user_spec {
        Some(spec) => resolve_user_in_rootfs(Path::new("/"), spec).map_err(|e| SetupError {
            stage: "resolve the user".into(),
            path: None,
            errno: 0,
            message: e.to_string(),
            exec: false,
        })?,
        None => {
            let u = process.user();
            let home = std::fs::read_to_string("/etc/passwd")
                .ok()
                .and_then(|p| resolve_user(&u.uid().to_string(), Some(&p), None).ok())
                .map(|e| e.home)
                .unwrap_or_else(|| "/".into());
            ExecUser {
                uid: u.uid(),
                gid: u.gid(),
                additional_gids: u.additional_gids().clone().unwrap_or_default(),
                home,
            }
        }
    };
    let env = environment(process, &user);
    let args = process.args().clone().unwrap_or_default();
    if args.is_empty() {
        return Err(SetupError::invalid("the process has no args"));
    }
    let cwd = if process.cwd().as_os_str().is_empty() {
        PathBuf::from("/")
    } else {
        process.cwd().clone()
    };
    if !cwd.is_dir() {
        // docker creates a missing working directory.
        std::fs::create_dir_all(&cwd)
            .map_err(SetupError::at("create the working directory", &cwd))?;
    }
    if let Some(limits) = process.rlimits() {
        rlimits::apply(limits).map_err(SetupError::os("set rlimits"))?;
    }
    if process.terminal() == Some(true) {
        setup_terminal(process)?;
    }
    let caps = process.capabilities().clone().unwrap_or_default();
    caps::drop_bounding(&caps).map_err(SetupError::os("drop capabilities"))?;
    set_user(&user)?;
    caps::apply(&caps).map_err(SetupError::os("set capabilities"))?;
    let umask = process.user().umask().unwrap_or(0o022);
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(umask));
    std::env::set_current_dir(&cwd)
        .map_err(SetupError::at("change to the working directory", &cwd))?;
    if process.no_new_privileges() == Some(true) {
        // SAFETY: prctl with integer arguments.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(SetupError::os("set no_new_privs")(
                std::io::Error::last_os_error(),
            ));
        }
    }
    // Die with the helper (credentials changes cleared the first setting).
    // SAFETY: prctl with integer arguments.
    unsafe {
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    let program = find_program(&args[0], &env)?;
    let c = |s: &str| {
        CString::new(s.as_bytes()).map_err(|_| SetupError::invalid("a NUL byte in args or env"))
    };
    let c_args = args.iter().map(|a| c(a)).collect::<Result<Vec<_>, _>>()?;
    let c_env = env.iter().map(|a| c(a)).collect::<Result<Vec<_>, _>>()?;
    let c_prog = CString::new(program.as_os_str().as_bytes())
        .map_err(|_| SetupError::invalid("a NUL byte in the program path"))?;
    let err = match nix::unistd::execve(&c_prog, &c_args, &c_env) {
        Err(e) => e,
        Ok(never) => match never {},
    };
    Err(SetupError {
        stage: "exec".into(),
        path: Some(PathBuf::from(&args[0])),
        errno: err as i32,
        message: err.desc().to_string(),
        exec: true,
    })
}

/// The process environment with docker's defaults: `PATH` and `HOME` when
/// unset, `TERM=xterm` with a terminal.
fn environment(process: &Process, user: &ExecUser) -> Vec<String> {
    let mut env = process.env().clone().unwrap_or_default();
    let has = |env: &[String], k: &str| env.iter().any(|e| e.split('=').next() == Some(k));
    if !has(&env, "PATH") {
        env.push(format!("PATH={}", crate::spec::DEFAULT_PATH));
    }
    if !has(&env, "HOME") {
        env.push(format!("HOME={}", user.home));
    }
    if process.terminal() == Some(true) && !has(&env, "TERM") {
        env.push("TERM=xterm".into());
    }
    env
}

/// `execvp`'s search with the container's `PATH`.
fn find_program(arg0: &str, env: &[String]) -> Result<PathBuf, SetupError> {
    if arg0.contains('/') {
        return Ok(PathBuf::from(arg0));
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(crate::spec::DEFAULT_PATH);
    for dir in path.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let candidate = Path::new(dir).join(arg0);
        if let Ok(meta) = std::fs::metadata(&candidate) {
            use std::os::unix::fs::PermissionsExt;
            if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
                return Ok(candidate);
            }
        }
    }
    Err(SetupError {
        stage: "exec".into(),
        path: Some(PathBuf::from(arg0)),
        errno: libc::ENOENT,
        message: "executable file not found in $PATH".into(),
        exec: true,
    })
}

fn set_user(user: &ExecUser) -> Result<(), SetupError> {
    use nix::unistd::{Gid, Uid};
    // SAFETY: prctl with integer arguments: keep permitted capabilities
    // across the uid change (the sets are set exactly afterwards).
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) };
    let groups: Vec<Gid> = user
        .additional_gids
        .iter()
        .map(|&g| Gid::from_raw(g))
        .collect();
    nix::unistd::setgroups(&groups).map_err(|e| SetupError::os("set groups")(e.into()))?;
    let gid = Gid::from_raw(user.gid);
    nix::unistd::setresgid(gid, gid, gid).map_err(|e| SetupError::os("set gid")(e.into()))?;
    let uid = Uid::from_raw(user.uid);
    nix::unistd::setresuid(uid, uid, uid).map_err(|e| SetupError::os("set uid")(e.into()))?;
    // SAFETY: as above.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0) };
    Ok(())
}

/// Opens a pseudo-terminal in the sandbox's own devpts, makes its slave
/// the controlling terminal and stdio, and sends the master to kiln.
fn setup_terminal(process: &Process) -> Result<(), SetupError> {
    use nix::fcntl::OFlag;
    let master = nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .map_err(|e| SetupError::os("open /dev/ptmx")(e.into()))?;
    nix::pty::grantpt(&master).map_err(|e| SetupError::os("grantpt")(e.into()))?;
    nix::pty::unlockpt(&master).map_err(|e| SetupError::os("unlockpt")(e.into()))?;
    let name = nix::pty::ptsname_r(&master).map_err(|e| SetupError::os("ptsname")(e.into()))?;
    if let Some(size) = process.console_size() {
        let ws = libc::winsize {
            ws_row: size.height() as u16,
            ws_col: size.width() as u16,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads a winsize.
        unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    }
    nix::unistd::setsid().map_err(|e| SetupError::os("setsid")(e.into()))?;
    let slave = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&name)
        .map_err(SetupError::at("open", &name))?;
    // SAFETY: TIOCSCTTY on our own new session's terminal.
    if unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) } != 0 {
        return Err(SetupError::os("set the controlling terminal")(
            std::io::Error::last_os_error(),
        ));
    }
    for fd in 0..3 {
        // SAFETY: dup2 onto the standard descriptors.
        if unsafe { libc::dup2(slave.as_raw_fd(), fd) } < 0 {
            return Err(SetupError::os("dup2 the terminal")(
                std::io::Error::last_os_error(),
            ));
        }
    }
    // SAFETY: fd 3 is the helper's control socket, open for our lifetime.
    let control = unsafe { std::os::fd::BorrowedFd::borrow_raw(CONTROL_FD) };
    send(control, &FromHelper::Pty, Some(master.as_raw_fd()))
        .map_err(SetupError::os("send the terminal to kiln"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_defaults() {
        let mut p = crate::spec::default_process(&["sh".into()]);
        p.set_env(Some(vec!["A=1".into()]));
        p.set_terminal(Some(true));
        let u = ExecUser {
            uid: 1,
            gid: 1,
            additional_gids: vec![],
            home: "/home/x".into(),
        };
        let env = environment(&p, &u);
        assert_eq!(
            env,
            [
                "A=1".to_string(),
                format!("PATH={}", crate::spec::DEFAULT_PATH),
                "HOME=/home/x".into(),
                "TERM=xterm".into()
            ]
        );
    }

    #[test]
    fn program_lookup() {
        let env = vec!["PATH=/nonexistent:/bin".to_string()];
        assert_eq!(find_program("./x", &env).unwrap(), PathBuf::from("./x"));
        let e = find_program("no-such-program-kiln", &env).unwrap_err();
        assert!(e.exec && e.errno == libc::ENOENT);
        assert_eq!(find_program("sh", &env).unwrap(), PathBuf::from("/bin/sh"));
    }

    #[test]
    fn namespaces_from_spec() {
        let spec = crate::spec::default_spec(&["sh".into()]);
        let ns = Namespaces::of(&spec).unwrap();
        assert!(
            ns.new
                .contains(CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWPID)
        );
        assert!(ns.join.is_empty());
    }
}
