//! The cache keys of COPY at the file level through `kiln build`: new mtimes
//! keep a COPY cached; files it does not select (`.dockerignore`,
//! `--exclude`) do not count; a mode change, a content change or a new file
//! re-run from that COPY on and nothing before it.

use std::os::unix::fs::PermissionsExt;

use crate::build_check::*;
use crate::require_root;
use crate::util::*;

/// The context checksum of a COPY follows content and metadata that end up
/// in the image, never mtimes, and only of the files the COPY selects.
#[test]
fn the_copy_cache_key_follows_selected_content() {
    require_root!();
    let root = TestRoot::with_busybox();
    let ctx = build_context(&[
        (".dockerignore", "*.log\n"),
        ("app/main.sh", "echo main\n"),
        ("app/lib/util.sh", "echo util\n"),
        ("app/notes.md", "notes\n"),
        ("debug.log", "log 1\n"),
        (
            "Dockerfile",
            "FROM busybox\nRUN echo before > /before\nCOPY --exclude=app/*.md . /app/\nRUN ls -lR /app > /listing\n",
        ),
    ]);
    let first = root.build_ok(ctx.path(), Vec::<&str>::new());
    assert_eq!(step_outcomes(&first).1.len(), 3, "{first}");
    let all_cached = |why: &str| {
        let p = root.build_ok(ctx.path(), Vec::<&str>::new());
        let (_, ran) = step_outcomes(&p);
        assert!(ran.is_empty(), "{why}: {ran:?}\n{p}");
    };
    // New mtimes on every file: cached.
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(120);
    for f in [
        "app/main.sh",
        "app/lib/util.sh",
        "app/notes.md",
        "Dockerfile",
    ] {
        std::fs::File::options()
            .write(true)
            .open(ctx.path().join(f))
            .unwrap()
            .set_modified(later)
            .unwrap();
    }
    all_cached("touch");
    // Files the COPY does not select (.dockerignore, --exclude): cached.
    std::fs::write(ctx.path().join("debug.log"), "log 2\n").unwrap();
    std::fs::write(ctx.path().join("new.log"), "new\n").unwrap();
    all_cached("ignored file changed");
    std::fs::write(ctx.path().join("app/notes.md"), "more notes\n").unwrap();
    all_cached("excluded file changed");
    // A mode change reaches the image: from the COPY on.
    let expect_from_copy = |why: &str| {
        let p = root.build_ok(ctx.path(), Vec::<&str>::new());
        let (cached, ran) = step_outcomes(&p);
        assert_eq!(
            ran,
            [
                "[3/4] COPY --exclude=app/*.md . /app/",
                "[4/4] RUN ls -lR /app > /listing"
            ],
            "{why}\n{p}"
        );
        assert!(
            cached.contains(&"[2/4] RUN echo before > /before".to_string()),
            "{why}\n{p}"
        );
    };
    std::fs::set_permissions(
        ctx.path().join("app/main.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    expect_from_copy("mode changed");
    std::fs::write(ctx.path().join("app/lib/util.sh"), "echo util 2\n").unwrap();
    expect_from_copy("content changed");
    // A new file that the COPY selects counts too.
    std::fs::write(ctx.path().join("app/lib/new.sh"), "echo new\n").unwrap();
    expect_from_copy("file added");
}
