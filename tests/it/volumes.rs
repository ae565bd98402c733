//! Volumes and images: an image's `VOLUME` becomes an anonymous volume
//! seeded with the image's content there, a named volume is seeded on
//! first use when empty (never again; never with `:nocopy`), `rm -v` and
//! `--rm` remove anonymous volumes, plain `rm` keeps them, and `volume ls`
//! lists them.

use serde_json::Value;

use crate::require_root;
use crate::run::Containers;
use crate::util::*;

fn volumes(root: &TestRoot) -> Vec<String> {
    root.ok(["volume", "ls", "-q"])
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn image_volumes_are_seeded_and_removed_with_their_container() {
    require_root!();
    let root = TestRoot::with_busybox();
    let _c = Containers(&root);
    let ctx = build_context(&[(
        "Dockerfile",
        "FROM busybox\nRUN mkdir -p /data/sub && echo seed > /data/f && echo deep > /data/sub/g \
         && chown 1000:1000 /data && chmod 750 /data\nVOLUME /data\n",
    )]);
    root.build_ok(ctx.path(), ["-t", "withvol"]);
    let run = |args: &[&str]| {
        let mut all = vec!["run", "--network", "none"];
        all.extend_from_slice(args);
        root.ok(all)
    };

    // --rm: seeded, and the anonymous volume goes with the container
    assert_eq!(
        run(&[
            "--rm",
            "withvol",
            "sh",
            "-c",
            "cat /data/f /data/sub/g; stat -c '%u %a' /data; grep ' /data ' /proc/mounts | wc -l"
        ]),
        "seed\ndeep\n1000 750\n1\n"
    );
    assert!(volumes(&root).is_empty(), "{:?}", volumes(&root));

    // a kept container keeps its volume, with what it wrote, across starts
    run(&[
        "--name",
        "keep",
        "withvol",
        "sh",
        "-c",
        "echo more >> /data/f",
    ]);
    let listed = volumes(&root);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(
        listed[0].len(),
        64,
        "an anonymous volume has an id for a name"
    );
    let c: Vec<Value> = serde_json::from_str(&root.ok(["inspect", "keep"])).unwrap();
    assert_eq!(c[0]["Mounts"][0]["Name"], listed[0].as_str());
    assert_eq!(c[0]["Mounts"][0]["Destination"], "/data");
    let table = root.ok(["volume", "ls"]);
    assert!(table.contains(&listed[0]), "{table}");
    root.ok(["start", "-a", "keep"]);
    let data = root
        .root_dir()
        .join("volumes")
        .join(&listed[0])
        .join("_data");
    assert_eq!(
        std::fs::read_to_string(data.join("f")).unwrap(),
        "seed\nmore\nmore\n",
        "seeded once, then the container's own"
    );
    // rm -v removes it
    root.ok(["rm", "-v", "keep"]);
    assert!(volumes(&root).is_empty());
    // plain rm keeps it, as docker's
    run(&["--name", "plain", "withvol", "true"]);
    root.ok(["rm", "plain"]);
    assert_eq!(volumes(&root).len(), 1);

    // -v on the declared path replaces the anonymous volume
    let out = run(&[
        "--rm",
        "-v",
        "/tmp:/data:ro",
        "withvol",
        "sh",
        "-c",
        "test -e /data/f || echo bind",
    ]);
    assert_eq!(out, "bind\n");
}

#[test]
fn named_volumes_are_seeded_on_first_use_only() {
    require_root!();
    let root = TestRoot::with_busybox();
    let _c = Containers(&root);
    let run = |args: &[&str]| {
        let mut all = vec!["run", "--rm", "--network", "none"];
        all.extend_from_slice(args);
        root.ok(all)
    };
    // /etc of the image comes into the empty named volume
    assert_eq!(
        run(&[
            "-v",
            "cfg:/etc",
            "busybox",
            "sh",
            "-c",
            "grep -c '^app:' /etc/passwd; echo x > /etc/mine"
        ]),
        "1\n"
    );
    assert_eq!(volumes(&root), ["cfg"]);
    // not empty now: kept as it is, wherever it is mounted
    assert_eq!(
        run(&["-v", "cfg:/mnt", "busybox", "ls", "/mnt/mine"]),
        "/mnt/mine\n"
    );
    run(&["-v", "cfg:/etc", "busybox", "rm", "/etc/passwd"]);
    let out = run(&[
        "-v",
        "cfg:/etc",
        "busybox",
        "sh",
        "-c",
        "test -e /etc/passwd || echo gone",
    ]);
    assert_eq!(out, "gone\n");
    // a named volume survives --rm
    assert_eq!(volumes(&root), ["cfg"]);
    root.ok(["volume", "rm", "cfg"]);
    assert!(volumes(&root).is_empty());
    // :nocopy leaves it empty
    assert_eq!(
        run(&["-v", "bare:/home:nocopy", "busybox", "ls", "/home"]),
        ""
    );
    assert_eq!(
        run(&["-v", "seeded:/home", "busybox", "ls", "/home"]),
        "app\n"
    );
}
