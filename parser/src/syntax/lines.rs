//! The parse driver: directives first, then the grammar's `step` rule once
//! per instruction (blank and comment lines skipped, continuation lines
//! joined), reading heredoc bodies in Rust between two steps because where
//! a body ends depends on shell-lexing the instruction line.

use pest::Parser;

use super::args::{self, Line};
use super::heredoc::{self, Heredoc};
use super::{Args, Grammar, Rule, SyntaxTree, Warning, WarningKind};
use crate::directives;
use crate::error::{Error, ErrorKind};
use crate::span::LineIndex;

pub(crate) fn parse(src: &str) -> Result<SyntaxTree, Error> {
    let index = LineIndex::new(src);
    let directives = directives::scan(src, &index)?;
    let rule = if directives.escape == '`' {
        Rule::step_backtick
    } else {
        Rule::step_backslash
    };
    let mut pos = if src.starts_with('\u{feff}') { 3 } else { 0 };
    let mut nodes = Vec::new();
    let mut warnings = Vec::new();
    while pos < src.len() {
        let malformed = || {
            let line_len = src[pos..].find('\n').unwrap_or(src.len() - pos);
            Error::new(
                index.span(src, pos, line_len),
                ErrorKind::Malformed {
                    line: src[pos..pos + line_len].to_string(),
                },
            )
        };
        let step = Grammar::parse(rule, &src[pos..])
            .ok()
            .and_then(|mut p| p.next())
            .ok_or_else(malformed)?;
        let consumed = step.as_span().end();
        if consumed == 0 {
            // The grammar always consumes a line unless it is at the end of
            // the input; anything else would loop forever.
            return Err(malformed());
        }
        let Some(logical) = step.into_inner().find(|p| p.as_rule() == Rule::logical) else {
            break;
        };
        let mut text = String::new();
        let mut pieces = Vec::new();
        let mut empty_lines = false;
        for p in logical.into_inner() {
            match p.as_rule() {
                Rule::segment => {
                    pieces.push((text.len(), pos + p.as_span().start()));
                    text.push_str(p.as_str());
                }
                Rule::empty_line => empty_lines = true,
                _ => {}
            }
        }
        let start = pieces.first().map_or(pos, |&(_, s)| s);
        pos += consumed;
        if text.trim().is_empty() {
            continue;
        }
        let end = trim_line_end(src, pos);
        let span = index.span(src, start, end.saturating_sub(start));
        let line = Line {
            src,
            index: &index,
            text,
            pieces,
            escape: directives.escape,
        };
        let mut node = args::node(&line, 0, 0, span, &mut warnings)?;
        if empty_lines {
            warnings.push(Warning {
                span,
                kind: WarningKind::EmptyContinuationLine,
            });
        }
        let target = match &node.args {
            Args::Trigger(inner) => inner.as_ref(),
            _ => &node,
        };
        if target.keyword.takes_heredocs() && !matches!(target.args, Args::Json(_)) {
            for marker in heredoc::markers(&line.text) {
                let body_start = pos;
                let mut content = String::new();
                let mut terminated = false;
                while pos < src.len() {
                    let next = src[pos..].find('\n').map_or(src.len(), |i| pos + i + 1);
                    let raw = &src[pos..next];
                    let raw = raw.strip_suffix('\n').unwrap_or(raw);
                    let raw = raw.strip_suffix('\r').unwrap_or(raw);
                    pos = next;
                    let mut candidate = raw.trim_end_matches(['\r', '\n']);
                    if marker.chomp {
                        candidate = candidate.trim_start_matches('\t');
                    }
                    if candidate == marker.name {
                        terminated = true;
                        break;
                    }
                    content.push_str(raw);
                    content.push('\n');
                }
                if !terminated {
                    return Err(Error::new(
                        span,
                        ErrorKind::UnterminatedHeredoc { name: marker.name },
                    ));
                }
                let body_end = trim_line_end(src, pos);
                node.heredocs.push(Heredoc {
                    name: marker.name,
                    content,
                    expand: marker.expand,
                    chomp: marker.chomp,
                    fd: marker.fd,
                    span: index.span(src, body_start, body_end.saturating_sub(body_start)),
                });
                node.span = index.span(src, start, body_end.saturating_sub(start));
            }
        }
        nodes.push(node);
    }
    if nodes.is_empty() {
        return Err(Error::new(
            index.span(src, src.len(), 0),
            ErrorKind::NoInstructions,
        ));
    }
    Ok(SyntaxTree {
        directives,
        nodes,
        warnings,
    })
}

/// The offset of the end of the line that ends just before `pos` (without
/// its `\n` or `\r\n`).
fn trim_line_end(src: &str, pos: usize) -> usize {
    let before = &src[..pos.min(src.len())];
    let before = before.strip_suffix('\n').unwrap_or(before);
    before.strip_suffix('\r').unwrap_or(before).len()
}

#[cfg(test)]
mod tests;
