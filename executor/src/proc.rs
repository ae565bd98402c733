//! Facts about processes from `/proc`, and signalling them without racing
//! pid reuse (pidfds).

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

/// The start time (clock ticks since boot, field 22 of `/proc/<pid>/stat`)
/// of a process: with the pid, it identifies the process for good.
pub fn start_time(pid: i32) -> io::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) may contain spaces and parentheses: the
    // fields after it start after the last ')'.
    let rest = stat
        .rfind(')')
        .map(|i| &stat[i + 1..])
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "malformed /proc/pid/stat"))?;
    // rest starts with " <state> <ppid> ..." : state is field 3, start time field 22.
    rest.split_whitespace()
        .nth(19)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "malformed /proc/pid/stat"))
}

/// A pidfd for `pid`.
pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this fd to us; nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Sends `signal` through a pidfd.
pub fn pidfd_send_signal(pidfd: &OwnedFd, signal: i32) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: a valid pidfd, a signal number, no siginfo, no flags.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Signals `pid` only if it is still the process that started at
/// `start_time` (pidfd opened first, then the start time checked, so the
/// pid cannot be reused in between).
pub fn signal_checked(pid: i32, start: u64, signal: i32) -> io::Result<()> {
    let fd = pidfd_open(pid)?;
    if start_time(pid)? != start {
        return Err(io::Error::from_raw_os_error(libc::ESRCH));
    }
    pidfd_send_signal(&fd, signal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_start_time_is_stable() {
        let pid = std::process::id() as i32;
        assert_eq!(start_time(pid).unwrap(), start_time(pid).unwrap());
        assert_eq!(
            signal_checked(pid, start_time(pid).unwrap() + 1, 0)
                .unwrap_err()
                .raw_os_error(),
            Some(libc::ESRCH)
        );
        signal_checked(pid, start_time(pid).unwrap(), 0).unwrap();
    }
}
