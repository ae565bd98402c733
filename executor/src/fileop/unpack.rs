//! ADD of a local tar archive: detection by content (plain, gzip, bzip2, xz,
//! zstd — never by file name) and extraction contained in the destination
//! directory, streaming, as BuildKit's `applyRootArchive` does: paths that
//! climb out are refused, symlinks inside the archive are resolved with the
//! destination as their root, owners come from the headers unless `--chown`
//! overrides them, implied parents are created root-owned with mode 0755.

use std::fs::File;
use std::io::{BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::sys::stat::{Mode, SFlag, mknod};
use nix::sys::time::TimeSpec;
use tar::EntryType;

use super::meta;
use super::rootpath;
use super::{CopyStats, FileOpError, Owner};

/// How an archive's bytes are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Compression {
    None,
    Gzip,
    Bzip2,
    Xz,
    Zstd,
}

fn sniff(head: &[u8]) -> Compression {
    if head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if head.starts_with(b"BZh") {
        Compression::Bzip2
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        Compression::Xz
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    }
}

/// Opens `path` decompressed according to its leading bytes.
fn open_decompressed(path: &Path) -> std::io::Result<Box<dyn Read>> {
    let mut f = File::open(path)?;
    let mut head = [0u8; 6];
    let mut n = 0;
    while n < head.len() {
        let r = f.read(&mut head[n..])?;
        if r == 0 {
            break;
        }
        n += r;
    }
    let f = BufReader::with_capacity(128 * 1024, File::open(path)?);
    Ok(match sniff(&head[..n]) {
        Compression::None => Box::new(f),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(f)),
        Compression::Bzip2 => Box::new(bzip2::read::MultiBzDecoder::new(f)),
        Compression::Xz => Box::new(liblzma::read::XzDecoder::new_multi_decoder(f)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(f)?),
    })
}

/// Whether `path` is a regular file holding a tar archive (its first header
/// reads and checks out once decompressed).
pub(crate) fn is_archive(path: &Path) -> bool {
    let Ok(m) = std::fs::symlink_metadata(path) else {
        return false;
    };
    if !m.is_file() {
        return false;
    }
    let Ok(r) = open_decompressed(path) else {
        return false;
    };
    let mut ar = tar::Archive::new(r);
    let Ok(mut entries) = ar.entries() else {
        return false;
    };
    matches!(entries.next(), Some(Ok(_)))
}

/// A member name made relative and clean; `None` for the root itself.
fn clean_member(name: &[u8], archive: &str) -> Result<Option<String>, FileOpError> {
    let s = String::from_utf8_lossy(name);
    let trimmed = s.trim_start_matches('/');
    let mut out: Vec<&str> = Vec::new();
    for c in trimmed.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if out.pop().is_none() {
                    return Err(FileOpError::ArchiveEscape {
                        archive: archive.to_owned(),
                        entry: s.into_owned(),
                    });
                }
            }
            c => out.push(c),
        }
    }
    Ok(if out.is_empty() {
        None
    } else {
        Some(out.join("/"))
    })
}

