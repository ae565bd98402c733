//! A container's network namespace, made by the runner before the
//! container starts: a thread unshares a new namespace, brings `lo` up,
//! sets docker's namespaced sysctls, and bind-mounts the namespace on
//! `<container dir>/netns` (the sandbox joins it by that path). The thread
//! then stays inside it as the port publisher's *connector*: sockets it
//! creates live in the container's namespace, wherever they are used
//! afterwards — no iptables, no veth.
//!
//! Outbound access (`--network default`, IPv4 as docker's default bridge)
//! comes from `pasta` (package `passt`) or else `slirp4netns`, attached to the namespace before the
//! container's process starts; without either the container has only
//! `lo`, and the CLI says so once.

use std::fs::File;
use std::io::{self, Read};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use tokio::sync::oneshot;

/// A program that gives a namespace outbound access.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboundHelper {
    Pasta(PathBuf),
    Slirp4netns(PathBuf),
}

fn find_in_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| {
            std::fs::metadata(p)
                .map(|m| {
                    m.is_file()
                        && std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0
                })
                .unwrap_or(false)
        })
}

/// The outbound helper installed on this machine, pasta first.
pub fn outbound_helper() -> Option<OutboundHelper> {
    find_in_path("pasta")
        .map(OutboundHelper::Pasta)
        .or_else(|| find_in_path("slirp4netns").map(OutboundHelper::Slirp4netns))
}

/// Why a network namespace could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("cannot prepare the container's network namespace: {stage}")]
    Namespace {
        stage: &'static str,
        #[source]
        source: io::Error,
    },
}

enum Request {
    Tcp(SocketAddr, oneshot::Sender<io::Result<TcpStream>>),
    Udp(SocketAddr, oneshot::Sender<io::Result<UdpSocket>>),
}

/// Opens sockets inside the container's network namespace (from the thread
/// that lives there). Cheap to clone.
#[derive(Clone)]
pub(crate) struct Connector {
    tx: mpsc::Sender<Request>,
}

impl Connector {
    /// A TCP connection to `addr` as seen from inside the container.
    pub async fn tcp(&self, addr: SocketAddr) -> io::Result<TcpStream> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Request::Tcp(addr, tx))
            .map_err(|_| io::Error::other("the network namespace is gone"))?;
        rx.await
            .map_err(|_| io::Error::other("the network namespace is gone"))?
    }

    /// A UDP socket inside the container connected to `addr`.
    pub async fn udp(&self, addr: SocketAddr) -> io::Result<UdpSocket> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Request::Udp(addr, tx))
            .map_err(|_| io::Error::other("the network namespace is gone"))?;
        rx.await
            .map_err(|_| io::Error::other("the network namespace is gone"))?
    }
}

/// A prepared network namespace; [`ContainerNetwork::close`] undoes it.
pub(crate) struct ContainerNetwork {
    path: PathBuf,
    connector: Connector,
    outbound: Option<Outbound>,
}

enum Outbound {
    /// pasta daemonises; its pid file names it.
    Pasta { pid_file: PathBuf },
    /// slirp4netns stays our child; closing `exit` ends it.
    Slirp { child: Child, exit: OwnedFd },
}

