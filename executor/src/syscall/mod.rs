//! The system calls the sandbox's rootfs setup makes, behind a trait: the
//! real [`LinuxSyscall`] and a [`RecordingSyscall`] that records calls, so
//! the mount logic (order, flags, stubs, masked paths) is unit-tested
//! without root. (youki's `syscall/syscall.rs` + `syscall/test.rs` idea.)

mod linux;
#[cfg(test)]
mod recording;

pub(crate) use linux::LinuxSyscall;
#[cfg(test)]
pub(crate) use recording::{Call, RecordingSyscall};

use std::io;
use std::path::Path;

use nix::mount::MsFlags;

/// What is at a path (without following a final symlink).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileKind {
    Missing,
    Dir,
    File,
    Symlink,
    Other,
}

pub(crate) trait Syscall {
    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> io::Result<()>;
    /// Makes `new_root` the root (`pivot_root(".", ".")` from inside it),
    /// detaches the old root and changes to `/`.
    fn pivot_root(&self, new_root: &Path) -> io::Result<()>;
    fn mknod_char(&self, path: &Path, mode: u32, major: u64, minor: u64) -> io::Result<()>;
    fn symlink(&self, target: &Path, link: &Path) -> io::Result<()>;
    fn mkdir(&self, path: &Path, mode: u32) -> io::Result<()>;
    /// Creates an empty regular file (a mount target for a file).
    fn create_file(&self, path: &Path) -> io::Result<()>;
    fn kind(&self, path: &Path) -> FileKind;
    /// The modification time of `path` (seconds, nanoseconds).
    fn mtime(&self, path: &Path) -> io::Result<(i64, i64)>;
    fn sethostname(&self, name: &str) -> io::Result<()>;
    fn write_file(&self, path: &Path, data: &[u8]) -> io::Result<()>;
    fn remove_file(&self, path: &Path) -> io::Result<()>;
}
