//! Unpacking tests: entry types and metadata, whiteouts in both modes, the
//! snapshot lifecycle.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::test_tar::{RawTar, Scene, T, is_root};
use super::*;
use crate::store::Layer;
use oci_spec::image::{Descriptor, MediaType};

#[test]
fn entry_types_and_metadata() {
    let s = Scene::new();
    let tar = RawTar::default()
        .dir_mode("bin/", 0o755)
        .file_mode("bin/tool", b"#!/bin/sh\n", 0o4755, 1000)
        .file("bin/data", b"hello")
        .hardlink("bin/data2", "bin/data")
        .symlink("bin/sh", "/bin/busybox")
        .dir_mode("ro/", 0o555)
        .file("ro/inside", b"x")
        .special("fifo", T::Fifo, 0, 0)
        .special("null", T::Char, 1, 3)
        .pax(&[
            ("SCHILY.xattr.user.kiln", b"yes"),
            ("mtime", b"1234567890.5"),
        ])
        .file("attrs", b"a")
        .file("implicit/parent/file", b"p")
        .finish();
    let stats = s.unpack(&tar, UnpackMode::OverlayLower).unwrap();
    let r = s.root();
    assert_eq!(fs::read(r.join("bin/data")).unwrap(), b"hello");
    let tool = fs::metadata(r.join("bin/tool")).unwrap();
    assert_eq!(tool.permissions().mode() & 0o7777, 0o4755);
    assert_eq!(tool.mtime(), 1_000_000_000);
    let d1 = fs::metadata(r.join("bin/data")).unwrap();
    let d2 = fs::metadata(r.join("bin/data2")).unwrap();
    assert_eq!(d1.ino(), d2.ino());
    assert_eq!(d1.nlink(), 2);
    assert_eq!(
        fs::read_link(r.join("bin/sh")).unwrap(),
        Path::new("/bin/busybox")
    );
    assert_eq!(
        fs::metadata(r.join("ro")).unwrap().permissions().mode() & 0o777,
        0o555
    );
    assert_eq!(fs::metadata(r.join("bin")).unwrap().mtime(), 1_000_000_000);
    assert!(
        fs::symlink_metadata(r.join("fifo"))
            .unwrap()
            .file_type()
            .is_fifo()
    );
    let attrs = fs::metadata(r.join("attrs")).unwrap();
    assert_eq!(attrs.mtime(), 1_234_567_890);
    assert_eq!(attrs.mtime_nsec(), 500_000_000);
    assert_eq!(fs::read(r.join("implicit/parent/file")).unwrap(), b"p");
    assert_eq!(stats.hardlinks, 1);
    assert_eq!(stats.symlinks, 1);
    if is_root() {
        assert_eq!(tool.uid(), 1000);
        assert_eq!(tool.gid(), 1000);
        let null = fs::symlink_metadata(r.join("null")).unwrap();
        assert!(null.file_type().is_char_device());
        assert_eq!(null.rdev(), nix::sys::stat::makedev(1, 3));
        assert_eq!(stats.devices, 2);
    } else {
        assert_eq!(stats.skipped_devices, 1);
    }
    // user xattrs when the filesystem has them
    let mut buf = [0u8; 8];
    let c = std::ffi::CString::new(r.join("attrs").into_os_string().into_encoded_bytes()).unwrap();
    let n = unsafe {
        libc::getxattr(
            c.as_ptr(),
            c"user.kiln".as_ptr(),
            buf.as_mut_ptr().cast(),
            8,
        )
    };
    if n >= 0 {
        assert_eq!(&buf[..n as usize], b"yes");
    } else {
        assert_eq!(stats.skipped_xattrs, 1);
    }
}

fn xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    let n = std::ffi::CString::new(name).unwrap();
    let mut buf = [0u8; 64];
    let r = unsafe { libc::lgetxattr(c.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), 64) };
    (r >= 0).then(|| buf[..r as usize].to_vec())
}

fn lower() -> Vec<u8> {
    RawTar::default()
        .dir("etc/")
        .file("etc/gone", b"1")
        .file("etc/kept", b"1")
        .dir("opaque/")
        .file("opaque/old", b"1")
        .dir("opaque/sub/")
        .file("opaque/sub/old", b"1")
        .dir("dir/")
        .file("dir/old", b"1")
        .finish()
}

fn upper() -> Vec<u8> {
    RawTar::default()
        .dir("etc/")
        .file("etc/.wh.gone", b"")
        .file("etc/new", b"2")
        .file("etc/.wh.new", b"") // same layer: the file stays
        .dir("opaque/")
        .file("opaque/.wh..wh..opq", b"")
        .file("opaque/fresh", b"2")
        .file(".wh.dir", b"")
        .file(".wh..wh.plnk", b"")
        .finish()
}

