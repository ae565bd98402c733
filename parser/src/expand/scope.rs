//! ARG/ENV scoping: the environment words are expanded in, per stage, as
//! BuildKit keeps it.
//!
//! - The global scope holds the automatic platform ARGs and the ARGs declared
//!   before the first FROM. Only FROM lines are expanded in it.
//! - A stage starts with its base's environment (the image config's ENV, or
//!   the parent stage's scope when FROM names a stage) and no ARGs; a global
//!   ARG is visible inside only when re-declared (`ARG NAME` takes the
//!   global value).
//! - An ARG's value is the `--build-arg` value, else its default (expanded
//!   where it is declared), else the global value.
//! - ENV applies from the next instruction on; all pairs of one ENV see the
//!   values from before it. ENV wins over an ARG of the same name.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::{Expanded, Lexer, PlatformArgs, Var, Vars};
use crate::error::ExpandError;
use crate::typed::{ArgDecl, Instruction, KeyValue};

/// `--build-arg` values by name.
pub type BuildArgs = BTreeMap<String, String>;

/// Build arguments every Dockerfile may use without declaring them (they
/// reach RUN's environment but not the image, and BuildKit leaves them out
/// of cache keys).
pub const PREDEFINED_ARGS: [&str; 10] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// The variables words are expanded in at one point of a Dockerfile.
///
/// Cloning is cheap enough to keep one per instruction; `FROM <stage>`
/// starts from a clone of that stage's final scope.
///
/// # Examples
///
/// ```
/// use kiln_parser::{BuildArgs, Dockerfile, PlatformArgs};
///
/// let df = Dockerfile::parse(
///     "ARG V=1\nFROM busybox\nARG V\nENV P=/v$V\nRUN echo $P\n",
/// )
/// .unwrap();
/// let global = df.global_scope(&BuildArgs::new(), &PlatformArgs::host()).unwrap();
/// let mut scope = global.stage(Vec::new());
/// for step in &df.stages[0].instructions {
///     scope.apply(&step.instruction).unwrap();
/// }
/// assert_eq!(scope.expand("$P").unwrap().value, "/v1");
/// assert!(scope.expand("$V").unwrap().used_args.contains("V"));
/// assert!(scope.expand("$P").unwrap().used_args.is_empty());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    escape: char,
    /// ENV variables in image-config order.
    env: Vec<(String, String)>,
    /// Declared ARGs in declaration order; `None`: declared without a value.
    args: Vec<(String, Option<String>)>,
    /// The global ARG values a stage's `ARG NAME` falls back to (for the
    /// global scope: the platform ARGs).
    globals: Arc<Vec<(String, Option<String>)>>,
    build_args: Arc<BuildArgs>,
}

impl Scope {
    /// The global scope before any ARG: just the platform ARGs.
    pub fn global(escape: char, build_args: BuildArgs, platform: &PlatformArgs) -> Scope {
        let args: Vec<(String, Option<String>)> = platform
            .vars()
            .into_iter()
            .map(|(k, v)| (k, Some(v)))
            .collect();
        Scope {
            escape,
            env: Vec::new(),
            globals: Arc::new(args.clone()),
            args,
            build_args: Arc::new(build_args),
        }
    }

    /// A new stage's scope, started from this global scope: `base_env` is
    /// the base image's ENV (`KEY=VALUE` split into pairs); no ARG is
    /// visible until declared. For `FROM <stage>`, clone that stage's scope
    /// instead.
    pub fn stage(&self, base_env: Vec<(String, String)>) -> Scope {
        Scope {
            escape: self.escape,
            env: base_env,
            args: Vec::new(),
            globals: Arc::new(self.args.clone()),
            build_args: self.build_args.clone(),
        }
    }

    /// The escape character words are expanded with.
    pub fn escape(&self) -> char {
        self.escape
    }

    /// The `--build-arg` values (declared or not).
    pub fn build_args(&self) -> &BuildArgs {
        &self.build_args
    }

