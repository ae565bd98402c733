//! The front end's errors. Every error of parsing and typing a Dockerfile is
//! an [`Error`]: a [`Span`] (file position) plus an [`ErrorKind`] saying what
//! is wrong, and optionally a hint. Word expansion has its own
//! [`ExpandError`], which the solver wraps with the span of the instruction it
//! was expanding ([`Error::expand`]).

use crate::span::Span;

/// A Dockerfile error at a source position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}")]
pub struct Error {
    /// Where in the Dockerfile the error is.
    pub span: Span,
    /// What is wrong.
    pub kind: ErrorKind,
}

impl Error {
    /// An error of `kind` at `span`.
    pub fn new(span: Span, kind: ErrorKind) -> Error {
        Error { span, kind }
    }

    /// A word-expansion error at `span` (the instruction or word the solver
    /// was expanding).
    pub fn expand(span: Span, err: ExpandError) -> Error {
        Error::new(span, ErrorKind::Expand(err))
    }

    /// A short hint for the user, when there is one worth giving (a likely
    /// misspelling, the accepted values, the expected form).
    pub fn help(&self) -> Option<String> {
        self.kind.help()
    }
}

/// The candidate closest to a misspelt `word` (at most two edits away),
/// for "did you mean" hints.
pub(crate) fn closest<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::levenshtein(word, c), c))
        .filter(|&(d, c)| d <= 2 && d < c.len())
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

