//! Entry names of a layer tar, normalised and checked: relative, without
//! `..`, split into components. A name that would leave the root is an
//! error, never silently rewritten.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

/// Why an entry name is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NameProblem {
    Empty,
    Absolute,
    DotDot,
    Nul,
}

impl NameProblem {
    pub(crate) fn describe(self) -> &'static str {
        match self {
            NameProblem::Empty => "the name is empty",
            NameProblem::Absolute => "absolute paths are not allowed in a layer",
            NameProblem::DotDot => "`..` would leave the root",
            NameProblem::Nul => "the name contains a NUL byte",
        }
    }
}

/// Splits a tar name into components: `./a//b/` → `[a, b]`. `.` and empty
/// components vanish; `/…` and `..` are refused. The root itself (`./`)
/// is an empty list.
pub(crate) fn components(raw: &[u8]) -> Result<Vec<OsString>, NameProblem> {
    if raw.is_empty() {
        return Err(NameProblem::Empty);
    }
    if raw.contains(&0) {
        return Err(NameProblem::Nul);
    }
    if raw[0] == b'/' {
        return Err(NameProblem::Absolute);
    }
    let mut out = Vec::new();
    for c in raw.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return Err(NameProblem::DotDot),
            c => out.push(OsString::from_vec(c.to_vec())),
        }
    }
    Ok(out)
}

/// The set key of a normalised path: components joined with `/`.
pub(crate) fn key(comps: &[OsString]) -> Vec<u8> {
    let mut k = Vec::new();
    for (i, c) in comps.iter().enumerate() {
        if i > 0 {
            k.push(b'/');
        }
        k.extend_from_slice(c.as_encoded_bytes());
    }
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Result<Vec<String>, NameProblem> {
        components(s.as_bytes()).map(|v| v.into_iter().map(|o| o.into_string().unwrap()).collect())
    }

    #[test]
    fn normalises_and_refuses() {
        assert_eq!(c("a/b").unwrap(), ["a", "b"]);
        assert_eq!(c("./a//b/./").unwrap(), ["a", "b"]);
        assert_eq!(c("./").unwrap(), Vec::<String>::new());
        assert_eq!(c(".").unwrap(), Vec::<String>::new());
        assert_eq!(c("..a/b..").unwrap(), ["..a", "b.."]);
        assert_eq!(c(""), Err(NameProblem::Empty));
        assert_eq!(c("/etc/passwd"), Err(NameProblem::Absolute));
        assert_eq!(c("../x"), Err(NameProblem::DotDot));
        assert_eq!(c("a/../../x"), Err(NameProblem::DotDot));
        assert_eq!(c("a/.."), Err(NameProblem::DotDot));
        assert_eq!(key(&components(b"a/b/c").unwrap()), b"a/b/c");
    }
}
