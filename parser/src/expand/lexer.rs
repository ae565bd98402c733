//! The word lexer: one pass over a word that removes quotes and escapes,
//! substitutes variables and, on request, splits the result into words the
//! way a shell splits unquoted expansions.

use std::collections::BTreeSet;

use super::pattern;
use super::{Expanded, Vars};
use crate::error::{ExpandError, ExpandErrorKind};

/// Expands Dockerfile words.
///
/// # Examples
///
/// ```
/// use std::collections::BTreeMap;
/// use kiln_parser::Lexer;
///
/// let mut env = BTreeMap::new();
/// env.insert("NAME".to_string(), "a b".to_string());
/// let lexer = Lexer::new('\\');
/// assert_eq!(lexer.expand("x${NAME:-none}'$q'", &env).unwrap().value, "xa b$q");
/// assert_eq!(lexer.expand_words("x${NAME}", &env).unwrap().value, vec!["xa", "b"]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lexer {
    escape: char,
    /// Keep quote characters in the result.
    pub(crate) raw_quotes: bool,
    /// Keep escape characters in the result.
    pub(crate) raw_escapes: bool,
    /// Leave unset variables as written (`$X`, `${X:-y}`).
    pub(crate) skip_unset: bool,
    /// Treat quotes as ordinary characters (heredoc bodies).
    pub(crate) skip_quotes: bool,
}

impl Lexer {
    /// A lexer for the Dockerfile escape character `escape` (`\` or `` ` ``).
    pub fn new(escape: char) -> Lexer {
        Lexer {
            escape,
            raw_quotes: false,
            raw_escapes: false,
            skip_unset: false,
            skip_quotes: false,
        }
    }

    /// The lexer for heredoc bodies: `\` escapes and `$` substitutions, quotes
    /// are ordinary characters (BuildKit's "raw" expansion).
    pub fn heredoc() -> Lexer {
        Lexer {
            skip_quotes: true,
            ..Lexer::new('\\')
        }
    }

    /// The escape character.
    pub fn escape(&self) -> char {
        self.escape
    }

    /// Expands `word` into one string (no word splitting).
    pub fn expand(&self, word: &str, vars: &dyn Vars) -> Result<Expanded<String>, ExpandError> {
        let mut run = Run::new(self, word, vars);
        let (value, _) = run.top()?;
        Ok(Expanded {
            value,
            used_args: run.used_args,
            unset: run.unset,
        })
    }

    /// Expands `word` and splits it into words: unquoted white space
    /// (written or from a variable's value) separates words, quoted white
    /// space does not.
    pub fn expand_words(
        &self,
        word: &str,
        vars: &dyn Vars,
    ) -> Result<Expanded<Vec<String>>, ExpandError> {
        let mut run = Run::new(self, word, vars);
        let (_, words) = run.top()?;
        Ok(Expanded {
            value: words,
            used_args: run.used_args,
            unset: run.unset,
        })
    }
}

/// Accumulates split words.
#[derive(Default)]
struct Words {
    buf: String,
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, c: char) {
        if c.is_whitespace() {
            if self.in_word && !self.buf.is_empty() {
                self.words.push(std::mem::take(&mut self.buf));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(c);
        }
    }

    fn add_raw_char(&mut self, c: char) {
        self.buf.push(c);
        self.in_word = true;
    }

    fn add_str(&mut self, s: &str) {
        s.chars().for_each(|c| self.add_char(c));
    }

    fn add_raw_str(&mut self, s: &str) {
        self.buf.push_str(s);
        self.in_word = true;
    }

    fn finish(mut self) -> Vec<String> {
        if !self.buf.is_empty() {
            self.words.push(self.buf);
        }
        self.words
    }
}

/// One expansion in progress.
struct Run<'a> {
    lexer: &'a Lexer,
    src: &'a str,
    pos: usize,
    vars: &'a dyn Vars,
    raw_escapes: bool,
    depth: usize,
    used_args: BTreeSet<String>,
    unset: BTreeSet<String>,
}

type Step<T> = Result<T, ExpandErrorKind>;

/// How deeply `${...}` may nest (each level recurses; real Dockerfiles use a
/// handful).
const MAX_DEPTH: usize = 64;

