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

/// `kiln images | head` style: a reader that goes away ends a command that
/// only prints with SIGPIPE, as other tools end, never with a panic.
#[test]
fn closed_stdout_ends_a_printing_command_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let root = TestRoot::new();
    for args in [&["images"][..], &["ps", "-a"][..], &["volume", "ls"][..]] {
        let mut child = root
            .kiln(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = stderr(&out);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(
            out.status.signal(),
            Some(nix::libc::SIGPIPE),
            "{args:?}: {:?} {err}",
            out.status
        );
    }
}
