//! From syntax nodes to typed instructions and stages, with BuildKit's
//! validation (BuildKit's `instructions/parse.go`).

use std::sync::LazyLock;

use regex::Regex;

use super::flags::{FlagKind, FlagValues};
use super::healthcheck::parse_duration;
use super::{
    Add, ArgDecl, CommandLine, Copy, CopySpec, Dockerfile, ExposedPort, Healthcheck,
    HealthcheckCommand, Instruction, KeyValue, MountSpec, NetworkMode, Onbuild, Run, SecurityMode,
    Source, Stage, Step,
};
use crate::error::{Error, ErrorKind};
use crate::syntax::{Args, Keyword, Node, SyntaxTree, heredoc_marker};

static STAGE_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-z][a-z0-9\-_.]*$").expect("stage name regex is valid"));

pub(super) fn dockerfile(tree: SyntaxTree) -> Result<Dockerfile, Error> {
    let mut global_args = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    let mut first_arg_span = None;
    for node in &tree.nodes {
        if node.keyword == Keyword::From {
            let stage = from(node, stages.len())?;
            if let Some(name) = &stage.name
                && stages.iter().any(|s| s.name.as_ref() == Some(name))
            {
                return Err(Error::new(
                    stage.span,
                    ErrorKind::DuplicateStageName { name: name.clone() },
                ));
            }
            stages.push(stage);
            continue;
        }
        let instruction = instruction(node)?;
        match (stages.last_mut(), instruction) {
            (Some(stage), instruction) => stage.instructions.push(Step {
                span: node.span,
                original: node.original.clone(),
                instruction,
            }),
            (None, Instruction::Arg(decls)) => {
                first_arg_span.get_or_insert(node.span);
                global_args.extend(decls);
            }
            (None, other) => {
                return Err(Error::new(
                    node.span,
                    ErrorKind::NoStage {
                        instruction: other.keyword().as_str(),
                    },
                ));
            }
        }
    }
    if stages.is_empty() {
        return Err(Error::new(
            first_arg_span.unwrap_or_default(),
            ErrorKind::NoFrom,
        ));
    }
    Ok(Dockerfile {
        directives: tree.directives,
        global_args,
        stages,
        warnings: tree.warnings,
    })
}

fn missing(node: &Node, expected: &'static str) -> Error {
    Error::new(
        node.span,
        ErrorKind::MissingArguments {
            instruction: node.keyword.as_str(),
            expected,
        },
    )
}

fn no_flags(node: &Node) -> Result<(), Error> {
    FlagValues::parse(node.keyword, &node.flags, &[]).map(|_| ())
}

fn from(node: &Node, index: usize) -> Result<Stage, Error> {
    let flags = FlagValues::parse(node.keyword, &node.flags, &[("platform", FlagKind::Str)])?;
    let words = match &node.args {
        Args::Words(w) => w.as_slice(),
        _ => &[],
    };
    let (base, name) = match words {
        [base] => (base, None),
        [base, as_, name] if as_.eq_ignore_ascii_case("as") => {
            let lower = name.to_ascii_lowercase();
            if !STAGE_NAME.is_match(&lower) {
                return Err(Error::new(
                    node.span,
                    ErrorKind::BadStageName { name: name.clone() },
                ));
            }
            (base, Some(lower))
        }
        _ => return Err(Error::new(node.span, ErrorKind::BadFrom)),
    };
    Ok(Stage {
        index,
        name,
        base: base.clone(),
        platform: flags.string("platform"),
        span: node.span,
        original: node.original.clone(),
        instructions: Vec::new(),
    })
}