#[test]
fn whiteouts_applied() {
    let s = Scene::new();
    s.unpack(&lower(), UnpackMode::Apply).unwrap();
    let st = s.unpack(&upper(), UnpackMode::Apply).unwrap();
    assert_eq!(st.whiteouts, 4);
    let r = s.root();
    assert!(!r.join("etc/gone").exists());
    assert!(r.join("etc/kept").exists());
    assert_eq!(fs::read(r.join("etc/new")).unwrap(), b"2");
    assert!(!r.join("opaque/old").exists());
    assert!(!r.join("opaque/sub").exists());
    assert!(r.join("opaque/fresh").exists());
    assert!(!r.join("dir").exists());
    assert!(!r.join(".wh..wh.plnk").exists());
    // opaque after this layer's own entries keeps them
    let tar = RawTar::default()
        .dir("opaque/")
        .file("opaque/mine", b"3")
        .file("opaque/.wh..wh..opq", b"")
        .finish();
    s.unpack(&tar, UnpackMode::Apply).unwrap();
    assert!(r.join("opaque/mine").exists());
    assert!(!r.join("opaque/fresh").exists());
}

#[test]
fn whiteouts_as_overlay_lower() {
    let s = Scene::new();
    s.unpack(&upper(), UnpackMode::OverlayLower).unwrap();
    let r = s.root();
    let gone = fs::symlink_metadata(r.join("etc/gone")).unwrap();
    assert!(gone.file_type().is_char_device());
    assert_eq!(gone.rdev(), 0);
    assert!(
        fs::symlink_metadata(r.join("dir"))
            .unwrap()
            .file_type()
            .is_char_device()
    );
    assert!(fs::metadata(r.join("etc/new")).unwrap().is_file());
    let name = if is_root() {
        "trusted.overlay.opaque"
    } else {
        "user.overlay.opaque"
    };
    assert_eq!(xattr(&r.join("opaque"), name).as_deref(), Some(&b"y"[..]));
    assert!(!r.join(".wh..wh.plnk").exists());
}

/// overlayfs itself agrees with our lower dirs (root only).
#[test]
fn overlay_mount_hides_whited_out_files() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(t.path().join("store")).unwrap();
    let mut dirs = Vec::new();
    for tar in [lower(), upper()] {
        let info = store.write_blob(&tar).unwrap();
        let layer = Layer {
            descriptor: Descriptor::new(MediaType::ImageLayer, info.size, info.digest.clone()),
            diff_id: info.digest,
        };
        dirs.push(store.unpack_layer(&layer).unwrap());
    }
    let merged = t.path().join("merged");
    fs::create_dir(&merged).unwrap();
    let opts = format!("lowerdir={}:{}", dirs[1].display(), dirs[0].display());
    nix::mount::mount(
        Some("overlay"),
        &merged,
        Some("overlay"),
        nix::mount::MsFlags::MS_RDONLY,
        Some(opts.as_str()),
    )
    .unwrap();
    let check = (|| {
        let mut names: Vec<String> = fs::read_dir(merged.join("etc"))?
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<Result<_, _>>()?;
        names.sort();
        let mut opaque: Vec<String> = fs::read_dir(merged.join("opaque"))?
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<Result<_, _>>()?;
        opaque.sort();
        Ok::<_, std::io::Error>((names, opaque, merged.join("dir").exists()))
    })();
    nix::mount::umount(&merged).unwrap();
    let (names, opaque, dir) = check.unwrap();
    assert_eq!(names, ["kept", "new"]);
    assert_eq!(opaque, ["fresh"]);
    assert!(!dir);
}

