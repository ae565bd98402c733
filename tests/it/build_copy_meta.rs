//! COPY's ownership and modes through `kiln build`: `--chown` by name or id
//! resolved in the image, octal `--chmod`, and symbolic `--chmod` (Dockerfile
//! 1.14) relative to each source's mode, checked inside the built image.

use std::os::unix::fs::PermissionsExt;

use crate::build_check::*;
use crate::require_root;
use crate::util::*;

#[test]
fn chown_resolves_names_and_ids_in_the_image() {
    require_root!();
    let root = TestRoot::with_busybox();
    // bob and devs exist only in the image (added by a RUN step).
    let ctx = build_context(&[
        ("a.txt", "a\n"),
        ("dir/f", "f\n"),
        (
            "Dockerfile",
            "FROM busybox\n\
             RUN echo 'bob:x:2000:2100::/home/bob:/bin/sh' >> /etc/passwd && echo 'devs:x:2100:' >> /etc/group\n\
             COPY --chown=app a.txt /by-name\n\
             COPY --chown=bob:devs a.txt /by-names\n\
             COPY --chown=1234:5678 a.txt /by-ids\n\
             COPY --chown=app:65534 a.txt /mixed\n\
             COPY --chown=1234 a.txt /uid-only\n\
             COPY --chown=bob dir/ /bob-dir/\n",
        ),
    ]);
    build(&root, ctx.path(), "chowned");
    assert_eq!(
        stat(
            &root,
            "chowned",
            &[
                "/by-name",
                "/by-names",
                "/by-ids",
                "/mixed",
                "/uid-only",
                "/bob-dir",
                "/bob-dir/f"
            ]
        ),
        [
            "644 1000:1000 regular file",
            "644 2000:2100 regular file",
            "644 1234:5678 regular file",
            "644 1000:65534 regular file",
            "644 1234:1234 regular file",
            "755 2000:2100 directory",
            "644 2000:2100 regular file"
        ]
    );
    // `root` needs no /etc/passwd (as in BuildKit): FROM scratch works.
    let ctx = build_context(&[
        ("a.txt", "a\n"),
        (
            "Dockerfile",
            "FROM scratch AS bare\nCOPY --chown=root:root a.txt /a\n\
             FROM busybox\nCOPY --from=bare /a /from-bare\n",
        ),
    ]);
    build(&root, ctx.path(), "bare");
    assert_eq!(
        stat(&root, "bare", &["/from-bare"]),
        ["644 0:0 regular file"]
    );
    // A name the image does not know is an error naming it.
    let ctx = build_context(&[
        ("a.txt", "a\n"),
        ("Dockerfile", "FROM busybox\nCOPY --chown=ghost a.txt /x\n"),
    ]);
    let err = build_fails(&root, ctx.path(), &[]);
    assert!(err.contains("ghost"), "{err}");
    assert!(err.contains("Dockerfile:2"), "{err}");
}

#[test]
fn chmod_sets_the_mode_of_everything_copied() {
    require_root!();
    let root = TestRoot::with_busybox();
    let ctx = build_context(&[
        ("a.txt", "a\n"),
        ("dir/f", "f\n"),
        ("dir/sub/g", "g\n"),
        (
            "Dockerfile",
            "FROM busybox\nCOPY --chmod=0751 a.txt /m-file\nCOPY --chmod=640 dir/ /m-dir/\n\
             COPY --chmod=777 a.txt /parent/foo\nCOPY --chmod=770 a.txt /parent/sub/foo\n\
             COPY --chmod=0 a.txt /zero\n",
        ),
    ]);
    build(&root, ctx.path(), "chmodded");
    assert_eq!(
        stat(
            &root,
            "chmodded",
            &[
                "/m-file",
                "/m-dir",
                "/m-dir/f",
                "/m-dir/sub",
                "/m-dir/sub/g",
                "/parent",
                "/parent/sub",
                "/parent/sub/foo",
                "/zero"
            ]
        ),
        [
            "751 0:0 regular file",
            // Directories the copy creates get the mode too (BuildKit
            // 0.21+); existing ones are left alone.
            "640 0:0 directory",
            "640 0:0 regular file",
            "640 0:0 directory",
            "640 0:0 regular file",
            "777 0:0 directory",
            "770 0:0 directory",
            "770 0:0 regular file",
            "0 0:0 regular file"
        ]
    );
    let bad = build_context(&[
        ("a.txt", "a\n"),
        ("Dockerfile", "FROM busybox\nCOPY --chmod=999 a.txt /x\n"),
    ]);
    let err = build_fails(&root, bad.path(), &[]);
    assert!(err.contains("invalid chmod"), "{err}");
}

