//! kiln-parser: the Dockerfile front end.
//!
//! Owns, in BuildKit's four steps: parser directives, the pest grammar and the
//! syntax tree with source spans, typed instructions grouped into stages, and
//! word expansion with ARG/ENV scoping (expansion happens late, per stage
//! environment, never in the grammar). Also owns `.dockerignore` matching and
//! the diagnostics every front-end error carries (file, line, column).
//!
//! It depends on nothing else of kiln and does no file I/O: every entry point
//! takes `&str`.
//!
//! # Overview
//!
//! - [`Dockerfile::parse`] turns text into directives, global ARGs and
//!   [`Stage`]s of typed [`Instruction`]s whose words are still raw.
//! - [`SyntaxTree::parse`] stops at the untyped layer (what `kiln debug
//!   parse` dumps).
//! - [`Dockerfile::global_scope`] builds the [`Scope`] FROM lines expand in;
//!   [`Scope::stage`] starts a stage's scope, [`Scope::apply`] follows ARG and
//!   ENV, and [`Scope::expand`] / [`Scope::expand_words`] expand words,
//!   recording the ARGs they used.
//! - [`DockerIgnore`] matches context paths against `.dockerignore`.
//! - Every error is an [`Error`] with a [`Span`].

mod directives;
mod dockerignore;
mod error;
mod expand;
mod span;
mod syntax;
mod typed;

pub use dockerignore::{DockerIgnore, DockerIgnoreError, ignore_file_candidates, pick_ignore_file};
pub use error::{Error, ErrorKind, ExpandError, ExpandErrorKind, MountError};
pub use expand::{
    BuildArgs, Expanded, Lexer, NoVars, PREDEFINED_ARGS, Platform, PlatformArgs, PlatformError,
    Scope, Var, Vars,
};
pub use span::Span;
pub use syntax::{
    Args, Directives, Flag, Heredoc, Keyword, Node, Pair, SyntaxTree, Warning, WarningKind,
};
pub use typed::{
    Add, ArgDecl, BindMount, CacheMount, CacheSharing, CommandLine, Copy, CopySpec, Dockerfile,
    ExposedPort, Healthcheck, HealthcheckCommand, Instruction, KeyValue, Mount, MountSpec,
    NetworkMode, Onbuild, Protocol, Run, SecretMount, SecurityMode, Source, SshMount, Stage, Step,
    TmpfsMount,
};
