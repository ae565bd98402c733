//! Unit tests of COPY/ADD/WORKDIR rules on temporary directories: one test
//! per rule. Ownership checks need root and skip themselves without it.

use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::select::tests::TestIgnore;
use super::*;

struct TestCompiler;

impl PatternCompiler for TestCompiler {
    fn compile(&self, patterns: &[String]) -> Result<Box<dyn PathMatcher>, PatternCause> {
        Ok(Box::new(TestIgnore(patterns.to_vec())))
    }
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

struct Fixture {
    _t: tempfile::TempDir,
    ctx: PathBuf,
    root: PathBuf,
}

/// A context with files, a subdirectory, symlinks; an empty rootfs.
fn fixture() -> Fixture {
    let t = tempfile::tempdir().unwrap();
    let ctx = t.path().join("ctx");
    let root = t.path().join("rootfs");
    std::fs::create_dir_all(ctx.join("dir/sub")).unwrap();
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(ctx.join("a.txt"), "A").unwrap();
    std::fs::write(ctx.join("b.txt"), "B").unwrap();
    std::fs::write(ctx.join("dir/one"), "1").unwrap();
    std::fs::write(ctx.join("dir/sub/two"), "2").unwrap();
    std::fs::set_permissions(ctx.join("dir/one"), std::fs::Permissions::from_mode(0o750)).unwrap();
    symlink("one", ctx.join("dir/rel-link")).unwrap();
    symlink("dir", ctx.join("dirlink")).unwrap();
    Fixture { _t: t, ctx, root }
}

fn run(
    f: &Fixture,
    sources: &[&str],
    dest: &str,
    workdir: &str,
    options: CopyOptions<'_>,
) -> Result<CopyStats, FileOpError> {
    run_ignoring(f, None, sources, dest, workdir, options)
}

/// [`run`] with a `.dockerignore` matcher on the context.
fn run_ignoring(
    f: &Fixture,
    ignore: Option<&dyn PathMatcher>,
    sources: &[&str],
    dest: &str,
    workdir: &str,
    options: CopyOptions<'_>,
) -> Result<CopyStats, FileOpError> {
    let sources: Vec<Source> = sources
        .iter()
        .map(|s| Source::Path((*s).to_owned()))
        .collect();
    copy(
        &f.root,
        &CopyRequest {
            tree: SourceTree {
                root: &f.ctx,
                kind: TreeKind::Context,
                ignore,
            },
            sources: &sources,
            dest,
            workdir,
            options,
        },
    )
}

fn read(root: &Path, p: &str) -> String {
    std::fs::read_to_string(root.join(p.trim_start_matches('/'))).unwrap()
}

fn mode(root: &Path, p: &str) -> u32 {
    std::fs::symlink_metadata(root.join(p.trim_start_matches('/')))
        .unwrap()
        .mode()
        & 0o7777
}

fn owner(root: &Path, p: &str) -> (u32, u32) {
    let m = std::fs::symlink_metadata(root.join(p.trim_start_matches('/'))).unwrap();
    (m.uid(), m.gid())
}

#[test]
fn directory_source_copies_its_contents() {
    let f = fixture();
    run(&f, &["dir"], "/dst", "/", CopyOptions::copy()).unwrap();
    assert_eq!(read(&f.root, "/dst/one"), "1");
    assert_eq!(read(&f.root, "/dst/sub/two"), "2");
    assert!(!f.root.join("dst/dir").exists());
    assert_eq!(mode(&f.root, "/dst"), 0o755);
    assert_eq!(mode(&f.root, "/dst/one"), 0o750);
}

#[test]
fn file_source_naming() {
    let f = fixture();
    run(&f, &["a.txt"], "/d1/", "/", CopyOptions::copy()).unwrap();
    assert_eq!(read(&f.root, "/d1/a.txt"), "A");
    run(&f, &["a.txt"], "/f1", "/", CopyOptions::copy()).unwrap();
    assert_eq!(read(&f.root, "/f1"), "A");
    // An existing directory without trailing slash receives the file.
    std::fs::create_dir(f.root.join("d2")).unwrap();
    run(&f, &["a.txt"], "/d2", "/", CopyOptions::copy()).unwrap();
    assert_eq!(read(&f.root, "/d2/a.txt"), "A");
    // A file replaces a file.
    run(&f, &["b.txt"], "/f1", "/", CopyOptions::copy()).unwrap();
    assert_eq!(read(&f.root, "/f1"), "B");
}

#[test]
fn wildcards_expand_and_may_match_nothing() {
    let f = fixture();
    run(&f, &["*.txt"], "/w/", "/", CopyOptions::copy()).unwrap();
    assert_eq!(read(&f.root, "/w/a.txt"), "A");
    assert_eq!(read(&f.root, "/w/b.txt"), "B");
    let s = run(&f, &["a.txt", "nomatch*"], "/e/", "/", CopyOptions::copy()).unwrap();
    assert_eq!(s.files, 1);
    // `?` and classes, and an escaped wildcard naming a literal file.
    std::fs::write(f.ctx.join("we*ird"), "W").unwrap();
    run(
        &f,
        &["[ab].t?t", "we\\*ird"],
        "/c/",
        "/",
        CopyOptions::copy(),
    )
    .unwrap();
    assert_eq!(read(&f.root, "/c/we*ird"), "W");
    assert!(f.root.join("c/a.txt").exists() && f.root.join("c/b.txt").exists());
}

#[test]
fn several_sources_need_a_directory_destination() {
    let f = fixture();
    let err = run(&f, &["a.txt", "b.txt"], "/x", "/", CopyOptions::copy()).unwrap_err();
    assert!(
        matches!(err, FileOpError::DestinationNotDirectory { .. }),
        "{err}"
    );
    let err = run(&f, &["*.txt"], "/x", "/", CopyOptions::add()).unwrap_err();
    assert!(
        err.to_string().contains("ADD with more than one source"),
        "{err}"
    );
    run(&f, &["a.txt", "b.txt"], "/x/", "/", CopyOptions::copy()).unwrap();
    run(&f, &["*.txt"], ".", "/app", CopyOptions::copy()).unwrap();
    assert_eq!(read(&f.root, "/app/b.txt"), "B");
    // Several directories merge into a destination without a slash, as in
    // BuildKit.
    std::fs::create_dir_all(f.ctx.join("dir2")).unwrap();
    std::fs::write(f.ctx.join("dir2/three"), "3").unwrap();
    run(&f, &["dir*"], "/merged", "/", CopyOptions::copy()).unwrap();
    assert_eq!(read(&f.root, "/merged/one"), "1");
    assert_eq!(read(&f.root, "/merged/three"), "3");
}

#[test]
fn destination_relative_to_workdir() {
    let f = fixture();
    run(&f, &["a.txt"], ".", "/app", CopyOptions::copy()).unwrap();
    assert_eq!(read(&f.root, "/app/a.txt"), "A");
    run(&f, &["a.txt"], "", "/app2", CopyOptions::copy()).unwrap();
    assert_eq!(read(&f.root, "/app2/a.txt"), "A");
    run(&f, &["a.txt"], "sub/x", "/app", CopyOptions::copy()).unwrap();
    assert_eq!(read(&f.root, "/app/sub/x"), "A");
    run(&f, &["a.txt"], "../up/", "/app/deep", CopyOptions::copy()).unwrap();
    assert_eq!(read(&f.root, "/app/up/a.txt"), "A");
    assert_eq!(dest_path("x", ""), "/x");
    assert_eq!(dest_path(".", "/w/"), "/w/");
    assert_eq!(dest_path("a/", "/w"), "/w/a/");
    assert_eq!(dest_path("/abs", "/w"), "/abs");
    assert_eq!(dest_path("..", "/w/x"), "/w");
}

#[test]
fn created_parents_owned_by_chown_user_or_root() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let f = fixture();
    std::fs::create_dir(f.root.join("existing")).unwrap();
    std::os::unix::fs::chown(f.root.join("existing"), Some(5), Some(6)).unwrap();
    let mut o = CopyOptions::copy();
    o.owner = Some(Owner {
        uid: 1000,
        gid: 1001,
    });
    run(&f, &["a.txt"], "/existing/p/q/", "/", o).unwrap();
    assert_eq!(
        owner(&f.root, "/existing"),
        (5, 6),
        "existing dirs untouched"
    );
    assert_eq!(owner(&f.root, "/existing/p"), (1000, 1001));
    assert_eq!(owner(&f.root, "/existing/p/q"), (1000, 1001));
    assert_eq!(owner(&f.root, "/existing/p/q/a.txt"), (1000, 1001));
    assert_eq!(mode(&f.root, "/existing/p"), 0o755);
    run(&f, &["dir"], "/plain/d", "/", CopyOptions::copy()).unwrap();
    assert_eq!(owner(&f.root, "/plain"), (0, 0));
    assert_eq!(owner(&f.root, "/plain/d"), (0, 0));
}

