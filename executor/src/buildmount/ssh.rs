//! SSH agent forwarding for `RUN --mount=type=ssh`: a new UNIX socket (with
//! the mount's mode and owner) whose connections are relayed to the host's
//! agent socket, as BuildKit does, so a non-root user in the step can reach
//! the agent without the host socket's permissions changing. Stopped when
//! the [`Forwarder`] is dropped.

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use super::{MountError, SshMount};
use crate::fileop::{Owner, meta};

/// A running relay from a private socket to an agent.
pub(crate) struct Forwarder {
    dir: tempfile::TempDir,
    socket: PathBuf,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl Forwarder {
    /// Listens on a new socket and relays each connection to `agent`.
    pub(crate) fn start(agent: &Path, s: &SshMount) -> Result<Forwarder, MountError> {
        let dir = tempfile::Builder::new()
            .prefix("kiln-ssh-")
            .tempdir()
            .map_err(MountError::io("create directory", std::env::temp_dir()))?;
        let socket = dir.path().join("agent.sock");
        let listener = UnixListener::bind(&socket).map_err(MountError::io("listen on", &socket))?;
        meta::chown(
            &socket,
            Owner {
                uid: s.uid,
                gid: s.gid,
            },
        )?;
        meta::chmod(&socket, s.mode)?;
        let stop = Arc::new(AtomicBool::new(false));
        let agent = agent.to_path_buf();
        let stop2 = Arc::clone(&stop);
        let accept = std::thread::Builder::new()
            .name("kiln-ssh-forward".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if stop2.load(Ordering::Relaxed) {
                        break;
                    }
                    let Ok(client) = conn else { continue };
                    let agent = agent.clone();
                    let _ = std::thread::Builder::new()
                        .name("kiln-ssh-relay".into())
                        .spawn(move || relay(client, &agent));
                }
            })
            .map_err(MountError::io("start ssh forwarder for", &socket))?;
        Ok(Forwarder {
            dir,
            socket,
            stop,
            accept: Some(accept),
        })
    }

    /// The socket to bind-mount into the step.
    pub(crate) fn socket(&self) -> &Path {
        &self.socket
    }
}

/// Copies both ways between a client and the agent until either closes.
fn relay(client: UnixStream, agent: &Path) {
    let Ok(upstream) = UnixStream::connect(agent) else {
        tracing::warn!(agent = %agent.display(), "cannot connect to the ssh agent");
        return;
    };
    let (Ok(mut c2), Ok(mut u2)) = (client.try_clone(), upstream.try_clone()) else {
        return;
    };
    let back = std::thread::spawn(move || {
        let _ = pipe(&mut u2, &mut c2);
        let _ = c2.shutdown(std::net::Shutdown::Write);
    });
    let (mut c, mut u) = (client, upstream);
    let _ = pipe(&mut c, &mut u);
    let _ = u.shutdown(std::net::Shutdown::Write);
    let _ = back.join();
}

fn pipe(from: &mut UnixStream, to: &mut UnixStream) -> std::io::Result<()> {
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = from.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        to.write_all(&buf[..n])?;
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees the flag.
        let _ = UnixStream::connect(&self.socket);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
        let _ = std::fs::remove_file(&self.socket);
        let _ = &self.dir;
    }
}
