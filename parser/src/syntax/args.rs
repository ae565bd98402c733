//! From a joined instruction line to a [`Node`]: the keyword, the leading
//! `--flags` and the arguments shaped per instruction the way BuildKit's line
//! parsers shape them (JSON or shell form, whitespace words, quote-aware
//! words, `name=value` pairs, a nested ONBUILD trigger, HEALTHCHECK's type).

use pest::Parser;

use super::{Args, Flag, Grammar, Keyword, Node, Pair, Rule, Warning, WarningKind};
use crate::error::{Error, ErrorKind, closest};
use crate::span::{LineIndex, Span};

/// A logical line: the joined text and, for every piece, where it came from
/// in the source.
pub(crate) struct Line<'s> {
    pub(crate) src: &'s str,
    pub(crate) index: &'s LineIndex,
    pub(crate) text: String,
    /// `(offset in text, offset in src)` of each piece, in order.
    pub(crate) pieces: Vec<(usize, usize)>,
    pub(crate) escape: char,
}

impl Line<'_> {
    /// The source offset of byte `at` of the joined text.
    fn src_offset(&self, at: usize) -> usize {
        let i = self
            .pieces
            .partition_point(|&(t, _)| t <= at)
            .saturating_sub(1);
        match self.pieces.get(i) {
            Some(&(t, s)) => s + (at - t),
            None => at,
        }
    }

    /// The span of `start..end` of the joined text (clipped to its first
    /// piece when it crosses a continuation).
    pub(crate) fn span(&self, start: usize, end: usize) -> Span {
        let s = self.src_offset(start);
        let e = self.src_offset(end.max(start));
        self.index.span(self.src, s, e.saturating_sub(s))
    }
}

/// Go's `unicode.IsSpace`.
fn is_space(c: char) -> bool {
    c.is_whitespace()
}

/// How many ONBUILD triggers may nest in the syntax tree (the typed layer
/// refuses any nesting; this only bounds the recursion).
const MAX_ONBUILD_DEPTH: usize = 8;

/// Builds the node for the joined text `line.text[start..]` (the whole line,
/// or an ONBUILD trigger at nesting `depth`). `span` is the instruction's
/// span.
pub(crate) fn node(
    line: &Line<'_>,
    start: usize,
    depth: usize,
    span: Span,
    warnings: &mut Vec<Warning>,
) -> Result<Node, Error> {
    let text = &line.text[start..];
    let mut pairs = Grammar::parse(Rule::command, text).map_err(|_| {
        Error::new(
            span,
            ErrorKind::UnknownInstruction {
                name: text.trim().to_string(),
                suggestion: None,
            },
        )
    })?;
    let command = pairs.next().map(|p| p.into_inner());
    let mut keyword = None;
    let mut flags = Vec::new();
    let mut rest = ("", text.len());
    for pair in command.into_iter().flatten() {
        let at = start + pair.as_span().start();
        match pair.as_rule() {
            Rule::keyword => keyword = Some((pair.as_str(), at)),
            Rule::flag => flags.push(Flag {
                text: unquote_flag(pair.as_str()),
                span: line.span(at, at + pair.as_str().len()),
            }),
            Rule::rest => rest = (pair.as_str(), at),
            _ => {}
        }
    }
    let Some((word, kw_at)) = keyword else {
        return Err(Error::new(span, ErrorKind::NoInstructions));
    };
    let Some(keyword) = Keyword::parse(word) else {
        return Err(Error::new(
            line.span(kw_at, kw_at + word.len()),
            ErrorKind::UnknownInstruction {
                name: word.to_string(),
                suggestion: suggest(word),
            },
        ));
    };
    let rest_text = rest.0.trim_matches(is_space);
    let rest_at = rest.1 + (rest.0.len() - rest.0.trim_start_matches(is_space).len());
    let args = match keyword {
        Keyword::Env | Keyword::Label => {
            name_values(rest_text, keyword, line.escape).map_err(|kind| Error::new(span, kind))?
        }
        Keyword::Arg => words_or_empty(quoted_words(rest_text, line.escape)),
        Keyword::Cmd | Keyword::Run | Keyword::Entrypoint | Keyword::Shell => {
            maybe_json(rest_text, span, warnings)
        }
        Keyword::Add | Keyword::Copy | Keyword::Volume => {
            maybe_json_to_list(rest_text, span, warnings)
        }
        Keyword::From | Keyword::Expose => words_or_empty(whitespace_words(rest_text)),
        Keyword::Maintainer | Keyword::User | Keyword::Workdir | Keyword::StopSignal => {
            if rest_text.is_empty() {
                Args::Empty
            } else {
                Args::Text(rest_text.to_string())
            }
        }
        Keyword::Onbuild => {
            if rest_text.is_empty() {
                Args::Empty
            } else if depth >= MAX_ONBUILD_DEPTH {
                return Err(Error::new(
                    span,
                    ErrorKind::BadOnbuildTrigger {
                        trigger: "ONBUILD".into(),
                    },
                ));
            } else {
                let inner_span = line.span(rest_at, line.text.len());
                let inner = node(line, rest_at, depth + 1, inner_span, warnings)?;
                Args::Trigger(Box::new(inner))
            }
        }
        Keyword::Healthcheck => health(rest_text, span, warnings),
    };
    Ok(Node {
        keyword,
        flags,
        args,
        heredocs: Vec::new(),
        original: text.to_string(),
        span,
    })
}