#[test]
fn ownership_context_reset_rootfs_kept_chown_overrides() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let f = fixture();
    std::os::unix::fs::chown(f.ctx.join("a.txt"), Some(1234), Some(4321)).unwrap();
    std::os::unix::fs::lchown(f.ctx.join("dir/rel-link"), Some(1234), Some(4321)).unwrap();
    run(&f, &["a.txt"], "/ctx/", "/", CopyOptions::copy()).unwrap();
    assert_eq!(owner(&f.root, "/ctx/a.txt"), (0, 0));
    let sources = [Source::Path("a.txt".into()), Source::Path("dir".into())];
    copy(
        &f.root,
        &CopyRequest {
            tree: SourceTree {
                root: &f.ctx,
                kind: TreeKind::Rootfs,
                ignore: None,
            },
            sources: &sources,
            dest: "/from/",
            workdir: "/",
            options: CopyOptions::copy(),
        },
    )
    .unwrap();
    assert_eq!(owner(&f.root, "/from/a.txt"), (1234, 4321));
    assert_eq!(owner(&f.root, "/from/rel-link"), (1234, 4321));
    let mut o = CopyOptions::copy();
    o.owner = Some(Owner { uid: 7, gid: 8 });
    run(&f, &["dir"], "/chowned", "/", o).unwrap();
    assert_eq!(owner(&f.root, "/chowned"), (7, 8));
    assert_eq!(owner(&f.root, "/chowned/sub/two"), (7, 8));
    assert_eq!(owner(&f.root, "/chowned/rel-link"), (7, 8));
}