/// Sets `lo` up in the calling thread's network namespace.
fn loopback_up() -> io::Result<()> {
    // SAFETY: socket(2) returns a new descriptor or -1.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor we own.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: ifreq is plain data; all zeroes is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS / SIOCSIFFLAGS read and write the ifreq we own.
    unsafe {
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) < 0 {
            return Err(io::Error::last_os_error());
        }
        req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The thread's part: unshare, configure, bind-mount, then serve.
fn namespace_thread(
    path: PathBuf,
    ready: mpsc::Sender<Result<(), NetworkError>>,
    requests: mpsc::Receiver<Request>,
) {
    let setup = || -> Result<(), NetworkError> {
        let fail = |stage| move |source| NetworkError::Namespace { stage, source };
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(|e| fail("unshare")(e.into()))?;
        loopback_up().map_err(fail("bring lo up"))?;
        // Docker's namespaced sysctls: any user may bind low ports and ping.
        // /proc/sys/net shows the namespace of the thread that opens it.
        for (key, value) in [
            ("net/ipv4/ip_unprivileged_port_start", "0"),
            ("net/ipv4/ping_group_range", "0 2147483647"),
        ] {
            if let Err(e) = std::fs::write(format!("/proc/sys/{key}"), value) {
                tracing::debug!(key, error = %e, "cannot set a network sysctl");
            }
        }
        File::create(&path).map_err(fail("create the namespace file"))?;
        nix::mount::mount(
            Some("/proc/thread-self/ns/net"),
            &path,
            None::<&str>,
            nix::mount::MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| fail("bind-mount the namespace")(e.into()))?;
        Ok(())
    };
    let result = setup();
    let ok = result.is_ok();
    let _ = ready.send(result);
    if !ok {
        return;
    }
    while let Ok(request) = requests.recv() {
        match request {
            Request::Tcp(addr, reply) => {
                let _ = reply.send(TcpStream::connect_timeout(&addr, Duration::from_secs(5)));
            }
            Request::Udp(addr, reply) => {
                let bind: SocketAddr = if addr.is_ipv4() {
                    "0.0.0.0:0".parse().expect("a valid address")
                } else {
                    "[::]:0".parse().expect("a valid address")
                };
                let socket = UdpSocket::bind(bind).and_then(|s| s.connect(addr).map(|()| s));
                let _ = reply.send(socket);
            }
        }
    }
}

impl ContainerNetwork {
    /// Makes the namespace, bound on `path`; with `outbound`, attaches the
    /// helper before returning (a helper that fails is logged, and the
    /// container runs with `lo` only).
    pub fn create(
        path: &Path,
        outbound: Option<&OutboundHelper>,
    ) -> Result<ContainerNetwork, NetworkError> {
        let (ready_tx, ready_rx) = mpsc::channel();
        let (tx, rx) = mpsc::channel();
        let thread_path = path.to_path_buf();
        std::thread::Builder::new()
            .name("kiln-netns".into())
            .spawn(move || namespace_thread(thread_path, ready_tx, rx))
            .map_err(|source| NetworkError::Namespace {
                stage: "start the namespace thread",
                source,
            })?;
        ready_rx.recv().map_err(|_| NetworkError::Namespace {
            stage: "namespace thread",
            source: io::Error::other("the thread ended early"),
        })??;
        let mut network = ContainerNetwork {
            path: path.to_path_buf(),
            connector: Connector { tx },
            outbound: None,
        };
        if let Some(helper) = outbound {
            match network.attach(helper) {
                Ok(o) => network.outbound = Some(o),
                Err(e) => {
                    tracing::warn!(error = %e, ?helper, "no outbound network: the helper failed")
                }
            }
        }
        Ok(network)
    }

    fn attach(&self, helper: &OutboundHelper) -> io::Result<Outbound> {
        let dir = self.path.parent().unwrap_or(Path::new("/"));
        match helper {
            OutboundHelper::Pasta(program) => {
                let pid_file = dir.join("pasta.pid");
                let mut cmd = Command::new(program);
                cmd.args(["--config-net", "-q"])
                    // No port forwarding of its own: kiln publishes ports.
                    .args(["-t", "none", "-u", "none", "-T", "none", "-U", "none"])
                    // IPv4 only, as docker's default bridge network; pasta's
                    // IPv6 set-up (addresses, routes, neighbour discovery)
                    // would double what attaching it costs (~45 → ~90 ms
                    // on the bench machine) for every container start.
                    .arg("--ipv4-only")
                    .arg("-P")
                    .arg(&pid_file)
                    .arg("--netns")
                    .arg(&self.path)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped());
                if nix::unistd::geteuid().is_root() {
                    // pasta drops to nobody by default and then cannot
                    // enter the namespace.
                    cmd.args(["--runas", "0:0"]);
                }
                // pasta returns once the namespace is configured and it has
                // forked into the background.
                let out = cmd.output()?;
                if !out.status.success() {
                    return Err(io::Error::other(format!(
                        "pasta failed ({}): {}",
                        out.status,
                        String::from_utf8_lossy(&out.stderr).trim()
                    )));
                }
                Ok(Outbound::Pasta { pid_file })
            }
            OutboundHelper::Slirp4netns(program) => {
                let (ready_r, ready_w) = nix::unistd::pipe()?;
                let (exit_r, exit_w) = nix::unistd::pipe()?;
                // The child's ends must survive exec: no CLOEXEC on them.
                for fd in [&ready_w, &exit_r] {
                    nix::fcntl::fcntl(
                        fd,
                        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
                    )?;
                }
                let mut child = Command::new(program)
                    .args(["--configure", "--mtu=65520", "--disable-host-loopback"])
                    .arg("--netns-type=path")
                    .arg(format!("--ready-fd={}", ready_w.as_raw_fd()))
                    .arg(format!("--exit-fd={}", exit_r.as_raw_fd()))
                    .arg(&self.path)
                    .arg("tap0")
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()?;
                drop(ready_w);
                drop(exit_r);
                let mut byte = [0u8; 1];
                let n = File::from(ready_r).read(&mut byte)?;
                if n != 1 {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(io::Error::other("slirp4netns exited before it was ready"));
                }
                Ok(Outbound::Slirp {
                    child,
                    exit: exit_w,
                })
            }
        }
    }

    /// The namespace file the sandbox joins.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens sockets inside the namespace.
    pub fn connector(&self) -> Connector {
        self.connector.clone()
    }

    /// The nameserver the container should use, when the helper provides
    /// its own (slirp4netns's built-in DNS).
    pub fn nameserver(&self) -> Option<&'static str> {
        match self.outbound {
            Some(Outbound::Slirp { .. }) => Some("10.0.2.3"),
            _ => None,
        }
    }

    /// Stops the helper, unmounts and removes the namespace file (the
    /// namespace ends with its last user).
    pub fn close(self) {
        let ContainerNetwork {
            path,
            connector,
            outbound,
        } = self;
        drop(connector);
        match outbound {
            Some(Outbound::Pasta { pid_file }) => {
                stop_pasta(&pid_file);
                let _ = std::fs::remove_file(&pid_file);
            }
            Some(Outbound::Slirp { mut child, exit }) => {
                drop(exit);
                if child.wait_timeout_ms(500).is_none() {
                    let _ = child.kill();
                    let _ = child.wait();
                }
            }
            None => {}
        }
        release_namespace_file(&path);
    }
}