impl<'a> Run<'a> {
    fn new(lexer: &'a Lexer, src: &'a str, vars: &'a dyn Vars) -> Run<'a> {
        Run {
            lexer,
            src,
            pos: 0,
            vars,
            raw_escapes: lexer.raw_escapes,
            depth: 0,
            used_args: BTreeSet::new(),
            unset: BTreeSet::new(),
        }
    }

    fn top(&mut self) -> Result<(String, Vec<String>), ExpandError> {
        let raw = self.raw_escapes;
        self.until(None, raw).map_err(|kind| ExpandError {
            word: self.src.to_string(),
            kind,
        })
    }

    fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    /// Processes up to `stop` (consumed) or the end of the word, returning
    /// the expanded text and its split words.
    fn until(&mut self, stop: Option<char>, raw_escapes: bool) -> Step<(String, Vec<String>)> {
        if self.depth > MAX_DEPTH {
            return Err(ExpandErrorKind::TooDeep { limit: MAX_DEPTH });
        }
        self.depth += 1;
        let saved = std::mem::replace(&mut self.raw_escapes, raw_escapes);
        let out = self.until_inner(stop);
        self.raw_escapes = saved;
        self.depth -= 1;
        out
    }

    fn until_inner(&mut self, stop: Option<char>) -> Step<(String, Vec<String>)> {
        let mut result = String::new();
        let mut words = Words::default();
        while let Some(c) = self.peek() {
            if Some(c) == stop {
                self.next();
                return Ok((result, words.finish()));
            }
            match c {
                '$' => {
                    let value = self.dollar()?;
                    result.push_str(&value);
                    words.add_str(&value);
                }
                '\'' if !self.lexer.skip_quotes => {
                    let value = self.single_quoted()?;
                    result.push_str(&value);
                    words.add_raw_str(&value);
                }
                '"' if !self.lexer.skip_quotes => {
                    let value = self.double_quoted()?;
                    result.push_str(&value);
                    words.add_raw_str(&value);
                }
                _ => {
                    self.next();
                    if c == self.lexer.escape {
                        if self.raw_escapes {
                            words.add_raw_char(c);
                            result.push(c);
                        }
                        // The escape character escapes the next one; at the
                        // end of the word it is dropped.
                        let Some(escaped) = self.next() else { break };
                        words.add_raw_char(escaped);
                        result.push(escaped);
                    } else {
                        words.add_char(c);
                        result.push(c);
                    }
                }
            }
        }
        match stop {
            Some('}') => Err(ExpandErrorKind::MissingBrace),
            Some(_) => Err(ExpandErrorKind::BadSubstitution),
            None => Ok((result, words.finish())),
        }
    }

    fn single_quoted(&mut self) -> Step<String> {
        let mut out = String::new();
        let open = self.next();
        if self.lexer.raw_quotes {
            out.extend(open);
        }
        loop {
            match self.next() {
                None => {
                    return Err(ExpandErrorKind::UnterminatedQuote {
                        quote: "single-quote",
                    });
                }
                Some('\'') => {
                    if self.lexer.raw_quotes {
                        out.push('\'');
                    }
                    return Ok(out);
                }
                Some(c) => out.push(c),
            }
        }
    }

    fn double_quoted(&mut self) -> Step<String> {
        let mut out = String::new();
        let open = self.next();
        if self.lexer.raw_quotes {
            out.extend(open);
        }
        loop {
            match self.peek() {
                None => {
                    return Err(ExpandErrorKind::UnterminatedQuote {
                        quote: "double-quote",
                    });
                }
                Some('"') => {
                    self.next();
                    if self.lexer.raw_quotes {
                        out.push('"');
                    }
                    return Ok(out);
                }
                Some('$') => out.push_str(&self.dollar()?),
                Some(mut c) => {
                    self.next();
                    if c == self.lexer.escape {
                        if self.raw_escapes {
                            out.push(c);
                        }
                        // Inside double quotes only `"`, `$` and the escape
                        // character itself can be escaped; other escapes stay.
                        match self.peek() {
                            None => continue,
                            Some(n) if n == '"' || n == '$' || n == self.lexer.escape => {
                                self.next();
                                c = n;
                            }
                            Some(_) => {}
                        }
                    }
                    out.push(c);
                }
            }
        }
    }

    /// Looks a variable up, recording what was read.
    fn get(&mut self, name: &str) -> Option<String> {
        match self.vars.var(name) {
            Some(var) => {
                if var.from_arg {
                    self.used_args.insert(name.to_string());
                }
                Some(var.value.to_string())
            }
            None => {
                self.unset.insert(name.to_string());
                None
            }
        }
    }

    /// A variable name after `$`: letters, digits and `_`; or all the digits
    /// of a positional parameter; or one special parameter character.
    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self.peek() {
            if name.is_empty() && c.is_numeric() {
                while let Some(d) = self.peek().filter(|d| d.is_numeric()) {
                    self.next();
                    name.push(d);
                }
                return name;
            }
            if name.is_empty() && matches!(c, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0') {
                self.next();
                name.push(c);
                return name;
            }
            if !(c.is_alphanumeric() || c == '_') {
                break;
            }
            self.next();
            name.push(c);
        }
        name
    }

