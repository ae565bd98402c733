//! Leftovers of a container that died with its supervisor: mounts under its
//! directory (found in `/proc/self/mountinfo`, unmounted deepest first; the
//! network namespace file is one), and a pasta that served it.

use std::path::{Path, PathBuf};

/// Decodes mountinfo's octal escapes (`\040` for a space).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            let oct = std::str::from_utf8(&bytes[i + 1..i + 4]).unwrap_or("");
            if let Ok(v) = u8::from_str_radix(oct, 8) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Mount points at or below `dir` in a mountinfo text, deepest first.
pub(crate) fn mounts_under(mountinfo: &str, dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape(p)))
        .filter(|p| p.starts_with(dir))
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    found.dedup();
    found
}

/// Detaches every mount at or below `dir` (lazily, so busy ones go too).
pub(crate) fn unmount_all_under(dir: &Path) {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    for mount_point in mounts_under(&info, dir) {
        match nix::mount::umount2(&mount_point, nix::mount::MntFlags::MNT_DETACH) {
            Ok(()) => tracing::debug!(path = %mount_point.display(), "unmounted a leftover"),
            Err(errno) => {
                tracing::warn!(path = %mount_point.display(), %errno, "cannot unmount a leftover")
            }
        }
    }
}

/// Everything a stopped container may have left: its pasta, mounts under
/// its directory (the network namespace file), files of the last run.
pub(crate) fn release_leftovers(dir: &Path) {
    crate::network::stop_pasta(&dir.join("pasta.pid"));
    let _ = std::fs::remove_file(dir.join("pasta.pid"));
    unmount_all_under(dir);
    let _ = std::fs::remove_file(dir.join("netns"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nested_mounts_deepest_first() {
        let info = "\
22 1 0:21 / / rw - ext4 /dev/vda rw
40 22 0:35 / /r/containers/abc/rootfs rw - overlay overlay rw
41 40 0:36 / /r/containers/abc/rootfs/proc rw - proc proc rw
42 22 0:37 / /r/containers/abcd/rootfs rw - overlay overlay rw
43 22 0:38 / /r/containers/abc/with\\040space rw - tmpfs tmpfs rw
";
        let got = mounts_under(info, Path::new("/r/containers/abc"));
        assert_eq!(
            got,
            vec![
                PathBuf::from("/r/containers/abc/rootfs/proc"),
                PathBuf::from("/r/containers/abc/rootfs"),
                PathBuf::from("/r/containers/abc/with space"),
            ]
        );
    }
}
