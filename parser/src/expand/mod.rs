//! Word expansion as BuildKit's Dockerfile frontend does it (its `shell`
//! lexer): quotes, escapes, `$V`, `${V}`, `${V:-w}`, `${V-w}`, `${V:+w}`,
//! `${V+w}`, `${V:?msg}`, `${V?msg}`, the pattern forms `${V#p}`, `${V##p}`,
//! `${V%p}`, `${V%%p}`, `${V/p/r}`, `${V//p/r}`, and word splitting for the
//! instructions that split.
//!
//! [`Lexer`] expands against any [`Vars`]; [`Scope`] is the per-stage
//! environment the solver keeps (global ARGs, build args, platform ARGs,
//! ARG and ENV instructions) and records which ARGs an expansion used.

mod lexer;
mod pattern;
mod platform;
mod scope;

pub use lexer::Lexer;
pub use platform::{Platform, PlatformArgs, PlatformError};
pub use scope::{BuildArgs, PREDEFINED_ARGS, Scope};

use std::collections::{BTreeMap, BTreeSet, HashMap};

/// The result of an expansion and what it read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Expanded<T> {
    /// The expanded word (or words).
    pub value: T,
    /// Names of the ARGs (not ENV variables) the expansion read: the solver
    /// keys an instruction's cache on exactly these.
    pub used_args: BTreeSet<String>,
    /// Names the word referred to that were not set (for "undefined
    /// variable" warnings).
    pub unset: BTreeSet<String>,
}

/// A variable found by a lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Var<'a> {
    /// Its value.
    pub value: &'a str,
    /// Whether it comes from an ARG (build argument, ARG default, platform
    /// ARG) rather than from ENV.
    pub from_arg: bool,
}

/// Variables an expansion can read.
pub trait Vars {
    /// The variable `name`, or `None` when it is not set.
    fn var(&self, name: &str) -> Option<Var<'_>>;
}

/// No variables at all.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoVars;

impl Vars for NoVars {
    fn var(&self, _name: &str) -> Option<Var<'_>> {
        None
    }
}

fn env_var(value: &str) -> Var<'_> {
    Var {
        value,
        from_arg: false,
    }
}

impl Vars for HashMap<String, String> {
    fn var(&self, name: &str) -> Option<Var<'_>> {
        self.get(name).map(|v| env_var(v))
    }
}

impl Vars for BTreeMap<String, String> {
    fn var(&self, name: &str) -> Option<Var<'_>> {
        self.get(name).map(|v| env_var(v))
    }
}

/// A list of `(name, value)` pairs; a later pair wins over an earlier one.
impl Vars for [(String, String)] {
    fn var(&self, name: &str) -> Option<Var<'_>> {
        self.iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| env_var(v))
    }
}

impl Vars for Vec<(String, String)> {
    fn var(&self, name: &str) -> Option<Var<'_>> {
        self.as_slice().var(name)
    }
}
