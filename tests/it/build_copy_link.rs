//! `COPY --link --chown=NAME` is refused before anything runs, at its line,
//! as BuildKit refuses it: with --link the files are copied onto an empty
//! filesystem where names cannot be resolved. Ids and `root` work.

use crate::util::*;

#[test]
fn copy_link_chown_by_name_is_a_lowering_error_at_its_line() {
    let root = TestRoot::with_busybox();
    let ctx = build_context(&[
        (
            "Dockerfile",
            "FROM busybox\nCOPY f /a\nCOPY --link --chown=app:app f /f\n",
        ),
        ("f", "x"),
    ]);
    let out = root.build(ctx.path(), &[] as &[&str]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    // The message as one line (miette wraps it).
    let flat = err
        .split_whitespace()
        .filter(|w| *w != "|")
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        flat.contains(
            "COPY --link --chown=app:app: user and group names cannot be resolved with --link"
        ),
        "{err}"
    );
    assert!(
        flat.contains("--chown=1000:1000"),
        "the hint names ids: {err}"
    );
    assert!(err.contains("Dockerfile:3:1"), "it points at line 3: {err}");
    assert!(
        err.contains("3 | COPY --link --chown=app:app f /f"),
        "a code frame: {err}"
    );
    assert!(!err.contains("COPY f /a\n#3 DONE"), "nothing ran: {err}");
}
