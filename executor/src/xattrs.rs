//! Extended attributes as layers, snapshots, file operations and context
//! checksums see them: read without following symlinks, sorted by name,
//! and never overlayfs's own bookkeeping (`trusted.overlay.*`,
//! `user.overlay.*`), which describes a snapshot directory, not the files
//! in it.

use std::ffi::OsString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// (name, value) pairs, sorted by name.
pub(crate) type Xattrs = Vec<(OsString, Vec<u8>)>;

/// Whether `name` is an attribute overlayfs keeps for itself.
pub(crate) fn is_overlay_attr(name: &[u8]) -> bool {
    name.starts_with(b"trusted.overlay.") || name.starts_with(b"user.overlay.")
}

/// A filesystem that has no extended attributes, or not this one.
fn is_unsupported(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOTSUP) | Some(libc::ENODATA))
}

/// The extended attributes of `path` (not followed), sorted by name,
/// without overlayfs's own.
pub(crate) fn read(path: &Path) -> io::Result<Xattrs> {
    let names = match xattr::list(path) {
        Ok(n) => n,
        Err(e) if is_unsupported(&e) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for name in names {
        if is_overlay_attr(name.as_bytes()) {
            continue;
        }
        match xattr::get(path, &name) {
            Ok(Some(v)) => out.push((name, v)),
            Ok(None) => {}
            Err(e) if is_unsupported(&e) => {}
            Err(e) => return Err(e),
        }
    }
    out.sort();
    Ok(out)
}

/// Copies the extended attributes of `src` to `dst` (neither followed),
/// overlayfs's own left out. An attribute the destination refuses is
/// skipped with a warning, as BuildKit's copier does; failing to read the
/// source is an error.
pub(crate) fn copy(src: &Path, dst: &Path) -> io::Result<()> {
    for (name, value) in read(src)? {
        if let Err(e) = xattr::set(dst, &name, &value) {
            tracing::warn!(path = %dst.display(), xattr = ?name, error = %e, "extended attribute not copied");
        }
    }
    Ok(())
}

/// The value of one attribute, `None` when it is not set (or the
/// filesystem has none).
pub(crate) fn get(path: &Path, name: &str) -> Option<Vec<u8>> {
    xattr::get(path, name).ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_is_sorted_and_skips_overlay_bookkeeping() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, "x").unwrap();
        // user.* needs a filesystem with user xattrs (tmpfs, ext4 do).
        if xattr::set(&f, "user.b", b"2").is_err() {
            eprintln!("skipped: no user xattrs on this filesystem");
            return;
        }
        xattr::set(&f, "user.a", b"1").unwrap();
        xattr::set(&f, "user.overlay.opaque", b"y").unwrap();
        let got = read(&f).unwrap();
        assert_eq!(
            got,
            vec![
                (OsString::from("user.a"), b"1".to_vec()),
                (OsString::from("user.b"), b"2".to_vec())
            ]
        );
        let g = dir.path().join("g");
        std::fs::write(&g, "y").unwrap();
        copy(&f, &g).unwrap();
        assert_eq!(read(&g).unwrap(), got);
        assert_eq!(get(&g, "user.overlay.opaque"), None);
        assert_eq!(get(&f, "user.overlay.opaque"), Some(b"y".to_vec()));
    }
}
