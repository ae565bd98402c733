//! The syntax tree: BuildKit's untyped layer. One [`Node`] per instruction
//! with its keyword, flags, arguments (shaped the way BuildKit's line parsers
//! shape them), heredoc bodies and source span. `kiln debug parse` prints it
//! in BuildKit's dump format ([`SyntaxTree::dump`]).

mod args;
mod dump;
mod heredoc;
mod lines;

pub use heredoc::Heredoc;

use crate::error::Error;
use crate::span::Span;

/// The name of the heredoc a word marks (`<<EOF`, `<<-"EOF"`), if it is a
/// heredoc marker.
pub(crate) fn heredoc_marker(word: &str) -> Option<String> {
    heredoc::parse_marker(word).map(|m| m.name)
}

/// The pest parser generated from `grammar.pest`.
#[derive(pest_derive::Parser)]
#[grammar = "grammar.pest"]
pub(crate) struct Grammar;

/// A parsed Dockerfile before typing: directives, instruction nodes in file
/// order, and warnings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxTree {
    /// Parser directives from the top of the file.
    pub directives: Directives,
    /// One node per instruction, in file order (never empty).
    pub nodes: Vec<Node>,
    /// Things that parse but deserve a word to the user.
    pub warnings: Vec<Warning>,
}

impl SyntaxTree {
    /// Parses Dockerfile text into its syntax tree. Fails on malformed
    /// directives, unknown instructions, `ENV`/`LABEL` without values,
    /// unterminated heredocs and files with no instruction.
    pub fn parse(src: &str) -> Result<SyntaxTree, Error> {
        lines::parse(src)
    }

    /// The tree in BuildKit's dump format: one line per instruction, e.g.
    /// `(copy ["--from=x"] "a" "/b/")`.
    pub fn dump(&self) -> String {
        let mut out = String::new();
        for node in &self.nodes {
            out.push('(');
            dump::node(node, &mut out);
            out.push_str(")\n");
        }
        out
    }
}

/// The parser directives at the top of a Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directives {
    /// `# syntax=` (a frontend image reference; kiln records it and parses
    /// the file itself).
    pub syntax: Option<String>,
    /// `# escape=`: `\` (default) or `` ` ``.
    pub escape: char,
    /// `# check=` (lint configuration), raw.
    pub check: Option<String>,
}

impl Default for Directives {
    fn default() -> Directives {
        Directives {
            syntax: None,
            escape: '\\',
            check: None,
        }
    }
}

/// A Dockerfile instruction keyword.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Keyword {
    From,
    Run,
    Cmd,
    Label,
    Maintainer,
    Expose,
    Env,
    Add,
    Copy,
    Entrypoint,
    Volume,
    User,
    Workdir,
    Arg,
    Onbuild,
    StopSignal,
    Healthcheck,
    Shell,
}

impl Keyword {
    /// Every keyword.
    pub const ALL: [Keyword; 18] = [
        Keyword::From,
        Keyword::Run,
        Keyword::Cmd,
        Keyword::Label,
        Keyword::Maintainer,
        Keyword::Expose,
        Keyword::Env,
        Keyword::Add,
        Keyword::Copy,
        Keyword::Entrypoint,
        Keyword::Volume,
        Keyword::User,
        Keyword::Workdir,
        Keyword::Arg,
        Keyword::Onbuild,
        Keyword::StopSignal,
        Keyword::Healthcheck,
        Keyword::Shell,
    ];

