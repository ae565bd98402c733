//! Snapshots and layers, black-box through `kiln debug diff`: a step's
//! created, changed and deleted files become the right tar entries and
//! whiteouts, unpack over the base to the step's result, the same step
//! twice gives the same digest, and nothing is left mounted or active.
//! Every test runs on both snapshot modes (`KILN_SNAPSHOTTER=overlay` and
//! the plain-copy fallback `copy`) with the same expectations, and the two
//! modes give the same layer for the same step.

use std::path::Path;
use std::process::Command;

use crate::require_root;
use crate::sandbox::rootfs;
use crate::util::*;

const OVERLAY: &str = "overlay";
const COPY: &str = "copy";

fn diff(
    root: &TestRoot,
    mode: &str,
    lower: &Path,
    epoch: Option<&str>,
    script: &str,
) -> (String, u64) {
    let mut cmd = root.kiln(["debug", "diff", "--lower"]);
    cmd.arg(lower).env("KILN_SNAPSHOTTER", mode);
    match epoch {
        Some(e) => cmd.env("SOURCE_DATE_EPOCH", e),
        None => cmd.env_remove("SOURCE_DATE_EPOCH"),
    };
    cmd.args(["--", "/bin/sh", "-c", script]);
    let out = cmd.output().unwrap();
    assert_success(&out);
    let text = stdout(&out);
    let mut parts = text.split_whitespace();
    let digest = parts.next().unwrap().to_string();
    let size = parts.next().unwrap().parse().unwrap();
    (digest, size)
}

fn blob(root: &TestRoot, digest: &str) -> std::path::PathBuf {
    root.path()
        .join("root/blobs/sha256")
        .join(digest.strip_prefix("sha256:").unwrap())
}

const STEP: &str = "echo new > /etc/newfile; echo changed >> /etc/passwd; rm /etc/group; \
    rm -r /home/app; mkdir -p /home/app/x; ln /etc/newfile /etc/newlink; echo output";

#[test]
fn created_changed_deleted_files_become_entries_and_whiteouts() {
    require_root!();
    entries_and_whiteouts(OVERLAY);
}

#[test]
fn created_changed_deleted_files_become_entries_and_whiteouts_on_copies() {
    require_root!();
    entries_and_whiteouts(COPY);
}

fn entries_and_whiteouts(mode: &str) {
    let root = TestRoot::new();
    let base = rootfs();
    let (digest, size) = diff(&root, mode, base.path(), None, STEP);
    let layer = blob(&root, &digest);
    assert_eq!(std::fs::metadata(&layer).unwrap().len(), size);
    // The digest is the sha256 of the uncompressed tar: its diffID.
    let sum = Command::new("sha256sum").arg(&layer).output().unwrap();
    assert!(digest.ends_with(stdout(&sum).split_whitespace().next().unwrap()));
    let list = Command::new("tar")
        .arg("-tvf")
        .arg(&layer)
        .output()
        .unwrap();
    assert_success(&list);
    let names: Vec<String> = stdout(&list)
        .lines()
        .map(|l| l.split_whitespace().nth(5).unwrap().to_string())
        .collect();
    assert_eq!(
        names,
        [
            "etc/",
            "etc/.wh.group",
            "etc/newfile",
            "etc/newlink",
            "etc/passwd",
            "home/",
            "home/app/",
            "home/app/.wh..wh..opq",
            "home/app/x/",
        ],
        "{}",
        stdout(&list)
    );
    assert!(stdout(&list).contains("etc/newlink link to etc/newfile"));
    // The base was not touched, and nothing of the step is left around.
    assert!(base.path().join("etc/group").exists());
    assert!(!base.path().join("etc/newfile").exists());
    let active = std::fs::read_dir(root.path().join("root/snapshots/active"))
        .unwrap()
        .count();
    assert_eq!(active, 0);
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&root.path().display().to_string()));
    // Unpacked over a copy of the base (whiteouts applied), it gives the
    // step's result.
    let over = tempfile::tempdir().unwrap();
    let cp = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", base.path().display()))
        .arg(over.path())
        .status()
        .unwrap();
    assert!(cp.success());
    let home_app = over.path().join("home/app");
    std::fs::write(home_app.join("old"), "from the base").unwrap();
    // An opaque directory replaces the lower one: clear it first.
    std::fs::remove_dir_all(&home_app).unwrap();
    let x = Command::new("tar")
        .arg("-xf")
        .arg(&layer)
        .arg("-C")
        .arg(over.path())
        .status()
        .unwrap();
    assert!(x.success());
    for wh in ["etc/.wh.group", "home/app/.wh..wh..opq"] {
        let p = over.path().join(wh);
        assert!(p.exists(), "{wh}");
        std::fs::remove_file(&p).unwrap();
        if let Some(name) = p
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .strip_prefix(".wh.")
            && name != ".wh..opq"
        {
            let _ = std::fs::remove_file(p.with_file_name(name));
        }
    }
    assert_eq!(
        std::fs::read_to_string(over.path().join("etc/newfile")).unwrap(),
        "new\n"
    );
    assert!(
        std::fs::read_to_string(over.path().join("etc/passwd"))
            .unwrap()
            .ends_with("changed\n")
    );
    assert!(!over.path().join("etc/group").exists());
    assert!(over.path().join("home/app/x").is_dir());
    assert!(!over.path().join("home/app/old").exists());
}