/// The typed instruction of a non-FROM node.
pub(super) fn instruction(node: &Node) -> Result<Instruction, Error> {
    Ok(match node.keyword {
        Keyword::From => {
            return Err(Error::new(
                node.span,
                ErrorKind::BadOnbuildTrigger {
                    trigger: "FROM".into(),
                },
            ));
        }
        Keyword::Run => Instruction::Run(run(node)?),
        Keyword::Cmd => {
            no_flags(node)?;
            Instruction::Cmd(command_line(node)?.ok_or_else(|| missing(node, "a command"))?)
        }
        Keyword::Entrypoint => {
            no_flags(node)?;
            Instruction::Entrypoint(command_line(node)?.unwrap_or(CommandLine::Exec(Vec::new())))
        }
        Keyword::Shell => {
            no_flags(node)?;
            match &node.args {
                Args::Json(v) if !v.is_empty() => Instruction::Shell(v.clone()),
                Args::Json(_) | Args::Empty => return Err(missing(node, "at least one argument")),
                _ => {
                    return Err(Error::new(
                        node.span,
                        ErrorKind::JsonFormRequired {
                            instruction: "SHELL",
                        },
                    ));
                }
            }
        }
        Keyword::Env => Instruction::Env(pairs(node)?),
        Keyword::Label => Instruction::Label(pairs(node)?),
        Keyword::Arg => {
            no_flags(node)?;
            let Args::Words(words) = &node.args else {
                return Err(missing(node, "at least one argument"));
            };
            let mut decls = Vec::with_capacity(words.len());
            for word in words {
                let (name, default) = match word.split_once('=') {
                    Some((n, d)) => (n, Some(d.to_string())),
                    None => (word.as_str(), None),
                };
                if name.is_empty() {
                    return Err(Error::new(
                        node.span,
                        ErrorKind::BlankName { instruction: "ARG" },
                    ));
                }
                decls.push(ArgDecl {
                    name: name.to_string(),
                    default,
                    span: node.span,
                });
            }
            Instruction::Arg(decls)
        }
        Keyword::Maintainer => Instruction::Maintainer(text(node)?),
        Keyword::User => Instruction::User(text(node)?),
        Keyword::Workdir => Instruction::Workdir(text(node)?),
        Keyword::StopSignal => Instruction::StopSignal(text(node)?),
        Keyword::Expose => {
            no_flags(node)?;
            let Args::Words(words) = &node.args else {
                return Err(missing(node, "at least one argument"));
            };
            for w in words {
                if !w.contains('$') && ExposedPort::parse(w).is_none() {
                    return Err(Error::new(
                        node.span,
                        ErrorKind::BadPort { value: w.clone() },
                    ));
                }
            }
            Instruction::Expose(words.clone())
        }
        Keyword::Volume => {
            no_flags(node)?;
            let paths = match &node.args {
                Args::Words(w) | Args::Json(w) => w.clone(),
                _ => Vec::new(),
            };
            if paths.is_empty() {
                return Err(missing(node, "at least one argument"));
            }
            if paths.iter().any(|p| p.trim().is_empty()) {
                return Err(missing(node, "non-empty paths"));
            }
            Instruction::Volume(paths)
        }
        Keyword::Copy => Instruction::Copy(copy(node)?),
        Keyword::Add => Instruction::Add(add(node)?),
        Keyword::Onbuild => Instruction::Onbuild(onbuild(node)?),
        Keyword::Healthcheck => Instruction::Healthcheck(healthcheck(node)?),
    })
}

/// Shell or exec form; `None` when there is nothing.
fn command_line(node: &Node) -> Result<Option<CommandLine>, Error> {
    Ok(match &node.args {
        Args::Json(v) => Some(CommandLine::Exec(v.clone())),
        Args::Text(t) => Some(CommandLine::Shell(t.clone())),
        _ => None,
    })
}

fn text(node: &Node) -> Result<String, Error> {
    no_flags(node)?;
    match &node.args {
        Args::Text(t) => Ok(t.clone()),
        _ => Err(missing(node, "exactly one argument")),
    }
}

fn pairs(node: &Node) -> Result<Vec<KeyValue>, Error> {
    no_flags(node)?;
    let Args::Pairs(pairs) = &node.args else {
        return Err(missing(node, "at least one argument"));
    };
    pairs
        .iter()
        .map(|p| {
            if p.key.is_empty() {
                Err(Error::new(
                    node.span,
                    ErrorKind::BlankName {
                        instruction: node.keyword.as_str(),
                    },
                ))
            } else {
                Ok(KeyValue {
                    key: p.key.clone(),
                    value: p.value.clone(),
                })
            }
        })
        .collect()
}

