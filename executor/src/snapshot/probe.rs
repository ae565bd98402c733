//! Whether overlayfs is usable for snapshots under a directory: a test
//! mount there (a lower holding one file, an upper, a work directory) and
//! the deletion of that file through it, which needs whiteouts to work.
//! It runs in a private mount namespace (see `mountns.rs`), so nothing is
//! ever mounted on the host, and the answer is kept for the life of the
//! process. Without root no test mount is possible: the
//! kernel's list of filesystems decides.
//!
//! The answer is also remembered in a memo file (`snapshots/overlay-probe`
//! of the kiln root) for the current boot and filesystem (the kernel's boot id and the directory's device),
//! as containers/storage keeps its overlay feature checks in its run
//! directory: the test mount creates and deletes seven inodes, which costs
//! more than the rest of a fully cached build. Another boot, or the root
//! moved to another filesystem, probes again; the file is a hint written
//! without fsync (lost, it costs one probe).

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use nix::mount::{MsFlags, mount};

use crate::mountns::in_private_mount_namespace;

/// Whether overlay snapshots work under `dir` (remembered per directory,
/// and across processes in the file `memo` when given).
pub(crate) fn overlay_usable(dir: &Path, memo: Option<&Path>) -> bool {
    static SEEN: Mutex<Vec<(PathBuf, bool)>> = Mutex::new(Vec::new());
    let mut seen = SEEN.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, ok)) = seen.iter().find(|(d, _)| d == dir) {
        return *ok;
    }
    let ok = if nix::unistd::geteuid().is_root() {
        let key = memo.and_then(|m| Some((m, probe_key(dir)?)));
        match key.as_ref().and_then(|(m, k)| remembered(m, k)) {
            Some(ok) => ok,
            None => {
                let ok = test_mount(dir);
                if let Some((m, k)) = &key {
                    remember(m, k, ok);
                }
                ok
            }
        }
    } else {
        listed()
    };
    seen.push((dir.to_path_buf(), ok));
    ok
}

/// What the answer depends on: this boot (kernel, modules, mount options)
/// and the filesystem holding `dir`.
fn probe_key(dir: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let dev = std::fs::metadata(dir).ok()?.dev();
    Some(format!("{} {dev}", boot.trim()))
}

/// The answer remembered in `memo` for `key`, if any.
fn remembered(memo: &Path, key: &str) -> Option<bool> {
    let text = std::fs::read_to_string(memo).ok()?;
    let (k, answer) = text.trim_end().rsplit_once(' ')?;
    if k != key {
        return None;
    }
    match answer {
        "overlay" => Some(true),
        "copy" => Some(false),
        _ => None,
    }
}

/// Remembers the answer (temp file and rename, so a reader never sees half
/// of it); failures only cost a probe next time.
fn remember(memo: &Path, key: &str, ok: bool) {
    let mut tmp = memo.as_os_str().to_owned();
    tmp.push(format!(".{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let text = format!("{key} {}\n", if ok { "overlay" } else { "copy" });
    if std::fs::write(&tmp, text).is_err() || std::fs::rename(&tmp, memo).is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
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
    // `volatile` where the kernel has it (5.10+), as steps mount: the
    // unmount then does not sync the whole filesystem
    let try_with = |o: &str| {
        mount(
            Some("overlay"),
            &sub("merged"),
            Some("overlay"),
            MsFlags::empty(),
            Some(o),
        )
    };
    try_with(&format!("{opts},volatile"))
        .or_else(|e| match e {
            nix::errno::Errno::EINVAL => try_with(&opts),
            e => Err(e),
        })
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
        let first = overlay_usable(dir.path(), None);
        assert_eq!(overlay_usable(dir.path(), None), first);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(!mounts.contains(&dir.path().display().to_string()));
    }

    #[test]
    fn a_remembered_answer_is_used_for_the_same_boot_and_filesystem_only() {
        let dir = tempfile::tempdir().unwrap();
        let memos = tempfile::tempdir().unwrap();
        let memo = memos.path().join("overlay-probe");
        let key = probe_key(dir.path()).unwrap();
        assert_eq!(remembered(&memo, &key), None);
        remember(&memo, &key, false);
        assert_eq!(remembered(&memo, &key), Some(false));
        assert_eq!(remembered(&memo, "another-boot 1"), None);
        remember(&memo, &key, true);
        assert_eq!(remembered(&memo, &key), Some(true));
        // Only the memo is left: no temp file.
        assert_eq!(std::fs::read_dir(memos.path()).unwrap().count(), 1);
        if nix::unistd::geteuid().is_root() {
            // The remembered answer wins over a test mount.
            remember(&memo, &key, false);
            assert!(!overlay_usable(dir.path(), Some(&memo)));
            assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        }
    }
}