#[test]
fn same_step_twice_gives_the_same_layer() {
    require_root!();
    same_layer(OVERLAY);
}

#[test]
fn same_step_twice_gives_the_same_layer_on_copies() {
    require_root!();
    same_layer(COPY);
}

/// The layer of `STEP` with times clamped, as both tests expect it.
static STEP_LAYER: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

fn same_layer(mode: &str) {
    let root = TestRoot::new();
    let base = rootfs();
    let (a, _) = diff(&root, mode, base.path(), Some("0"), STEP);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (b, _) = diff(&root, mode, base.path(), Some("0"), STEP);
    assert_eq!(a, b);
    // The other snapshot mode gives the same bytes.
    let other = if mode == OVERLAY { COPY } else { OVERLAY };
    let (o, _) = diff(&root, other, base.path(), Some("0"), STEP);
    assert_eq!(a, o, "{mode} and {other} snapshots disagree");
    let mut known = STEP_LAYER.lock().unwrap_or_else(|p| p.into_inner());
    assert_eq!(known.get_or_insert_with(|| a.clone()), &a);
    drop(known);
    // A different change gives a different layer.
    let (c, _) = diff(
        &root,
        mode,
        base.path(),
        Some("0"),
        "echo other > /etc/newfile",
    );
    assert_ne!(a, c);
    // A step that changes nothing gives the empty layer.
    let (empty, size) = diff(&root, mode, base.path(), Some("0"), "true");
    assert_eq!(size, 1024);
    assert_eq!(
        empty,
        "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"
    );
}

/// The files of a directory as one normalised tar (names sorted, times
/// zeroed): equal when the trees are.
fn tree_bytes(dir: &Path) -> Vec<u8> {
    let out = Command::new("tar")
        .args([
            "--sort=name",
            "--mtime=@0",
            "--numeric-owner",
            "-cf",
            "-",
            "-C",
        ])
        .arg(dir)
        .arg(".")
        .output()
        .unwrap();
    assert_success(&out);
    out.stdout
}

#[test]
fn a_build_on_plain_copies_gives_what_overlay_gives() {
    require_root!();
    let root = TestRoot::with_busybox();
    let ctx = build_context(&[
        (
            "Dockerfile",
            "FROM busybox AS base\n\
             RUN echo one > /one && rm /etc/group && rm -r /home && mkdir -p /home/app\n\
             COPY hello.txt /hello.txt\n\
             WORKDIR /work\n\
             RUN cat /hello.txt /one > /work/both\n\
             FROM busybox\n\
             COPY --from=base /work /work\n\
             RUN cat /work/both > /copied\n",
        ),
        ("hello.txt", "hello\n"),
    ]);
    let mut trees = Vec::new();
    for mode in [OVERLAY, COPY] {
        let out = tempfile::tempdir().unwrap();
        let dest = format!("type=local,dest={}", out.path().display());
        let built = root
            .kiln(["build", "--progress", "plain", "--no-cache", "-o", &dest])
            .arg(ctx.path())
            .env("KILN_SNAPSHOTTER", mode)
            .output()
            .unwrap();
        assert_success(&built);
        assert_eq!(
            std::fs::read_to_string(out.path().join("copied")).unwrap(),
            "hello\none\n",
            "{mode}"
        );
        trees.push(tree_bytes(out.path()));
    }
    assert!(trees[0] == trees[1], "overlay and copy builds differ");
    let active = std::fs::read_dir(root.root_dir().join("snapshots/active"))
        .unwrap()
        .count();
    assert_eq!(active, 0);
}
