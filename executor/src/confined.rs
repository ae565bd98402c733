//! Resolving a path inside a root filesystem as the container would see it:
//! symlinks (absolute or relative, `..` included) never lead outside the
//! root. Used to read image files (`/etc/passwd`) and to place mount
//! targets from the host side.

use std::io;
use std::path::{Component, Path, PathBuf};

/// Most symlinks followed in one resolution (Linux's own limit).
const MAX_SYMLINKS: usize = 40;

/// Returns the host path of `path` (absolute or relative to the root) as
/// seen inside `root`, with every symlink resolved within `root`. The last
/// components need not exist (they are appended as they are).
pub fn resolve_in_root(root: &Path, path: &Path) -> io::Result<PathBuf> {
    // Components still to walk, in reverse order (a stack).
    let mut todo: Vec<std::ffi::OsString> = Vec::new();
    push_components(&mut todo, path);
    let mut current: Vec<std::ffi::OsString> = Vec::new();
    let mut links = 0;
    while let Some(part) = todo.pop() {
        if part == ".." {
            current.pop();
            continue;
        }
        let candidate: PathBuf = root.join(current.iter().collect::<PathBuf>()).join(&part);
        match std::fs::symlink_metadata(&candidate) {
            Ok(meta) if meta.file_type().is_symlink() => {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(io::Error::from_raw_os_error(libc::ELOOP));
                }
                let target = std::fs::read_link(&candidate)?;
                if target.is_absolute() {
                    current.clear();
                }
                push_components(&mut todo, &target);
            }
            Ok(_) => current.push(part),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                current.push(part);
                // Nothing below a missing component can be a symlink.
                while let Some(rest) = todo.pop() {
                    if rest == ".." {
                        current.pop();
                    } else {
                        current.push(rest);
                    }
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(root.join(current.iter().collect::<PathBuf>()))
}

fn push_components(todo: &mut Vec<std::ffi::OsString>, path: &Path) {
    let parts: Vec<_> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    todo.extend(parts.into_iter().rev());
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn symlinks_stay_inside() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        symlink("/a/b", root.join("abs")).unwrap();
        symlink("../../../..", root.join("a/up")).unwrap();
        symlink("b", root.join("a/rel")).unwrap();
        symlink("loop", root.join("loop")).unwrap();
        assert_eq!(
            resolve_in_root(root, Path::new("/abs/x")).unwrap(),
            root.join("a/b/x")
        );
        assert_eq!(
            resolve_in_root(root, Path::new("a/up/etc")).unwrap(),
            root.join("etc")
        );
        assert_eq!(
            resolve_in_root(root, Path::new("a/rel")).unwrap(),
            root.join("a/b")
        );
        assert_eq!(
            resolve_in_root(root, Path::new("../../x/../y")).unwrap(),
            root.join("y")
        );
        assert_eq!(
            resolve_in_root(root, Path::new("loop"))
                .unwrap_err()
                .raw_os_error(),
            Some(libc::ELOOP)
        );
    }
}