#[test]
fn chmod_sets_files_and_directories() {
    let f = fixture();
    let mut o = CopyOptions::copy();
    let m640 = parse_chmod("0640").unwrap();
    o.mode = Some(&m640);
    run(&f, &["dir"], "/m", "/", o).unwrap();
    assert_eq!(mode(&f.root, "/m/one"), 0o640);
    assert_eq!(mode(&f.root, "/m/sub"), 0o640);
    assert_eq!(
        mode(&f.root, "/m"),
        0o640,
        "directories the copy creates get the mode too (BuildKit 0.21+)"
    );
    let m777 = parse_chmod("777").unwrap();
    o.mode = Some(&m777);
    run(&f, &["a.txt"], "/parent/foo", "/", o).unwrap();
    let m770 = parse_chmod("770").unwrap();
    o.mode = Some(&m770);
    run(&f, &["a.txt"], "/parent/sub/foo", "/", o).unwrap();
    assert_eq!(
        mode(&f.root, "/parent"),
        0o777,
        "an existing parent is left"
    );
    assert_eq!(mode(&f.root, "/parent/sub"), 0o770);
    let suid = parse_chmod("4755").unwrap();
    o.mode = Some(&suid);
    run(&f, &["a.txt"], "/suid", "/", o).unwrap();
    assert_eq!(mode(&f.root, "/suid"), 0o4755);
    assert!(parse_chmod("10000").is_err());
    assert!(parse_chmod("u+q").is_err());
    assert!(parse_chmod("").is_err());
    assert!(parse_chmod("9").is_err());
}