fn run(node: &Node) -> Result<Run, Error> {
    let flags = FlagValues::parse(
        node.keyword,
        &node.flags,
        &[
            ("mount", FlagKind::Strs),
            ("network", FlagKind::Str),
            ("security", FlagKind::Str),
        ],
    )?;
    let command = command_line(node)?.ok_or_else(|| missing(node, "a command"))?;
    let mut mounts = Vec::new();
    for (value, span) in flags.all("mount") {
        mounts
            .push(MountSpec::new(value, span).map_err(|e| Error::new(span, ErrorKind::Mount(e)))?);
    }
    let network = match flags.get("network") {
        None => None,
        Some((v, span)) => Some(NetworkMode::parse(v).ok_or_else(|| {
            Error::new(
                span,
                ErrorKind::BadFlagValue {
                    flag: "network".into(),
                    value: v.into(),
                    reason: "expected default, none or host",
                },
            )
        })?),
    };
    let security = match flags.get("security") {
        None => None,
        Some((v, span)) => Some(SecurityMode::parse(v).ok_or_else(|| {
            Error::new(
                span,
                ErrorKind::BadFlagValue {
                    flag: "security".into(),
                    value: v.into(),
                    reason: "expected sandbox or insecure",
                },
            )
        })?),
    };
    Ok(Run {
        command,
        heredocs: node.heredocs.clone(),
        mounts,
        network,
        security,
    })
}

/// Sources, destination and the shared flags of COPY and ADD.
fn copy_spec(node: &Node, flags: &FlagValues) -> Result<CopySpec, Error> {
    let (words, json) = match &node.args {
        Args::Words(w) => (w.as_slice(), false),
        Args::Json(w) => (w.as_slice(), true),
        _ => (&[][..], false),
    };
    let Some((dest, srcs)) = words.split_last().filter(|(_, s)| !s.is_empty()) else {
        return Err(missing(
            node,
            "at least two arguments, but the last one is the destination",
        ));
    };
    let instruction = node.keyword.as_str();
    if heredoc_marker(dest).is_some() {
        return Err(Error::new(
            node.span,
            ErrorKind::MisplacedHeredoc {
                instruction,
                role: "a destination",
            },
        ));
    }
    let mut sources = Vec::with_capacity(srcs.len());
    for src in srcs {
        let heredoc =
            heredoc_marker(src).and_then(|name| node.heredocs.iter().find(|h| h.name == name));
        sources.push(match heredoc {
            Some(h) => Source::Heredoc(h.clone()),
            None => Source::Path(src.clone()),
        });
    }
    let dir_like = dest.ends_with('/') || dest == "." || dest == ".." || dest.contains('$');
    if sources.len() > 1 && !dir_like {
        return Err(Error::new(
            node.span,
            ErrorKind::DestinationNotDirectory { instruction },
        ));
    }
    Ok(CopySpec {
        sources,
        dest: dest.clone(),
        chown: flags.string("chown"),
        chmod: flags.string("chmod"),
        link: flags.bool("link"),
        exclude: flags.all("exclude").map(|(v, _)| v.to_string()).collect(),
        json,
    })
}

fn copy(node: &Node) -> Result<Copy, Error> {
    let flags = FlagValues::parse(
        node.keyword,
        &node.flags,
        &[
            ("from", FlagKind::Str),
            ("chown", FlagKind::Str),
            ("chmod", FlagKind::Str),
            ("link", FlagKind::Bool),
            ("parents", FlagKind::Bool),
            ("exclude", FlagKind::Strs),
        ],
    )?;
    Ok(Copy {
        spec: copy_spec(node, &flags)?,
        from: flags.string("from"),
        parents: flags.bool("parents"),
    })
}

