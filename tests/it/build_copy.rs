//! COPY through `kiln build`, one test per rule, each checked inside the
//! built image: what sources select (directories, wildcards, `--from`,
//! `--parents`, `--exclude`, `.dockerignore`, symlinks), where they land
//! (trailing `/`, WORKDIR, created parents, symlinks of the image),
//! `--link`, and WORKDIR creating its directory.

use std::path::Path;

use crate::build_check::*;
use crate::require_root;
use crate::util::*;

#[test]
fn a_directory_source_copies_its_contents() {
    require_root!();
    let root = TestRoot::with_busybox();
    let ctx = build_context(&[
        ("dir/a.txt", "A\n"),
        ("dir/sub/b.txt", "B\n"),
        (
            "Dockerfile",
            "FROM busybox\nCOPY dir /new\nCOPY dir /new-slash/\nCOPY dir/ /tmp\n",
        ),
    ]);
    build(&root, ctx.path(), "dircopy");
    let out = sh(
        &root,
        "dircopy",
        "cat /new/a.txt /new/sub/b.txt /new-slash/a.txt /tmp/sub/b.txt; \
         ls -A /new; ls -A /new-slash",
    );
    assert_eq!(out, "A\nB\nA\nB\na.txt\nsub\na.txt\nsub\n");
    // An existing destination directory keeps its own metadata.
    assert_eq!(stat(&root, "dircopy", &["/tmp"]), ["1777 0:0 directory"]);
}

#[test]
fn wildcards_select_matching_sources() {
    require_root!();
    let root = TestRoot::with_busybox();
    let ctx = build_context(&[
        ("a.txt", "a\n"),
        ("b.txt", "b\n"),
        ("c.md", "c\n"),
        ("src/x.rs", "x\n"),
        ("src/y.rs", "y\n"),
        ("src/z.txt", "z\n"),
        ("docs/one/readme.md", "r\n"),
        ("arr[0].txt", "literal\n"),
        (
            "Dockerfile",
            "FROM busybox\n\
             COPY *.txt /w/\n\
             COPY src/*.rs /rs/\n\
             COPY ?.md /q/\n\
             COPY doc[s] /docs/\n\
             COPY arr[[]0].txt /escaped\n\
             COPY nothing-matches-* /none/\n",
        ),
    ]);
    build(&root, ctx.path(), "wild");
    let out = sh(
        &root,
        "wild",
        "ls /w; echo; ls /rs; echo; ls /q; echo; cat /docs/one/readme.md /escaped; \
         [ -e /none ] && echo none-created; true",
    );
    assert_eq!(
        out,
        "a.txt\narr[0].txt\nb.txt\n\nx.rs\ny.rs\n\nc.md\n\nr\nliteral\n"
    );
}

#[test]
fn several_sources_need_a_directory_destination() {
    require_root!();
    let root = TestRoot::with_busybox();
    for (line, shown) in [
        ("COPY a.txt b.txt /single", "COPY a.txt b.txt /single"),
        ("COPY *.txt /single", "COPY *.txt /single"),
    ] {
        let ctx = build_context(&[
            ("a.txt", "a\n"),
            ("b.txt", "b\n"),
            ("Dockerfile", &format!("FROM busybox\n{line}\n")),
        ]);
        let err = build_fails(&root, ctx.path(), &[]);
        assert!(err.contains("Dockerfile:2"), "{err}");
        assert!(err.contains(shown), "{err}");
        assert!(err.contains("must be a directory"), "{err}");
    }
    // A directory destination, with a `/` or existing, takes them all.
    let ctx = build_context(&[
        ("a.txt", "a\n"),
        ("b.txt", "b\n"),
        (
            "Dockerfile",
            "FROM busybox\nCOPY a.txt b.txt /many/\nCOPY *.txt /tmp\n",
        ),
    ]);
    build(&root, ctx.path(), "many");
    assert_eq!(
        sh(&root, "many", "ls /many; ls /tmp"),
        "a.txt\nb.txt\na.txt\nb.txt\n"
    );
}

#[test]
fn a_trailing_slash_makes_the_destination_a_directory() {
    require_root!();
    let root = TestRoot::with_busybox();
    let ctx = build_context(&[
        ("a.txt", "a\n"),
        (
            "Dockerfile",
            "FROM busybox\nCOPY a.txt /t/\nCOPY a.txt /t2\nCOPY a.txt /etc\n",
        ),
    ]);
    build(&root, ctx.path(), "slash");
    assert_eq!(
        stat(&root, "slash", &["/t", "/t/a.txt", "/t2", "/etc/a.txt"]),
        [
            "755 0:0 directory",
            "644 0:0 regular file",
            "644 0:0 regular file",
            "644 0:0 regular file"
        ]
    );
    assert_eq!(sh(&root, "slash", "cat /t2"), "a\n");
}