#[test]
fn symbolic_chmod_applies_to_each_source_mode() {
    let f = fixture();
    std::fs::set_permissions(f.ctx.join("a.txt"), std::fs::Permissions::from_mode(0o664)).unwrap();
    std::fs::set_permissions(
        f.ctx.join("dir/sub"),
        std::fs::Permissions::from_mode(0o700),
    )
    .unwrap();
    std::fs::set_permissions(
        f.ctx.join("dir/sub/two"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let sym = parse_chmod("u+x,g-w,o+X").unwrap();
    let mut o = CopyOptions::copy();
    o.mode = Some(&sym);
    run(&f, &["a.txt"], "/a", "/", o).unwrap();
    assert_eq!(mode(&f.root, "/a"), 0o744);
    run(&f, &["dir"], "/d", "/", o).unwrap();
    // one: 0750 -> u+x: 0750, g-w: 0750, o+X (had x): 0751.
    assert_eq!(mode(&f.root, "/d/one"), 0o751);
    // sub: 0700 directory -> o+X applies to directories.
    assert_eq!(mode(&f.root, "/d/sub"), 0o701);
    // two: 0600 -> 0700 (no execute bit before: o+X does nothing).
    assert_eq!(mode(&f.root, "/d/sub/two"), 0o700);
    // A heredoc's own mode (0644) is the base.
    let file = InlineFile {
        name: "h".into(),
        content: b"x".to_vec(),
        mode: 0o644,
    };
    let sources = [Source::Inline(file)];
    let sym = parse_chmod("a+x").unwrap();
    let mut opts = CopyOptions::copy();
    opts.mode = Some(&sym);
    copy(
        &f.root,
        &CopyRequest {
            tree: SourceTree {
                root: &f.ctx,
                kind: TreeKind::Context,
                ignore: None,
            },
            sources: &sources,
            dest: "/h",
            workdir: "/",
            options: opts,
        },
    )
    .unwrap();
    assert_eq!(mode(&f.root, "/h"), 0o755);
}

#[test]
fn sockets_become_empty_files() {
    let f = fixture();
    let _listener = std::os::unix::net::UnixListener::bind(f.ctx.join("dir/app.sock")).unwrap();
    std::fs::set_permissions(
        f.ctx.join("dir/app.sock"),
        std::fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    run(&f, &["dir"], "/s", "/", CopyOptions::copy()).unwrap();
    let m = std::fs::symlink_metadata(f.root.join("s/app.sock")).unwrap();
    assert!(m.is_file());
    assert_eq!(m.len(), 0);
    assert_eq!(mode(&f.root, "/s/app.sock"), 0o640);
}

#[test]
fn symlinks_copied_as_links_and_sources_followed_inside_context() {
    let f = fixture();
    run(&f, &["dir"], "/s", "/", CopyOptions::copy()).unwrap();
    assert_eq!(
        std::fs::read_link(f.root.join("s/rel-link")).unwrap(),
        Path::new("one")
    );
    // The source path itself is followed: `dirlink` copies dir's contents.
    run(&f, &["dirlink"], "/viaLink", "/", CopyOptions::copy()).unwrap();
    assert_eq!(read(&f.root, "/viaLink/one"), "1");
    // A file reached through a symlink keeps the name it was written with.
    run(&f, &["dir/rel-link"], "/named/", "/", CopyOptions::copy()).unwrap();
    assert_eq!(read(&f.root, "/named/rel-link"), "1");
    // An absolute symlink resolves inside the context, never on the host.
    let outside = f._t.path().join("secret");
    std::fs::write(&outside, "host").unwrap();
    symlink(&outside, f.ctx.join("escape")).unwrap();
    let err = run(&f, &["escape"], "/x", "/", CopyOptions::copy()).unwrap_err();
    assert!(matches!(err, FileOpError::SourceNotFound { .. }), "{err}");
    symlink("../../../../../../..", f.ctx.join("updir")).unwrap();
    run(&f, &["updir/a.txt"], "/up", "/", CopyOptions::copy()).unwrap();
    assert_eq!(read(&f.root, "/up"), "A");
}

#[test]
fn destination_symlinks_resolve_inside_the_rootfs() {
    let f = fixture();
    let outside = f._t.path().join("host-dir");
    std::fs::create_dir(&outside).unwrap();
    std::fs::create_dir_all(f.root.join("usr/lib")).unwrap();
    symlink("/usr/lib", f.root.join("lib")).unwrap();
    symlink(&outside, f.root.join("evil")).unwrap();
    symlink("../../../..", f.root.join("up")).unwrap();
    run(&f, &["a.txt"], "/lib/", "/", CopyOptions::copy()).unwrap();
    assert_eq!(read(&f.root, "/usr/lib/a.txt"), "A");
    run(&f, &["a.txt"], "/evil/", "/", CopyOptions::copy()).unwrap();
    run(&f, &["dir"], "/up/x", "/", CopyOptions::copy()).unwrap();
    assert!(
        std::fs::read_dir(&outside).unwrap().next().is_none(),
        "nothing written on the host"
    );
    assert!(
        f.root
            .join(outside.strip_prefix("/").unwrap())
            .join("a.txt")
            .exists()
    );
    assert_eq!(read(&f.root, "/x/one"), "1");
}

#[test]
fn existing_symlink_at_file_target_is_replaced_not_followed() {
    let f = fixture();
    let outside = f._t.path().join("victim");
    std::fs::write(&outside, "keep").unwrap();
    std::fs::create_dir(f.root.join("d")).unwrap();
    symlink(&outside, f.root.join("d/a.txt")).unwrap();
    run(&f, &["a.txt"], "/d/", "/", CopyOptions::copy()).unwrap();
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "keep");
    assert!(
        std::fs::symlink_metadata(f.root.join("d/a.txt"))
            .unwrap()
            .is_file()
    );
}

#[test]
fn file_cannot_replace_directory() {
    let f = fixture();
    std::fs::create_dir_all(f.root.join("d/a.txt")).unwrap();
    let err = run(&f, &["a.txt"], "/d/", "/", CopyOptions::copy()).unwrap_err();
    assert!(
        matches!(err, FileOpError::ReplaceDirWithFile { .. }),
        "{err}"
    );
    std::fs::write(f.root.join("file"), "x").unwrap();
    let err = run(&f, &["dir"], "/file", "/", CopyOptions::copy()).unwrap_err();
    assert!(
        matches!(
            err,
            FileOpError::NotADirectory { .. } | FileOpError::CopyDirOntoFile { .. }
        ),
        "{err}"
    );
}

#[test]
fn hardlinks_are_kept_within_one_copy() {
    let f = fixture();
    std::fs::hard_link(f.ctx.join("dir/one"), f.ctx.join("dir/one-again")).unwrap();
    run(&f, &["dir"], "/h", "/", CopyOptions::copy()).unwrap();
    let a = std::fs::metadata(f.root.join("h/one")).unwrap();
    let b = std::fs::metadata(f.root.join("h/one-again")).unwrap();
    assert_eq!(a.ino(), b.ino());
    assert_eq!(a.nlink(), 2);
}

#[test]
fn xattrs_are_copied() {
    let f = fixture();
    if xattr::set(f.ctx.join("a.txt"), "user.kiln", b"v").is_err() {
        eprintln!("skipped: no user xattrs on this filesystem");
        return;
    }
    run(&f, &["a.txt"], "/x", "/", CopyOptions::copy()).unwrap();
    assert_eq!(
        xattr::get(f.root.join("x"), "user.kiln")
            .unwrap()
            .as_deref(),
        Some(&b"v"[..])
    );
}

#[test]
fn times_preserved_or_set() {
    let f = fixture();
    let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_500_000_000);
    meta::set_time(&f.ctx.join("a.txt"), t).unwrap();
    run(&f, &["a.txt"], "/t1", "/", CopyOptions::copy()).unwrap();
    assert_eq!(
        std::fs::metadata(f.root.join("t1")).unwrap().mtime(),
        1_500_000_000
    );
    let mut o = CopyOptions::copy();
    o.timestamp = Some(SystemTime::UNIX_EPOCH + Duration::from_secs(42));
    run(&f, &["dir"], "/t2/", "/", o).unwrap();
    assert_eq!(
        std::fs::metadata(f.root.join("t2/sub")).unwrap().mtime(),
        42
    );
    assert_eq!(
        std::fs::metadata(f.root.join("t2/one")).unwrap().mtime(),
        42
    );
    assert_eq!(std::fs::metadata(f.root.join("t2")).unwrap().mtime(), 42);
}

#[test]
fn exclude_patterns_relative_to_each_source() {
    let f = fixture();
    let ex = vec!["one".to_owned(), "sub".to_owned()];
    let mut o = CopyOptions::copy();
    o.exclude = &ex;
    o.patterns = Some(&TestCompiler);
    run(&f, &["dir"], "/e", "/", o).unwrap();
    assert!(!f.root.join("e/one").exists());
    assert!(!f.root.join("e/sub").exists());
    assert!(f.root.join("e/rel-link").symlink_metadata().is_ok());
    // Without a compiler the flag cannot be honoured: an error, not a
    // silent full copy.
    let mut o = CopyOptions::copy();
    o.exclude = &ex;
    assert!(run(&f, &["dir"], "/e2", "/", o).is_err());
}

#[test]
fn parents_keep_the_source_directories() {
    let f = fixture();
    let mut o = CopyOptions::copy();
    o.parents = true;
    o.patterns = Some(&TestCompiler);
    run(&f, &["dir/sub/two"], "/", "/", o).unwrap();
    assert_eq!(read(&f.root, "/dir/sub/two"), "2");
    assert!(!f.root.join("dir/one").exists());
    assert_eq!(
        mode(&f.root, "/dir"),
        mode(&f.ctx, "dir"),
        "parents carry source metadata"
    );
    // A `/./` pivot keeps only what follows it.
    run(&f, &["dir/./sub/two"], "/p/", "/", o).unwrap();
    assert_eq!(read(&f.root, "/p/sub/two"), "2");
    let err = run(&f, &["dir/missing"], "/", "/", o).unwrap_err();
    assert!(matches!(err, FileOpError::SourceNotFound { .. }), "{err}");
}

#[test]
fn dockerignore_hides_context_files() {
    let f = fixture();
    let ig = TestIgnore(vec!["*.txt".into(), "dir/sub".into()]);
    let go = |sources: &[&str], dest: &str| {
        run_ignoring(&f, Some(&ig), sources, dest, "/", CopyOptions::copy())
    };
    go(&["."], "/all/").unwrap();
    assert!(!f.root.join("all/a.txt").exists());
    assert!(!f.root.join("all/dir/sub").exists());
    assert!(f.root.join("all/dir/one").exists());
    assert!(matches!(
        go(&["a.txt"], "/x"),
        Err(FileOpError::SourceNotFound { .. })
    ));
}

fn targz(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, name, *data).unwrap();
    }
    let raw = b.into_inner().unwrap();
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut e, &raw).unwrap();
    e.finish().unwrap()
}

