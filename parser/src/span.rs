//! Source positions: every syntax node, typed instruction and error carries a
//! [`Span`] into the Dockerfile text it came from.

/// A region of the Dockerfile source.
///
/// `offset` and `len` are byte positions into the `&str` that was parsed (what
/// a code-frame renderer such as miette needs); `line` and `col` are the
/// 1-based line and column (in characters) of the first byte, for
/// `Dockerfile:LINE:COL` messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Span {
    /// Byte offset of the first byte.
    pub offset: usize,
    /// Length in bytes (0 for a point).
    pub len: usize,
    /// 1-based line of the first byte.
    pub line: usize,
    /// 1-based column of the first byte, counted in characters.
    pub col: usize,
}

impl Span {
    /// The span covering `offset..offset + len` of `src`, with its line and
    /// column computed from `src`. Offsets past the end (or inside a UTF-8
    /// sequence) are clamped to the nearest valid position.
    pub fn locate(src: &str, offset: usize, len: usize) -> Span {
        let offset = floor_char_boundary(src, offset.min(src.len()));
        let end = floor_char_boundary(src, offset.saturating_add(len).min(src.len()));
        let before = &src[..offset];
        let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = src[line_start..offset].chars().count() + 1;
        Span {
            offset,
            len: end - offset,
            line,
            col,
        }
    }

    /// The byte offset just past the span.
    pub fn end(&self) -> usize {
        self.offset + self.len
    }

    /// The smallest span covering both `self` and `other` (line and column
    /// are those of whichever starts first).
    pub fn join(&self, other: &Span) -> Span {
        let (first, _) = if self.offset <= other.offset {
            (self, other)
        } else {
            (other, self)
        };
        let end = self.end().max(other.end());
        Span {
            offset: first.offset,
            len: end - first.offset,
            line: first.line,
            col: first.col,
        }
    }

    /// The text of the span in `src` (empty if the span does not fit `src`).
    pub fn text<'a>(&self, src: &'a str) -> &'a str {
        src.get(self.offset..self.end()).unwrap_or("")
    }
}

impl std::fmt::Display for Span {
    /// `LINE:COL`, as in `Dockerfile:3:5`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// Maps byte offsets of one source text to spans without rescanning the text
/// for every lookup.
#[derive(Debug, Clone)]
pub(crate) struct LineIndex {
    /// Byte offset at which each line starts.
    starts: Vec<usize>,
}

impl LineIndex {
    pub(crate) fn new(src: &str) -> LineIndex {
        let mut starts = vec![0];
        starts.extend(
            src.bytes()
                .enumerate()
                .filter(|(_, b)| *b == b'\n')
                .map(|(i, _)| i + 1),
        );
        LineIndex { starts }
    }

    /// The span of `offset..offset + len` in `src` (which must be the text
    /// this index was built from).
    pub(crate) fn span(&self, src: &str, offset: usize, len: usize) -> Span {
        let offset = floor_char_boundary(src, offset.min(src.len()));
        let end = floor_char_boundary(src, offset.saturating_add(len).min(src.len()));
        let line0 = match self.starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        let col = src[self.starts[line0]..offset].chars().count() + 1;
        Span {
            offset,
            len: end - offset,
            line: line0 + 1,
            col,
        }
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locate_counts_lines_and_characters() {
        let src = "FROM a\nRUN é x\n";
        let s = Span::locate(src, src.find('x').unwrap(), 1);
        assert_eq!((s.line, s.col, s.len), (2, 7, 1));
        assert_eq!(s.text(src), "x");
        assert_eq!(s.to_string(), "2:7");
    }

    #[test]
    fn index_agrees_with_locate() {
        let src = "a\n\nbc\ndé\n";
        let idx = LineIndex::new(src);
        for off in 0..=src.len() {
            assert_eq!(
                idx.span(src, off, 1),
                Span::locate(src, off, 1),
                "offset {off}"
            );
        }
    }

    #[test]
    fn join_covers_both() {
        let src = "FROM a\nRUN b\n";
        let a = Span::locate(src, 0, 4);
        let b = Span::locate(src, 7, 5);
        let j = b.join(&a);
        assert_eq!((j.offset, j.len, j.line, j.col), (0, 12, 1, 1));
    }
}
