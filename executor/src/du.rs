//! Disk usage of a directory tree, as `kiln system df` and `kiln prune`
//! count it.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Bytes of regular files under `dir` (allocated blocks; not following
/// symlinks, not crossing into mounts); 0 when it cannot be read.
pub fn dir_size(dir: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(dir) else {
        return 0;
    };
    let dev = meta.dev();
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(m) = e.metadata() else { continue };
            if m.dev() != dev {
                continue;
            }
            if m.is_dir() {
                stack.push(e.path());
            } else if m.is_file() {
                total += m.blocks() * 512;
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_files_below() {
        let t = tempfile::tempdir().unwrap();
        assert_eq!(dir_size(t.path()), 0);
        std::fs::create_dir(t.path().join("d")).unwrap();
        std::fs::write(t.path().join("d/f"), vec![1u8; 10_000]).unwrap();
        assert!(dir_size(t.path()) >= 10_000);
        assert_eq!(dir_size(&t.path().join("missing")), 0);
    }
}