#[test]
fn a_relative_destination_is_relative_to_workdir() {
    require_root!();
    let root = TestRoot::with_busybox();
    let ctx = build_context(&[
        ("a.txt", "a\n"),
        (
            "Dockerfile",
            "FROM busybox\nWORKDIR /app\nCOPY a.txt .\nCOPY a.txt rel/\nCOPY a.txt renamed.txt\n\
             WORKDIR sub\nCOPY a.txt ./\nCOPY a.txt ../up.txt\n",
        ),
    ]);
    build(&root, ctx.path(), "relative");
    assert_eq!(
        sh(
            &root,
            "relative",
            "cd /app && cat a.txt rel/a.txt renamed.txt sub/a.txt up.txt"
        ),
        "a\na\na\na\na\n"
    );
}

/// A destination through a symlink of the image resolves inside the image
/// (an absolute link is relative to the image's root, never the host's).
#[test]
fn destination_symlinks_resolve_inside_the_image() {
    require_root!();
    let root = TestRoot::with_busybox();
    let host_only = format!("/kiln-test-host-only-{}", std::process::id());
    assert!(!Path::new(&host_only).exists());
    let ctx = build_context(&[
        ("a.txt", "a\n"),
        (
            "Dockerfile",
            &format!(
                "FROM busybox\nRUN ln -s /tmp /tmplink && ln -s {host_only} /escape && ln -s ../../.. /up\n\
                 COPY a.txt /tmplink\nCOPY a.txt /escape/deep/\nCOPY a.txt /up/top.txt\n"
            ),
        ),
    ]);
    build(&root, ctx.path(), "through");
    assert_eq!(
        sh(
            &root,
            "through",
            &format!("cat /tmp/a.txt {host_only}/deep/a.txt /top.txt")
        ),
        "a\na\na\n"
    );
    assert!(
        !Path::new(&host_only).exists(),
        "the copy wrote to the host's {host_only}"
    );
}

#[test]
fn missing_parents_are_created() {
    require_root!();
    let root = TestRoot::with_busybox();
    let ctx = build_context(&[
        ("a.txt", "a\n"),
        (
            "Dockerfile",
            "FROM busybox\nCOPY a.txt /p/q/r/\nCOPY --chown=app a.txt /owned/deep/file\n",
        ),
    ]);
    build(&root, ctx.path(), "parents");
    assert_eq!(
        stat(
            &root,
            "parents",
            &[
                "/p",
                "/p/q",
                "/p/q/r",
                "/p/q/r/a.txt",
                "/owned",
                "/owned/deep",
                "/owned/deep/file"
            ]
        ),
        [
            "755 0:0 directory",
            "755 0:0 directory",
            "755 0:0 directory",
            "644 0:0 regular file",
            "755 1000:1000 directory",
            "755 1000:1000 directory",
            "644 1000:1000 regular file"
        ]
    );
}

#[test]
fn copy_from_a_stage_an_index_and_an_image() {
    require_root!();
    let root = TestRoot::with_busybox();
    let ctx = build_context(&[(
        "Dockerfile",
        "FROM busybox AS build\n\
         RUN mkdir /out && echo built > /out/file && chown -R 1000:1000 /out && chmod 600 /out/file && \
         ln -s /out /abs-link && ln -s out /rel-link\n\
         FROM busybox\n\
         COPY --from=build /out/file /from-stage\n\
         COPY --from=0 /out/ /from-index/\n\
         COPY --from=busybox /etc/group /from-image\n\
         COPY --from=build --chown=0:0 /out/file /chowned\n\
         COPY --from=build /abs-link/file /via-abs-link\n\
         COPY --from=build /rel-link/file /via-rel-link\n\
         WORKDIR /work\n\
         COPY --from=build out/file relative-source\n",
    )]);
    build(&root, ctx.path(), "from");
    assert_eq!(
        sh(
            &root,
            "from",
            "cat /from-stage /from-index/file /via-abs-link /via-rel-link /work/relative-source && \
             cmp /from-image /etc/group && echo same"
        ),
        // A relative source of --from is relative to that filesystem's root,
        // not to WORKDIR.
        "built\nbuilt\nbuilt\nbuilt\nbuilt\nsame\n"
    );
    // Ownership and mode come with files from another filesystem.
    assert_eq!(
        stat(
            &root,
            "from",
            &["/from-stage", "/from-index/file", "/chowned"]
        ),
        [
            "600 1000:1000 regular file",
            "600 1000:1000 regular file",
            "600 0:0 regular file"
        ]
    );
    // A stage that does not exist and is no image is an error.
    let bad = build_context(&[(
        "Dockerfile",
        "FROM busybox\nCOPY --from=nosuchstage /x /x\n",
    )]);
    let err = build_fails(&root, bad.path(), &[]);
    assert!(err.contains("nosuchstage"), "{err}");
}

