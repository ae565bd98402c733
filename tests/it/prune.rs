//! `kiln prune` removes stopped containers, the build cache (records,
//! layers only it kept, cache mounts) and dangling images (`--all`: every image no container uses), saying what it removed
//! and what it freed; `kiln system df` shows what each part takes.

use crate::require_root;
use crate::run::Containers;
use crate::util::*;

/// `system df`'s rows: TYPE → (TOTAL, ACTIVE).
fn df(root: &TestRoot) -> Vec<(String, usize, usize)> {
    let out = root.ok(["system", "df"]);
    let mut lines = out.lines();
    assert!(lines.next().unwrap().starts_with("TYPE"), "{out}");
    lines
        .map(|l| {
            // the type may be two words ("Local Volumes", "Build Cache")
            let cols: Vec<&str> = l.split_whitespace().collect();
            let n = cols
                .iter()
                .position(|c| c.parse::<usize>().is_ok())
                .unwrap();
            (
                cols[..n].join(" "),
                cols[n].parse().unwrap(),
                cols[n + 1].parse().unwrap(),
            )
        })
        .collect()
}

fn row(rows: &[(String, usize, usize)], kind: &str) -> (usize, usize) {
    let r = rows
        .iter()
        .find(|r| r.0 == kind)
        .unwrap_or_else(|| panic!("{kind}: {rows:?}"));
    (r.1, r.2)
}

#[test]
fn prune_removes_stopped_containers_cache_and_unused_images() {
    require_root!();
    let root = TestRoot::with_busybox();
    let _c = Containers(&root);
    let spare = root
        .kiln(["import", "--change", "ENV SPARE=1"])
        .arg(busybox_rootfs_tar())
        .arg("spare")
        .output()
        .unwrap();
    assert_success(&spare);
    let ctx = build_context(&[(
        "Dockerfile",
        "FROM busybox\nRUN --mount=type=cache,target=/c head -c 50000 /dev/zero > /c/f && echo x > /x\n",
    )]);
    root.build_ok(ctx.path(), ["-t", "built"]);
    let cache_mounts = root.root_dir().join("mounts/cache");
    let instances = || {
        std::fs::read_dir(&cache_mounts)
            .unwrap()
            .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
            .filter(|e| e.as_ref().unwrap().path().is_dir())
            .count()
    };
    assert_eq!(instances(), 1);
    let net = ["--network", "none"];
    let done = root.ok([
        "run",
        net[0],
        net[1],
        "--name",
        "done",
        "-v",
        "/anon",
        "busybox",
        "sh",
        "-c",
        "head -c 100000 /dev/zero > /big",
    ]);
    assert!(done.is_empty());
    let live = root.ok([
        "run", "-d", net[0], net[1], "--name", "live", "busybox", "sleep", "60",
    ]);
    let live = live.trim().to_string();

    let rows = df(&root);
    assert_eq!(row(&rows, "Images"), (3, 1), "{rows:?}");
    assert_eq!(row(&rows, "Containers"), (2, 1), "{rows:?}");
    assert_eq!(row(&rows, "Local Volumes"), (1, 1), "{rows:?}");
    assert!(row(&rows, "Build Cache").0 >= 1, "{rows:?}");

    // without --all: tagged images stay
    let out = root.run(["prune"]);
    assert_success(&out);
    let text = stdout(&out);
    assert!(
        stderr(&out).contains("stopped containers"),
        "{}",
        stderr(&out)
    );
    assert!(text.contains("Deleted Containers:"), "{text}");
    assert!(!text.contains(&live), "the running container stays: {text}");
    assert!(text.contains("cache records"), "{text}");
    assert!(text.contains("1 cache mount directories"), "{text}");
    assert_eq!(instances(), 0, "the cache mount was emptied");
    let total = text.lines().last().unwrap();
    assert!(total.starts_with("Total reclaimed space: "), "{text}");
    assert_ne!(total, "Total reclaimed space: 0B", "{text}");
    let ps = root.ok(["ps", "-aq", "--no-trunc"]);
    assert_eq!(ps.trim(), live);
    let images = root.ok(["images", "--format", "json"]);
    for name in ["busybox", "spare", "built"] {
        assert!(images.contains(name), "{name}: {images}");
    }
    // as docker's: the removed container's anonymous volume stays
    assert_eq!(root.ok(["volume", "ls", "-q"]).lines().count(), 1);
    let rows = df(&root);
    assert_eq!(row(&rows, "Containers"), (1, 1), "{rows:?}");
    assert_eq!(row(&rows, "Local Volumes"), (1, 0), "{rows:?}");
    assert_eq!(row(&rows, "Build Cache").0, 0, "{rows:?}");

    // --all: images no container uses go, the running one's stays
    let text = root.ok(["prune", "--all"]);
    assert!(text.contains("untagged: spare:latest"), "{text}");
    assert!(text.contains("untagged: built:latest"), "{text}");
    assert!(!text.contains("busybox"), "{text}");
    assert_eq!(row(&df(&root), "Images"), (1, 1));

    root.ok(["rm", "-f", "live"]);
    let text = root.ok(["prune", "-a"]);
    assert!(text.contains("untagged: busybox:latest"), "{text}");
    let rows = df(&root);
    assert_eq!(row(&rows, "Images"), (0, 0), "{rows:?}");
    assert_eq!(row(&rows, "Containers"), (0, 0), "{rows:?}");
}
