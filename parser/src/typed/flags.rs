//! Instruction flags as BuildKit's `BFlags` checks them: each instruction
//! declares the flags it takes; unknown flags, repeats of single flags,
//! missing values and non-boolean values of boolean flags are errors.

use crate::error::{Error, ErrorKind, closest};
use crate::span::Span;
use crate::syntax::{Flag, Keyword};

/// How a flag takes values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FlagKind {
    /// `--link` or `--link=true|false`.
    Bool,
    /// `--from=x`, at most once.
    Str,
    /// `--mount=x`, repeatable.
    Strs,
}

/// The values of an instruction's flags after checking.
#[derive(Debug, Default)]
pub(crate) struct FlagValues {
    values: Vec<(&'static str, String, Span)>,
}

impl FlagValues {
    /// Checks `flags` against the declared `specs`.
    pub(crate) fn parse(
        keyword: Keyword,
        flags: &[Flag],
        specs: &[(&'static str, FlagKind)],
    ) -> Result<FlagValues, Error> {
        let mut out = FlagValues::default();
        for flag in flags {
            let name = flag.name();
            let Some(&(spec_name, kind)) = specs.iter().find(|(n, _)| *n == name) else {
                let suggestion = closest(name, specs.iter().map(|(n, _)| *n));
                return Err(Error::new(
                    flag.span,
                    ErrorKind::UnknownFlag {
                        instruction: keyword.as_str(),
                        flag: name.to_string(),
                        suggestion,
                    },
                ));
            };
            if kind != FlagKind::Strs && out.values.iter().any(|(n, _, _)| *n == spec_name) {
                return Err(Error::new(
                    flag.span,
                    ErrorKind::DuplicateFlag {
                        flag: name.to_string(),
                    },
                ));
            }
            let value = flag.value();
            let value = match kind {
                FlagKind::Bool => match value.map(str::to_ascii_lowercase).as_deref() {
                    None | Some("true") => "true".to_string(),
                    Some("false") => "false".to_string(),
                    Some("") => {
                        return Err(Error::new(
                            flag.span,
                            ErrorKind::FlagNeedsValue {
                                flag: name.to_string(),
                            },
                        ));
                    }
                    Some(other) => {
                        return Err(Error::new(
                            flag.span,
                            ErrorKind::BadFlagValue {
                                flag: name.to_string(),
                                value: other.to_string(),
                                reason: "expecting a boolean (true or false)",
                            },
                        ));
                    }
                },
                FlagKind::Str | FlagKind::Strs => match value {
                    Some(v) => v.to_string(),
                    None => {
                        return Err(Error::new(
                            flag.span,
                            ErrorKind::FlagNeedsValue {
                                flag: name.to_string(),
                            },
                        ));
                    }
                },
            };
            out.values.push((spec_name, value, flag.span));
        }
        Ok(out)
    }

    /// The value of a single flag and where it is written.
    pub(crate) fn get(&self, name: &str) -> Option<(&str, Span)> {
        self.values
            .iter()
            .find(|(n, _, _)| *n == name)
            .map(|(_, v, s)| (v.as_str(), *s))
    }

    /// The value of a single string flag.
    pub(crate) fn string(&self, name: &str) -> Option<String> {
        self.get(name).map(|(v, _)| v.to_string())
    }

    /// A boolean flag: `None` when not given.
    pub(crate) fn opt_bool(&self, name: &str) -> Option<bool> {
        self.get(name).map(|(v, _)| v == "true")
    }

    /// A boolean flag, `false` when not given.
    pub(crate) fn bool(&self, name: &str) -> bool {
        self.opt_bool(name).unwrap_or(false)
    }

    /// Every value of a repeatable flag, in order, with its position.
    pub(crate) fn all(&self, name: &str) -> impl Iterator<Item = (&str, Span)> {
        self.values
            .iter()
            .filter(move |(n, _, _)| *n == name)
            .map(|(_, v, s)| (v.as_str(), *s))
    }
}
