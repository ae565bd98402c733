//! The command line itself: version, help, usage errors.

use crate::util::*;

#[test]
fn version_and_help_succeed() {
    let root = TestRoot::new();
    let out = root.ok(["--version"]);
    assert!(out.starts_with("kiln "), "{out}");
    let out = root.ok(["--help"]);
    assert!(out.contains("Usage: kiln"), "{out}");
}

#[test]
fn usage_errors_exit_1() {
    let root = TestRoot::new();
    let out = root.run(["--no-such-flag"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("--no-such-flag"));
}

#[test]
fn busybox_tarball_is_built() {
    let tar = busybox_rootfs_tar();
    assert!(std::fs::metadata(tar).unwrap().len() > 1_000_000);
}
