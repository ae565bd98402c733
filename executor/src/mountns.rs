//! Work in a private mount namespace without touching the host's: a
//! short-lived thread unshares its mount namespace (and its filesystem
//! attributes, which Linux requires for that), makes every mount private
//! so nothing propagates back, and runs the work there. Whatever the work
//! mounts disappears with the thread, even if kiln is killed: nothing is
//! ever left mounted on the host. Needs CAP_SYS_ADMIN.

use std::io;

use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, unshare};

/// Runs `f` on a new thread in a private mount namespace of its own and
/// returns what it returns; an error when the namespace cannot be made.
/// A panic in `f` is resumed on the caller's thread.
pub fn in_private_mount_namespace<R: Send + 'static>(
    f: impl FnOnce() -> R + Send + 'static,
) -> io::Result<R> {
    let handle = std::thread::Builder::new()
        .name("kiln-mountns".into())
        .spawn(move || {
            unshare(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_FS)?;
            mount(
                None::<&str>,
                "/",
                None::<&str>,
                MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                None::<&str>,
            )?;
            Ok::<R, nix::errno::Errno>(f())
        })?;
    match handle.join() {
        Ok(r) => r.map_err(io::Error::from),
        Err(p) => std::panic::resume_unwind(p),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_made_inside_stay_inside() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let point = dir.path().to_path_buf();
        let p = point.clone();
        let seen = in_private_mount_namespace(move || {
            mount(
                Some("tmpfs"),
                &p,
                Some("tmpfs"),
                MsFlags::empty(),
                None::<&str>,
            )
            .unwrap();
            std::fs::read_to_string("/proc/thread-self/mountinfo")
                .unwrap()
                .contains(&p.display().to_string())
        })
        .unwrap();
        assert!(seen);
        let host = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(!host.contains(&point.display().to_string()));
    }
}