/// `--link` copies onto an empty layer merged on top: its layer does not
/// depend on what is below, so a change below leaves it cached and
/// byte-identical.
#[test]
fn link_copies_into_an_independent_layer() {
    require_root!();
    let root = TestRoot::with_busybox();
    let ctx = build_context(&[
        ("a.txt", "a\n"),
        (
            "Dockerfile",
            "FROM busybox\nARG V=1\nRUN echo $V > /v\nCOPY --link --chown=1000:1000 a.txt /linked/\n",
        ),
    ]);
    root.build_ok(ctx.path(), ["-t", "link1", "--build-arg", "V=1"]);
    let second = root.build_ok(ctx.path(), ["-t", "link2", "--build-arg", "V=2"]);
    let copy_step = second
        .lines()
        .find_map(|l| {
            l.split_once(" [3/3] COPY --link")
                .map(|(n, _)| n.to_string())
        })
        .unwrap_or_else(|| panic!("{second}"));
    assert!(
        second.contains(&format!("{copy_step} CACHED")),
        "the linked copy re-ran: {second}"
    );
    assert_eq!(
        sh(
            &root,
            "link2",
            "cat /v /linked/a.txt; stat -c '%u:%g' /linked/a.txt"
        ),
        "2\na\n1000:1000\n"
    );
    let layers = |img: &str| -> Vec<serde_json::Value> {
        let v: serde_json::Value = serde_json::from_str(&root.ok(["inspect", img])).unwrap();
        v[0]["RootFS"]["Layers"].as_array().unwrap().clone()
    };
    let (l1, l2) = (layers("link1"), layers("link2"));
    assert_eq!(l1.len(), 3);
    assert_ne!(l1[1], l2[1], "the RUN layers differ");
    assert_eq!(l1[2], l2[2], "the linked layer is the same");
}

#[test]
fn parents_keeps_the_source_directories() {
    require_root!();
    let root = TestRoot::with_busybox();
    let ctx = build_context(&[
        ("a/b/c.txt", "c\n"),
        ("x/y/z.txt", "z1\n"),
        ("x/w/z.txt", "z2\n"),
        ("x/y/other.txt", "o\n"),
        (
            "Dockerfile",
            "FROM busybox\n\
             COPY --parents a/b/c.txt x/*/z.txt /p/\n\
             COPY --parents ./a/./b/c.txt /pivot/\n",
        ),
    ]);
    build(&root, ctx.path(), "parents");
    assert_eq!(
        sh(
            &root,
            "parents",
            "cd /p && find . | sort; echo; cd /pivot && find . | sort"
        ),
        ".\n./a\n./a/b\n./a/b/c.txt\n./x\n./x/w\n./x/w/z.txt\n./x/y\n./x/y/z.txt\n\n\
         .\n./b\n./b/c.txt\n"
    );
}

#[test]
fn exclude_leaves_out_matching_files() {
    require_root!();
    let root = TestRoot::with_busybox();
    let ctx = build_context(&[
        ("app/main.rs", "m\n"),
        ("app/README.md", "r\n"),
        ("app/docs/x.md", "x\n"),
        ("app/target/out.bin", "o\n"),
        (
            "Dockerfile",
            "FROM busybox\n\
             COPY --exclude=*.md --exclude=target app/ /e/\n\
             COPY --exclude=**/*.md app /e2/\n",
        ),
    ]);
    build(&root, ctx.path(), "excluded");
    assert_eq!(
        sh(
            &root,
            "excluded",
            "cd /e && find . | sort; echo; cd /e2 && find . | sort"
        ),
        ".\n./docs\n./docs/x.md\n./main.rs\n\n\
         .\n./docs\n./main.rs\n./target\n./target/out.bin\n"
    );
}