#[test]
fn add_extracts_local_archives_copy_does_not() {
    let f = fixture();
    std::fs::write(
        f.ctx.join("pkg.bin"),
        targz(&[("bin/tool", b"T"), ("etc/conf", b"C")]),
    )
    .unwrap();
    run(&f, &["pkg.bin"], "/opt", "/", CopyOptions::add()).unwrap();
    assert_eq!(read(&f.root, "/opt/bin/tool"), "T");
    assert_eq!(read(&f.root, "/opt/etc/conf"), "C");
    run(&f, &["pkg.bin"], "/copied/", "/", CopyOptions::copy()).unwrap();
    assert!(f.root.join("copied/pkg.bin").is_file());
    let mut o = CopyOptions::add();
    o.unpack = false;
    run(&f, &["pkg.bin"], "/kept/", "/", o).unwrap();
    assert!(f.root.join("kept/pkg.bin").is_file());
    // Several archives extract into one destination, slash or not.
    std::fs::write(f.ctx.join("one.tar.gz"), targz(&[("one", b"1")])).unwrap();
    std::fs::write(f.ctx.join("two.tar.gz"), targz(&[("two", b"2")])).unwrap();
    run(&f, &["*.tar.gz"], "/both", "/", CopyOptions::add()).unwrap();
    assert_eq!(read(&f.root, "/both/one"), "1");
    assert_eq!(read(&f.root, "/both/two"), "2");
    // Archives are extracted into plain 0755 directories, whatever
    // --chmod says (BuildKit's unpacking ignores it).
    let m600 = parse_chmod("600").unwrap();
    let mut o = CopyOptions::add();
    o.mode = Some(&m600);
    run(&f, &["pkg.bin"], "/deep/opt", "/", o).unwrap();
    assert_eq!(mode(&f.root, "/deep"), 0o755);
    assert_eq!(mode(&f.root, "/deep/opt"), 0o755);
    // A file that is not an archive is copied by ADD.
    run(&f, &["a.txt"], "/plain/", "/", CopyOptions::add()).unwrap();
    assert_eq!(read(&f.root, "/plain/a.txt"), "A");
}

