//! Splitting a sandbox's output streams into lines, in bounded memory.

use serde::{Deserialize, Serialize};

/// Which standard stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputStream {
    Stdout,
    Stderr,
}

/// Accumulates bytes of one stream and hands out complete lines. A line
/// longer than [`LineSplitter::MAX_LINE`] is delivered in pieces, so memory
/// stays bounded whatever the process prints.
#[derive(Debug, Default)]
pub struct LineSplitter {
    buf: Vec<u8>,
}

impl LineSplitter {
    /// The longest piece delivered at once.
    pub const MAX_LINE: usize = 64 * 1024;

    pub fn new() -> LineSplitter {
        LineSplitter::default()
    }

    /// Adds bytes; calls `emit` for each complete line (without its `\n`).
    pub fn push(&mut self, mut bytes: &[u8], emit: &mut dyn FnMut(&[u8])) {
        while let Some(pos) = bytes.iter().position(|&b| b == b'\n') {
            if self.buf.is_empty() {
                emit(&bytes[..pos]);
            } else {
                self.buf.extend_from_slice(&bytes[..pos]);
                emit(&self.buf);
                self.buf.clear();
            }
            bytes = &bytes[pos + 1..];
        }
        self.buf.extend_from_slice(bytes);
        while self.buf.len() >= Self::MAX_LINE {
            let rest = self.buf.split_off(Self::MAX_LINE);
            emit(&self.buf);
            self.buf = rest;
        }
    }

    /// Delivers a last line without a newline, if any.
    pub fn finish(&mut self, emit: &mut dyn FnMut(&[u8])) {
        if !self.buf.is_empty() {
            emit(&self.buf);
            self.buf.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut s = LineSplitter::new();
        for c in chunks {
            s.push(c, &mut |l| out.push(l.to_vec()));
        }
        s.finish(&mut |l| out.push(l.to_vec()));
        out
    }

    #[test]
    fn lines_across_chunks() {
        assert_eq!(
            split(&[b"a\nb", b"c\n\nd"]),
            vec![b"a".to_vec(), b"bc".to_vec(), b"".to_vec(), b"d".to_vec()]
        );
    }

    #[test]
    fn long_lines_are_cut() {
        let long = vec![b'x'; LineSplitter::MAX_LINE * 2 + 5];
        let out = split(&[&long]);
        assert_eq!(out.len(), 3);
        assert_eq!(out[2].len(), 5);
    }
}