/// The closest keyword to a misspelt one, if any is close.
fn suggest(word: &str) -> Option<&'static str> {
    closest(
        &word.to_ascii_uppercase(),
        Keyword::ALL.iter().map(Keyword::as_str),
    )
}

/// A flag word with quotes and `\` escapes removed, as BuildKit's
/// `extractBuilderFlags` does.
fn unquote_flag(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut quote: Option<char> = None;
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (None, '\'' | '"') => quote = Some(c),
            (_, '\\') => {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            }
            (_, c) => out.push(c),
        }
    }
    out
}

fn words_or_empty(words: Vec<String>) -> Args {
    if words.is_empty() {
        Args::Empty
    } else {
        Args::Words(words)
    }
}

/// What BuildKit's `reWhitespace` (`[\t\v\f\r ]+`) splits on.
const RE_WHITESPACE: [char; 5] = ['\t', '\u{b}', '\u{c}', '\r', ' '];

/// Splits on runs of [`RE_WHITESPACE`].
fn whitespace_words(rest: &str) -> Vec<String> {
    rest.split(RE_WHITESPACE)
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// Quote-aware words with quotes kept (BuildKit's `parseWords`).
pub(crate) fn quoted_words(rest: &str, escape: char) -> Vec<String> {
    let rule = if escape == '`' {
        Rule::words_backtick
    } else {
        Rule::words_backslash
    };
    let Ok(mut pairs) = Grammar::parse(rule, rest) else {
        return Vec::new();
    };
    let Some(top) = pairs.next() else {
        return Vec::new();
    };
    top.into_inner()
        .filter(|p| p.as_rule() == Rule::word)
        .map(|word| {
            let mut text = word.as_str().to_string();
            // An escape character at the very end of the line is dropped.
            if word
                .clone()
                .into_inner()
                .any(|p| p.as_rule() == Rule::esc_eoi)
            {
                text.pop();
            }
            text
        })
        .filter(|w| !w.is_empty())
        .collect()
}

/// ENV and LABEL: `name=value ...` pairs, or the old `NAME value` form.
fn name_values(rest: &str, keyword: Keyword, escape: char) -> Result<Args, ErrorKind> {
    let instruction = keyword.as_str();
    let words = quoted_words(rest, escape);
    let Some(first) = words.first() else {
        return Ok(Args::Empty);
    };
    if !first.contains('=') {
        // Old form: the first whitespace-separated word is the name, all the
        // rest (as written) the value.
        let mut parts = rest.splitn(2, RE_WHITESPACE);
        let name = parts.next().unwrap_or_default();
        let value = parts
            .next()
            .map(|v| v.trim_start_matches(RE_WHITESPACE))
            .unwrap_or_default();
        if value.is_empty() {
            return Err(ErrorKind::MissingValue { instruction });
        }
        return Ok(Args::Pairs(vec![Pair {
            key: name.to_string(),
            value: value.to_string(),
            equals: false,
        }]));
    }
    let mut pairs = Vec::with_capacity(words.len());
    for word in words {
        let Some((key, value)) = word.split_once('=') else {
            return Err(ErrorKind::MissingEquals { instruction, word });
        };
        pairs.push(Pair {
            key: key.to_string(),
            value: value.to_string(),
            equals: true,
        });
    }
    Ok(Args::Pairs(pairs))
}

/// A JSON string array, or `None` (with `not_strings` set when it is a JSON
/// array of something else).
fn json_array(rest: &str, not_strings: &mut bool) -> Option<Vec<String>> {
    let trimmed = rest.trim_start_matches(is_space);
    if !trimmed.starts_with('[') {
        return None;
    }
    let values: Vec<serde_json::Value> = serde_json::from_str(trimmed).ok()?;
    let mut out = Vec::with_capacity(values.len());
    for v in values {
        match v {
            serde_json::Value::String(s) => out.push(s),
            _ => {
                *not_strings = true;
                return None;
            }
        }
    }
    Some(out)
}

/// Exec form when the arguments are a JSON string array, else shell form
/// (BuildKit's `parseMaybeJSON`).
fn maybe_json(rest: &str, span: Span, warnings: &mut Vec<Warning>) -> Args {
    if rest.is_empty() {
        return Args::Empty;
    }
    let mut not_strings = false;
    match json_array(rest, &mut not_strings) {
        Some(v) => Args::Json(v),
        None => {
            if not_strings {
                warnings.push(Warning {
                    span,
                    kind: WarningKind::JsonNotStringArray,
                });
            }
            Args::Text(rest.to_string())
        }
    }
}

/// A JSON string array, else whitespace-separated words (BuildKit's
/// `parseMaybeJSONToList`).
fn maybe_json_to_list(rest: &str, span: Span, warnings: &mut Vec<Warning>) -> Args {
    let mut not_strings = false;
    match json_array(rest, &mut not_strings) {
        Some(v) => Args::Json(v),
        None => {
            if not_strings {
                warnings.push(Warning {
                    span,
                    kind: WarningKind::JsonNotStringArray,
                });
            }
            words_or_empty(whitespace_words(rest))
        }
    }
}

/// HEALTHCHECK: the type word, then the command in JSON or shell form.
fn health(rest: &str, span: Span, warnings: &mut Vec<Warning>) -> Args {
    let sep = rest.find(is_space).unwrap_or(rest.len());
    if sep == 0 {
        return Args::Empty;
    }
    let (kind, cmd) = rest.split_at(sep);
    let command = maybe_json(cmd.trim_start_matches(is_space), span, warnings);
    Args::Health {
        kind: kind.to_string(),
        command: Box::new(command),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_keep_quotes_and_drop_a_final_escape() {
        assert_eq!(
            quoted_words(r#"a="b c" d='e f' g\ h i\"#, '\\'),
            vec![r#"a="b c""#, "d='e f'", r"g\ h", "i"]
        );
        assert_eq!(
            quoted_words(r#"x="unterminated y"#, '\\'),
            vec![r#"x="unterminated y"#]
        );
        assert_eq!(quoted_words("a`\"b c", '`'), vec!["a`\"b", "c"]);
    }

    #[test]
    fn flags_lose_quotes() {
        assert_eq!(
            unquote_flag(r#"--mount="type=cache,target=/x y""#),
            "--mount=type=cache,target=/x y"
        );
        assert_eq!(unquote_flag(r"--a=b\ c"), "--a=b c");
    }

    #[test]
    fn misspelt_keywords() {
        assert_eq!(suggest("FORM"), Some("FROM"));
        assert_eq!(suggest("rum"), Some("RUN"));
        assert_eq!(suggest("XYZZYQ"), None);
    }
}
