//! Attaching the caller's terminal to a container (or exec'd process) that
//! runs in the foreground: signals sent to kiln are forwarded to the
//! process; with a pseudo-terminal, the caller's terminal goes into raw
//! mode (restored on every way out), keystrokes are copied to the pty,
//! its output to stdout, and window-size changes (SIGWINCH) are passed on.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::thread::JoinHandle;

use kiln_executor::SandboxHandle;
use nix::sys::termios::{SetArg, Termios, cfmakeraw, tcgetattr, tcsetattr};
use tokio::signal::unix::{SignalKind, signal};

/// The signals `kiln run` forwards to the container (docker's sig-proxy
/// forwards all it can; these are the ones a terminal user sends).
const FORWARDED: [i32; 6] = [
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
];

/// Forwards signals kiln receives to a sandbox's process until dropped.
/// Installed before the process starts (a signal that arrives meanwhile is
/// kept and forwarded once the process is known), so kiln never dies of a
/// signal meant for its container.
pub(crate) struct SignalForwarder {
    streams: Option<Vec<(i32, tokio::signal::unix::Signal)>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl SignalForwarder {
    /// Installs the handlers for `signals` (default [`FORWARDED`]); must be
    /// called inside a tokio runtime.
    pub fn install(signals: Option<&[i32]>) -> io::Result<SignalForwarder> {
        let mut streams = Vec::new();
        for &sig in signals.unwrap_or(&FORWARDED) {
            streams.push((sig, signal(SignalKind::from_raw(sig))?));
        }
        Ok(SignalForwarder {
            streams: Some(streams),
            task: None,
        })
    }

    /// Starts forwarding to `handle`'s process.
    pub fn forward_to(&mut self, handle: SandboxHandle) {
        let Some(mut streams) = self.streams.take() else {
            return;
        };
        self.task = Some(tokio::spawn(async move {
            while let Some(sig) = futures_select(&mut streams).await {
                if let Err(e) = handle.signal(sig) {
                    tracing::debug!(sig, error = %e, "cannot forward a signal");
                }
            }
        }));
    }
}

impl Drop for SignalForwarder {
    fn drop(&mut self) {
        if let Some(t) = &self.task {
            t.abort();
        }
    }
}

/// Waits for the first of several signal streams; `None` if all ended.
async fn futures_select(streams: &mut [(i32, tokio::signal::unix::Signal)]) -> Option<i32> {
    std::future::poll_fn(|cx| {
        let mut all_done = true;
        for (sig, s) in streams.iter_mut() {
            match s.poll_recv(cx) {
                std::task::Poll::Ready(Some(())) => return std::task::Poll::Ready(Some(*sig)),
                std::task::Poll::Ready(None) => {}
                std::task::Poll::Pending => all_done = false,
            }
        }
        if all_done {
            std::task::Poll::Ready(None)
        } else {
            std::task::Poll::Pending
        }
    })
    .await
}

/// The caller's terminal in raw mode; restored when dropped.
pub(crate) struct RawTerminal {
    fd: std::os::fd::RawFd,
    saved: Termios,
}

impl RawTerminal {
    /// Puts `fd` (a terminal) into raw mode; `None` when it is not a
    /// terminal.
    pub fn enter(fd: BorrowedFd<'_>) -> Option<RawTerminal> {
        let saved = tcgetattr(fd).ok()?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(fd, SetArg::TCSANOW, &raw).ok()?;
        Some(RawTerminal {
            fd: fd.as_raw_fd(),
            saved,
        })
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        // SAFETY: the descriptor is the process's stdin, open for its life.
        let fd = unsafe { BorrowedFd::borrow_raw(self.fd) };
        let _ = tcsetattr(fd, SetArg::TCSADRAIN, &self.saved);
    }
}

/// The window size of a terminal.
fn window_size(fd: BorrowedFd<'_>) -> Option<libc::winsize> {
    // SAFETY: winsize is plain data; TIOCGWINSZ fills it.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: a valid descriptor and a pointer to our winsize.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
    (r == 0 && ws.ws_row > 0).then_some(ws)
}

/// Copies the caller terminal's size to the pty.
pub(crate) fn copy_window_size(pty: BorrowedFd<'_>) {
    let from = [libc::STDOUT_FILENO, libc::STDIN_FILENO, libc::STDERR_FILENO]
        .into_iter()
        // SAFETY: the standard descriptors are open for the process's life.
        .find_map(|fd| window_size(unsafe { BorrowedFd::borrow_raw(fd) }));
    if let Some(ws) = from {
        // SAFETY: a valid descriptor and a pointer to an initialised winsize.
        unsafe { libc::ioctl(pty.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    }
}

/// A pseudo-terminal attached to the caller's stdio.
pub(crate) struct PtyAttachment {
    _raw: Option<RawTerminal>,
    output: Option<JoinHandle<()>>,
    resize: tokio::task::JoinHandle<()>,
}

impl PtyAttachment {
    /// Starts copying: the pty's output to stdout; with `stdin`, the
    /// caller's input to the pty (raw mode when stdin is a terminal).
    pub fn start(pty: OwnedFd, stdin: bool) -> io::Result<PtyAttachment> {
        let raw = if stdin {
            RawTerminal::enter(io::stdin().as_fd())
        } else {
            None
        };
        copy_window_size(pty.as_fd());
        let pty = std::sync::Arc::new(pty);
        let mut winch = signal(SignalKind::window_change())?;
        let resize_pty = pty.clone();
        let resize = tokio::spawn(async move {
            while winch.recv().await.is_some() {
                copy_window_size(resize_pty.as_fd());
            }
        });
        if stdin {
            let input = pty.clone();
            // Blocked in read(2) on stdin until input comes: not joined.
            std::thread::Builder::new()
                .name("kiln-stdin".into())
                .spawn(move || {
                    let mut buf = [0u8; 4096];
                    let mut out = std::fs::File::from(match input.try_clone() {
                        Ok(fd) => fd,
                        Err(_) => return,
                    });
                    let mut stdin = io::stdin().lock();
                    loop {
                        match stdin.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => {
                                if out.write_all(&buf[..n]).is_err() {
                                    return;
                                }
                            }
                        }
                    }
                })?;
        }
        let output = std::thread::Builder::new()
            .name("kiln-pty-out".into())
            .spawn(move || {
                let Ok(fd) = pty.try_clone() else { return };
                drop(pty);
                let mut master = std::fs::File::from(fd);
                let mut buf = [0u8; 16 * 1024];
                let mut stdout = io::stdout().lock();
                loop {
                    match master.read(&mut buf) {
                        Ok(0) => return,
                        Ok(n) => {
                            if stdout.write_all(&buf[..n]).is_err() || stdout.flush().is_err() {
                                return;
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        // EIO: every slave descriptor is closed.
                        Err(_) => return,
                    }
                }
            })?;
        Ok(PtyAttachment {
            _raw: raw,
            output: Some(output),
            resize,
        })
    }

    /// Waits (briefly) for the last output, then restores the terminal.
    pub fn finish(mut self) {
        if let Some(out) = self.output.take() {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
            while !out.is_finished() && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            if out.is_finished() {
                let _ = out.join();
            }
        }
    }
}

impl Drop for PtyAttachment {
    fn drop(&mut self) {
        self.resize.abort();
    }
}