/// Unmounts and removes a namespace file (also a leftover of a crash).
pub(crate) fn release_namespace_file(path: &Path) {
    let _ = nix::mount::umount2(path, nix::mount::MntFlags::MNT_DETACH);
    let _ = std::fs::remove_file(path);
}

/// Stops the pasta named by a pid file, if it is still that pasta.
pub(crate) fn stop_pasta(pid_file: &Path) {
    let Some(pid) = std::fs::read_to_string(pid_file)
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok())
    else {
        return;
    };
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    if comm.starts_with("pasta") || comm.starts_with("passt") {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
}

trait WaitTimeout {
    fn wait_timeout_ms(&mut self, ms: u64) -> Option<std::process::ExitStatus>;
}

impl WaitTimeout for Child {
    fn wait_timeout_ms(&mut self, ms: u64) -> Option<std::process::ExitStatus> {
        for _ in 0..ms / 10 {
            if let Ok(Some(status)) = self.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_root() -> bool {
        nix::unistd::geteuid().is_root()
    }

    fn netns_inode(path: &Path) -> u64 {
        std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(path).unwrap())
    }

    #[tokio::test]
    async fn namespace_is_private_and_reachable_through_the_connector() {
        if !is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("netns");
        let net = ContainerNetwork::create(&path, None).unwrap();
        // A different namespace from ours.
        assert_ne!(
            netns_inode(&path),
            netns_inode(Path::new("/proc/self/ns/net"))
        );
        // Its lo is up: a connection to a closed port is refused at once.
        let err = net
            .connector()
            .tcp("127.0.0.1:1".parse().unwrap())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
        // The namespace's own sysctl was set.
        let inside = std::thread::spawn({
            let path = path.clone();
            move || {
                let f = File::open(&path).unwrap();
                nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
                std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start").unwrap()
            }
        })
        .join()
        .unwrap();
        assert_eq!(inside.trim(), "0");
        net.close();
        assert!(!path.exists());
    }
}