fn gz(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[test]
fn snapshots_are_complete_or_absent() {
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(t.path()).unwrap();
    let tar = RawTar::default()
        .dir("etc/")
        .file("etc/hostname", b"kiln\n")
        .finish();
    let diff_id = crate::sha256_of(&tar);
    for (bytes, mt) in [
        (tar.clone(), MediaType::ImageLayer),
        (gz(&tar), MediaType::ImageLayerGzip),
        (
            zstd::encode_all(&tar[..], 3).unwrap(),
            MediaType::ImageLayerZstd,
        ),
        // mislabelled: the bytes decide
        (gz(&tar), MediaType::ImageLayer),
    ] {
        let info = store.write_blob(&bytes).unwrap();
        let layer = Layer {
            descriptor: Descriptor::new(mt, info.size, info.digest),
            diff_id: diff_id.clone(),
        };
        let dir = store.unpack_layer(&layer).unwrap();
        assert_eq!(dir, store.snapshot_path(&diff_id).unwrap());
        assert_eq!(fs::read(dir.join("etc/hostname")).unwrap(), b"kiln\n");
        fs::remove_dir_all(&dir).unwrap();
    }
    // a wrong diffID, a truncated gzip stream: an error and no snapshot
    let wrong = crate::sha256_of(b"other");
    let info = store.write_blob(&tar).unwrap();
    let layer = Layer {
        descriptor: Descriptor::new(MediaType::ImageLayer, info.size, info.digest),
        diff_id: wrong.clone(),
    };
    let err = store.unpack_layer(&layer).unwrap_err();
    assert!(matches!(err, UnpackError::DiffIdMismatch { .. }), "{err:?}");
    assert!(store.snapshot(&wrong).is_none());
    let big: Vec<u8> = {
        let mut b = RawTar::default();
        for i in 0..50 {
            b = b.file(&format!("f{i}"), &vec![i as u8; 20_000]);
        }
        b.finish()
    };
    let g = gz(&big);
    let info = store.write_blob(&g[..g.len() / 2]).unwrap();
    let layer = Layer {
        descriptor: Descriptor::new(MediaType::ImageLayerGzip, info.size, info.digest),
        diff_id: crate::sha256_of(&big),
    };
    let err = store.unpack_layer(&layer).unwrap_err();
    assert!(
        matches!(err, UnpackError::Tar { .. } | UnpackError::Read { .. }),
        "{err:?}"
    );
    assert!(store.snapshot(&layer.diff_id).is_none());
    assert_eq!(fs::read_dir(store.tmp_dir()).unwrap().count(), 0);
    // a hostile layer leaves no snapshot either
    let evil = RawTar::default().file("../x", b"").finish();
    let info = store.write_blob(&evil).unwrap();
    let layer = Layer {
        descriptor: Descriptor::new(MediaType::ImageLayer, info.size, info.digest.clone()),
        diff_id: info.digest,
    };
    assert!(store.unpack_layer(&layer).is_err());
    assert!(store.snapshot(&layer.diff_id).is_none());
    assert_eq!(fs::read_dir(store.tmp_dir()).unwrap().count(), 0);
}

#[test]
fn concurrent_unpacks_of_one_layer() {
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(t.path()).unwrap();
    let mut b = RawTar::default().dir("d/");
    for i in 0..200 {
        b = b.file(&format!("d/f{i}"), format!("{i}").as_bytes());
    }
    let tar = gz(&b.finish());
    let info = store.write_blob(&tar).unwrap();
    let mut plain = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&tar[..]), &mut plain).unwrap();
    let layer = Layer {
        descriptor: Descriptor::new(MediaType::ImageLayerGzip, info.size, info.digest),
        diff_id: crate::sha256_of(&plain),
    };
    let dirs: Vec<PathBuf> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..6)
            .map(|_| s.spawn(|| store.unpack_layer(&layer).unwrap()))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(dirs.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(fs::read_dir(dirs[0].join("d")).unwrap().count(), 200);
    assert_eq!(
        fs::read_dir(t.path().join("snapshots/layers"))
            .unwrap()
            .count(),
        1
    );
    assert_eq!(fs::read_dir(store.tmp_dir()).unwrap().count(), 0);
}

/// A step's upper dir adopted unsynced is the layer's snapshot in this boot
/// only: with another boot's id it is unpacked again from the blob.
#[test]
fn adopted_snapshots_are_trusted_for_their_boot_only() {
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(t.path().join("store")).unwrap();
    let info = store.write_blob(&lower()).unwrap();
    let layer = Layer {
        descriptor: Descriptor::new(MediaType::ImageLayer, info.size, info.digest.clone()),
        diff_id: info.digest.clone(),
    };
    let upper = t.path().join("upper");
    fs::create_dir_all(upper.join("etc")).unwrap();
    fs::write(upper.join("etc/from-the-step"), "x").unwrap();
    assert!(store.adopt_snapshot(&upper, &layer.diff_id).unwrap());
    let dir = store.snapshot(&layer.diff_id).unwrap();
    assert!(dir.join("etc/from-the-step").exists());
    assert!(!upper.exists());
    // Adopting again: the snapshot is there already.
    fs::create_dir_all(&upper).unwrap();
    assert!(!store.adopt_snapshot(&upper, &layer.diff_id).unwrap());
    assert_eq!(store.unpack_layer(&layer).unwrap(), dir);
    assert!(dir.join("etc/from-the-step").exists());
    // As after a reboot: not trusted, unpacked again, then synced (no marker).
    let marker = t
        .path()
        .join("store/snapshots/volatile")
        .join(layer.diff_id.digest());
    fs::write(&marker, "another-boot\n").unwrap();
    assert_eq!(store.snapshot(&layer.diff_id), None);
    let again = store.unpack_layer(&layer).unwrap();
    assert_eq!(again, dir);
    assert!(!dir.join("etc/from-the-step").exists());
    assert!(dir.join("etc/gone").exists());
    assert!(!marker.exists());
    assert_eq!(store.snapshot(&layer.diff_id), Some(dir));
}