/// Extracts the archive at `archive` into the existing directory `dest`.
/// `shown` names the archive in errors. `owner` (from `--chown`) replaces
/// every member's owner.
pub(crate) fn extract(
    archive: &Path,
    shown: &str,
    dest: &Path,
    owner: Option<Owner>,
) -> Result<CopyStats, FileOpError> {
    let aerr = |source: std::io::Error| FileOpError::Archive {
        archive: shown.to_owned(),
        source,
    };
    let r = open_decompressed(archive).map_err(aerr)?;
    let mut ar = tar::Archive::new(r);
    let mut stats = CopyStats::default();
    let mut dir_times: Vec<(PathBuf, TimeSpec)> = Vec::new();
    for entry in ar.entries().map_err(aerr)? {
        let mut entry = entry.map_err(aerr)?;
        let kind = entry.header().entry_type();
        if matches!(kind, EntryType::XGlobalHeader | EntryType::XHeader) {
            continue;
        }
        let path_bytes = entry.path_bytes().into_owned();
        let Some(name) = clean_member(&path_bytes, shown)? else {
            continue;
        };
        let hdr = entry.header().clone();
        let mode = hdr.mode().map_err(aerr)? & 0o7777;
        let mtime = TimeSpec::new(hdr.mtime().unwrap_or(0) as i64, 0);
        let member_owner = owner.unwrap_or(Owner {
            uid: hdr.uid().unwrap_or(0) as u32,
            gid: hdr.gid().unwrap_or(0) as u32,
        });
        let resolved = rootpath::resolve(dest, &name, kind == EntryType::Directory)?;
        let target = resolved.under(dest);
        make_parents(dest, &resolved.components)?;
        let existing = std::fs::symlink_metadata(&target).ok();
        if let Some(m) = &existing
            && (!m.is_dir() || kind != EntryType::Directory)
        {
            if m.is_dir() {
                std::fs::remove_dir_all(&target).map_err(FileOpError::io("remove", &target))?;
            } else {
                std::fs::remove_file(&target).map_err(FileOpError::io("remove", &target))?;
            }
        }
        let xattrs = pax_xattrs(&mut entry);
        match kind {
            EntryType::Directory => {
                if !target.is_dir() {
                    std::fs::create_dir(&target)
                        .map_err(FileOpError::io("create directory", &target))?;
                    stats.dirs += 1;
                }
                meta::chown(&target, member_owner)?;
                meta::chmod(&target, mode)?;
                dir_times.push((target.clone(), mtime));
            }
            EntryType::Regular | EntryType::Continuous => {
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&target)
                    .map_err(FileOpError::io("create", &target))?;
                stats.bytes += std::io::copy(&mut entry, &mut f).map_err(aerr)?;
                stats.files += 1;
                drop(f);
                meta::chown(&target, member_owner)?;
                meta::chmod(&target, mode)?;
                meta::set_times(&target, mtime, mtime)?;
            }
            EntryType::Symlink => {
                let link = entry
                    .link_name_bytes()
                    .map(|l| l.into_owned())
                    .unwrap_or_default();
                std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(&link), &target)
                    .map_err(FileOpError::io("create symlink", &target))?;
                stats.files += 1;
                meta::chown(&target, member_owner)?;
                meta::set_times(&target, mtime, mtime)?;
            }
            EntryType::Link => {
                let link = entry
                    .link_name_bytes()
                    .map(|l| l.into_owned())
                    .unwrap_or_default();
                let Some(link) = clean_member(&link, shown)? else {
                    return Err(FileOpError::ArchiveEscape {
                        archive: shown.to_owned(),
                        entry: name,
                    });
                };
                let src = rootpath::resolve(dest, &link, false)?.under(dest);
                std::fs::hard_link(&src, &target)
                    .map_err(FileOpError::io("create hard link", &target))?;
                stats.files += 1;
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let sflag = match kind {
                    EntryType::Char => SFlag::S_IFCHR,
                    EntryType::Block => SFlag::S_IFBLK,
                    _ => SFlag::S_IFIFO,
                };
                let major = hdr.device_major().ok().flatten().unwrap_or(0);
                let minor = hdr.device_minor().ok().flatten().unwrap_or(0);
                let dev = nix::sys::stat::makedev(major.into(), minor.into());
                mknod(&target, sflag, Mode::from_bits_truncate(mode), dev)
                    .map_err(|e| FileOpError::io("create special file", &target)(e.into()))?;
                stats.files += 1;
                meta::chown(&target, member_owner)?;
                meta::chmod(&target, mode)?;
                meta::set_times(&target, mtime, mtime)?;
            }
            other => {
                return Err(FileOpError::UnsupportedArchiveEntry {
                    archive: shown.to_owned(),
                    entry: format!("{name} (type {:?})", other.as_byte() as char),
                });
            }
        }
        for (k, v) in xattrs {
            if let Err(e) = xattr::set(&target, std::ffi::OsStr::from_bytes(&k), &v) {
                tracing::warn!(path = %target.display(), error = %e, "extended attribute from archive not set");
            }
        }
    }
    // Directory times last, deepest first, so writing into them does not
    // change them again.
    for (dir, t) in dir_times.into_iter().rev() {
        meta::set_times(&dir, t, t)?;
    }
    Ok(stats)
}

