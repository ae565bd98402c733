//! The typed layer: instructions with typed fields, grouped into stages.
//!
//! Built from the syntax tree ([`crate::SyntaxTree`]) by [`Dockerfile::parse`]
//! (or [`Dockerfile::from_syntax`]), with BuildKit's validation: unknown or
//! repeated flags, missing or extra arguments, bad durations, several COPY
//! sources to a destination without a trailing `/`, ONBUILD triggers that
//! are not allowed, instructions before the first FROM, bad stage names.
//!
//! Words are kept **raw** (quotes, `$VAR` and escapes as written): expansion
//! happens late, per stage environment, through [`crate::Scope`]. Each field's
//! doc says whether BuildKit expands it (and so whether the solver should).

mod convert;
mod copy;
mod flags;
mod healthcheck;
mod mount;
mod run;

pub use copy::{Add, Copy, CopySpec, Source};
pub use healthcheck::{Healthcheck, HealthcheckCommand};
pub use mount::{
    BindMount, CacheMount, CacheSharing, Mount, MountSpec, SecretMount, SshMount, TmpfsMount,
};
pub use run::{NetworkMode, Run, SecurityMode};

use crate::error::Error;
use crate::expand::{BuildArgs, PlatformArgs, Scope};
use crate::span::Span;
use crate::syntax::{Directives, Keyword, SyntaxTree, Warning};

/// A whole Dockerfile, typed: its directives, the global ARGs (those before
/// the first FROM) and its stages in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    /// Parser directives from the top of the file (`syntax`, `escape`,
    /// `check`).
    pub directives: Directives,
    /// ARG declarations before the first FROM, in order. They are visible to
    /// FROM lines; inside a stage only when re-declared there (see
    /// [`Scope::declare_args`]).
    pub global_args: Vec<ArgDecl>,
    /// The build stages, in file order (never empty).
    pub stages: Vec<Stage>,
    /// Things that parse but deserve a word to the user (e.g. JSON that is
    /// not a string array, falling back to shell form).
    pub warnings: Vec<Warning>,
}

impl Dockerfile {
    /// Parses a Dockerfile: directives, syntax tree, typed stages.
    ///
    /// # Examples
    ///
    /// ```
    /// use kiln_parser::{Dockerfile, Instruction};
    ///
    /// let df = Dockerfile::parse("ARG V=1\nFROM busybox:${V} AS base\nRUN echo hi\n").unwrap();
    /// assert_eq!(df.global_args[0].name, "V");
    /// assert_eq!(df.stages[0].base, "busybox:${V}");
    /// assert_eq!(df.stages[0].name.as_deref(), Some("base"));
    /// assert!(matches!(df.stages[0].instructions[0].instruction, Instruction::Run(_)));
    /// ```
    pub fn parse(src: &str) -> Result<Dockerfile, Error> {
        let tree = SyntaxTree::parse(src)?;
        Dockerfile::from_syntax(tree)
    }

    /// Types an already parsed syntax tree.
    pub fn from_syntax(tree: SyntaxTree) -> Result<Dockerfile, Error> {
        convert::dockerfile(tree)
    }

    /// The escape character of this Dockerfile (`\` unless `# escape=`` ` ``).
    pub fn escape(&self) -> char {
        self.directives.escape
    }

    /// The index of the stage a `FROM`, `COPY --from` or `--target` refers to
    /// by name (case-insensitive) or, failing that, by number. `None` when
    /// `reference` names no stage (it is then an image reference).
    pub fn stage_index(&self, reference: &str) -> Option<usize> {
        let lower = reference.to_ascii_lowercase();
        if let Some(i) = self
            .stages
            .iter()
            .position(|s| s.name.as_deref() == Some(lower.as_str()))
        {
            return Some(i);
        }
        reference
            .parse::<usize>()
            .ok()
            .filter(|&i| i < self.stages.len())
    }