#[test]
fn heredoc_files() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let f = fixture();
    let sources = [
        Source::Inline(InlineFile {
            name: "EOF".into(),
            content: b"hello\n".to_vec(),
            mode: 0o644,
        }),
        Source::Path("a.txt".into()),
    ];
    let mut opts = CopyOptions::copy();
    let req = |opts| CopyRequest {
        tree: SourceTree {
            root: &f.ctx,
            kind: TreeKind::Context,
            ignore: None,
        },
        sources: &sources,
        dest: "/h/",
        workdir: "/",
        options: opts,
    };
    copy(&f.root, &req(opts)).unwrap();
    assert_eq!(read(&f.root, "/h/EOF"), "hello\n");
    assert_eq!(mode(&f.root, "/h/EOF"), 0o644);
    assert_eq!(owner(&f.root, "/h/EOF"), (0, 0));
    let m755 = parse_chmod("755").unwrap();
    opts.mode = Some(&m755);
    opts.owner = Some(Owner { uid: 3, gid: 4 });
    copy(&f.root, &req(opts)).unwrap();
    assert_eq!(mode(&f.root, "/h/EOF"), 0o755);
    assert_eq!(owner(&f.root, "/h/EOF"), (3, 4));
    let one = [sources[0].clone()];
    copy(
        &f.root,
        &CopyRequest {
            sources: &one,
            dest: "/named",
            ..req(CopyOptions::copy())
        },
    )
    .unwrap();
    assert_eq!(read(&f.root, "/named"), "hello\n");
}

