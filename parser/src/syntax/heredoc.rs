//! Heredocs: finding `<<EOF` markers on a RUN/COPY/ADD line and the body
//! that follows the instruction up to the terminator line.

use crate::expand::{Lexer, NoVars};
use crate::span::Span;

/// A heredoc: a marker on an instruction line (`<<EOF`, `<<-EOF`,
/// `<<"EOF"`, `3<<EOF`) and the body lines after the instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The terminator word with quotes removed (`EOF`); for COPY/ADD sources
    /// also the name of the file created.
    pub name: String,
    /// The body as written: every line up to the terminator, each ending
    /// with `\n`. See [`Heredoc::body`] for the content with `<<-` applied.
    pub content: String,
    /// Whether `$` expansions in the body are done: `false` when any part of
    /// the marker word is quoted (`<<"EOF"`, `<<'EOF'`).
    pub expand: bool,
    /// `<<-`: leading tabs are stripped from the body lines (and the
    /// terminator may be indented with tabs).
    pub chomp: bool,
    /// The file descriptor before `<<` (`3<<EOF`), if any.
    pub fd: Option<u32>,
    /// The body lines and the terminator line.
    pub span: Span,
}

impl Heredoc {
    /// The content with `<<-` applied (leading tabs removed from each line).
    pub fn body(&self) -> String {
        if !self.chomp {
            return self.content.clone();
        }
        self.content
            .split_inclusive('\n')
            .map(|l| l.trim_start_matches('\t'))
            .collect()
    }
}

/// A heredoc marker found on a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Marker {
    pub(crate) name: String,
    pub(crate) expand: bool,
    pub(crate) chomp: bool,
    pub(crate) fd: Option<u32>,
}

/// Parses one word as a heredoc marker: `[digits]<<[-]word` where `word`
/// has no `<` and lexes as a single word.
pub(crate) fn parse_marker(word: &str) -> Option<Marker> {
    let digits = word
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(word.len());
    let (fd, rest) = word.split_at(digits);
    let rest = rest.strip_prefix("<<")?;
    let (chomp, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    if rest.is_empty() || rest.contains('<') {
        return None;
    }
    // Lex the word with and without quote removal: if quotes disappear,
    // part of it was quoted and the body is not expanded.
    let mut lexer = Lexer::new('\\');
    lexer.skip_unset = true;
    let words = lexer.expand_words(rest, &NoVars).ok()?.value;
    let [name] = words.as_slice() else {
        return None;
    };
    lexer.raw_quotes = true;
    let raw = lexer.expand_words(rest, &NoVars).ok()?.value;
    let [raw] = raw.as_slice() else {
        return None;
    };
    let quotes = |s: &str| s.chars().filter(|&c| c == '\'' || c == '"').count();
    Some(Marker {
        name: name.clone(),
        expand: quotes(name) == quotes(raw),
        chomp,
        fd: if fd.is_empty() { None } else { fd.parse().ok() },
    })
}

/// The heredoc markers of an instruction line, in order. The line is split
/// into words as a shell would (quotes and escapes kept), so `"<<EOF"` in
/// quotes is no marker. A line that does not lex has none.
pub(crate) fn markers(line: &str) -> Vec<Marker> {
    if !line.contains("<<") {
        return Vec::new();
    }
    let mut lexer = Lexer::new('\\');
    lexer.raw_quotes = true;
    lexer.raw_escapes = true;
    match lexer.expand_words(line, &NoVars) {
        Ok(words) => words.value.iter().filter_map(|w| parse_marker(w)).collect(),
        Err(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_on_a_line() {
        let m = markers("COPY <<A <<-\"B\" /dst/");
        assert_eq!(m.len(), 2);
        assert_eq!(
            (m[0].name.as_str(), m[0].expand, m[0].chomp),
            ("A", true, false)
        );
        assert_eq!(
            (m[1].name.as_str(), m[1].expand, m[1].chomp),
            ("B", false, true)
        );
        assert!(markers("RUN echo '<<EOF'").is_empty());
        assert!(markers("RUN echo \"<<EOF\"").is_empty());
        assert!(markers("RUN a << b").is_empty());
        let m = markers("RUN cat 3<<X > /x");
        assert_eq!((m[0].name.as_str(), m[0].fd), ("X", Some(3)));
    }

    #[test]
    fn partly_quoted_marker_does_not_expand() {
        let m = parse_marker("<<E'O'F").unwrap();
        assert_eq!((m.name.as_str(), m.expand), ("EOF", false));
        assert!(parse_marker("<<").is_none());
        assert!(parse_marker("<<a<b").is_none());
        assert!(parse_marker("x<<EOF").is_none());
    }

    #[test]
    fn chomped_body() {
        let h = Heredoc {
            name: "E".into(),
            content: "\t\ta\n\tb\nc\n".into(),
            expand: true,
            chomp: true,
            fd: None,
            span: Span::default(),
        };
        assert_eq!(h.body(), "a\nb\nc\n");
    }
}