    /// The global scope: the automatic platform ARGs, then the global ARG
    /// declarations in order, each taking its value from `build_args`, else
    /// from its default expanded in the scope so far. FROM lines
    /// ([`Stage::base`], [`Stage::platform`]) are expanded in this scope;
    /// stage scopes start from it ([`Scope::stage`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use kiln_parser::{BuildArgs, Dockerfile, PlatformArgs};
    ///
    /// let df = Dockerfile::parse("ARG TAG=1.36\nFROM busybox:${TAG}\n").unwrap();
    /// let mut args = BuildArgs::new();
    /// args.insert("TAG".into(), "latest".into());
    /// let global = df.global_scope(&args, &PlatformArgs::host()).unwrap();
    /// let base = global.expand(&df.stages[0].base).unwrap();
    /// assert_eq!(base.value, "busybox:latest");
    /// assert!(base.used_args.contains("TAG"));
    /// ```
    pub fn global_scope(
        &self,
        build_args: &BuildArgs,
        platform: &PlatformArgs,
    ) -> Result<Scope, Error> {
        let mut scope = Scope::global(self.escape(), build_args.clone(), platform);
        for decl in &self.global_args {
            scope
                .declare_args(std::slice::from_ref(decl))
                .map_err(|e| Error::expand(decl.span, e))?;
        }
        Ok(scope)
    }
}

/// One build stage: a FROM line and the instructions up to the next FROM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// Position of the stage in the file (0-based); `COPY --from=0` refers to
    /// it.
    pub index: usize,
    /// The `AS name`, lower-cased (stage names are case-insensitive).
    pub name: Option<String>,
    /// The base: an image reference or the name of an earlier stage, raw.
    /// Expanded in the global scope ([`Dockerfile::global_scope`]), then
    /// compared with stage names ([`Dockerfile::stage_index`]).
    pub base: String,
    /// `--platform=` of the FROM line, raw; expanded in the global scope.
    pub platform: Option<String>,
    /// The FROM line.
    pub span: Span,
    /// The FROM line as written (continuations joined).
    pub original: String,
    /// The stage's instructions, in order.
    pub instructions: Vec<Step>,
}

/// One instruction of a stage with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Where the instruction is (its first line to its last, heredoc bodies
    /// included).
    pub span: Span,
    /// The instruction line as written, continuations joined, without
    /// heredoc bodies (for history `created_by` and progress output).
    pub original: String,
    /// The typed instruction.
    pub instruction: Instruction,
}

/// A Dockerfile instruction with typed fields. FROM is not a variant: it
/// starts a [`Stage`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instruction {
    /// `RUN`.
    Run(Run),
    /// `CMD`: not expanded.
    Cmd(CommandLine),
    /// `ENTRYPOINT`: not expanded. `ENTRYPOINT` with nothing after it is
    /// `Exec(vec![])` (it resets the entrypoint).
    Entrypoint(CommandLine),
    /// `SHELL ["exe", "arg"...]` (JSON form only): not expanded.
    Shell(Vec<String>),
    /// `ENV k=v ...` / `ENV k v`: keys and values are expanded, all against
    /// the environment from before the instruction ([`Scope::apply_env`]).
    Env(Vec<KeyValue>),
    /// `ARG name[=default] ...` ([`Scope::declare_args`]).
    Arg(Vec<ArgDecl>),
    /// `LABEL k=v ...`: keys and values expanded.
    Label(Vec<KeyValue>),
    /// `MAINTAINER text`: not expanded.
    Maintainer(String),
    /// `EXPOSE 80 443/tcp 8000-8010/udp`: each word expanded with word
    /// splitting ([`Scope::expand_words`]), then parsed with
    /// [`ExposedPort::parse`].
    Expose(Vec<String>),
    /// `VOLUME /a /b` or `VOLUME ["/a"]`: each path expanded.
    Volume(Vec<String>),
    /// `USER user[:group]`: expanded.
    User(String),
    /// `WORKDIR path`: expanded.
    Workdir(String),
    /// `COPY`.
    Copy(Copy),
    /// `ADD`.
    Add(Add),
    /// `ONBUILD trigger`.
    Onbuild(Onbuild),
    /// `STOPSIGNAL signal`: expanded.
    StopSignal(String),
    /// `HEALTHCHECK`.
    Healthcheck(Healthcheck),
}

