//! The store under stress: several kiln processes on one root at once, and
//! a process killed in the middle of a write.

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::*;

/// Every blob's content hashes to its name.
fn assert_blobs_intact(root: &TestRoot) {
    let dir = root.root_dir().join("blobs/sha256");
    let out = Command::new("sh")
        .arg("-c")
        .arg("for f in *; do [ -e \"$f\" ] || continue; echo \"$f  $f\"; done | sha256sum -c --quiet")
        .current_dir(&dir)
        .output()
        .unwrap();
    assert_success(&out);
}

#[test]
fn eight_processes_tag_import_and_prune_without_losing_anything() {
    let root = TestRoot::with_busybox();
    let tar = busybox_rootfs_tar();
    // each process is a small shell loop of kiln commands
    let script = |body: String| {
        let mut sh = Command::new("sh");
        sh.arg("-c")
            .arg(body)
            .env("K", kiln_bin())
            .env("R", root.root_dir())
            .env("TAR", tar)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        sh.spawn().unwrap()
    };
    let mut children = Vec::new();
    // 3 taggers, 3 importers (tagged and dangling images), 2 pruners
    for t in 0..3 {
        children.push(script(format!(
            "set -e; for j in 0 1 2 3 4 5 6 7; do \"$K\" --root \"$R\" tag busybox tagger{t}:v$j; done"
        )));
    }
    for i in 0..3 {
        children.push(script(format!(
            "set -e; for j in 0 1 2; do SOURCE_DATE_EPOCH={i}$j \"$K\" --root \"$R\" import \"$TAR\" importer{i}:v$j >/dev/null; \
             SOURCE_DATE_EPOCH=9{i}$j \"$K\" --root \"$R\" import \"$TAR\" >/dev/null; done"
        )));
    }
    for _ in 0..2 {
        children.push(script(
            "set -e; for j in 0 1 2 3 4; do \"$K\" --root \"$R\" prune >/dev/null; done"
                .to_string(),
        ));
    }
    assert_eq!(children.len(), 8);
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // every tag made is there and names a complete image
    let mut want = BTreeSet::new();
    for t in 0..3 {
        for j in 0..8 {
            want.insert(format!("tagger{t}:v{j}"));
        }
    }
    for i in 0..3 {
        for j in 0..3 {
            want.insert(format!("importer{i}:v{j}"));
        }
    }
    want.insert("busybox:latest".to_string());
    let listed: BTreeSet<String> = root
        .ok(["images", "--format", "json"])
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            format!(
                "{}:{}",
                v["Repository"].as_str().unwrap(),
                v["Tag"].as_str().unwrap()
            )
        })
        .collect();
    let tagged: BTreeSet<String> = listed
        .iter()
        .filter(|n| !n.starts_with("<none>"))
        .cloned()
        .collect();
    assert_eq!(tagged, want);
    for name in &want {
        root.ok(["inspect", name]);
    }
    assert_blobs_intact(&root);
    // a final prune removes the dangling images and keeps every tagged one
    root.ok(["prune"]);
    let left = root.ok(["images"]);
    assert!(!left.contains("<none>"), "{left}");
    for name in &want {
        root.ok(["history", name]);
    }
    assert_blobs_intact(&root);
}

#[test]
fn sigkill_mid_write_leaves_no_visible_half_blob() {
    let root = TestRoot::new();
    let data = std::fs::read(busybox_rootfs_tar()).unwrap();
    let mut child = root
        .kiln(["import", "-", "victim"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&data[..data.len() / 2]).unwrap();
    stdin.flush().unwrap();
    // wait until the half-written blob exists in tmp/
    let tmp = root.root_dir().join("tmp");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let partial = std::fs::read_dir(&tmp)
            .map(|d| {
                d.flatten()
                    .any(|e| e.metadata().map(|m| m.len() > 0).unwrap_or(false))
            })
            .unwrap_or(false);
        if partial {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the import never started writing"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    drop(stdin);
    let blobs = root.root_dir().join("blobs/sha256");
    assert_eq!(
        std::fs::read_dir(&blobs).unwrap().count(),
        0,
        "no blob is visible"
    );
    assert!(
        std::fs::read_dir(&tmp).unwrap().count() > 0,
        "the half file is only in tmp/"
    );
    // the next kiln run reclaims it, and the store works
    assert_eq!(root.ok(["images", "-q"]), "");
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0);
    root.import_busybox("busybox");
    assert_blobs_intact(&root);
}
