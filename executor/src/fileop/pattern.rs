//! Matching paths: COPY/ADD source wildcards with Go's `filepath.Match`
//! semantics (on the `globset` crate), and the seam through which the caller
//! supplies `.dockerignore`-style pattern lists (`.dockerignore` itself,
//! `--exclude`, the include pattern of `--parents`).
//!
//! kiln-executor may not depend on kiln-parser (DESIGN.md), which owns
//! `.dockerignore` matching; so the caller hands in a [`PathMatcher`] (for
//! `.dockerignore`) and a [`PatternCompiler`] (for pattern lists the
//! instruction carries), both implemented over the parser's `DockerIgnore`.

use globset::{GlobBuilder, GlobMatcher};

use super::{FileOpError, PatternCause};

/// A compiled list of `.dockerignore`-syntax patterns (moby/patternmatcher
/// semantics: `*`, `?`, `[...]`, `**`, `!` exceptions, the last matching
/// pattern wins, a path matches when it or one of its parents matches).
pub trait PathMatcher: Send + Sync {
    /// Whether `path` is matched. `path` is relative to the tree the list
    /// applies to, `/`-separated, cleaned, without a leading `/` or `./`.
    fn matches(&self, path: &str) -> bool;

    /// Whether a matched directory can be skipped whole: no `!` exception
    /// could re-include anything below it. Only called when
    /// [`matches`](Self::matches) returned true for `dir`.
    fn can_skip_dir(&self, dir: &str) -> bool;
}

/// Compiles pattern lists written on an instruction (`--exclude=...`, the
/// path of `COPY --parents`) into [`PathMatcher`]s.
pub trait PatternCompiler: Send + Sync {
    /// Compiles `patterns` (in order; `!` marks an exception).
    fn compile(&self, patterns: &[String]) -> Result<Box<dyn PathMatcher>, PatternCause>;
}

/// Whether a source path contains a wildcard (`*`, `?` or `[` not escaped
/// with a backslash), as BuildKit decides.
pub(crate) fn contains_wildcards(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1,
            b'*' | b'?' | b'[' => return true,
            _ => {}
        }
        i += 1;
    }
    false
}

/// Removes backslash escapes (`a\*b` names the file `a*b`).
pub(crate) fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// One path component pattern with Go `filepath.Match` semantics: `*` any
/// run of characters, `?` one character, `[...]` / `[^...]` classes with
/// ranges, `\` escapes. (A component never contains `/`.)
#[derive(Debug, Clone)]
pub(crate) struct ComponentPattern {
    matcher: GlobMatcher,
}

impl ComponentPattern {
    pub(crate) fn new(pattern: &str) -> Result<ComponentPattern, FileOpError> {
        let glob = GlobBuilder::new(&go_to_globset(pattern))
            .literal_separator(true)
            .backslash_escape(true)
            .build()
            .map_err(|e| FileOpError::InvalidPattern {
                pattern: pattern.to_owned(),
                source: Box::new(e),
            })?;
        Ok(ComponentPattern {
            matcher: glob.compile_matcher(),
        })
    }

    pub(crate) fn is_match(&self, name: &str) -> bool {
        self.matcher.is_match(name)
    }
}

/// Rewrites Go glob syntax into globset's: globset gives `**` and `{a,b}`
/// meanings Go does not have, so runs of `*` collapse to one `*` (the same
/// thing in Go) and braces are escaped; everything else means the same.
fn go_to_globset(p: &str) -> String {
    let mut out = String::with_capacity(p.len() + 4);
    let mut chars = p.chars().peekable();
    let mut in_class = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                out.push('\\');
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            }
            '[' if !in_class => {
                in_class = true;
                out.push('[');
                // Go negates with `^`; a leading `]` is a literal in both.
                if chars.peek() == Some(&'^') {
                    chars.next();
                    out.push('!');
                }
                if chars.peek() == Some(&']') {
                    chars.next();
                    out.push(']');
                }
            }
            ']' if in_class => {
                in_class = false;
                out.push(']');
            }
            '*' if !in_class => {
                out.push('*');
                while chars.peek() == Some(&'*') {
                    chars.next();
                }
            }
            '{' | '}' | ',' if !in_class => {
                out.push('\\');
                out.push(c);
            }
            '!' if in_class && out.ends_with('[') => {
                // Go's `[!x]` is a class holding `!` and `x`, not a negation.
                out.push_str("\\!");
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, s: &str) -> bool {
        ComponentPattern::new(p).unwrap().is_match(s)
    }

    #[test]
    fn go_match_basics() {
        assert!(m("*.txt", "a.txt"));
        assert!(m("*.txt", ".hidden.txt"));
        assert!(!m("*.txt", "a.txt.bak"));
        assert!(m("a?c", "abc"));
        assert!(!m("a?c", "ac"));
        assert!(m("[a-c]x", "bx"));
        assert!(!m("[^a-c]x", "bx"));
        assert!(m("[^a-c]x", "dx"));
        assert!(m("**", "anything"));
        assert!(m("a**b", "axxb"));
    }

    #[test]
    fn braces_and_bang_are_literal_as_in_go() {
        assert!(m("{a,b}", "{a,b}"));
        assert!(!m("{a,b}", "a"));
        assert!(m("[!x]", "!"));
        assert!(m("[!x]", "x"));
        assert!(!m("[!x]", "y"));
    }

    #[test]
    fn escapes() {
        assert!(m("a\\*b", "a*b"));
        assert!(!m("a\\*b", "axb"));
        assert!(contains_wildcards("a*"));
        assert!(contains_wildcards("x/[ab]"));
        assert!(!contains_wildcards("a\\*b"));
        assert_eq!(unescape("a\\*b\\\\"), "a*b\\");
    }
}