impl Instruction {
    /// The instruction's keyword.
    pub fn keyword(&self) -> Keyword {
        match self {
            Instruction::Run(_) => Keyword::Run,
            Instruction::Cmd(_) => Keyword::Cmd,
            Instruction::Entrypoint(_) => Keyword::Entrypoint,
            Instruction::Shell(_) => Keyword::Shell,
            Instruction::Env(_) => Keyword::Env,
            Instruction::Arg(_) => Keyword::Arg,
            Instruction::Label(_) => Keyword::Label,
            Instruction::Maintainer(_) => Keyword::Maintainer,
            Instruction::Expose(_) => Keyword::Expose,
            Instruction::Volume(_) => Keyword::Volume,
            Instruction::User(_) => Keyword::User,
            Instruction::Workdir(_) => Keyword::Workdir,
            Instruction::Copy(_) => Keyword::Copy,
            Instruction::Add(_) => Keyword::Add,
            Instruction::Onbuild(_) => Keyword::Onbuild,
            Instruction::StopSignal(_) => Keyword::StopSignal,
            Instruction::Healthcheck(_) => Keyword::Healthcheck,
        }
    }
}

/// A command in shell form (`RUN make`, run as `SHELL + [text]`) or exec
/// form (`RUN ["make"]`, run as is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandLine {
    /// The rest of the line, continuations joined; the shell expands it at
    /// run time.
    Shell(String),
    /// The JSON string array.
    Exec(Vec<String>),
}

/// One `key=value` of ENV or LABEL, raw (quotes and escapes as written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// The key as written.
    pub key: String,
    /// The value as written.
    pub value: String,
}

/// One ARG declaration: `NAME` or `NAME=default`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDecl {
    /// The name as written.
    pub name: String,
    /// The default as written (raw; `ARG A=` is `Some("")`), `None` when
    /// there is no `=`.
    pub default: Option<String>,
    /// The ARG instruction this declaration is part of.
    pub span: Span,
}

/// `ONBUILD trigger`: stored in the image config for images built FROM this
/// one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Onbuild {
    /// The trigger as BuildKit records it in the image config: the text
    /// after `ONBUILD`, with heredoc bodies appended.
    pub expression: String,
    /// The trigger, parsed and checked (never FROM, MAINTAINER or ONBUILD).
    pub instruction: Box<Instruction>,
}

/// A port of EXPOSE after expansion: `80`, `80/udp`, `8000-8010/tcp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExposedPort {
    /// First port of the range.
    pub start: u16,
    /// Last port of the range (`start` for a single port).
    pub end: u16,
    /// Transport protocol.
    pub protocol: Protocol,
}

/// Transport protocol of an exposed port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// `tcp` (the default).
    Tcp,
    /// `udp`.
    Udp,
    /// `sctp`.
    Sctp,
}

impl Protocol {
    /// `tcp`, `udp` or `sctp`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

impl ExposedPort {
    /// Parses one expanded EXPOSE word (`80`, `80/udp`, `8000-8010`). `None`
    /// when it is not a port specification.
    pub fn parse(word: &str) -> Option<ExposedPort> {
        let (ports, proto) = match word.split_once('/') {
            Some((p, proto)) => (p, proto),
            None => (word, "tcp"),
        };
        let protocol = match proto.to_ascii_lowercase().as_str() {
            "tcp" => Protocol::Tcp,
            "udp" => Protocol::Udp,
            "sctp" => Protocol::Sctp,
            _ => return None,
        };
        let (start, end) = match ports.split_once('-') {
            Some((a, b)) => (a.parse().ok()?, b.parse().ok()?),
            None => {
                let p = ports.parse().ok()?;
                (p, p)
            }
        };
        if start > end {
            return None;
        }
        Some(ExposedPort {
            start,
            end,
            protocol,
        })
    }
}

impl std::fmt::Display for ExposedPort {
    /// `80/tcp` or `8000-8010/udp` (the image config's key form for a single
    /// port is `80/tcp`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.start == self.end {
            write!(f, "{}/{}", self.start, self.protocol.as_str())
        } else {
            write!(f, "{}-{}/{}", self.start, self.end, self.protocol.as_str())
        }
    }
}

#[cfg(test)]
mod tests;
