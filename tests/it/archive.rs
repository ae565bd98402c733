//! import → save → load, checked by independent tools: skopeo reads what
//! kiln saves (as an OCI archive and as a docker archive), umoci unpacks it
//! to the same files, and kiln loads what skopeo writes.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::*;

fn tool(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    assert_success(&out);
    stdout(&out)
}

/// The files under `dir` with type, size and content digest (symlinks by
/// target), sorted: two trees are "the same files" when these are equal.
fn tree(dir: &Path) -> Vec<String> {
    let out = tool(
        Command::new("sh")
            .arg("-c")
            .arg("find . -mindepth 1 \\( -type l -printf '%p -> %l\\n' \\) -o \\( -type f -printf '%p %s %m\\n' \\) -o \\( -type d -printf '%p/ %m\\n' \\) | LC_ALL=C sort")
            .current_dir(dir),
    );
    out.lines().map(str::to_string).collect()
}

fn extract(tar: &Path, dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    tool(Command::new("tar").arg("xf").arg(tar).arg("-C").arg(dir));
}

#[test]
fn save_is_read_by_skopeo_and_umoci() {
    let root = TestRoot::with_busybox();
    let tar = root.path().join("busybox.tar");
    root.ok([
        std::ffi::OsStr::new("save"),
        "-o".as_ref(),
        tar.as_os_str(),
        "busybox".as_ref(),
    ]);
    let id = root.ok(["images", "-q", "--no-trunc"]).trim().to_string();

    // skopeo, both ways
    let oci: serde_json::Value = serde_json::from_str(&tool(
        Command::new("skopeo")
            .arg("inspect")
            .arg(format!("oci-archive:{}", tar.display())),
    ))
    .unwrap();
    assert_eq!(oci["Os"], "linux");
    assert_eq!(oci["Layers"].as_array().unwrap().len(), 1);
    assert!(oci["Env"][0].as_str().unwrap().starts_with("PATH="));
    let cfg: serde_json::Value = serde_json::from_str(&tool(
        Command::new("skopeo")
            .arg("inspect")
            .arg("--config")
            .arg(format!("docker-archive:{}", tar.display())),
    ))
    .unwrap();
    assert_eq!(cfg["config"]["Cmd"][0], "sh");
    let raw: serde_json::Value = serde_json::from_str(&tool(
        Command::new("skopeo")
            .arg("inspect")
            .arg("--raw")
            .arg(format!("oci-archive:{}", tar.display())),
    ))
    .unwrap();
    assert_eq!(raw["config"]["digest"], id.as_str());
    assert_eq!(
        raw["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    let docker = tool(
        Command::new("tar")
            .arg("xOf")
            .arg(&tar)
            .arg("manifest.json"),
    );
    assert!(
        docker.contains(r#""RepoTags":["busybox:latest"]"#),
        "{docker}"
    );

    // umoci unpacks the same files as the rootfs tarball holds
    let layout = root.path().join("layout");
    extract(&tar, &layout);
    let bundle = root.path().join("bundle");
    let mut umoci = Command::new("umoci");
    umoci.arg("unpack");
    if !is_root() {
        umoci.arg("--rootless");
    }
    tool(
        umoci
            .arg("--image")
            .arg(format!("{}:latest", layout.display()))
            .arg(&bundle),
    );
    let original = root.path().join("original");
    extract(busybox_rootfs_tar(), &original);
    assert_eq!(tree(&bundle.join("rootfs")), tree(&original));

    // saving twice gives the same bytes (layers compressed once, deterministic tar)
    let again = root.path().join("again.tar");
    root.ok([
        std::ffi::OsStr::new("save"),
        "-o".as_ref(),
        again.as_os_str(),
        "busybox".as_ref(),
    ]);
    assert_eq!(std::fs::read(&tar).unwrap(), std::fs::read(&again).unwrap());
}

fn skopeo_copy(from: String, to: String) {
    tool(
        Command::new("skopeo")
            .arg("copy")
            .arg("--quiet")
            .arg(from)
            .arg(to),
    );
}

#[test]
fn load_reads_kiln_and_skopeo_archives() {
    let src = TestRoot::with_busybox();
    let tar = src.path().join("bb.tar");
    src.ok([
        std::ffi::OsStr::new("save"),
        "--compression".as_ref(),
        "zstd".as_ref(),
        "-o".as_ref(),
        tar.as_os_str(),
        "busybox".as_ref(),
    ]);
    let id = src.ok(["images", "-q", "--no-trunc"]).trim().to_string();

    let dst = TestRoot::new();
    let out = dst.ok([std::ffi::OsStr::new("load"), "-i".as_ref(), tar.as_os_str()]);
    assert_eq!(out.trim(), "Loaded image: busybox:latest");
    let dir: PathBuf = dst.path().to_path_buf();
    // skopeo cannot put zstd layers in a docker archive: feed it gzip
    let tar = src.path().join("bb-gzip.tar");
    src.ok([
        std::ffi::OsStr::new("save"),
        "-o".as_ref(),
        tar.as_os_str(),
        "busybox".as_ref(),
    ]);
    // what skopeo writes: a docker archive (layer files, symlinks) and an OCI archive
    let docker = dir.join("sk-docker.tar");
    skopeo_copy(
        format!("oci-archive:{}", tar.display()),
        format!("docker-archive:{}:example/sk:1", docker.display()),
    );
    let oci = dir.join("sk-oci.tar");
    skopeo_copy(
        format!("oci-archive:{}", tar.display()),
        format!("oci-archive:{}:example/skoci:2", oci.display()),
    );
    let out = dst.ok([
        std::ffi::OsStr::new("load"),
        "-i".as_ref(),
        docker.as_os_str(),
    ]);
    assert_eq!(out.trim(), "Loaded image: example/sk:1");
    let out = dst
        .kiln(["load"])
        .stdin(std::fs::File::open(&oci).unwrap())
        .output()
        .unwrap();
    assert_success(&out);
    assert_eq!(stdout(&out).trim(), "Loaded image: example/skoci:2");
    for name in ["busybox", "example/sk:1", "example/skoci:2"] {
        let v: serde_json::Value = serde_json::from_str(&dst.ok(["inspect", name])).unwrap();
        assert_eq!(
            v[0]["Id"],
            id.as_str(),
            "{name}: the same config, the same image id"
        );
    }
    // a kiln save of the docker-loaded image is read back by skopeo
    let again = dir.join("again.tar");
    dst.ok([
        std::ffi::OsStr::new("save"),
        "-o".as_ref(),
        again.as_os_str(),
        "example/sk:1".as_ref(),
    ]);
    tool(
        Command::new("skopeo")
            .arg("inspect")
            .arg(format!("docker-archive:{}", again.display())),
    );
}

#[test]
fn bad_archives_are_refused_cleanly() {
    let root = TestRoot::new();
    // a rootfs tarball is no image archive
    let out = root.run([
        std::ffi::OsStr::new("load"),
        "-i".as_ref(),
        busybox_rootfs_tar().as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("neither an OCI layout"),
        "{}",
        stderr(&out)
    );
    // a blob whose content does not match its name
    let src = TestRoot::with_busybox();
    let tar = src.path().join("bb.tar");
    src.ok([
        std::ffi::OsStr::new("save"),
        "--compression".as_ref(),
        "none".as_ref(),
        "-o".as_ref(),
        tar.as_os_str(),
        "busybox".as_ref(),
    ]);
    let mut bytes = std::fs::read(&tar).unwrap();
    let at = bytes.windows(7).position(|w| w == b"busybox").unwrap() + 2048;
    bytes[at] ^= 0xff;
    let bad = root.path().join("bad.tar");
    std::fs::write(&bad, &bytes).unwrap();
    let out = root.run([std::ffi::OsStr::new("load"), "-i".as_ref(), bad.as_os_str()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("digest mismatch"), "{}", stderr(&out));
    assert_eq!(root.ok(["images", "-q"]), "");
    // -o to a missing directory leaves nothing
    let out = src.run(["save", "-o", "/nonexistent/dir/x.tar", "busybox"]);
    assert_eq!(out.status.code(), Some(1));
}
