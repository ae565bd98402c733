//! `.dockerignore` matching with moby/patternmatcher's semantics: Go
//! `filepath.Match` patterns (`*`, `?`, `[...]`, `\` escapes) plus `**`
//! (any number of directories), `!` exceptions where the last matching
//! pattern wins, `#` comments, and patterns cleaned like Go's
//! `filepath.Clean` with a leading `/` dropped. A path is excluded when it or
//! one of its parent directories matches. Patterns compile to the `regex`
//! crate.
//!
//! The same matcher serves `COPY --exclude` ([`DockerIgnore::from_patterns`]).

use std::path::{Path, PathBuf};

use regex::Regex;

/// A pattern that cannot be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid .dockerignore pattern {pattern:?} on line {line}")]
pub struct DockerIgnoreError {
    /// 1-based line of the pattern (its position for `from_patterns`).
    pub line: usize,
    /// The pattern as written.
    pub pattern: String,
}

#[derive(Debug, Clone)]
struct Pattern {
    /// The cleaned pattern (without `!`).
    text: String,
    exclusion: bool,
    re: Regex,
    /// One matcher per `/`-separated segment, `None` for a segment holding
    /// `**` (which may span directories).
    segments: Vec<Option<Regex>>,
}

/// A compiled `.dockerignore`.
///
/// # Examples
///
/// ```
/// use kiln_parser::DockerIgnore;
///
/// let ignore = DockerIgnore::parse("# build output\ntarget\n**/*.log\n!keep.log\n").unwrap();
/// assert!(ignore.matches("target/debug/kiln"));
/// assert!(ignore.matches("a/b/c.log"));
/// assert!(!ignore.matches("keep.log"));
/// assert!(!ignore.matches("src/main.rs"));
/// assert!(ignore.can_skip_dir("target"));
/// ```
#[derive(Debug, Clone, Default)]
pub struct DockerIgnore {
    patterns: Vec<Pattern>,
}

/// Go's `filepath.Clean` for `/`-separated paths.
fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => match parts.last() {
                Some(&last) if last != ".." => {
                    parts.pop();
                }
                _ if rooted => {}
                _ => parts.push(".."),
            },
            p => parts.push(p),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

/// Translates a (cleaned) pattern to an anchored regular expression; `None`
/// for a malformed pattern (unclosed or empty class, trailing `\`).
fn to_regex(pattern: &str) -> Option<String> {
    let mut re = String::from("^");
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' if chars.peek() == Some(&'*') => {
                chars.next();
                if chars.peek() == Some(&'/') {
                    chars.next();
                }
                if chars.peek().is_none() {
                    re.push_str(".*");
                } else {
                    re.push_str("(.*/)?");
                }
            }
            '*' => re.push_str("[^/]*"),
            '?' => re.push_str("[^/]"),
            '\\' => {
                // A trailing `\` is a bad pattern, as in Go.
                let e = chars.next()?;
                re.push_str(&regex::escape(e.encode_utf8(&mut [0; 4])));
            }
            '[' => {
                // A character class, passed through to its closing `]`
                // (`[` `&` `~` escaped: the regex crate gives them meaning).
                re.push('[');
                let mut first = true;
                loop {
                    match chars.next()? {
                        ']' if first => return None,
                        ']' => break,
                        '^' if first && re.ends_with('[') => {
                            re.push('^');
                            continue;
                        }
                        '\\' => {
                            let e = chars.next()?;
                            re.push_str(&regex::escape(e.encode_utf8(&mut [0; 4])));
                        }
                        k @ ('[' | '&' | '~') => {
                            re.push('\\');
                            re.push(k);
                        }
                        k => re.push(k),
                    }
                    first = false;
                }
                re.push(']');
            }
            c => re.push_str(&regex::escape(c.encode_utf8(&mut [0; 4]))),
        }
    }
    re.push('$');
    Some(re)
}

impl Pattern {
    fn new(raw: &str) -> Option<Pattern> {
        let (exclusion, body) = match raw.strip_prefix('!') {
            Some(rest) => (true, rest.trim()),
            None => (false, raw),
        };
        if body.is_empty() {
            return None;
        }
        let mut text = clean(body);
        if text.len() > 1 && text.starts_with('/') {
            text.remove(0);
        }
        let re = Regex::new(&to_regex(&text)?).ok()?;
        let segments = text
            .split('/')
            .map(|seg| {
                if seg.contains("**") {
                    Ok(None)
                } else {
                    to_regex(seg)
                        .and_then(|r| Regex::new(&r).ok())
                        .map(Some)
                        .ok_or(())
                }
            })
            .collect::<Result<Vec<_>, ()>>()
            .ok()?;
        Some(Pattern {
            text,
            exclusion,
            re,
            segments,
        })
    }

    /// Whether the pattern could match some path strictly below `dir`.
    fn may_match_below(&self, dir: &[&str]) -> bool {
        for (i, seg) in self.segments.iter().enumerate() {
            let Some(seg) = seg else {
                return true;
            };
            match dir.get(i) {
                Some(d) if !seg.is_match(d) => return false,
                Some(_) => {}
                None => return true,
            }
        }
        false
    }
}

