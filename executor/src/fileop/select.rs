//! Which files a COPY/ADD source selects: wildcard expansion, symlinks of the
//! source path followed inside its tree, `.dockerignore`, `--exclude` and
//! the include pattern of `--parents`. Shared by the copy itself and by the
//! context checksum, so the cache key covers exactly what gets copied.

use std::ffi::OsString;
use std::fs::Metadata;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::FileOpError;
use super::pattern::{ComponentPattern, PathMatcher, contains_wildcards, unescape};
use super::rootpath::{self, Resolved};

/// One path a source selected (a source without wildcards selects one; a
/// wildcard source any number): the top of what gets copied.
#[derive(Debug)]
pub(crate) struct Match {
    /// Base name of the matched path as written (before following a
    /// symlink): the name it gets inside a destination directory.
    pub(crate) name: OsString,
    /// The real path after following symlinks, relative to the tree.
    pub(crate) resolved: Resolved,
    /// Host path of `resolved`.
    pub(crate) abs: PathBuf,
    /// `lstat` of `abs`.
    pub(crate) meta: Metadata,
}

/// Filters applied while walking below a [`Match`].
#[derive(Clone, Copy, Default)]
pub(crate) struct Filters<'a> {
    /// `.dockerignore`, on paths relative to the tree root.
    pub(crate) ignore: Option<&'a dyn PathMatcher>,
    /// `--exclude`, on paths relative to the match.
    pub(crate) exclude: Option<&'a dyn PathMatcher>,
    /// `--parents` include pattern, on paths relative to the match.
    pub(crate) include: Option<&'a dyn PathMatcher>,
    /// Literal leading components of the include pattern: directories off
    /// this path cannot hold a match and are not walked.
    pub(crate) include_prefix: &'a [String],
}

impl Filters<'_> {
    fn ignored(&self, tree_rel: &str) -> bool {
        !tree_rel.is_empty() && self.ignore.is_some_and(|m| m.matches(tree_rel))
    }

    fn ignored_dir_skippable(&self, tree_rel: &str) -> bool {
        self.ignore.is_some_and(|m| m.can_skip_dir(tree_rel))
    }
}

/// Expands one source (as written) into its matches, in lexical order.
/// A missing path without wildcards is [`FileOpError::SourceNotFound`]; a
/// wildcard that matches nothing gives no match (BuildKit allows it).
pub(crate) fn expand(
    root: &Path,
    source: &str,
    ignore: Option<&dyn PathMatcher>,
) -> Result<Vec<Match>, FileOpError> {
    let filters = Filters {
        ignore,
        ..Filters::default()
    };
    let comps: Vec<&str> = source
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    let first_wild = comps.iter().position(|c| contains_wildcards(c));
    let Some(first_wild) = first_wild else {
        let written = unescape(source);
        let m = resolve_match(root, &written, &filters)?.ok_or_else(|| {
            FileOpError::SourceNotFound {
                path: source.to_owned(),
            }
        })?;
        return Ok(vec![m]);
    };
    let base_written = unescape(&comps[..first_wild].join("/"));
    let base = rootpath::resolve(root, &base_written, true)?;
    let patterns = comps[first_wild..]
        .iter()
        .map(|c| ComponentPattern::new(c))
        .collect::<Result<Vec<_>, _>>()?;
    let mut found: Vec<String> = Vec::new();
    let mut prefix = base.rel();
    walk_wildcard(
        &base.under(root),
        &mut prefix,
        &patterns,
        &filters,
        &mut found,
    )?;
    let mut out = Vec::with_capacity(found.len());
    for rel in found {
        if let Some(m) = resolve_match(root, &rel, &filters)? {
            out.push(m);
        }
    }
    Ok(out)
}

/// Depth-first, lexical walk matching one pattern component per level.
fn walk_wildcard(
    dir: &Path,
    rel: &mut String,
    patterns: &[ComponentPattern],
    filters: &Filters<'_>,
    found: &mut Vec<String>,
) -> Result<(), FileOpError> {
    let Some((pat, rest)) = patterns.split_first() else {
        return Ok(());
    };
    let entries = match read_dir_sorted(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => return Ok(()),
        Err(e) => return Err(FileOpError::io("read directory", dir)(e)),
    };
    for name in entries {
        let name_s = name.to_string_lossy();
        if !pat.is_match(&name_s) {
            continue;
        }
        let len = rel.len();
        if !rel.is_empty() {
            rel.push('/');
        }
        rel.push_str(&name_s);
        let path = dir.join(&name);
        let meta = std::fs::symlink_metadata(&path).map_err(FileOpError::io("stat", &path))?;
        let hidden = filters.ignored(rel) && (!meta.is_dir() || filters.ignored_dir_skippable(rel));
        if !hidden {
            if rest.is_empty() {
                found.push(rel.clone());
            } else if meta.is_dir() {
                walk_wildcard(&path, rel, rest, filters, found)?;
            }
        }
        rel.truncate(len);
    }
    Ok(())
}

