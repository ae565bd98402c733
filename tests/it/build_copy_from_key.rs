//! `COPY --from=STAGE` is keyed by what the stage made, not by its name:
//! renaming the stage (or naming it by index) keeps the copy cached;
//! changing the stage re-runs the copy and what follows.

use crate::require_root;
use crate::util::*;

fn dockerfile(stage: &str, from: &str, content: &str) -> String {
    format!(
        "FROM busybox AS {stage}\n\
RUN echo {content} > /x\n\
FROM busybox\n\
COPY --from={from} /x /x\n\
RUN echo $((5*5))-after-copy && cat /x > /y\n"
    )
}

/// The output lines of the step whose title contains `what`.
fn step_state(out: &str, what: &str) -> &'static str {
    let Some(title) = out.lines().find(|l| l.contains(what) && l.starts_with('#')) else {
        panic!("no step {what:?} in:\n{out}");
    };
    let id = title.split_whitespace().next().unwrap();
    if out.lines().any(|l| l == format!("{id} CACHED")) {
        "cached"
    } else {
        "ran"
    }
}

#[test]
fn copy_from_a_stage_follows_its_content_not_its_name() {
    require_root!();
    let root = TestRoot::with_busybox();
    let ctx = build_context(&[("Dockerfile", &dockerfile("builder", "builder", "one"))]);
    let out = root.build_ok(ctx.path(), &[] as &[&str]);
    assert!(out.contains("25-after-copy"), "{out}");

    // Renamed stage, by name and by index: everything cached.
    for (stage, from) in [("compile", "compile"), ("other", "0")] {
        std::fs::write(
            ctx.path().join("Dockerfile"),
            dockerfile(stage, from, "one"),
        )
        .unwrap();
        let out = root.build_ok(ctx.path(), &[] as &[&str]);
        assert_eq!(step_state(&out, "COPY --from"), "cached", "{out}");
        assert!(!out.contains("25-after-copy"), "{out}");
    }

    // The stage makes something else: the copy and the RUN after it re-run.
    std::fs::write(
        ctx.path().join("Dockerfile"),
        dockerfile("compile", "compile", "two"),
    )
    .unwrap();
    let out = root.build_ok(ctx.path(), &[] as &[&str]);
    assert_eq!(step_state(&out, "COPY --from"), "ran", "{out}");
    assert!(out.contains("25-after-copy"), "{out}");
}

#[test]
fn a_stage_change_that_leaves_the_copied_files_alone_keeps_the_copy_cached() {
    require_root!();
    let root = TestRoot::with_busybox();
    let df = |extra: &str| {
        format!(
            "FROM busybox AS builder\n\
RUN echo one > /x{extra}\n\
FROM busybox\n\
COPY --from=builder /x /x\n\
RUN echo $((5*5))-after-copy && cat /x > /y\n"
        )
    };
    let ctx = build_context(&[("Dockerfile", &df(""))]);
    let first = root.build_ok(ctx.path(), &[] as &[&str]);
    assert!(first.contains("25-after-copy"), "{first}");
    // The builder changes (and runs again) but /x is the same: as in
    // BuildKit, the copy and the RUN after it are cached.
    std::fs::write(ctx.path().join("Dockerfile"), df(" && echo other > /other")).unwrap();
    let out = root.build_ok(ctx.path(), &[] as &[&str]);
    assert_eq!(step_state(&out, "RUN echo one > /x &&"), "ran", "{out}");
    assert_eq!(step_state(&out, "COPY --from"), "cached", "{out}");
    assert!(!out.contains("25-after-copy"), "{out}");
    // /x changes: the copy and the RUN re-run.
    std::fs::write(ctx.path().join("Dockerfile"), df(" && echo two > /x")).unwrap();
    let out = root.build_ok(ctx.path(), &[] as &[&str]);
    assert_eq!(step_state(&out, "COPY --from"), "ran", "{out}");
    assert!(out.contains("25-after-copy"), "{out}");
}