impl DockerIgnore {
    /// Parses `.dockerignore` text: one pattern per line, `#` comments,
    /// blank lines ignored, surrounding white space trimmed.
    pub fn parse(src: &str) -> Result<DockerIgnore, DockerIgnoreError> {
        let src = src.strip_prefix('\u{feff}').unwrap_or(src);
        let mut patterns = Vec::new();
        for (n, line) in src.lines().enumerate() {
            if line.starts_with('#') {
                continue;
            }
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            patterns.push(Pattern::new(line).ok_or_else(|| DockerIgnoreError {
                line: n + 1,
                pattern: line.to_string(),
            })?);
        }
        Ok(DockerIgnore { patterns })
    }

    /// Compiles a list of patterns (e.g. `COPY --exclude` values); blank
    /// ones are skipped.
    pub fn from_patterns<I, S>(patterns: I) -> Result<DockerIgnore, DockerIgnoreError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut out = Vec::new();
        for (n, p) in patterns.into_iter().enumerate() {
            let p = p.as_ref().trim();
            if p.is_empty() {
                continue;
            }
            out.push(Pattern::new(p).ok_or_else(|| DockerIgnoreError {
                line: n + 1,
                pattern: p.to_string(),
            })?);
        }
        Ok(DockerIgnore { patterns: out })
    }

    /// No patterns at all: nothing is excluded.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// The cleaned patterns, `!` kept on exceptions.
    pub fn patterns(&self) -> Vec<String> {
        self.patterns
            .iter()
            .map(|p| {
                if p.exclusion {
                    format!("!{}", p.text)
                } else {
                    p.text.clone()
                }
            })
            .collect()
    }

    /// Whether any `!` exception exists.
    pub fn has_exceptions(&self) -> bool {
        self.patterns.iter().any(|p| p.exclusion)
    }

    /// Whether `rel_path` (relative to the context, `/`-separated) is
    /// excluded: the last pattern matching it or one of its parent
    /// directories decides.
    pub fn matches(&self, rel_path: &str) -> bool {
        let path = clean(rel_path.trim_start_matches('/'));
        let parents: Vec<&str> = match path.rfind('/') {
            Some(i) => path[..i].split('/').collect(),
            None => Vec::new(),
        };
        let mut matched = false;
        for pattern in &self.patterns {
            if pattern.exclusion != matched {
                continue;
            }
            let mut hit = pattern.re.is_match(&path);
            if !hit {
                let mut prefix_len = 0;
                for (i, dir) in parents.iter().enumerate() {
                    prefix_len += dir.len() + usize::from(i > 0);
                    if pattern.re.is_match(&path[..prefix_len]) {
                        hit = true;
                        break;
                    }
                }
            }
            if hit {
                matched = !pattern.exclusion;
            }
        }
        matched
    }

    /// Whether the whole directory `rel_dir` can be skipped: it is excluded
    /// and no `!` exception could re-include anything below it.
    pub fn can_skip_dir(&self, rel_dir: &str) -> bool {
        if !self.matches(rel_dir) {
            return false;
        }
        let dir = clean(rel_dir.trim_start_matches('/'));
        if dir == "." {
            return !self.has_exceptions();
        }
        let segments: Vec<&str> = dir.split('/').collect();
        !self
            .patterns
            .iter()
            .any(|p| p.exclusion && p.may_match_below(&segments))
    }
}

/// The ignore files to look for, in order of precedence, for a Dockerfile at
/// `dockerfile` and a build context at `context`:
/// `<dockerfile>.dockerignore` beside the Dockerfile, then the context's
/// `.dockerignore`.
pub fn ignore_file_candidates(dockerfile: &Path, context: &Path) -> [PathBuf; 2] {
    let name = dockerfile
        .file_name()
        .map(|n| {
            let mut n = n.to_os_string();
            n.push(".dockerignore");
            n
        })
        .unwrap_or_else(|| "Dockerfile.dockerignore".into());
    [
        dockerfile.with_file_name(name),
        context.join(".dockerignore"),
    ]
}

/// Picks the ignore file to read: the first of [`ignore_file_candidates`]
/// for which `exists` says yes, `None` when there is none. `exists` does the
/// file-system check so this crate stays free of I/O.
///
/// # Examples
///
/// ```
/// use std::path::Path;
/// use kiln_parser::pick_ignore_file;
///
/// let present = [Path::new("ctx/.dockerignore")];
/// let file = pick_ignore_file(Path::new("ctx/Dockerfile"), Path::new("ctx"), |p| present.contains(&p));
/// assert_eq!(file.as_deref(), Some(Path::new("ctx/.dockerignore")));
/// ```
pub fn pick_ignore_file(
    dockerfile: &Path,
    context: &Path,
    mut exists: impl FnMut(&Path) -> bool,
) -> Option<PathBuf> {
    ignore_file_candidates(dockerfile, context)
        .into_iter()
        .find(|p| exists(p))
}

#[cfg(test)]
mod tests;