/// `SCHILY.xattr.*` records of a member's PAX header.
fn pax_xattrs<R: Read>(entry: &mut tar::Entry<'_, R>) -> Vec<(Vec<u8>, Vec<u8>)> {
    let Ok(Some(exts)) = entry.pax_extensions() else {
        return Vec::new();
    };
    exts.filter_map(Result::ok)
        .filter_map(|e| {
            e.key_bytes()
                .strip_prefix(b"SCHILY.xattr.")
                .map(|k| (k.to_vec(), e.value_bytes().to_vec()))
        })
        .collect()
}

/// Creates the missing parents of a member (mode 0755, root-owned).
fn make_parents(dest: &Path, components: &[String]) -> Result<(), FileOpError> {
    let mut p = dest.to_path_buf();
    for c in components.iter().take(components.len().saturating_sub(1)) {
        p.push(c);
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(FileOpError::NotADirectory {
                    path: p.display().to_string(),
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir(&p).map_err(FileOpError::io("create directory", &p))?;
                meta::chmod(&p, 0o755)?;
                meta::chown(&p, Owner::ROOT)?;
            }
            Err(e) => return Err(FileOpError::io("stat", &p)(e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn tar_bytes(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        build(&mut b);
        b.into_inner().unwrap()
    }

    fn file(b: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8], mode: u32) {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(mode);
        h.set_uid(1000);
        h.set_gid(1000);
        h.set_mtime(1_600_000_000);
        h.set_entry_type(EntryType::Regular);
        b.append_data(&mut h, name, data).unwrap();
    }

    fn sample() -> Vec<u8> {
        tar_bytes(|b| {
            file(b, "dir/a.txt", b"hello", 0o640);
            file(b, "top.sh", b"#!/bin/sh\n", 0o755);
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(EntryType::Symlink);
            h.set_size(0);
            h.set_mode(0o777);
            b.append_link(&mut h, "dir/link", "/dir/a.txt").unwrap();
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(EntryType::Link);
            h.set_size(0);
            h.set_mode(0o640);
            b.append_link(&mut h, "hard", "dir/a.txt").unwrap();
        })
    }

    fn compressed(kind: Compression, raw: &[u8]) -> Vec<u8> {
        match kind {
            Compression::None => raw.to_vec(),
            Compression::Gzip => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(raw).unwrap();
                e.finish().unwrap()
            }
            Compression::Bzip2 => {
                let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
                e.write_all(raw).unwrap();
                e.finish().unwrap()
            }
            Compression::Xz => {
                let mut e = liblzma::write::XzEncoder::new(Vec::new(), 1);
                e.write_all(raw).unwrap();
                e.finish().unwrap()
            }
            Compression::Zstd => zstd::encode_all(raw, 1).unwrap(),
        }
    }

    #[test]
    fn every_compression_is_detected_and_extracted() {
        for kind in [
            Compression::None,
            Compression::Gzip,
            Compression::Bzip2,
            Compression::Xz,
            Compression::Zstd,
        ] {
            let t = tempfile::tempdir().unwrap();
            let ar = t.path().join("archive.bin");
            std::fs::write(&ar, compressed(kind, &sample())).unwrap();
            assert!(is_archive(&ar), "{kind:?} not detected");
            let dest = t.path().join("out");
            std::fs::create_dir(&dest).unwrap();
            let stats = extract(&ar, "archive.bin", &dest, None).unwrap();
            assert_eq!(stats.files, 4);
            assert_eq!(std::fs::read(dest.join("dir/a.txt")).unwrap(), b"hello");
            assert_eq!(
                std::fs::read_link(dest.join("dir/link")).unwrap(),
                Path::new("/dir/a.txt")
            );
            use std::os::unix::fs::MetadataExt;
            let m = std::fs::metadata(dest.join("dir/a.txt")).unwrap();
            assert_eq!(m.mode() & 0o7777, 0o640);
            assert_eq!(m.mtime(), 1_600_000_000);
            assert_eq!(m.nlink(), 2, "hard link kept");
            assert_eq!(
                std::fs::metadata(dest.join("dir")).unwrap().mode() & 0o777,
                0o755
            );
        }
    }

    #[test]
    fn non_archives_are_not_detected() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("plain.tar.gz");
        std::fs::write(&p, b"not really an archive").unwrap();
        assert!(!is_archive(&p));
        let gz = t.path().join("data.gz");
        std::fs::write(&gz, compressed(Compression::Gzip, b"just some text")).unwrap();
        assert!(!is_archive(&gz));
        assert!(!is_archive(t.path()));
    }

    #[test]
    fn members_cannot_escape() {
        let raw = tar_bytes(|b| {
            let data = b"x";
            let mut h = tar::Header::new_gnu();
            h.set_size(1);
            h.set_mode(0o644);
            h.set_entry_type(EntryType::Regular);
            // `append_data` refuses `..`, so write the name by hand.
            h.as_gnu_mut().unwrap().name[..12].copy_from_slice(b"../../escape");
            h.set_cksum();
            b.append(&h, &data[..]).unwrap();
        });
        let t = tempfile::tempdir().unwrap();
        let ar = t.path().join("evil.tar");
        std::fs::write(&ar, raw).unwrap();
        let dest = t.path().join("d/out");
        std::fs::create_dir_all(&dest).unwrap();
        assert!(matches!(
            extract(&ar, "evil.tar", &dest, None),
            Err(FileOpError::ArchiveEscape { .. })
        ));
        assert!(!t.path().join("escape").exists());
    }

    #[test]
    fn symlink_in_archive_does_not_lead_outside() {
        let raw = tar_bytes(|b| {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(EntryType::Symlink);
            h.set_size(0);
            h.set_mode(0o777);
            b.append_link(&mut h, "etc", "/").unwrap();
            file(b, "etc/inside", b"data", 0o644);
        });
        let t = tempfile::tempdir().unwrap();
        let ar = t.path().join("a.tar");
        std::fs::write(&ar, raw).unwrap();
        let dest = t.path().join("out");
        std::fs::create_dir(&dest).unwrap();
        extract(&ar, "a.tar", &dest, None).unwrap();
        // `etc -> /` resolves to the destination itself.
        assert_eq!(std::fs::read(dest.join("inside")).unwrap(), b"data");
    }

    #[test]
    fn chown_overrides_member_owners() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        use std::os::unix::fs::MetadataExt;
        let t = tempfile::tempdir().unwrap();
        let ar = t.path().join("a.tar");
        std::fs::write(&ar, sample()).unwrap();
        let d1 = t.path().join("keep");
        std::fs::create_dir(&d1).unwrap();
        extract(&ar, "a.tar", &d1, None).unwrap();
        assert_eq!(std::fs::metadata(d1.join("top.sh")).unwrap().uid(), 1000);
        let d2 = t.path().join("chown");
        std::fs::create_dir(&d2).unwrap();
        extract(&ar, "a.tar", &d2, Some(Owner { uid: 7, gid: 8 })).unwrap();
        let m = std::fs::metadata(d2.join("top.sh")).unwrap();
        assert_eq!((m.uid(), m.gid()), (7, 8));
    }
}