    /// The keyword in upper case (`RUN`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Keyword::From => "FROM",
            Keyword::Run => "RUN",
            Keyword::Cmd => "CMD",
            Keyword::Label => "LABEL",
            Keyword::Maintainer => "MAINTAINER",
            Keyword::Expose => "EXPOSE",
            Keyword::Env => "ENV",
            Keyword::Add => "ADD",
            Keyword::Copy => "COPY",
            Keyword::Entrypoint => "ENTRYPOINT",
            Keyword::Volume => "VOLUME",
            Keyword::User => "USER",
            Keyword::Workdir => "WORKDIR",
            Keyword::Arg => "ARG",
            Keyword::Onbuild => "ONBUILD",
            Keyword::StopSignal => "STOPSIGNAL",
            Keyword::Healthcheck => "HEALTHCHECK",
            Keyword::Shell => "SHELL",
        }
    }

    /// The keyword for a word, case-insensitively.
    pub fn parse(word: &str) -> Option<Keyword> {
        Keyword::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(word))
    }

    /// Whether lines of this instruction may carry heredocs.
    pub fn takes_heredocs(&self) -> bool {
        matches!(self, Keyword::Run | Keyword::Copy | Keyword::Add)
    }
}

impl std::fmt::Display for Keyword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One instruction of the syntax tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The instruction.
    pub keyword: Keyword,
    /// The `--flags` before the arguments, in order.
    pub flags: Vec<Flag>,
    /// The arguments, shaped by the instruction's line parser.
    pub args: Args,
    /// Heredoc bodies, in the order of their markers on the line.
    pub heredocs: Vec<Heredoc>,
    /// The logical line as written (continuations joined, no heredoc
    /// bodies).
    pub original: String,
    /// From the keyword to the end of the instruction's last line (heredoc
    /// bodies included).
    pub span: Span,
}

/// One `--flag[=value]` of an instruction, quotes and escapes removed as
/// BuildKit does (`--mount="type=cache,target=/x"` holds
/// `--mount=type=cache,target=/x`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flag {
    /// The flag as BuildKit sees it, starting with `--`.
    pub text: String,
    /// Where the flag is written.
    pub span: Span,
}

impl Flag {
    /// The name between `--` and `=`.
    pub fn name(&self) -> &str {
        let body = self.text.strip_prefix("--").unwrap_or(&self.text);
        body.split_once('=').map_or(body, |(n, _)| n)
    }

    /// The value after the first `=`, if there is one.
    pub fn value(&self) -> Option<&str> {
        let body = self.text.strip_prefix("--").unwrap_or(&self.text);
        body.split_once('=').map(|(_, v)| v)
    }
}

/// The arguments of an instruction, in the shape BuildKit's line parser for
/// that instruction gives them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Args {
    /// Nothing after the keyword (and flags).
    Empty,
    /// Whitespace- or quote-aware words (FROM, EXPOSE, ARG, ADD/COPY/VOLUME
    /// in non-JSON form), raw.
    Words(Vec<String>),
    /// A JSON string array (exec form).
    Json(Vec<String>),
    /// The rest of the line as one string (shell form; MAINTAINER, USER,
    /// WORKDIR, STOPSIGNAL).
    Text(String),
    /// `ENV`/`LABEL` pairs, raw.
    Pairs(Vec<Pair>),
    /// `ONBUILD`: the trigger instruction.
    Trigger(Box<Node>),
    /// `HEALTHCHECK`: its type word (`CMD`/`NONE` as written) and the command.
    Health { kind: String, command: Box<Args> },
}

/// One `ENV`/`LABEL` pair, raw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    /// The key as written.
    pub key: String,
    /// The value as written.
    pub value: String,
    /// `true` for `key=value`, `false` for the old `KEY value` form.
    pub equals: bool,
}

/// Something that parses but deserves a word to the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// Where.
    pub span: Span,
    /// What.
    pub kind: WarningKind,
}

/// What a [`Warning`] is about.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WarningKind {
    /// Blank lines inside a continuation (a future Dockerfile syntax may
    /// refuse them).
    #[error("empty continuation line")]
    EmptyContinuationLine,
    /// A JSON array holding something other than strings: used as shell
    /// form.
    #[error("JSON array is not an array of strings: using shell form")]
    JsonNotStringArray,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.span, self.kind)
    }
}