#[test]
fn workdir_is_created_for_the_user() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let f = fixture();
    make_workdir(
        &f.root,
        "/srv/app",
        "/",
        Some(Owner {
            uid: 1000,
            gid: 1000,
        }),
        None,
    )
    .unwrap();
    assert_eq!(owner(&f.root, "/srv"), (1000, 1000));
    assert_eq!(owner(&f.root, "/srv/app"), (1000, 1000));
    make_workdir(&f.root, "sub", "/srv/app", None, None).unwrap();
    assert_eq!(owner(&f.root, "/srv/app/sub"), (0, 0));
    assert_eq!(
        owner(&f.root, "/srv/app"),
        (1000, 1000),
        "existing left untouched"
    );
    std::fs::write(f.root.join("file"), "").unwrap();
    assert!(make_workdir(&f.root, "/file", "/", None, None).is_err());
}

/// Serves one canned HTTP response per connection on a loopback port.
async fn serve(body: Vec<u8>, extra_headers: &'static str, status: &'static str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let body = body.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let _ = s.read(&mut buf).await;
                let head = format!(
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n{extra_headers}\r\n",
                    body.len()
                );
                let _ = s.write_all(head.as_bytes()).await;
                let _ = s.write_all(&body).await;
            });
        }
    });
    format!("http://{addr}")
}

fn crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

