//! Shell patterns of `${V#p}`, `${V%p}` and `${V/p/r}`: `*` (any string),
//! `?` (any character), `\` escaping `*`, `?` and `\` (and `}`/`/`, which
//! only need escaping to stay inside the `${...}`), everything else literal.
//! Patterns are compiled to the `regex` crate; `None` means the pattern is
//! invalid (a bad escape, or too large to compile).

use regex::Regex;

/// One unit of a pattern: a wildcard or a literal character.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    Star,
    Any,
    Literal(char),
}

fn units(pattern: &str) -> Option<Vec<Unit>> {
    let mut out = Vec::new();
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(match c {
            '*' => Unit::Star,
            '?' => Unit::Any,
            '\\' => match chars.peek() {
                // `\}` and `\/` keep the character inside `${...}`; the
                // escape is not part of the pattern.
                Some('}' | '/') => continue,
                Some(&e @ ('*' | '?' | '\\')) => {
                    chars.next();
                    Unit::Literal(e)
                }
                _ => return None,
            },
            c => Unit::Literal(c),
        });
    }
    Some(out)
}

fn compile(units: &[Unit], greedy: bool, anchored: bool) -> Option<Regex> {
    let mut re = String::with_capacity(units.len() * 2 + 1);
    if anchored {
        re.push('^');
    }
    for unit in units {
        match unit {
            Unit::Star if greedy => re.push_str(".*"),
            Unit::Star => re.push_str(".*?"),
            Unit::Any => re.push('.'),
            Unit::Literal(c) => re.push_str(&regex::escape(c.encode_utf8(&mut [0; 4]))),
        }
    }
    Regex::new(&re).ok()
}

/// `${V#p}` (shortest) / `${V##p}` (longest): `value` without the matching
/// prefix.
pub(crate) fn trim_prefix(pattern: &str, value: &str, greedy: bool) -> Option<String> {
    let re = compile(&units(pattern)?, greedy, true)?;
    Some(match re.find(value) {
        Some(m) => value[m.end()..].to_string(),
        None => value.to_string(),
    })
}

/// `${V%p}` (shortest) / `${V%%p}` (longest): `value` without the matching
/// suffix. Regular expressions find leftmost matches, so both the pattern
/// and the value are reversed and the prefix is trimmed.
pub(crate) fn trim_suffix(pattern: &str, value: &str, greedy: bool) -> Option<String> {
    let mut reversed = units(pattern)?;
    reversed.reverse();
    let re = compile(&reversed, greedy, true)?;
    let rvalue: String = value.chars().rev().collect();
    let trimmed = match re.find(&rvalue) {
        Some(m) => &rvalue[m.end()..],
        None => &rvalue,
    };
    Some(trimmed.chars().rev().collect())
}

/// `${V/p/r}` (first match) / `${V//p/r}` (every match), matches as long as
/// possible.
pub(crate) fn replace(pattern: &str, value: &str, replacement: &str, all: bool) -> Option<String> {
    let re = compile(&units(pattern)?, true, false)?;
    let rep = regex::NoExpand(replacement);
    Some(if all {
        re.replace_all(value, rep).into_owned()
    } else {
        re.replace(value, rep).into_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_and_suffix() {
        assert_eq!(trim_prefix("*/", "a/b/c", false).unwrap(), "b/c");
        assert_eq!(trim_prefix("*/", "a/b/c", true).unwrap(), "c");
        assert_eq!(trim_suffix("/*", "a/b/c", false).unwrap(), "a/b");
        assert_eq!(trim_suffix("/*", "a/b/c", true).unwrap(), "a");
        assert_eq!(trim_suffix(".tar.?z", "x.tar.gz", false).unwrap(), "x");
        assert_eq!(trim_prefix("x", "abc", false).unwrap(), "abc");
        assert_eq!(trim_prefix("\\*", "*a", false).unwrap(), "a");
        assert_eq!(trim_suffix("a\\*", "ba*", false).unwrap(), "b");
        assert!(trim_prefix("\\q", "a", false).is_none());
        assert!(trim_prefix("\\", "a", false).is_none());
    }

    #[test]
    fn replacement() {
        assert_eq!(replace("o", "foo", "0", false).unwrap(), "f0o");
        assert_eq!(replace("o", "foo", "0", true).unwrap(), "f00");
        assert_eq!(replace("f*o", "foo/bar", "$1", false).unwrap(), "$1/bar");
        assert_eq!(replace("(", "a(b", "[", true).unwrap(), "a[b");
    }
}
