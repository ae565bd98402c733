//! What a step changed, read from its overlay upper directory alone (no
//! walk of the whole rootfs): new and changed entries, deletions (overlay's
//! 0/0 character devices) as `.wh.<name>`, directories that replaced a
//! lower one (`trusted.overlay.opaque=y`) followed by `.wh..wh..opq`.
//! Directories that overlayfs merely copied up, unchanged, are left out.

use std::ffi::OsString;
use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::changes::{
    Change, DiffReadError, Links, dir_changes, leaf_change, read_err, same_dir_meta, sibling_key,
    whiteout,
};
use crate::overlay::{is_opaque, is_whiteout, lookup};

struct Walker<'a> {
    upper: &'a Path,
    lowers: &'a [PathBuf],
    links: Links,
    out: Vec<Change>,
}

impl Walker<'_> {
    fn err(&self, rel: &Path) -> impl FnOnce(std::io::Error) -> DiffReadError {
        read_err(self.upper.join(rel))
    }

    /// Whether the upper directory `rel` is only a copy-up of the lowers'
    /// one: same metadata, so no entry of its own.
    fn copied_up(&self, rel: &Path, meta: &Metadata, attrs: &crate::xattrs::Xattrs) -> bool {
        match lookup(self.lowers, rel) {
            Ok(Some(l)) => same_dir_meta(meta, attrs, &l.meta, &l.path),
            _ => false,
        }
    }

    fn dir(&mut self, rel: &Path) -> Result<(), DiffReadError> {
        let host = self.upper.join(rel);
        let mut names: Vec<((bool, Vec<u8>), OsString, Metadata)> = Vec::new();
        for entry in std::fs::read_dir(&host).map_err(self.err(rel))? {
            let entry = entry.map_err(self.err(rel))?;
            let name = entry.file_name();
            let meta =
                std::fs::symlink_metadata(entry.path()).map_err(self.err(&rel.join(&name)))?;
            let key = sibling_key(&name, is_whiteout(&meta));
            names.push((key, name, meta));
        }
        names.sort_by(|a, b| a.0.cmp(&b.0));
        for (_, name, meta) in names {
            let child = rel.join(&name);
            let path = self.upper.join(&child);
            if is_whiteout(&meta) {
                self.out.push(whiteout(rel, &name, meta.mtime()));
                continue;
            }
            if meta.is_dir() {
                let opaque = is_opaque(&path);
                let attrs = crate::xattrs::read(&path).map_err(self.err(&child))?;
                if opaque || !self.copied_up(&child, &meta, &attrs) {
                    self.out.extend(dir_changes(&child, &meta, attrs, opaque));
                }
                self.dir(&child)?;
                continue;
            }
            if let Some(c) =
                leaf_change(&mut self.links, &child, &path, &meta).map_err(self.err(&child))?
            {
                self.out.push(c);
            }
        }
        Ok(())
    }
}

/// The changes in `upper` over `lowers` (topmost first), in layer order.
pub(crate) fn read_changes(upper: &Path, lowers: &[PathBuf]) -> Result<Vec<Change>, DiffReadError> {
    let mut w = Walker {
        upper,
        lowers,
        links: Links::default(),
        out: Vec::new(),
    };
    w.dir(Path::new(""))?;
    Ok(w.out)
}