#[test]
fn dockerignore_filters_the_context() {
    require_root!();
    let root = TestRoot::with_busybox();
    let ctx = build_context(&[
        (
            ".dockerignore",
            "*.log\n!keep.log\nsecret/\n!secret/public\n**/*.tmp\n",
        ),
        ("a.log", "a\n"),
        ("keep.log", "k\n"),
        ("secret/key", "s\n"),
        ("secret/public", "p\n"),
        ("sub/x.tmp", "t\n"),
        ("sub/ok.txt", "ok\n"),
        ("Dockerfile", "FROM busybox\nCOPY . /ctx/\n"),
        // A Dockerfile with its own ignore file, which wins over the
        // context's.
        ("build/app.Dockerfile", "FROM busybox\nCOPY . /ctx/\n"),
        ("build/app.Dockerfile.dockerignore", "keep.log\nbuild\n"),
    ]);
    build(&root, ctx.path(), "ignored");
    assert_eq!(
        sh(&root, "ignored", "cd /ctx && find . | sort"),
        ".\n./.dockerignore\n./Dockerfile\n./build\n./build/app.Dockerfile\n\
         ./build/app.Dockerfile.dockerignore\n./keep.log\n./secret\n./secret/public\n\
         ./sub\n./sub/ok.txt\n"
    );
    let df = ctx.path().join("build/app.Dockerfile");
    root.build_ok(ctx.path(), ["-t", "own-ignore", "-f", df.to_str().unwrap()]);
    assert_eq!(
        sh(&root, "own-ignore", "cd /ctx && find . | sort"),
        ".\n./.dockerignore\n./Dockerfile\n./a.log\n./secret\n./secret/key\n\
         ./secret/public\n./sub\n./sub/ok.txt\n./sub/x.tmp\n"
    );
    // An ignored file does not exist for COPY.
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM busybox\nCOPY a.log /a.log\n",
    )
    .unwrap();
    let err = build_fails(&root, ctx.path(), &[]);
    assert!(err.contains("a.log") && err.contains("not found"), "{err}");
}

/// Symlinks in the context are copied as symlinks; one named as a source is
/// followed, but only inside the context: never to the host's files.
#[test]
fn symlinks_stay_links_and_never_lead_out_of_the_context() {
    require_root!();
    let root = TestRoot::with_busybox();
    let outer = tempfile::tempdir().unwrap();
    let host_secret = outer.path().join("host-secret");
    std::fs::write(&host_secret, "HOST-SECRET\n").unwrap();
    let ctx = outer.path().join("ctx");
    write(&ctx, "target.txt", b"T\n");
    write(&ctx, "sub/f", b"F\n");
    symlink(&ctx, "link.txt", "target.txt");
    symlink(&ctx, "dirlink", "sub");
    symlink(&ctx, "abs", host_secret.to_str().unwrap());
    symlink(&ctx, "rel-out", "../host-secret");
    symlink(&ctx, "up", "..");
    // A socket cannot be in a layer: it becomes an empty file.
    let _listener = std::os::unix::net::UnixListener::bind(ctx.join("app.sock")).unwrap();
    write(
        &ctx,
        "Dockerfile",
        b"FROM busybox\nCOPY . /all/\nCOPY link.txt /followed\nCOPY dirlink/ /through/\n\
          COPY link* /matched/\n",
    );
    build(&root, &ctx, "links");
    let out = sh(
        &root,
        "links",
        "cd /all && for l in link.txt dirlink abs rel-out up; do echo \"$l -> $(readlink $l)\"; done; \
         [ -L /followed ] || cat /followed; cat /through/f; \
         [ -L /matched/link.txt ] || cat /matched/link.txt; stat -c '%F %s' /all/app.sock",
    );
    assert_eq!(
        out,
        format!(
            "link.txt -> target.txt\ndirlink -> sub\nabs -> {}\nrel-out -> ../host-secret\nup -> ..\nT\nF\n\
             T\nregular empty file 0\n",
            host_secret.display()
        )
    );
    // Named as sources, links that point out of the context resolve inside
    // it (as if the context were `/`), where there is no such file.
    // `..` in a source stops at the context's root, as in BuildKit.
    for source in ["abs", "rel-out", "up/host-secret", "../host-secret"] {
        write(
            &ctx,
            "Dockerfile",
            format!("FROM busybox\nCOPY {source} /stolen\n").as_bytes(),
        );
        let err = build_fails(&root, &ctx, &[]);
        assert!(err.contains("not found"), "{source}: {err}");
        assert!(!err.contains("HOST-SECRET"), "{err}");
    }
}

#[test]
fn workdir_creates_the_directory() {
    require_root!();
    let root = TestRoot::with_busybox();
    let ctx = build_context(&[(
        "Dockerfile",
        "FROM scratch AS bare\nWORKDIR /foo\nWORKDIR /\n\
         FROM busybox\nRUN mkdir /mine && chown 1000:1000 /mine\n\
         COPY --from=bare / /from-scratch/\n\
         WORKDIR /w/x/y\nWORKDIR rel\nWORKDIR /mine\nWORKDIR /tmp\n",
    )]);
    build(&root, ctx.path(), "workdirs");
    assert_eq!(
        stat(
            &root,
            "workdirs",
            &[
                "/w",
                "/w/x/y",
                "/w/x/y/rel",
                "/mine",
                "/tmp",
                "/from-scratch/foo"
            ]
        ),
        [
            "755 0:0 directory",
            "755 0:0 directory",
            "755 0:0 directory",
            // An existing directory is left as it is.
            "755 1000:1000 directory",
            "1777 0:0 directory",
            // Even an empty image gets its WORKDIR.
            "755 0:0 directory"
        ]
    );
    assert_eq!(sh(&root, "workdirs", "pwd"), "/tmp\n");
}
