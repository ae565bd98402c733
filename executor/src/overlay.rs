//! overlayfs's conventions on disk, and the merged view of a stack of
//! lower directories as overlayfs would show it, read without mounting
//! anything: the plain-copy snapshots copy it, and diffs compare a step's
//! result with it.
//!
//! In a layer directory (an unpacked snapshot or an upper directory) a
//! deleted path is a whiteout — a character device 0/0 with the path's
//! name — and a directory that replaced the one below is opaque
//! (`trusted.overlay.opaque=y`, or `user.overlay.opaque=y` where the stack
//! is mounted with `userxattr`). In the merged view a whiteout hides the
//! name in every layer below it, an opaque directory hides the same
//! directory in every layer below it, and anything else that is not a
//! directory ends the directory's stack.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{OsStr, OsString};
use std::fs::Metadata;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};

/// Whether `meta` is an overlay whiteout: a character device 0/0.
pub(crate) fn is_whiteout(meta: &Metadata) -> bool {
    meta.file_type().is_char_device() && meta.rdev() == 0
}

/// Whether the directory at `path` is marked opaque.
pub(crate) fn is_opaque(path: &Path) -> bool {
    ["trusted.overlay.opaque", "user.overlay.opaque"]
        .iter()
        .any(|n| crate::xattrs::get(path, n).as_deref() == Some(b"y"))
}

