//! Checksum rules: what changes it and what does not.

use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::{Duration, SystemTime};

use super::*;
use crate::fileop::select::tests::TestIgnore;
use crate::fileop::{
    CopyOptions, PathMatcher, PatternCause, PatternCompiler, SourceTree, TreeKind,
};

struct TestCompiler;

impl PatternCompiler for TestCompiler {
    fn compile(&self, patterns: &[String]) -> Result<Box<dyn PathMatcher>, PatternCause> {
        Ok(Box::new(TestIgnore(patterns.to_vec())))
    }
}

fn ctx() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    std::fs::create_dir_all(r.join("src/sub")).unwrap();
    std::fs::write(r.join("a.txt"), "A").unwrap();
    std::fs::write(r.join("b.txt"), "B").unwrap();
    std::fs::write(r.join("src/main.rs"), "fn main() {}").unwrap();
    std::fs::write(r.join("src/sub/x"), "x").unwrap();
    symlink("main.rs", r.join("src/link")).unwrap();
    t
}

fn sum_with(
    root: &Path,
    sources: &[&str],
    ignore: Option<&dyn PathMatcher>,
    opts: CopyOptions<'_>,
    cache: &FileHashCache,
) -> ContextChecksum {
    let sources: Vec<Source> = sources.iter().map(|s| Source::Path((*s).into())).collect();
    checksum(
        &CopyRequest {
            tree: SourceTree {
                root,
                kind: TreeKind::Context,
                ignore,
            },
            sources: &sources,
            dest: "/",
            workdir: "/",
            options: opts,
        },
        cache,
    )
    .unwrap()
}

fn sum(root: &Path, sources: &[&str]) -> Digest {
    sum_with(
        root,
        sources,
        None,
        CopyOptions::copy(),
        &FileHashCache::in_memory(),
    )
    .digest
}

#[test]
fn mtime_does_not_count_content_does() {
    let t = ctx();
    let before = sum(t.path(), &["."]);
    meta::set_time(
        &t.path().join("a.txt"),
        SystemTime::UNIX_EPOCH + Duration::from_secs(5),
    )
    .unwrap();
    assert_eq!(sum(t.path(), &["."]), before, "touch keeps the checksum");
    std::fs::write(t.path().join("a.txt"), "a").unwrap();
    assert_ne!(sum(t.path(), &["."]), before);
}

