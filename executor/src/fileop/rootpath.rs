//! Resolving a path inside a root directory as if that directory were `/`:
//! symlinks (absolute or relative) and `..` are followed but can never leave
//! the root, like `chroot` would (containerd's `fs.RootPath`). Used for every
//! destination path in an image's root filesystem and for source paths in a
//! build context or another stage.

use std::path::{Path, PathBuf};

use super::FileOpError;

/// Most symlinks followed while resolving one path (Linux's own limit is 40;
/// BuildKit allows 255).
const MAX_LINKS: usize = 255;

/// A path resolved inside a root: its components relative to the root, each
/// an existing non-symlink directory except possibly the last ones (which may
/// not exist yet, or be a symlink when it was not followed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Resolved {
    pub(crate) components: Vec<String>,
}

impl Resolved {
    /// The host path: `root` joined with the components.
    pub(crate) fn under(&self, root: &Path) -> PathBuf {
        let mut p = root.to_path_buf();
        for c in &self.components {
            p.push(c);
        }
        p
    }

    /// The path relative to the root, `/`-separated, `""` for the root.
    pub(crate) fn rel(&self) -> String {
        self.components.join("/")
    }

    /// The path as seen from inside the root (`/a/b`, `/` for the root).
    pub(crate) fn display(&self) -> String {
        format!("/{}", self.rel())
    }
}

/// Splits `path` into its non-empty components, in order.
fn split(path: &str) -> impl DoubleEndedIterator<Item = &str> {
    path.split('/').filter(|c| !c.is_empty())
}

/// Resolves `path` (interpreted inside `root`; a leading `/` means the root)
/// following symlinks in every component, and in the last one only when
/// `follow_last` is set. Components that do not exist are kept as written
/// (with `.` and `..` applied lexically).
pub(crate) fn resolve(root: &Path, path: &str, follow_last: bool) -> Result<Resolved, FileOpError> {
    // Work list of components still to resolve, last component at the end
    // of the vector's front... kept reversed so `pop` yields the next one.
    let mut todo: Vec<String> = split(path).rev().map(str::to_owned).collect();
    let mut done: Vec<String> = Vec::new();
    let mut links = 0usize;
    let mut missing = false;
    while let Some(comp) = todo.pop() {
        match comp.as_str() {
            "." => continue,
            ".." => {
                done.pop();
                continue;
            }
            _ => {}
        }
        if missing {
            done.push(comp);
            continue;
        }
        let is_last = todo.is_empty();
        let mut host = root.to_path_buf();
        for c in &done {
            host.push(c);
        }
        host.push(&comp);
        let meta = match std::fs::symlink_metadata(&host) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                missing = true;
                done.push(comp);
                continue;
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => {
                return Err(FileOpError::NotADirectory {
                    path: format!("/{}", done.join("/")),
                });
            }
            Err(e) => return Err(FileOpError::io("stat", host)(e)),
        };
        if !meta.file_type().is_symlink() || (is_last && !follow_last) {
            done.push(comp);
            continue;
        }
        links += 1;
        if links > MAX_LINKS {
            return Err(FileOpError::SymlinkLoop {
                path: path.to_owned(),
            });
        }
        let target = std::fs::read_link(&host).map_err(FileOpError::io("read link", &host))?;
        let target = target.to_string_lossy().into_owned();
        if target.starts_with('/') {
            done.clear();
        }
        for c in split(&target).rev() {
            todo.push(c.to_owned());
        }
    }
    Ok(Resolved { components: done })
}

/// Cleans a path lexically, inside a root: `.` dropped, `..` pops (never
/// above the root), empty components dropped. Returns the components.
pub(crate) fn clean(path: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for c in split(path) {
        match c {
            "." => {}
            ".." => {
                out.pop();
            }
            _ => out.push(c.to_owned()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn tree() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        std::fs::create_dir_all(r.join("usr/lib")).unwrap();
        std::fs::create_dir_all(r.join("data")).unwrap();
        symlink("/usr/lib", r.join("lib")).unwrap();
        symlink("../../../../etc", r.join("data/escape")).unwrap();
        symlink("loop2", r.join("loop1")).unwrap();
        symlink("loop1", r.join("loop2")).unwrap();
        symlink("usr", r.join("rel")).unwrap();
        t
    }

    #[test]
    fn absolute_symlink_stays_in_root() {
        let t = tree();
        let r = resolve(t.path(), "/lib/x.so", true).unwrap();
        assert_eq!(r.rel(), "usr/lib/x.so");
        assert_eq!(r.under(t.path()), t.path().join("usr/lib/x.so"));
    }

    #[test]
    fn relative_symlink_cannot_climb_out() {
        let t = tree();
        let r = resolve(t.path(), "data/escape/passwd", true).unwrap();
        assert_eq!(r.rel(), "etc/passwd");
    }

    #[test]
    fn dotdot_is_clamped_at_root() {
        let t = tree();
        assert_eq!(
            resolve(t.path(), "../../usr/./lib/..", true).unwrap().rel(),
            "usr"
        );
        assert_eq!(resolve(t.path(), "/", true).unwrap().rel(), "");
    }

    #[test]
    fn last_component_followed_only_when_asked() {
        let t = tree();
        assert_eq!(resolve(t.path(), "lib", false).unwrap().rel(), "lib");
        assert_eq!(resolve(t.path(), "lib", true).unwrap().rel(), "usr/lib");
        assert_eq!(
            resolve(t.path(), "rel/lib", false).unwrap().rel(),
            "usr/lib"
        );
    }

    #[test]
    fn missing_components_are_kept() {
        let t = tree();
        let r = resolve(t.path(), "lib/new/../new2/file", true).unwrap();
        assert_eq!(r.rel(), "usr/lib/new2/file");
    }

    #[test]
    fn loops_are_an_error() {
        let t = tree();
        assert!(matches!(
            resolve(t.path(), "loop1/x", true),
            Err(FileOpError::SymlinkLoop { .. })
        ));
    }

    #[test]
    fn clean_is_lexical() {
        assert_eq!(clean("/a/./b/../c//d/"), vec!["a", "c", "d"]);
        assert_eq!(clean("../.."), Vec::<String>::new());
    }
}
