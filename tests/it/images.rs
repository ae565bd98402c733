//! The image commands on one root: import, images, tag, rmi, inspect,
//! history, and the store's on-disk guarantees.

use crate::util::*;

#[test]
fn busybox_base_is_listed_inspected_and_reproducible() {
    let root = TestRoot::with_busybox();
    let id = root.import_busybox("busybox");
    let other = TestRoot::new();
    assert_eq!(other.import_busybox("x"), id, "same tarball, same image id");
    // testdata/mkbase.sh (for humans) makes the very same image
    let out = std::process::Command::new("sh")
        .arg(workspace().join("testdata/mkbase.sh"))
        .arg(other.root_dir())
        .env("KILN", kiln_bin())
        .output()
        .unwrap();
    assert_success(&out);
    assert_eq!(stdout(&out).trim(), id);
    let out = root.ok(["images"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    let header: Vec<&str> = lines[0]
        .split("   ")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    assert_eq!(header, ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]);
    assert!(lines[1].starts_with("busybox "), "{out}");
    assert!(lines[1].contains(" latest "), "{out}");
    assert!(lines[1].contains(&id[7..19]), "{out}");
    let v: serde_json::Value = serde_json::from_str(&root.ok(["inspect", "busybox"])).unwrap();
    let img = &v[0];
    assert_eq!(img["Id"], id.as_str());
    assert_eq!(img["RepoTags"][0], "busybox:latest");
    assert_eq!(img["Config"]["Cmd"][0], "sh");
    assert!(
        img["Config"]["Env"][0]
            .as_str()
            .unwrap()
            .starts_with("PATH=")
    );
    assert_eq!(img["Os"], "linux");
    assert_eq!(img["RootFS"]["Type"], "layers");
    assert_eq!(img["RootFS"]["Layers"].as_array().unwrap().len(), 1);
    // import unpacked the layer, so builds and runs find it ready
    let diff_id = img["RootFS"]["Layers"][0].as_str().unwrap();
    let snapshot = root
        .root_dir()
        .join("snapshots/layers")
        .join(diff_id.strip_prefix("sha256:").unwrap());
    assert!(
        snapshot.join("bin/busybox").exists(),
        "{}",
        snapshot.display()
    );
    assert_eq!(img["Created"], "1970-01-01T00:00:00Z");
    assert!(img["Size"].as_u64().unwrap() > 1_000_000);
    // lookups by id, id prefix, full name, digest
    for q in [
        &id[..],
        &id[7..],
        &id[7..15],
        "docker.io/library/busybox:latest",
    ] {
        let v: serde_json::Value = serde_json::from_str(&root.ok(["inspect", q])).unwrap();
        assert_eq!(v[0]["Id"], id.as_str(), "{q}");
    }
    let json = root.ok(["images", "--format", "json"]);
    let row: serde_json::Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
    assert_eq!(row["Repository"], "busybox");
    assert_eq!(row["Tag"], "latest");
    assert_eq!(row["ID"], &id[7..19]);
    let hist = root.ok(["history", "busybox"]);
    assert!(hist.contains("kiln import busybox-rootfs.tar"), "{hist}");
    assert!(hist.contains("busybox base"), "{hist}");
}

#[test]
fn tag_and_rmi() {
    let root = TestRoot::with_busybox();
    root.ok(["tag", "busybox", "example/echo:1"]);
    root.ok(["tag", "busybox", "localhost:5000/a/b"]);
    let out = root.ok(["images"]);
    assert!(out.contains("example/echo"), "{out}");
    assert!(out.contains("localhost:5000/a/b"), "{out}");
    // several repositories: removing by id needs force
    let id = root.ok(["images", "-q"]).trim().to_string();
    let out = root.run(["rmi", &id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("repositories"), "{}", stderr(&out));
    // by name: untag only while other names remain
    let out = root.ok(["rmi", "example/echo:1"]);
    assert_eq!(out.trim(), "Untagged: example/echo:1");
    let out = root.ok(["rmi", "-f", &id]);
    assert!(out.contains("Untagged: busybox:latest"), "{out}");
    assert!(out.contains("Deleted: sha256:"), "{out}");
    assert_eq!(root.ok(["images", "-q"]), "");
    // the blobs went with it
    let blobs = std::fs::read_dir(root.root_dir().join("blobs/sha256"))
        .unwrap()
        .count();
    assert_eq!(blobs, 0);
    // errors are user errors
    let out = root.run(["rmi", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no such image: nope"),
        "{}",
        stderr(&out)
    );
    let out = root.run(["tag", "nope", "x"]);
    assert_eq!(out.status.code(), Some(1));
    let out = root.run(["tag", "busybox", "Bad/Name"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn import_rejects_non_tar_and_leaves_nothing() {
    let root = TestRoot::new();
    let f = root.path().join("junk.tar");
    std::fs::write(&f, b"this is not a tarball, not even close to one").unwrap();
    let out = root.run([std::ffi::OsStr::new("import"), f.as_os_str(), "x".as_ref()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("not a tar archive"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read_dir(root.root_dir().join("blobs/sha256"))
            .unwrap()
            .count(),
        0
    );
    assert_eq!(
        std::fs::read_dir(root.root_dir().join("tmp"))
            .unwrap()
            .count(),
        0
    );
    // stdin, gzip-compressed
    let gz = root.path().join("rootfs.tar.gz");
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "gzip -c {} > {}",
            busybox_rootfs_tar().display(),
            gz.display()
        ))
        .status()
        .unwrap();
    assert!(status.success());
    let out = root
        .kiln(["import", "-", "fromstdin"])
        .stdin(std::fs::File::open(&gz).unwrap())
        .output()
        .unwrap();
    assert_success(&out);
    assert!(root.ok(["images"]).contains("fromstdin"));
}