fn stat(path: &Path) -> io::Result<Option<Metadata>> {
    match std::fs::symlink_metadata(path) {
        Ok(m) => Ok(Some(m)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// One directory of the merged view: the host directories that make it
/// up, topmost first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct MergedDir {
    pub(crate) layers: Vec<PathBuf>,
}

/// One entry of the merged view.
#[derive(Debug)]
pub(crate) struct MergedEntry {
    /// Where it is on the host (in the topmost layer that has it).
    pub(crate) path: PathBuf,
    pub(crate) meta: Metadata,
    /// For a directory, its own stack.
    pub(crate) dir: Option<MergedDir>,
}

impl MergedDir {
    /// The root of the stack `lowers` (topmost first).
    pub(crate) fn root(lowers: &[PathBuf]) -> MergedDir {
        let mut layers = Vec::with_capacity(lowers.len());
        for l in lowers {
            layers.push(l.clone());
            if is_opaque(l) {
                break;
            }
        }
        MergedDir { layers }
    }

    /// The entry `name` of this directory, if the merged view has one.
    pub(crate) fn child(&self, name: &OsStr) -> io::Result<Option<MergedEntry>> {
        for (i, layer) in self.layers.iter().enumerate() {
            let path = layer.join(name);
            let Some(meta) = stat(&path)? else {
                continue;
            };
            if is_whiteout(&meta) {
                return Ok(None);
            }
            let dir = if meta.is_dir() {
                Some(self.child_dir(i, name, &path)?)
            } else {
                None
            };
            return Ok(Some(MergedEntry { path, meta, dir }));
        }
        Ok(None)
    }

    /// The stack of the directory `name`, found first in layer `top`.
    fn child_dir(&self, top: usize, name: &OsStr, path: &Path) -> io::Result<MergedDir> {
        let mut layers = vec![path.to_path_buf()];
        if is_opaque(path) {
            return Ok(MergedDir { layers });
        }
        for layer in &self.layers[top + 1..] {
            let p = layer.join(name);
            match stat(&p)? {
                None => continue,
                Some(m) if m.is_dir() => {
                    let opaque = is_opaque(&p);
                    layers.push(p);
                    if opaque {
                        break;
                    }
                }
                // A whiteout or a non-directory ends the stack.
                Some(_) => break,
            }
        }
        Ok(MergedDir { layers })
    }

    /// Every entry of this directory, by name.
    pub(crate) fn entries(&self) -> io::Result<BTreeMap<OsString, MergedEntry>> {
        let mut names = BTreeSet::new();
        for layer in &self.layers {
            for e in std::fs::read_dir(layer)? {
                names.insert(e?.file_name());
            }
        }
        let mut out = BTreeMap::new();
        for name in names {
            if let Some(e) = self.child(&name)? {
                out.insert(name, e);
            }
        }
        Ok(out)
    }
}

/// The entry at `rel` (relative, no `..`) in the merged view of `lowers`
/// (topmost first); the root itself for an empty path.
pub(crate) fn lookup(lowers: &[PathBuf], rel: &Path) -> io::Result<Option<MergedEntry>> {
    let Some(top) = lowers.first() else {
        return Ok(None);
    };
    let root = MergedDir::root(lowers);
    let mut entry = MergedEntry {
        path: top.clone(),
        meta: std::fs::symlink_metadata(top)?,
        dir: Some(root),
    };
    for c in rel.components() {
        let Component::Normal(name) = c else {
            continue;
        };
        let Some(dir) = &entry.dir else {
            return Ok(None);
        };
        match dir.child(name)? {
            Some(e) => entry = e,
            None => return Ok(None),
        }
    }
    Ok(Some(entry))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whiteout(path: &Path) -> bool {
        nix::sys::stat::mknod(
            path,
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::empty(),
            0,
        )
        .is_ok()
    }

    fn opaque(path: &Path) -> bool {
        xattr::set(path, "trusted.overlay.opaque", b"y").is_ok()
            || xattr::set(path, "user.overlay.opaque", b"y").is_ok()
    }

    fn names(d: &MergedDir) -> Vec<String> {
        d.entries()
            .unwrap()
            .into_keys()
            .map(|n| n.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn upper_layers_win_and_directories_merge() {
        let t = tempfile::tempdir().unwrap();
        let (top, bottom) = (t.path().join("top"), t.path().join("bottom"));
        for d in [&top, &bottom] {
            std::fs::create_dir_all(d.join("etc")).unwrap();
        }
        std::fs::write(bottom.join("etc/a"), "old").unwrap();
        std::fs::write(bottom.join("etc/b"), "b").unwrap();
        std::fs::write(top.join("etc/a"), "new").unwrap();
        std::fs::write(top.join("etc/c"), "c").unwrap();
        std::fs::write(bottom.join("file-then-dir"), "").unwrap();
        std::fs::create_dir(top.join("file-then-dir")).unwrap();
        let lowers = [top.clone(), bottom.clone()];
        let root = MergedDir::root(&lowers);
        assert_eq!(names(&root), ["etc", "file-then-dir"]);
        let etc = root.child(OsStr::new("etc")).unwrap().unwrap();
        assert_eq!(names(etc.dir.as_ref().unwrap()), ["a", "b", "c"]);
        let a = lookup(&lowers, Path::new("etc/a")).unwrap().unwrap();
        assert_eq!(a.path, top.join("etc/a"));
        let d = lookup(&lowers, Path::new("file-then-dir"))
            .unwrap()
            .unwrap();
        assert_eq!(d.dir.unwrap().layers, [top.join("file-then-dir")]);
        assert!(lookup(&lowers, Path::new("etc/a/x")).unwrap().is_none());
        assert!(lookup(&lowers, Path::new("nope")).unwrap().is_none());
    }

    #[test]
    fn whiteouts_and_opaque_directories_hide_what_is_below() {
        let t = tempfile::tempdir().unwrap();
        let (top, bottom) = (t.path().join("top"), t.path().join("bottom"));
        for d in [&top, &bottom] {
            std::fs::create_dir_all(d.join("etc")).unwrap();
            std::fs::create_dir_all(d.join("home")).unwrap();
        }
        std::fs::write(bottom.join("etc/gone"), "").unwrap();
        std::fs::write(bottom.join("etc/kept"), "").unwrap();
        std::fs::write(bottom.join("home/old"), "").unwrap();
        std::fs::write(top.join("home/new"), "").unwrap();
        if !whiteout(&top.join("etc/gone")) || !opaque(&top.join("home")) {
            eprintln!("skipped: needs root (mknod) or xattrs");
            return;
        }
        let lowers = [top, bottom];
        let root = MergedDir::root(&lowers);
        let etc = root.child(OsStr::new("etc")).unwrap().unwrap();
        assert_eq!(names(etc.dir.as_ref().unwrap()), ["kept"]);
        let home = root.child(OsStr::new("home")).unwrap().unwrap();
        assert_eq!(names(home.dir.as_ref().unwrap()), ["new"]);
        assert!(lookup(&lowers, Path::new("etc/gone")).unwrap().is_none());
        assert!(lookup(&lowers, Path::new("home/old")).unwrap().is_none());
    }
}