    /// The ENV variables, in image-config order.
    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }

    /// The ARGs in scope that have a value, in declaration order (shadowed
    /// ones included: see [`Scope::run_env`]).
    pub fn args(&self) -> impl Iterator<Item = (&str, &str)> {
        self.args
            .iter()
            .filter_map(|(k, v)| v.as_deref().map(|v| (k.as_str(), v)))
    }

    /// The environment of a RUN step: every ENV variable, then every ARG with
    /// a value that no ENV variable shadows.
    pub fn run_env(&self) -> Vec<(String, String)> {
        let mut out = self.env.clone();
        for (k, v) in self.args() {
            if !self.env.iter().any(|(e, _)| e == k) {
                out.push((k.to_string(), v.to_string()));
            }
        }
        out
    }

    fn lexer(&self) -> Lexer {
        Lexer::new(self.escape)
    }

    /// Expands one word (FROM, COPY paths, WORKDIR, USER, ENV, LABEL, ...).
    pub fn expand(&self, word: &str) -> Result<Expanded<String>, ExpandError> {
        self.lexer().expand(word, self)
    }

    /// Expands one word and splits the result into words (EXPOSE).
    pub fn expand_words(&self, word: &str) -> Result<Expanded<Vec<String>>, ExpandError> {
        self.lexer().expand_words(word, self)
    }

    /// Expands a heredoc body the way BuildKit expands COPY/ADD heredocs
    /// that are not quoted: `$` substitutions and `\` escapes, quotes kept.
    pub fn expand_heredoc(&self, body: &str) -> Result<Expanded<String>, ExpandError> {
        Lexer::heredoc().expand(body, self)
    }

    /// Declares ARGs in order (each default is expanded with the ARGs
    /// declared before it). Returns the ARGs the defaults read.
    pub fn declare_args(&mut self, decls: &[ArgDecl]) -> Result<BTreeSet<String>, ExpandError> {
        let mut used = BTreeSet::new();
        for decl in decls {
            let name = self.expand(&decl.name)?;
            used.extend(name.used_args);
            let name = name.value;
            let value = if let Some(v) = self.build_args.get(&name) {
                Some(v.clone())
            } else if let Some(default) = &decl.default {
                let v = self.expand(default)?;
                used.extend(v.used_args);
                Some(v.value)
            } else {
                self.globals
                    .iter()
                    .rev()
                    .find(|(k, _)| *k == name)
                    .and_then(|(_, v)| v.clone())
            };
            self.args.retain(|(k, _)| *k != name);
            self.args.push((name, value));
        }
        Ok(used)
    }

    /// Applies one ENV instruction: every key and value is expanded against
    /// the scope from before the instruction, then all are set. Returns the
    /// ARGs read.
    pub fn apply_env(&mut self, pairs: &[KeyValue]) -> Result<BTreeSet<String>, ExpandError> {
        let mut used = BTreeSet::new();
        let mut set = Vec::with_capacity(pairs.len());
        for pair in pairs {
            let k = self.expand(&pair.key)?;
            let v = self.expand(&pair.value)?;
            used.extend(k.used_args);
            used.extend(v.used_args);
            set.push((k.value, v.value));
        }
        for (k, v) in set {
            self.set_env(k, v);
        }
        Ok(used)
    }

    /// Sets one ENV variable to `value` as is (no expansion), in place if it
    /// exists, else at the end: for values that come from an image config
    /// rather than from a Dockerfile (e.g. a default `PATH`).
    pub fn set_env(&mut self, key: impl Into<String>, value: impl Into<String>) {
        let (key, value) = (key.into(), value.into());
        match self.env.iter_mut().find(|(e, _)| *e == key) {
            Some(slot) => slot.1 = value,
            None => self.env.push((key, value)),
        }
    }

    /// Applies an instruction's effect on the scope (ARG and ENV; the others
    /// leave it as is). Returns the ARGs read.
    pub fn apply(&mut self, instruction: &Instruction) -> Result<BTreeSet<String>, ExpandError> {
        match instruction {
            Instruction::Arg(decls) => self.declare_args(decls),
            Instruction::Env(pairs) => self.apply_env(pairs),
            _ => Ok(BTreeSet::new()),
        }
    }
}

impl Vars for Scope {
    /// ENV first, then the declared ARGs that have a value.
    fn var(&self, name: &str) -> Option<Var<'_>> {
        if let Some((_, v)) = self.env.iter().find(|(k, _)| k == name) {
            return Some(Var {
                value: v,
                from_arg: false,
            });
        }
        self.args
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.as_deref())
            .map(|value| Var {
                value,
                from_arg: true,
            })
    }
}

#[cfg(test)]
mod tests;