/// Resolves a matched or written source path inside the tree, following
/// symlinks (also in the last component) without leaving the tree. `None`
/// when it does not exist or `.dockerignore` hides it.
fn resolve_match(
    root: &Path,
    path: &str,
    filters: &Filters<'_>,
) -> Result<Option<Match>, FileOpError> {
    let written = rootpath::clean(path);
    let name: OsString = written
        .last()
        .map(OsString::from)
        .unwrap_or_else(|| OsString::from("/"));
    let resolved = match rootpath::resolve(root, path, true) {
        Ok(r) => r,
        Err(FileOpError::NotADirectory { .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    let abs = resolved.under(root);
    let meta = match std::fs::symlink_metadata(&abs) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => return Ok(None),
        Err(e) => return Err(FileOpError::io("stat", abs)(e)),
    };
    let rel = resolved.rel();
    if filters.ignored(&rel) && (!meta.is_dir() || filters.ignored_dir_skippable(&rel)) {
        return Ok(None);
    }
    // An ignored ancestor hides everything below it unless an exception
    // re-includes this path, which `matches` has already answered above.
    Ok(Some(Match {
        name,
        resolved,
        abs,
        meta,
    }))
}

/// A directory's entry names, sorted bytewise (Go's `os.ReadDir` order).
pub(crate) fn read_dir_sorted(dir: &Path) -> std::io::Result<Vec<OsString>> {
    let mut names: Vec<OsString> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()?;
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    Ok(names)
}

/// One file or directory met while walking below a match.
pub(crate) struct Entry<'a> {
    /// Path relative to the match, `/`-separated (`""` for the match).
    pub(crate) sub: &'a str,
    /// The same path with the raw (possibly non-UTF-8) names.
    pub(crate) sub_raw: &'a Path,
    /// Host path.
    pub(crate) abs: &'a Path,
    /// `lstat` of `abs`.
    pub(crate) meta: &'a Metadata,
}

/// What a walk reports, in order: a directory is entered before what it
/// holds and left after; a directory that filters hide but that holds an
/// included path is entered just before that path.
pub(crate) enum Event<'e, 'a> {
    EnterDir(&'e Entry<'a>),
    LeaveDir(&'e Entry<'a>),
    Leaf(&'e Entry<'a>),
}

struct PendingDir {
    sub: String,
    sub_raw: PathBuf,
    abs: PathBuf,
    meta: Metadata,
    emitted: bool,
}

/// Walks everything below `m` that the filters let through, never following
/// symlinks. The match itself is always reported first (entered when it is
/// a directory, as a leaf otherwise).
pub(crate) fn walk(
    m: &Match,
    filters: &Filters<'_>,
    f: &mut dyn FnMut(Event<'_, '_>) -> Result<(), FileOpError>,
) -> Result<(), FileOpError> {
    let top = Entry {
        sub: "",
        sub_raw: Path::new(""),
        abs: &m.abs,
        meta: &m.meta,
    };
    if !m.meta.is_dir() {
        return f(Event::Leaf(&top));
    }
    f(Event::EnterDir(&top))?;
    let mut stack: Vec<PendingDir> = Vec::new();
    let tree_rel = m.resolved.rel();
    walk_dir(&m.abs, "", Path::new(""), &tree_rel, filters, &mut stack, f)?;
    f(Event::LeaveDir(&top))
}

fn join_rel(a: &str, b: &str) -> String {
    if a.is_empty() {
        b.to_owned()
    } else {
        format!("{a}/{b}")
    }
}

/// Whether the directory `sub` lies on or below the literal include prefix
/// (or there is no include pattern).
fn on_include_path(filters: &Filters<'_>, sub: &str) -> bool {
    if filters.include.is_none() {
        return true;
    }
    sub.split('/')
        .zip(filters.include_prefix.iter())
        .all(|(a, b)| a == b)
}

fn flush_pending(
    stack: &mut [PendingDir],
    f: &mut dyn FnMut(Event<'_, '_>) -> Result<(), FileOpError>,
) -> Result<(), FileOpError> {
    for d in stack.iter_mut().filter(|d| !d.emitted) {
        d.emitted = true;
        let e = Entry {
            sub: &d.sub,
            sub_raw: &d.sub_raw,
            abs: &d.abs,
            meta: &d.meta,
        };
        f(Event::EnterDir(&e))?;
    }
    Ok(())
}

fn walk_dir(
    dir: &Path,
    sub: &str,
    sub_raw: &Path,
    tree_rel: &str,
    filters: &Filters<'_>,
    stack: &mut Vec<PendingDir>,
    f: &mut dyn FnMut(Event<'_, '_>) -> Result<(), FileOpError>,
) -> Result<(), FileOpError> {
    let names = read_dir_sorted(dir).map_err(FileOpError::io("read directory", dir))?;
    for name in names {
        let name_s = name.to_string_lossy();
        let child_sub = join_rel(sub, &name_s);
        let child_tree = join_rel(tree_rel, &name_s);
        let child_raw = sub_raw.join(&name);
        let abs = dir.join(&name);
        let meta = match std::fs::symlink_metadata(&abs) {
            Ok(m) => m,
            // Vanished while walking: treat as never there.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(FileOpError::io("stat", abs)(e)),
        };
        let ignored = filters.ignored(&child_tree);
        let excluded = filters.exclude.is_some_and(|m| m.matches(&child_sub));
        let included = filters.include.is_none_or(|m| m.matches(&child_sub));
        let visible = !ignored && !excluded && included;
        if meta.is_dir() {
            if ignored && filters.ignored_dir_skippable(&child_tree) {
                continue;
            }
            if excluded && filters.exclude.is_some_and(|m| m.can_skip_dir(&child_sub)) {
                continue;
            }
            if !included && !on_include_path(filters, &child_sub) {
                continue;
            }
            stack.push(PendingDir {
                sub: child_sub,
                sub_raw: child_raw,
                abs,
                meta,
                emitted: false,
            });
            if visible {
                flush_pending(stack, f)?;
            }
            let (d_abs, d_sub, d_raw) = {
                let d = stack.last().expect("just pushed");
                (d.abs.clone(), d.sub.clone(), d.sub_raw.clone())
            };
            walk_dir(&d_abs, &d_sub, &d_raw, &child_tree, filters, stack, f)?;
            let d = stack.pop().expect("pushed above");
            if d.emitted {
                let e = Entry {
                    sub: &d.sub,
                    sub_raw: &d.sub_raw,
                    abs: &d.abs,
                    meta: &d.meta,
                };
                f(Event::LeaveDir(&e))?;
            }
        } else if visible {
            flush_pending(stack, f)?;
            let e = Entry {
                sub: &child_sub,
                sub_raw: &child_raw,
                abs: &abs,
                meta: &meta,
            };
            f(Event::Leaf(&e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A `.dockerignore`-like matcher for tests: exact paths and `prefix/*`
    /// globs, `!` exceptions, last match wins, parents count.
    pub(crate) struct TestIgnore(pub Vec<String>);

    impl TestIgnore {
        fn pat_matches(p: &str, path: &str) -> bool {
            if let Some(prefix) = p.strip_suffix("/*") {
                path.starts_with(&format!("{prefix}/"))
            } else if let Some(ext) = p.strip_prefix("*") {
                !path.contains('/') && path.ends_with(ext)
            } else {
                path == p || path.starts_with(&format!("{p}/"))
            }
        }
    }

    impl PathMatcher for TestIgnore {
        fn matches(&self, path: &str) -> bool {
            let mut m = false;
            for p in &self.0 {
                if let Some(ex) = p.strip_prefix('!') {
                    if Self::pat_matches(ex, path) {
                        m = false;
                    }
                } else if Self::pat_matches(p, path) {
                    m = true;
                }
            }
            m
        }
        fn can_skip_dir(&self, _dir: &str) -> bool {
            !self.0.iter().any(|p| p.starts_with('!'))
        }
    }

    fn ctx() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        for d in ["src/sub", "docs", "empty"] {
            std::fs::create_dir_all(r.join(d)).unwrap();
        }
        for f in [
            "a.txt",
            "b.txt",
            "c.md",
            "src/main.rs",
            "src/sub/x.rs",
            "docs/readme",
        ] {
            std::fs::write(r.join(f), f).unwrap();
        }
        symlink("src", r.join("link")).unwrap();
        symlink("/etc/passwd", r.join("abs")).unwrap();
        t
    }

    fn names(ms: &[Match]) -> Vec<String> {
        ms.iter().map(|m| m.resolved.rel()).collect()
    }

    fn collect(m: &Match, filters: &Filters<'_>) -> Vec<String> {
        let mut out = Vec::new();
        walk(m, filters, &mut |ev| {
            match ev {
                Event::EnterDir(e) => out.push(format!("+{}", e.sub)),
                Event::LeaveDir(e) => out.push(format!("-{}", e.sub)),
                Event::Leaf(e) => out.push(e.sub.to_owned()),
            }
            Ok(())
        })
        .unwrap();
        out
    }

    #[test]
    fn plain_source_and_not_found() {
        let t = ctx();
        assert_eq!(names(&expand(t.path(), "a.txt", None).unwrap()), ["a.txt"]);
        assert_eq!(
            names(&expand(t.path(), "./src/../a.txt", None).unwrap()),
            ["a.txt"]
        );
        assert!(matches!(
            expand(t.path(), "nope", None),
            Err(FileOpError::SourceNotFound { .. })
        ));
    }

    #[test]
    fn wildcards_expand_lexically_and_empty_is_allowed() {
        let t = ctx();
        assert_eq!(
            names(&expand(t.path(), "*.txt", None).unwrap()),
            ["a.txt", "b.txt"]
        );
        assert_eq!(
            names(&expand(t.path(), "src/*.rs", None).unwrap()),
            ["src/main.rs"]
        );
        assert_eq!(
            names(&expand(t.path(), "*/*.rs", None).unwrap()),
            ["src/main.rs"]
        );
        assert!(expand(t.path(), "nomatch*", None).unwrap().is_empty());
    }

    #[test]
    fn source_symlink_followed_inside_tree() {
        let t = ctx();
        let m = expand(t.path(), "link", None).unwrap();
        assert_eq!(names(&m), ["src"]);
        assert_eq!(m[0].name, "link");
        // An absolute link resolves inside the tree, not on the host.
        assert!(matches!(
            expand(t.path(), "abs", None),
            Err(FileOpError::SourceNotFound { .. })
        ));
        let m = expand(t.path(), "link/main.rs", None).unwrap();
        assert_eq!(names(&m), ["src/main.rs"]);
    }

    #[test]
    fn dockerignore_hides_sources_and_entries() {
        let t = ctx();
        let ig = TestIgnore(vec!["*.txt".into(), "src/sub".into()]);
        assert!(matches!(
            expand(t.path(), "a.txt", Some(&ig)),
            Err(FileOpError::SourceNotFound { .. })
        ));
        assert!(expand(t.path(), "*.txt", Some(&ig)).unwrap().is_empty());
        let root = expand(t.path(), ".", Some(&ig)).unwrap();
        let f = Filters {
            ignore: Some(&ig),
            ..Filters::default()
        };
        let all = collect(&root[0], &f);
        assert!(!all.contains(&"a.txt".to_owned()));
        assert!(!all.iter().any(|p| p.contains("sub")));
        assert!(all.contains(&"src/main.rs".to_owned()));
    }

    #[test]
    fn ignored_dir_with_exception_is_entered_lazily() {
        let t = ctx();
        let ig = TestIgnore(vec!["src".into(), "!src/sub/x.rs".into()]);
        let root = expand(t.path(), "src", Some(&ig)).unwrap();
        let f = Filters {
            ignore: Some(&ig),
            ..Filters::default()
        };
        assert_eq!(
            collect(&root[0], &f),
            ["+", "+sub", "sub/x.rs", "-sub", "-"]
        );
    }

    #[test]
    fn exclude_is_relative_to_the_match() {
        let t = ctx();
        let ex = TestIgnore(vec!["*.rs".into()]);
        let m = expand(t.path(), "src", None).unwrap();
        let f = Filters {
            exclude: Some(&ex),
            ..Filters::default()
        };
        assert_eq!(collect(&m[0], &f), ["+", "+sub", "sub/x.rs", "-sub", "-"]);
    }

    #[test]
    fn include_creates_only_parents_of_matches() {
        let t = ctx();
        let inc = TestIgnore(vec!["src/sub".into()]);
        let prefix = vec!["src".to_owned(), "sub".to_owned()];
        let m = expand(t.path(), ".", None).unwrap();
        let f = Filters {
            include: Some(&inc),
            include_prefix: &prefix,
            ..Filters::default()
        };
        assert_eq!(
            collect(&m[0], &f),
            [
                "+",
                "+src",
                "+src/sub",
                "src/sub/x.rs",
                "-src/sub",
                "-src",
                "-"
            ]
        );
    }
}