/// Symbolic `--chmod` (Dockerfile 1.14) applies to each copied file's own
/// mode, as `chmod` does: the expected modes come from busybox `chmod` on
/// the same sources inside the image.
#[test]
fn symbolic_chmod_is_relative_to_each_source_mode() {
    require_root!();
    let root = TestRoot::with_busybox();
    let ctx = build_context(&[("ctx.sh", "echo\n"), ("Dockerfile", "")]);
    std::fs::set_permissions(
        ctx.path().join("ctx.sh"),
        std::fs::Permissions::from_mode(0o664),
    )
    .unwrap();
    let cases = [
        ("file", "f1", "go-w"),
        ("file", "f2", "u=rw,g=r,o=r"),
        ("file", "f3", "a+X"),
        ("exec", "f4", "a+X"),
        ("file", "f5", "u+x,g-w"),
        ("exec", "f6", "o=u,g=u-w"),
        ("file", "f7", "+x"),
        ("dir", "d1", "go-w"),
        ("dir", "d2", "u+rw,g+r,o-x,o+w"),
        ("dir", "d3", "a+X"),
    ];
    let mut df = String::from(
        "FROM busybox AS base\n\
         RUN mkdir -p /input/dir /expected && touch /input/file /input/exec && \
         chmod 666 /input/file && chmod 751 /input/exec && chmod 124 /input/dir\n",
    );
    let mut copies = String::new();
    for (src, dst, mode) in cases {
        if src == "dir" {
            df.push_str(&format!(
                "RUN mkdir -p /input/dirs/{dst} && cp -a /input/dir /input/dirs/{dst}/{dst} && \
                 cp -a /input/dirs/{dst}/. /expected/ && chmod {mode} /expected/{dst}\n"
            ));
            copies.push_str(&format!(
                "COPY --from=base --chmod={mode} /input/dirs/{dst} /actual/\n"
            ));
        } else {
            df.push_str(&format!(
                "RUN cp -a /input/{src} /expected/{dst} && chmod {mode} /expected/{dst}\n"
            ));
            copies.push_str(&format!(
                "COPY --from=base --chmod={mode} /input/{src} /actual/{dst}\n"
            ));
        }
    }
    df.push_str("FROM base\n");
    df.push_str(&copies);
    df.push_str("COPY --chmod=u+x,g-w ctx.sh /actual/ctx.sh\n");
    std::fs::write(ctx.path().join("Dockerfile"), df).unwrap();
    build(&root, ctx.path(), "symbolic");
    let names: Vec<&str> = cases.iter().map(|c| c.1).collect();
    let script = format!(
        "cd /expected && for f in {0}; do stat -c '%n %A' $f; done; \
         cd /actual && for f in {0}; do stat -c '%n %A' $f; done; stat -c '%a' ctx.sh",
        names.join(" ")
    );
    let out = sh(&root, "symbolic", &script);
    let lines: Vec<&str> = out.lines().collect();
    let (expected, actual) = lines.split_at(cases.len());
    assert_eq!(&actual[..cases.len()], expected, "{out}");
    // 0664 with u+x,g-w is 0744.
    assert_eq!(actual[cases.len()], "744");
    // Nonsense is rejected before anything runs.
    let bad = build_context(&[
        ("a.txt", "a\n"),
        ("Dockerfile", "FROM busybox\nCOPY --chmod=u+q a.txt /x\n"),
    ]);
    let err = build_fails(&root, bad.path(), &[]);
    assert!(err.contains("invalid chmod"), "{err}");
}
