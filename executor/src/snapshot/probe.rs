//! Whether overlayfs is usable for snapshots under a directory: a test
//! mount there (a lower holding one file, an upper, a work directory) and
//! the deletion of that file through it, which needs whiteouts to work.
//! It runs in a private mount namespace (see `mountns.rs`), so nothing is
//! ever mounted on the host, and the answer is kept for the life of the
//! process. Without root no test mount is possible: the
//! kernel's list of filesystems decides.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use nix::mount::{MsFlags, mount};

use crate::mountns::in_private_mount_namespace;

/// Whether overlay snapshots work under `dir` (remembered per directory).
pub(crate) fn overlay_usable(dir: &Path) -> bool {
    static SEEN: Mutex<Vec<(PathBuf, bool)>> = Mutex::new(Vec::new());
    let mut seen = SEEN.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, ok)) = seen.iter().find(|(d, _)| d == dir) {
        return *ok;
    }
    let ok = if nix::unistd::geteuid().is_root() {
        test_mount(dir)
    } else {
        listed()
    };
    seen.push((dir.to_path_buf(), ok));
    ok
}

/// Says once per process that snapshots fall back to plain copies.
pub(crate) fn warn_once(dir: &Path) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        tracing::warn!(dir = %dir.display(),
            "overlayfs is not usable here: build steps run on plain copies of their layers (slower, more disk)");
    });
}

/// Whether the kernel lists overlay among its filesystems.
fn listed() -> bool {
    std::fs::read_to_string("/proc/filesystems")
        .map(|s| s.lines().any(|l| l.trim_end().ends_with("\toverlay")))
        .unwrap_or(false)
}

fn test_mount(dir: &Path) -> bool {
    static N: AtomicU64 = AtomicU64::new(0);
    let scratch = dir.join(format!(
        "{}-probe-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let result = prepare(&scratch).and_then(|()| {
        let s = scratch.clone();
        in_private_mount_namespace(move || try_mount(&s))
            .map_err(|e| format!("private mount namespace: {e}"))?
    });
    let _ = std::fs::remove_dir_all(&scratch);
    match result {
        Ok(()) => true,
        Err(reason) => {
            tracing::debug!(dir = %dir.display(), %reason, "overlayfs test mount failed");
            false
        }
    }
}

fn prepare(scratch: &Path) -> Result<(), String> {
    for d in ["lower", "upper", "work", "merged"] {
        std::fs::create_dir_all(scratch.join(d)).map_err(|e| format!("create {d}: {e}"))?;
    }
    std::fs::write(scratch.join("lower/f"), b"").map_err(|e| format!("create a file: {e}"))
}

/// In the private namespace: the test mount and the deletion. The mount
/// goes with the namespace.
fn try_mount(scratch: &Path) -> Result<(), String> {
    let sub = |n: &str| scratch.join(n);
    let opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        sub("lower").display(),
        sub("upper").display(),
        sub("work").display()
    );
    mount(
        Some("overlay"),
        &sub("merged"),
        Some("overlay"),
        MsFlags::empty(),
        Some(opts.as_str()),
    )
    .map_err(|e| format!("mount: {e}"))?;
    let deleted = std::fs::remove_file(sub("merged").join("f"));
    let _ = nix::mount::umount2(&sub("merged"), nix::mount::MntFlags::MNT_DETACH);
    deleted.map_err(|e| format!("delete through the overlay: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_and_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let first = overlay_usable(dir.path());
        assert_eq!(overlay_usable(dir.path()), first);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(!mounts.contains(&dir.path().display().to_string()));
    }
}