#[tokio::test]
async fn add_url_downloads_with_mode_mtime_and_checksum() {
    crypto();
    let f = fixture();
    let base = serve(
        b"payload".to_vec(),
        "Last-Modified: Wed, 21 Oct 2015 07:28:00 GMT\r\n",
        "200 OK",
    )
    .await;
    let staging = f._t.path().join("staging");
    std::fs::create_dir(&staging).unwrap();
    let client = reqwest::Client::new();
    let url = format!("{base}/files/tool.sh");
    let d = download(&client, &url, &staging, None).await.unwrap();
    assert_eq!(d.file_name, "tool.sh");
    assert_eq!(d.size, 7);
    let good = d.digest.clone();
    let sources = [Source::Download(d)];
    let req = CopyRequest {
        tree: SourceTree {
            root: &f.ctx,
            kind: TreeKind::Context,
            ignore: None,
        },
        sources: &sources,
        dest: "/dl/",
        workdir: "/",
        options: CopyOptions::add(),
    };
    copy(&f.root, &req).unwrap();
    assert_eq!(read(&f.root, "/dl/tool.sh"), "payload");
    assert_eq!(mode(&f.root, "/dl/tool.sh"), 0o600);
    assert_eq!(
        std::fs::metadata(f.root.join("dl/tool.sh"))
            .unwrap()
            .mtime(),
        1_445_412_480
    );
    // --checksum: the right one passes, a wrong one fails.
    download(&client, &url, &staging, Some(&good))
        .await
        .unwrap();
    let wrong = parse_checksum(&format!("sha256:{}", "0".repeat(64))).unwrap();
    let err = download(&client, &url, &staging, Some(&wrong))
        .await
        .unwrap_err();
    assert!(matches!(err, FileOpError::ChecksumMismatch { .. }), "{err}");

    let missing = serve(Vec::new(), "", "404 Not Found").await;
    let err = download(&client, &format!("{missing}/x"), &staging, None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, FileOpError::DownloadStatus { status: 404, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn download_without_last_modified_gets_epoch() {
    crypto();
    let t = tempfile::tempdir().unwrap();
    let base = serve(b"x".to_vec(), "", "200 OK").await;
    let d = download(&reqwest::Client::new(), &format!("{base}/"), t.path(), None)
        .await
        .unwrap();
    assert_eq!(d.file_name, "__unnamed__");
    assert_eq!(
        std::fs::metadata(t.path().join("__unnamed__"))
            .unwrap()
            .mtime(),
        0
    );
}

#[test]
fn a_large_tree_is_copied_whole_with_directory_times_kept() {
    // More files than one batch per directory, in several directories, so
    // the copying threads take part; directory times are set after their
    // files went in.
    let f = fixture();
    let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_400_000_000);
    for d in 0..3 {
        let dir = f.ctx.join(format!("big/d{d}"));
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..70 {
            std::fs::write(dir.join(format!("f{i}")), format!("{d}/{i}")).unwrap();
        }
        std::fs::set_permissions(dir.join("f3"), std::fs::Permissions::from_mode(0o700)).unwrap();
        meta::set_time(&dir, t).unwrap();
    }
    std::fs::hard_link(f.ctx.join("big/d0/f0"), f.ctx.join("big/d1/link")).unwrap();
    meta::set_time(&f.ctx.join("big/d1"), t).unwrap();
    let stats = run(&f, &["big"], "/big/", "/", CopyOptions::copy()).unwrap();
    assert_eq!(stats.files, 3 * 70 + 1);
    for d in 0..3 {
        for i in 0..70 {
            assert_eq!(read(&f.root, &format!("big/d{d}/f{i}")), format!("{d}/{i}"));
        }
        assert_eq!(mode(&f.root, &format!("big/d{d}/f3")), 0o700);
        let m = std::fs::metadata(f.root.join(format!("big/d{d}"))).unwrap();
        assert_eq!(m.mtime(), 1_400_000_000, "d{d}");
    }
    let a = std::fs::metadata(f.root.join("big/d0/f0")).unwrap();
    let b = std::fs::metadata(f.root.join("big/d1/link")).unwrap();
    assert_eq!(a.ino(), b.ino());
}

#[test]
fn a_file_that_cannot_be_copied_fails_the_whole_copy() {
    let f = fixture();
    let dir = f.ctx.join("many");
    std::fs::create_dir_all(&dir).unwrap();
    for i in 0..100 {
        std::fs::write(dir.join(format!("f{i:03}")), "x").unwrap();
    }
    // A directory in the way of one file: it cannot be replaced.
    std::fs::create_dir_all(f.root.join("m/f050")).unwrap();
    let err = run(&f, &["many"], "/m/", "/", CopyOptions::copy()).unwrap_err();
    assert!(
        matches!(err, FileOpError::ReplaceDirWithFile { .. }),
        "{err}"
    );
}