fn add(node: &Node) -> Result<Add, Error> {
    let flags = FlagValues::parse(
        node.keyword,
        &node.flags,
        &[
            ("chown", FlagKind::Str),
            ("chmod", FlagKind::Str),
            ("link", FlagKind::Bool),
            ("exclude", FlagKind::Strs),
            ("checksum", FlagKind::Str),
            ("keep-git-dir", FlagKind::Bool),
            ("unpack", FlagKind::Bool),
        ],
    )?;
    Ok(Add {
        spec: copy_spec(node, &flags)?,
        checksum: flags.string("checksum"),
        keep_git_dir: flags.bool("keep-git-dir"),
        unpack: flags.opt_bool("unpack"),
    })
}

fn onbuild(node: &Node) -> Result<Onbuild, Error> {
    no_flags(node)?;
    let Args::Trigger(inner) = &node.args else {
        return Err(missing(node, "at least one argument"));
    };
    if matches!(
        inner.keyword,
        Keyword::Onbuild | Keyword::From | Keyword::Maintainer
    ) {
        return Err(Error::new(
            node.span,
            ErrorKind::BadOnbuildTrigger {
                trigger: inner.keyword.as_str().to_string(),
            },
        ));
    }
    let mut inner = inner.as_ref().clone();
    inner.heredocs = node.heredocs.clone();
    inner.span = node.span;
    let instruction = instruction(&inner)?;
    let mut expression = inner.original.clone();
    for h in &node.heredocs {
        expression.push('\n');
        expression.push_str(&h.content);
        expression.push_str(&h.name);
    }
    Ok(Onbuild {
        expression,
        instruction: Box::new(instruction),
    })
}

fn healthcheck(node: &Node) -> Result<Healthcheck, Error> {
    let Args::Health { kind, command } = &node.args else {
        return Err(missing(node, "at least one argument"));
    };
    if kind.eq_ignore_ascii_case("none") {
        no_flags(node)?;
        if !matches!(command.as_ref(), Args::Empty) {
            return Err(Error::new(
                node.span,
                ErrorKind::BadHealthcheck {
                    reason: "HEALTHCHECK NONE takes no arguments",
                },
            ));
        }
        return Ok(Healthcheck::None);
    }
    let flags = FlagValues::parse(
        node.keyword,
        &node.flags,
        &[
            ("interval", FlagKind::Str),
            ("timeout", FlagKind::Str),
            ("start-period", FlagKind::Str),
            ("start-interval", FlagKind::Str),
            ("retries", FlagKind::Str),
        ],
    )?;
    if !kind.eq_ignore_ascii_case("cmd") {
        return Err(Error::new(
            node.span,
            ErrorKind::BadHealthcheck {
                reason: "unknown HEALTHCHECK type (use CMD or NONE)",
            },
        ));
    }
    let command = match command.as_ref() {
        Args::Json(v) if !v.is_empty() => CommandLine::Exec(v.clone()),
        Args::Text(t) => CommandLine::Shell(t.clone()),
        _ => {
            return Err(Error::new(
                node.span,
                ErrorKind::BadHealthcheck {
                    reason: "missing command after HEALTHCHECK CMD",
                },
            ));
        }
    };
    let duration = |name: &'static str| -> Result<Option<std::time::Duration>, Error> {
        let Some((v, span)) = flags.get(name) else {
            return Ok(None);
        };
        let bad = |reason| {
            Error::new(
                span,
                ErrorKind::BadDuration {
                    flag: name,
                    value: v.to_string(),
                    reason,
                },
            )
        };
        let d = parse_duration(v).map_err(bad)?;
        if d.is_zero() {
            return Ok(None);
        }
        if d < std::time::Duration::from_millis(1) {
            return Err(bad("cannot be less than 1ms"));
        }
        Ok(Some(d))
    };
    let retries = match flags.get("retries") {
        None => None,
        Some((v, span)) => Some(v.parse::<u32>().map_err(|_| {
            Error::new(
                span,
                ErrorKind::BadFlagValue {
                    flag: "retries".into(),
                    value: v.into(),
                    reason: "expected a non-negative integer",
                },
            )
        })?),
    };
    Ok(Healthcheck::Check(HealthcheckCommand {
        command,
        interval: duration("interval")?,
        timeout: duration("timeout")?,
        start_period: duration("start-period")?,
        start_interval: duration("start-interval")?,
        retries: retries.filter(|&r| r > 0),
    }))
}
