//! Parser directives: `# syntax=`, `# escape=` and `# check=` comment lines
//! at the very top of a Dockerfile. The first line that is not a known
//! directive (a comment, an empty line, an instruction, an unknown
//! directive) ends them.

use std::sync::LazyLock;

use regex::Regex;

use crate::error::{Error, ErrorKind};
use crate::span::LineIndex;
use crate::syntax::Directives;

static DIRECTIVE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^#[\t\n\f\r ]*([a-zA-Z][a-zA-Z0-9]*)[\t\n\f\r ]*=[\t\n\f\r ]*(.+?)[\t\n\f\r ]*$")
        .expect("directive regex is valid")
});

/// Reads the directives at the top of `src` (which may start with a UTF-8
/// byte-order mark).
pub(crate) fn scan(src: &str, index: &LineIndex) -> Result<Directives, Error> {
    let mut directives = Directives::default();
    let mut seen: Vec<String> = Vec::new();
    let mut offset = 0;
    for (n, raw) in src.split_inclusive('\n').enumerate() {
        let line_start = offset;
        offset += raw.len();
        let mut line = raw.strip_suffix('\n').unwrap_or(raw);
        line = line.strip_suffix('\r').unwrap_or(line);
        if n == 0 {
            line = line.strip_prefix('\u{feff}').unwrap_or(line);
        }
        let trimmed = line.trim_start();
        let Some(caps) = DIRECTIVE.captures(trimmed) else {
            break;
        };
        let name = caps[1].to_ascii_lowercase();
        if !matches!(name.as_str(), "syntax" | "escape" | "check") {
            break;
        }
        let bom = if n == 0 && raw.starts_with('\u{feff}') {
            3
        } else {
            0
        };
        let start = line_start + bom + (line.len() - trimmed.len());
        let span = index.span(src, start, trimmed.len());
        if seen.contains(&name) {
            return Err(Error::new(span, ErrorKind::DuplicateDirective { name }));
        }
        let value = caps[2].to_string();
        match name.as_str() {
            "escape" => {
                directives.escape = match value.as_str() {
                    "\\" => '\\',
                    "`" => '`',
                    _ => return Err(Error::new(span, ErrorKind::InvalidEscape { value })),
                }
            }
            "syntax" => directives.syntax = Some(value),
            _ => directives.check = Some(value),
        }
        seen.push(name);
    }
    Ok(directives)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_str(src: &str) -> Result<Directives, Error> {
        scan(src, &LineIndex::new(src))
    }

    #[test]
    fn reads_leading_directives() {
        let d = scan_str("# syntax = docker/dockerfile:1\n#escape=`\nFROM a\n").unwrap();
        assert_eq!(d.syntax.as_deref(), Some("docker/dockerfile:1"));
        assert_eq!(d.escape, '`');
        let d = scan_str("\u{feff}# check=skip=all\r\nFROM a\n").unwrap();
        assert_eq!(d.check.as_deref(), Some("skip=all"));
    }

    #[test]
    fn stops_at_first_other_line() {
        let d = scan_str("# comment\n# escape=`\nFROM a\n").unwrap();
        assert_eq!(d.escape, '\\');
        let d = scan_str("\n# escape=`\n").unwrap();
        assert_eq!(d.escape, '\\');
        let d = scan_str("# unknown=x\n# escape=`\n").unwrap();
        assert_eq!(d.escape, '\\');
    }

    #[test]
    fn errors_carry_the_line() {
        let err = scan_str("# escape=\\\n# escape=`\n").unwrap_err();
        assert!(matches!(err.kind, ErrorKind::DuplicateDirective { .. }));
        assert_eq!((err.span.line, err.span.col), (2, 1));
        let err = scan_str("# escape=x\n").unwrap_err();
        assert!(matches!(err.kind, ErrorKind::InvalidEscape { .. }));
    }
}
