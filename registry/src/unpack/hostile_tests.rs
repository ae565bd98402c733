//! The hostile-archive table: archives built here that try to write, link
//! or delete outside the target, each refused with a clear error (with
//! openat2 and with the fallback walk), and nothing outside changed.

use std::fs;

use super::test_tar::{RawTar, Scene};
use super::*;

#[test]
fn hostile_archives_are_refused() {
    let s0 = Scene::new();
    let out = s0.outside();
    type Check = fn(&UnpackError) -> bool;
    let cases: Vec<(&str, Vec<u8>, Check)> = vec![
        (
            "dotdot name",
            RawTar::default().file("../outside/pwned", b"x").finish(),
            |e| matches!(e, UnpackError::BadName { reason, .. } if reason.contains("..")),
        ),
        (
            "dotdot inside name",
            RawTar::default()
                .dir("a/")
                .file("a/../../outside/pwned", b"x")
                .finish(),
            |e| matches!(e, UnpackError::BadName { .. }),
        ),
        (
            "absolute name",
            RawTar::default()
                .file(&format!("{out}/pwned"), b"x")
                .finish(),
            |e| matches!(e, UnpackError::BadName { reason, .. } if reason.contains("absolute")),
        ),
        (
            "absolute symlink then write through it",
            RawTar::default()
                .symlink("evil", &out)
                .file("evil/pwned", b"x")
                .finish(),
            |e| matches!(e, UnpackError::ThroughSymlink { symlink, .. } if symlink == "evil"),
        ),
        (
            "relative symlink out then write through it",
            RawTar::default()
                .symlink("evil", "../outside")
                .file("evil/pwned", b"x")
                .finish(),
            |e| matches!(e, UnpackError::ThroughSymlink { .. }),
        ),
        (
            "symlink chain",
            RawTar::default()
                .symlink("b", "../outside")
                .symlink("a", "b")
                .file("a/pwned", b"x")
                .finish(),
            |e| matches!(e, UnpackError::ThroughSymlink { .. }),
        ),
        (
            "symlinked parent deep in the path",
            RawTar::default()
                .dir("d/")
                .symlink("d/up", "../..")
                .file("d/up/outside/pwned", b"x")
                .finish(),
            |e| matches!(e, UnpackError::ThroughSymlink { symlink, .. } if symlink == "d/up"),
        ),
        (
            "hardlink with dotdot",
            RawTar::default()
                .hardlink("hl", "../outside/secret")
                .finish(),
            |e| matches!(e, UnpackError::BadHardlink { .. }),
        ),
        (
            "hardlink to an absolute path",
            RawTar::default()
                .hardlink("hl", &format!("{out}/secret"))
                .finish(),
            |e| matches!(e, UnpackError::BadHardlink { reason, .. } if reason.contains("absolute")),
        ),
        (
            "hardlink through a symlink",
            RawTar::default()
                .symlink("evil", &out)
                .hardlink("hl", "evil/secret")
                .finish(),
            |e| matches!(e, UnpackError::BadHardlink { reason, .. } if reason.contains("symlink")),
        ),
        (
            "hardlink to a directory",
            RawTar::default().dir("d/").hardlink("hl", "d").finish(),
            |e| matches!(e, UnpackError::BadHardlink { reason, .. } if reason.contains("directory")),
        ),
        (
            "whiteout of dotdot",
            RawTar::default().dir("d/").file("d/.wh...", b"").finish(),
            |e| matches!(e, UnpackError::BadName { reason, .. } if reason.contains("whiteout")),
        ),
        (
            "pax path override",
            RawTar::default()
                .pax(&[("path", b"../outside/pwned")])
                .file("innocent", b"x")
                .finish(),
            |e| matches!(e, UnpackError::BadName { entry, .. } if entry.contains("..")),
        ),
        (
            "gnu long name",
            RawTar::default()
                .long_name(&format!("{}/../../outside/pwned", "a".repeat(120)))
                .file("short", b"x")
                .finish(),
            |e| matches!(e, UnpackError::BadName { .. }),
        ),
        (
            "overlay xattr smuggled in",
            RawTar::default()
                .pax(&[("SCHILY.xattr.trusted.overlay.redirect", b"/etc")])
                .dir("d/")
                .finish(),
            |e| matches!(e, UnpackError::ForbiddenXattr { xattr, .. } if xattr == "trusted.overlay.redirect"),
        ),
        (
            "file as a directory",
            RawTar::default()
                .file("f", b"x")
                .file("f/child", b"x")
                .finish(),
            |e| matches!(e, UnpackError::NotADirectory { .. }),
        ),
        (
            "hardlink to itself",
            RawTar::default()
                .file("a", b"x")
                .hardlink("a", "a")
                .finish(),
            |e| matches!(e, UnpackError::BadHardlink { .. }),
        ),
        (
            "symlink without target",
            RawTar::default().symlink("s", "").finish(),
            |e| matches!(e, UnpackError::BadName { .. }),
        ),
    ];
    assert!(cases.len() >= 10);
    for use_openat2 in [true, false] {
        for (what, tar, check) in &cases {
            let s = Scene::new();
            let root = super::resolve::RootDir::open_with(&s.root(), false, use_openat2).unwrap();
            let mut ex = super::extract::Extractor::new(root, UnpackMode::OverlayLower);
            let err = ex.extract(&tar[..]).expect_err(what);
            assert!(
                check(&err),
                "{what} (openat2: {use_openat2}): unexpected error {err:?}"
            );
            // the message names the entry
            assert!(err.to_string().starts_with("layer "), "{what}: {err}");
            s.assert_outside_untouched();
        }
    }
}

#[test]
fn apply_mode_contains_what_it_follows() {
    let s = Scene::new();
    let out = s.outside();
    // a symlink to the host's outside dir, written through: lands inside
    let tar = RawTar::default()
        .symlink("evil", &out)
        .file("evil/pwned", b"x")
        .finish();
    s.unpack(&tar, UnpackMode::Apply).unwrap();
    s.assert_outside_untouched();
    let inside = s.root().join(out.trim_start_matches('/')).join("pwned");
    assert!(inside.is_file(), "{}", inside.display());
    // a symlink to a file outside, then a file of that name: replaced, not followed
    let s = Scene::new();
    let tar = RawTar::default()
        .symlink("x", &format!("{out}/secret"))
        .file("x", b"overwritten?")
        .symlink("rel", "../outside/secret")
        .file("rel", b"overwritten?")
        .finish();
    s.unpack(&tar, UnpackMode::Apply).unwrap();
    s.assert_outside_untouched();
    assert_eq!(fs::read(s.root().join("x")).unwrap(), b"overwritten?");
    assert!(
        !fs::symlink_metadata(s.root().join("rel"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    // the same in overlay mode
    let s = Scene::new();
    s.unpack(&tar, UnpackMode::OverlayLower).unwrap();
    s.assert_outside_untouched();
    // symlink loops are an error
    let s = Scene::new();
    let tar = RawTar::default()
        .symlink("l1", "l2")
        .symlink("l2", "l1")
        .file("l1/x", b"")
        .finish();
    let err = s.unpack(&tar, UnpackMode::Apply).unwrap_err();
    assert!(
        matches!(err, UnpackError::TooManySymlinks { .. }),
        "{err:?}"
    );
    // whiteouts through a symlink to outside delete inside, not outside
    let s = Scene::new();
    let tar = RawTar::default()
        .symlink("evil", &out)
        .file("evil/.wh.secret", b"")
        .finish();
    s.unpack(&tar, UnpackMode::Apply).unwrap();
    s.assert_outside_untouched();
}
