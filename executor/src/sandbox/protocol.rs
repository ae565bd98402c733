//! Messages between kiln and its sandbox helper over a `SOCK_SEQPACKET`
//! socket pair (the helper's stdin, which it moves to fd 3): one JSON
//! document per packet; the container's stdin (with the run or exec order)
//! and the pseudo-terminal master (with [`FromHelper::Pty`]) pass with
//! `SCM_RIGHTS`.

use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;

use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};
use oci_spec::runtime::{Process, Spec};
use serde::{Deserialize, Serialize};

use super::rootfs::EtcContents;
use super::setup_error::SetupError;
use super::{ExitOutcome, Rootfs, SandboxHandle};

/// The helper's control socket (after it moved it there from stdin).
pub(crate) const CONTROL_FD: RawFd = 3;

/// Largest message; specs are a few kilobytes.
const MAX_MESSAGE: usize = 256 << 10;

/// kiln → helper.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ToHelper {
    /// The container's stdin follows in the packet's `SCM_RIGHTS` (none:
    /// `/dev/null`); so does [`ToHelper::Exec`]'s.
    Run(Box<RunConfig>),
    Exec(Box<ExecConfig>),
    Signal(i32),
    Detach,
}

/// helper → kiln.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum FromHelper {
    /// The pty master follows in this packet's `SCM_RIGHTS`.
    Pty,
    Started {
        handle: SandboxHandle,
        warnings: Vec<String>,
    },
    Failed(SetupError),
    Exited(ExitOutcome),
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct RunConfig {
    pub id: String,
    pub rootfs: Rootfs,
    pub spec: Spec,
    pub user: Option<String>,
    pub etc: EtcContents,
    pub exit_file: Option<PathBuf>,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ExecConfig {
    pub target: SandboxHandle,
    pub process: Process,
    pub user: Option<String>,
}

/// Sends one message (with an optional fd).
pub(crate) fn send<T: Serialize>(
    sock: BorrowedFd<'_>,
    msg: &T,
    fd: Option<RawFd>,
) -> io::Result<()> {
    let bytes = serde_json::to_vec(msg).map_err(io::Error::other)?;
    let iov = [IoSlice::new(&bytes)];
    let fds;
    let cmsgs: Vec<ControlMessage<'_>> = match fd {
        Some(fd) => {
            fds = [fd];
            vec![ControlMessage::ScmRights(&fds)]
        }
        None => Vec::new(),
    };
    loop {
        match sendmsg::<()>(sock.as_raw_fd(), &iov, &cmsgs, MsgFlags::MSG_NOSIGNAL, None) {
            Ok(_) => return Ok(()),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Receives one message; `Ok(None)` when the peer closed the socket.
pub(crate) fn recv<T: for<'de> Deserialize<'de>>(
    sock: BorrowedFd<'_>,
) -> io::Result<Option<(T, Option<OwnedFd>)>> {
    let mut buf = vec![0u8; MAX_MESSAGE];
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    let (n, fd) = loop {
        let mut iov = [IoSliceMut::new(&mut buf)];
        match recvmsg::<()>(
            sock.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Ok(msg) => {
                if msg.flags.contains(MsgFlags::MSG_TRUNC) {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "message too large",
                    ));
                }
                let mut fd = None;
                if let Ok(cmsgs) = msg.cmsgs() {
                    for c in cmsgs {
                        if let ControlMessageOwned::ScmRights(fds) = c {
                            for raw in fds {
                                // SAFETY: the kernel installed this fd for us.
                                let owned = unsafe { OwnedFd::from_raw_fd(raw) };
                                fd.get_or_insert(owned);
                            }
                        }
                    }
                }
                break (msg.bytes, fd);
            }
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    };
    if n == 0 {
        return Ok(None);
    }
    let msg = serde_json::from_slice(&buf[..n]).map_err(io::Error::other)?;
    Ok(Some((msg, fd)))
}