    fn dollar(&mut self) -> Step<String> {
        self.next(); // '$'
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".to_string());
            }
            return Ok(match self.get(&name) {
                Some(v) => v,
                None if self.lexer.skip_unset => format!("${name}"),
                None => String::new(),
            });
        }
        self.next(); // '{'
        match self.peek() {
            None => return Err(ExpandErrorKind::MissingBrace),
            Some('{' | '}' | ':') => return Err(ExpandErrorKind::BadSubstitution),
            Some(_) => {}
        }
        let name = self.name();
        let Some(op) = self.next() else {
            return Err(ExpandErrorKind::MissingBrace);
        };
        match op {
            '}' => Ok(match self.get(&name) {
                Some(v) => v,
                None if self.lexer.skip_unset => format!("${{{name}}}"),
                None => String::new(),
            }),
            ':' => {
                let Some(m) = self.next() else {
                    return Err(ExpandErrorKind::MissingBrace);
                };
                if !matches!(m, '-' | '+' | '?') {
                    return Err(ExpandErrorKind::UnsupportedModifier {
                        modifier: format!(":{m}"),
                    });
                }
                self.modifier(&name, m, true)
            }
            '-' | '+' | '?' | '#' | '%' => self.modifier(&name, op, false),
            '/' => self.replace(&name),
            other => Err(ExpandErrorKind::UnsupportedModifier {
                modifier: other.to_string(),
            }),
        }
    }

    /// `${name<op>word}` with `op` one of `- + ? # %` (`colon`: the `:`
    /// forms, where an empty value counts as unset).
    fn modifier(&mut self, name: &str, op: char, colon: bool) -> Step<String> {
        let raw = op == '#' || op == '%';
        let word = match self.until(Some('}'), raw) {
            Ok((w, _)) => w,
            Err(_) if self.peek().is_none() => return Err(ExpandErrorKind::MissingBrace),
            Err(e) => return Err(e),
        };
        let value = self.get(name);
        if value.is_none() && self.lexer.skip_unset {
            let c = if colon { ":" } else { "" };
            return Ok(format!("${{{name}{c}{op}{word}}}"));
        }
        let missing = match &value {
            None => true,
            Some(v) => colon && v.is_empty(),
        };
        match op {
            '-' => Ok(if missing {
                word
            } else {
                value.unwrap_or_default()
            }),
            '+' => Ok(if missing { String::new() } else { word }),
            '?' => match value {
                None => Err(ExpandErrorKind::Required {
                    name: name.to_string(),
                    message: if word.is_empty() {
                        "is not allowed to be unset".to_string()
                    } else {
                        word
                    },
                }),
                Some(v) if colon && v.is_empty() => Err(ExpandErrorKind::Required {
                    name: name.to_string(),
                    message: if word.is_empty() {
                        "is not allowed to be empty".to_string()
                    } else {
                        word
                    },
                }),
                Some(v) => Ok(v),
            },
            _ => {
                // `#`/`%` trim the shortest match, `##`/`%%` the longest.
                let (greedy, pat) = match word.strip_prefix(op) {
                    Some(p) => (true, p),
                    None => (false, word.as_str()),
                };
                let value = value.unwrap_or_default();
                let bad = || ExpandErrorKind::BadPattern {
                    pattern: pat.to_string(),
                };
                if op == '#' {
                    pattern::trim_prefix(pat, &value, greedy).ok_or_else(bad)
                } else {
                    pattern::trim_suffix(pat, &value, greedy).ok_or_else(bad)
                }
            }
        }
    }

    /// `${name/pattern/replacement}` and `${name//pattern/replacement}`.
    fn replace(&mut self, name: &str) -> Step<String> {
        let all = self.peek() == Some('/');
        if all {
            self.next();
        }
        let pat = match self.until(Some('/'), true) {
            Ok((p, _)) => p,
            Err(_) if self.peek().is_none() => return Err(ExpandErrorKind::MissingBrace),
            Err(e) => return Err(e),
        };
        let replacement = match self.until(Some('}'), true) {
            Ok((r, _)) => r,
            Err(_) if self.peek().is_none() => return Err(ExpandErrorKind::MissingBrace),
            Err(e) => return Err(e),
        };
        let value = self.get(name);
        if value.is_none() && self.lexer.skip_unset {
            let op = if all { "//" } else { "/" };
            return Ok(format!("${{{name}{op}{pat}/{replacement}}}"));
        }
        pattern::replace(&pat, &value.unwrap_or_default(), &replacement, all).ok_or(
            ExpandErrorKind::BadPattern {
                pattern: pat.clone(),
            },
        )
    }
}

#[cfg(test)]
mod tests;
