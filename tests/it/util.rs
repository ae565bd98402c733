//! Shared test helpers: the kiln binary with a private root, the offline
//! busybox base, and skipping tests that need root.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// The binary under test.
pub fn kiln_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_kiln"))
}

/// The workspace root (for testdata/ and examples/).
pub fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A kiln root in a fresh temporary directory, removed when dropped.
pub struct TestRoot {
    pub dir: tempfile::TempDir,
}

impl TestRoot {
    pub fn new() -> TestRoot {
        TestRoot {
            dir: tempfile::Builder::new()
                .prefix("kiln-test-")
                .tempdir()
                .expect("temp dir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A fresh root holding the offline busybox base as `busybox`
    /// (docker.io/library/busybox:latest; CMD ["sh"], the usual PATH), as
    /// testdata/mkbase.sh makes it. Cheap: one import of the shared tarball.
    pub fn with_busybox() -> TestRoot {
        let root = TestRoot::new();
        root.import_busybox("busybox");
        root
    }

    /// Imports the busybox base under `name`; returns its image id. The id
    /// is the same in every root (creation time fixed at the epoch).
    pub fn import_busybox(&self, name: &str) -> String {
        let out = self
            .kiln([
                "import",
                "--change",
                r#"CMD ["sh"]"#,
                "--change",
                "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "--message",
                "busybox base from Debian busybox-static",
            ])
            .arg(busybox_rootfs_tar())
            .arg(name)
            .env("SOURCE_DATE_EPOCH", "0")
            .output()
            .expect("run kiln import");
        assert_success(&out);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// The kiln root directory itself (`--root`).
    pub fn root_dir(&self) -> PathBuf {
        self.path().join("root")
    }

    /// `kiln --root <this root> ARGS...`, not yet run.
    pub fn kiln<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut cmd = Command::new(kiln_bin());
        cmd.arg("--root").arg(self.path().join("root")).args(args);
        cmd.stdin(Stdio::null());
        cmd
    }

    /// Runs kiln and returns its output, whatever the exit status.
    pub fn run<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.kiln(args).output().expect("run kiln")
    }

    /// Runs kiln, panics with its output unless it succeeds, returns stdout.
    pub fn ok<I, S>(&self, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let out = self.run(args);
        assert_success(&out);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// Panics with stdout and stderr unless the command succeeded.
pub fn assert_success(out: &Output) {
    assert!(
        out.status.success(),
        "command failed: {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The busybox root filesystem tarball made by testdata/mkrootfs.sh, built
/// once per test run into target/ (atomically, so parallel test binaries
/// share it safely).
pub fn busybox_rootfs_tar() -> &'static Path {
    static TAR: OnceLock<PathBuf> = OnceLock::new();
    TAR.get_or_init(|| {
        let dir = workspace().join("target/testdata");
        std::fs::create_dir_all(&dir).expect("create target/testdata");
        let tar = dir.join("busybox-rootfs.tar");
        if !tar.exists() {
            let tmp = dir.join(format!("busybox-rootfs.tar.{}", std::process::id()));
            let status = Command::new("sh")
                .arg(workspace().join("testdata/mkrootfs.sh"))
                .arg(&tmp)
                .stdout(Stdio::null())
                .status()
                .expect("run testdata/mkrootfs.sh");
            assert!(
                status.success(),
                "testdata/mkrootfs.sh failed (is busybox-static installed?)"
            );
            std::fs::rename(&tmp, &tar).expect("publish busybox tarball");
        }
        tar
    })
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Skips the current test (returning early) when not running as root.
#[macro_export]
macro_rules! require_root {
    () => {
        if !$crate::util::is_root() {
            eprintln!("skipped: this test needs root");
            return;
        }
    };
}

/// A build context in a fresh temporary directory: `files` are
/// `(relative path, content)`; `Dockerfile` is one of them when given.
pub fn build_context(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("kiln-ctx-")
        .tempdir()
        .expect("temp dir");
    for (path, content) in files {
        let p = dir.path().join(path);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("create context dirs");
        }
        std::fs::write(&p, content).expect("write context file");
    }
    dir
}

impl TestRoot {
    /// `kiln build --progress plain ARGS... CONTEXT`, run; the output
    /// whatever the status.
    pub fn build<I, S>(&self, context: &Path, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut cmd = self.kiln(["build", "--progress", "plain"]);
        cmd.args(args).arg(context);
        cmd.output().expect("run kiln build")
    }

    /// As [`TestRoot::build`], panicking unless it succeeds; returns stderr
    /// (the progress output).
    pub fn build_ok<I, S>(&self, context: &Path, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let out = self.build(context, args);
        assert_success(&out);
        stderr(&out)
    }
}