#[test]
fn mode_link_target_and_new_files_count() {
    use std::os::unix::fs::PermissionsExt;
    let t = ctx();
    let s0 = sum(t.path(), &["src"]);
    std::fs::set_permissions(
        t.path().join("src/main.rs"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let s1 = sum(t.path(), &["src"]);
    assert_ne!(s0, s1);
    std::fs::remove_file(t.path().join("src/link")).unwrap();
    symlink("sub/x", t.path().join("src/link")).unwrap();
    let s2 = sum(t.path(), &["src"]);
    assert_ne!(s1, s2);
    std::fs::write(t.path().join("src/new"), "").unwrap();
    assert_ne!(s2, sum(t.path(), &["src"]));
    std::fs::create_dir(t.path().join("src/emptydir")).unwrap();
    let s3 = sum(t.path(), &["src"]);
    std::fs::remove_dir(t.path().join("src/emptydir")).unwrap();
    assert_ne!(s3, sum(t.path(), &["src"]));
}

#[test]
fn only_selected_files_count() {
    let t = ctx();
    let s = sum(t.path(), &["*.txt"]);
    std::fs::write(t.path().join("src/main.rs"), "changed").unwrap();
    assert_eq!(sum(t.path(), &["*.txt"]), s, "outside the selection");
    std::fs::write(t.path().join("c.txt"), "new match").unwrap();
    assert_ne!(sum(t.path(), &["*.txt"]), s, "a new wildcard match");
    // Renaming changes it even with the same bytes.
    let s = sum(t.path(), &["src"]);
    std::fs::rename(t.path().join("src/sub/x"), t.path().join("src/sub/y")).unwrap();
    assert_ne!(sum(t.path(), &["src"]), s);
}

#[test]
fn dockerignore_and_exclude_remove_files_from_the_checksum() {
    let t = ctx();
    let ig = TestIgnore(vec!["b.txt".into()]);
    let c = FileHashCache::in_memory();
    let s = sum_with(t.path(), &["."], Some(&ig), CopyOptions::copy(), &c).digest;
    std::fs::write(t.path().join("b.txt"), "ignored change").unwrap();
    assert_eq!(
        sum_with(t.path(), &["."], Some(&ig), CopyOptions::copy(), &c).digest,
        s
    );
    let ex = vec!["sub".to_owned()];
    let mut o = CopyOptions::copy();
    o.exclude = &ex;
    o.patterns = Some(&TestCompiler);
    let s = sum_with(t.path(), &["src"], None, o, &c).digest;
    std::fs::write(t.path().join("src/sub/x"), "excluded change").unwrap();
    assert_eq!(sum_with(t.path(), &["src"], None, o, &c).digest, s);
    assert_ne!(
        sum_with(t.path(), &["src"], None, CopyOptions::copy(), &c).digest,
        s
    );
}

#[test]
fn host_ownership_of_context_does_not_count() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let t = ctx();
    let s = sum(t.path(), &["."]);
    std::os::unix::fs::chown(t.path().join("a.txt"), Some(1234), Some(1234)).unwrap();
    assert_eq!(sum(t.path(), &["."]), s);
    let mut o = CopyOptions::copy();
    o.owner = Some(Owner { uid: 5, gid: 5 });
    assert_ne!(
        sum_with(t.path(), &["."], None, o, &FileHashCache::in_memory()).digest,
        s,
        "--chown is what gets written"
    );
}

#[test]
fn xattrs_count() {
    let t = ctx();
    let s = sum(t.path(), &["a.txt"]);
    if xattr::set(t.path().join("a.txt"), "user.k", b"1").is_err() {
        eprintln!("skipped: no user xattrs here");
        return;
    }
    assert_ne!(sum(t.path(), &["a.txt"]), s);
}

#[test]
fn cached_rebuild_reads_nothing_and_touch_rereads_same_result() {
    let t = ctx();
    let root = tempfile::tempdir().unwrap();
    let c = FileHashCache::open(root.path()).unwrap();
    // Trust files written just now (the racy window is for real builds).
    let c = cache::tests_trusting(c);
    let first = sum_with(t.path(), &["."], None, CopyOptions::copy(), &c);
    assert_eq!(first.files_read, 4);
    let second = sum_with(t.path(), &["."], None, CopyOptions::copy(), &c);
    assert_eq!(second.digest, first.digest);
    assert_eq!(second.files_read, 0);
    c.save().unwrap();
    let reopened = cache::tests_trusting(FileHashCache::open(root.path()).unwrap());
    assert_eq!(
        sum_with(t.path(), &["."], None, CopyOptions::copy(), &reopened).files_read,
        0
    );
    meta::set_time(&t.path().join("a.txt"), SystemTime::now()).unwrap();
    let touched = sum_with(t.path(), &["."], None, CopyOptions::copy(), &reopened);
    assert_eq!(touched.files_read, 1);
    assert_eq!(touched.digest, first.digest);
}

#[test]
fn parallel_hashing_matches_sequential_content() {
    let t = tempfile::tempdir().unwrap();
    for i in 0..64 {
        std::fs::write(t.path().join(format!("f{i:02}")), vec![i as u8; 1000 * i]).unwrap();
    }
    let a = sum(t.path(), &["."]);
    let b = sum(t.path(), &["."]);
    assert_eq!(a, b);
    std::fs::write(t.path().join("f63"), vec![0u8; 1000 * 63]).unwrap();
    assert_ne!(sum(t.path(), &["."]), a);
}