/// What is wrong with a Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The file has no instruction (empty, or only comments).
    #[error("file with no instructions")]
    NoInstructions,
    /// A parser directive (`# escape=`, `# syntax=`, `# check=`) appears twice.
    #[error("only one {name} parser directive can be used")]
    DuplicateDirective { name: String },
    /// `# escape=` names something other than `\` or `` ` ``.
    #[error("invalid escape token {value:?} does not match ` or \\")]
    InvalidEscape { value: String },
    /// A line the grammar cannot read at all.
    #[error("cannot parse line {line:?}")]
    Malformed { line: String },
    /// The first word of a line is no Dockerfile instruction.
    #[error("unknown instruction: {name}")]
    UnknownInstruction {
        name: String,
        suggestion: Option<&'static str>,
    },
    /// A heredoc (`<<EOF`) whose terminator line never comes.
    #[error("unterminated heredoc {name:?}")]
    UnterminatedHeredoc { name: String },
    /// A heredoc where the instruction does not accept one (e.g. as a COPY
    /// destination).
    #[error("{instruction} cannot accept a heredoc as {role}")]
    MisplacedHeredoc {
        instruction: &'static str,
        role: &'static str,
    },
    /// `ENV name` / `LABEL name` with no value.
    #[error("{instruction} must have two arguments")]
    MissingValue { instruction: &'static str },
    /// A `name=value` list where one word has no `=`.
    #[error("syntax error - can't find = in {word:?}, must be of the form: name=value")]
    MissingEquals {
        instruction: &'static str,
        word: String,
    },
    /// A key of `ENV`, `LABEL` or `ARG` is empty.
    #[error("{instruction} names can not be blank")]
    BlankName { instruction: &'static str },
    /// A flag the instruction does not know.
    #[error("unknown flag: --{flag} for {instruction}")]
    UnknownFlag {
        instruction: &'static str,
        flag: String,
        suggestion: Option<&'static str>,
    },
    /// A flag given twice where only one is allowed.
    #[error("duplicate flag specified: --{flag}")]
    DuplicateFlag { flag: String },
    /// A flag that needs a value (`--from=x`) was given none.
    #[error("missing a value on flag: --{flag}")]
    FlagNeedsValue { flag: String },
    /// A flag's value is not one it accepts.
    #[error("invalid value {value:?} for --{flag}: {reason}")]
    BadFlagValue {
        flag: String,
        value: String,
        reason: &'static str,
    },
    /// Fewer arguments than the instruction needs.
    #[error("{instruction} requires {expected}")]
    MissingArguments {
        instruction: &'static str,
        expected: &'static str,
    },
    /// More arguments than the instruction takes.
    #[error("{instruction} takes {expected}")]
    ExtraArguments {
        instruction: &'static str,
        expected: &'static str,
    },
    /// The instruction needs the JSON (exec) form (e.g. `SHELL`).
    #[error("{instruction} requires the arguments to be in JSON form")]
    JsonFormRequired { instruction: &'static str },
    /// A duration flag (`HEALTHCHECK --interval=...`) that does not parse or
    /// is too short.
    #[error("invalid duration {value:?} for --{flag}: {reason}")]
    BadDuration {
        flag: &'static str,
        value: String,
        reason: &'static str,
    },
    /// `COPY a b dest` where `dest` does not end with `/`.
    #[error(
        "when using {instruction} with more than one source file, the destination must be a directory and end with a /"
    )]
    DestinationNotDirectory { instruction: &'static str },
    /// `ONBUILD ONBUILD`, `ONBUILD FROM`, `ONBUILD MAINTAINER`.
    #[error("{trigger} isn't allowed as an ONBUILD trigger")]
    BadOnbuildTrigger { trigger: String },
    /// An instruction other than `ARG` before the first `FROM`.
    #[error("{instruction} before the first FROM: no build stage in current context")]
    NoStage { instruction: &'static str },
    /// A Dockerfile with ARGs but no FROM.
    #[error("the Dockerfile has no FROM instruction")]
    NoFrom,
    /// `FROM` with the wrong shape.
    #[error("FROM requires either one or three arguments (FROM image [AS name])")]
    BadFrom,
    /// `FROM x AS name` where the name is not a valid stage name.
    #[error(
        "invalid name for build stage: {name:?}, name can't start with a number or contain symbols"
    )]
    BadStageName { name: String },
    /// Two stages with the same name.
    #[error("duplicate stage name {name:?}")]
    DuplicateStageName { name: String },
    /// `HEALTHCHECK` with a type other than `CMD` or `NONE`, or a malformed
    /// one.
    #[error("{reason}")]
    BadHealthcheck { reason: &'static str },
    /// A `RUN --mount=...` that does not parse.
    #[error("invalid --mount: {0}")]
    Mount(#[source] MountError),
    /// `EXPOSE` with a port that is not `N`, `N/proto` or `N-M[/proto]`.
    #[error("invalid port specification {value:?}")]
    BadPort { value: String },
    /// A word-expansion error (bad substitution, unterminated quote,
    /// `${V:?msg}` on an unset variable).
    #[error(transparent)]
    Expand(ExpandError),
}

impl ErrorKind {
    fn help(&self) -> Option<String> {
        match self {
            ErrorKind::UnknownInstruction {
                suggestion: Some(s),
                ..
            } => Some(format!("did you mean {s}?")),
            ErrorKind::UnknownInstruction { .. } => Some(
                "instructions are FROM, RUN, CMD, LABEL, MAINTAINER, EXPOSE, ENV, ADD, COPY, \
                 ENTRYPOINT, VOLUME, USER, WORKDIR, ARG, ONBUILD, STOPSIGNAL, HEALTHCHECK, SHELL"
                    .into(),
            ),
            ErrorKind::UnknownFlag {
                suggestion: Some(s),
                ..
            } => Some(format!("did you mean --{s}?")),
            ErrorKind::UnterminatedHeredoc { name } => {
                Some(format!("end the heredoc with a line holding only {name}"))
            }
            ErrorKind::DestinationNotDirectory { .. } => {
                Some("add a trailing / to the destination".into())
            }
            ErrorKind::MissingValue { instruction } => Some(format!(
                "write {instruction} name=value (or {instruction} name value)"
            )),
            ErrorKind::NoStage { .. } => {
                Some("a Dockerfile starts with FROM (only ARG may come before it)".into())
            }
            ErrorKind::BadFrom => Some("FROM [--platform=P] image[:tag] [AS name]".into()),
            ErrorKind::JsonFormRequired { instruction } => {
                Some(format!("e.g. {instruction} [\"/bin/sh\", \"-c\"]"))
            }
            ErrorKind::Mount(e) => e.help(),
            ErrorKind::NoInstructions => Some("a Dockerfile needs at least a FROM line".into()),
            _ => None,
        }
    }
}

/// What is wrong with a `RUN --mount=` value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MountError {
    /// The comma-separated fields do not parse (unbalanced quotes).
    #[error("bad field syntax in {value:?}")]
    Syntax { value: String },
    /// `type=` names no mount type.
    #[error("unsupported mount type {value:?}")]
    UnknownType { value: String },
    /// A key this mount type does not take.
    #[error("unexpected key {key:?} for mount type {mount_type}")]
    UnexpectedKey {
        key: String,
        mount_type: &'static str,
    },
    /// A field without `=` that needs a value.
    #[error("invalid field {field:?} must be a key=value pair")]
    NotKeyValue { field: String },
    /// A value that does not parse for its key.
    #[error("invalid value {value:?} for {key}")]
    BadValue { key: String, value: String },
    /// `from=` with a variable (stages are resolved before expansion).
    #[error("{field:?} doesn't support variable expansion, define alias stage instead")]
    FromWithVariable { field: String },
    /// A mount without `target=` where one is needed.
    #[error("mount type {mount_type} requires a target")]
    MissingTarget { mount_type: &'static str },
    /// A secret mount with neither id, source nor target.
    #[error("invalid secret mount: one of id, source or target is required")]
    SecretWithoutId,
    /// A secret mount with both `source=` and `id=` (they are aliases).
    #[error("both source and id can't be set")]
    SecretSourceAndId,
    /// A word-expansion error in a mount value.
    #[error(transparent)]
    Expand(ExpandError),
}

impl MountError {
    fn help(&self) -> Option<String> {
        match self {
            MountError::UnknownType { .. } => {
                Some("mount types are bind, cache, tmpfs, secret and ssh".into())
            }
            MountError::MissingTarget { .. } => Some("add target=/path/in/container".into()),
            _ => None,
        }
    }
}

/// A word-expansion error: the word that was being expanded and what went
/// wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("failed to process {word:?}: {kind}")]
pub struct ExpandError {
    /// The word as written.
    pub word: String,
    /// What went wrong.
    pub kind: ExpandErrorKind,
}

/// What went wrong expanding a word.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExpandErrorKind {
    /// A `${` without its `}`.
    #[error("syntax error: missing '}}'")]
    MissingBrace,
    /// `${}`, `${:...}`, `${{...}` and friends.
    #[error("syntax error: bad substitution")]
    BadSubstitution,
    /// `${V:x...}` where `x` is no known modifier.
    #[error("unsupported modifier ({modifier}) in substitution")]
    UnsupportedModifier { modifier: String },
    /// A quote that is never closed.
    #[error("unexpected end of statement while looking for matching {quote}")]
    UnterminatedQuote { quote: &'static str },
    /// `${V?msg}` / `${V:?msg}` on an unset (or empty) variable.
    #[error("{name}: {message}")]
    Required { name: String, message: String },
    /// `${...}` nested deeper than kiln follows.
    #[error("substitutions nested deeper than {limit} levels")]
    TooDeep { limit: usize },
    /// A `${V#pattern}`-style pattern that cannot be compiled.
    #[error("invalid pattern ({pattern}) in substitution")]
    BadPattern { pattern: String },
}
