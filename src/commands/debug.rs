//! `kiln debug ...`: developer commands that expose one part of kiln on its
//! own: the parser and word expansion (checked against BuildKit's cases, see
//! the conformance README), the sandbox, snapshots and diffs. Larger commands
//! live in their own module under `debug/`.

mod diff;
mod layer;
mod sandbox;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use miette::{IntoDiagnostic, WrapErr};

use super::CmdResult;
use crate::cli::GlobalArgs;
use crate::diagnostic;

/// Developer commands.
#[derive(Debug, Subcommand)]
pub enum DebugCommand {
    /// Parse a Dockerfile and print its syntax tree (BuildKit's dump format).
    Parse(ParseArgs),
    /// Expand one word as Dockerfile instructions do and print it.
    ExpandWord(ExpandArgs),
    /// Expand one word and print the resulting words, one per line.
    ExpandWords(ExpandArgs),
    /// Run a command in a sandbox on a root filesystem directory.
    Sandbox(sandbox::SandboxArgs),
    /// Run a command on a snapshot of layer directories and write what it
    /// changed as a layer into the store; prints the layer's digest and size.
    Diff(diff::DiffArgs),
    /// Write the changes in an overlay upper directory as a layer into the
    /// store; prints its digest and size, and the write speed on stderr.
    Layer(layer::LayerArgs),
}

impl DebugCommand {
    /// See `Command::only_prints`: the parser's commands only print.
    pub fn only_prints(&self) -> bool {
        matches!(
            self,
            DebugCommand::Parse(_) | DebugCommand::ExpandWord(_) | DebugCommand::ExpandWords(_)
        )
    }
}

/// `kiln debug parse`.
#[derive(Debug, Args)]
pub struct ParseArgs {
    /// Also type the instructions (flags, arguments, stages) and print the
    /// typed stages instead of the syntax tree.
    #[arg(long)]
    pub typed: bool,
    /// The Dockerfile.
    pub file: PathBuf,
}

/// `kiln debug expand-word` / `expand-words`.
#[derive(Debug, Args)]
pub struct ExpandArgs {
    /// A variable, `NAME=VALUE` (`NAME` alone is set and empty).
    #[arg(long = "env", value_name = "K=V")]
    pub env: Vec<String>,
    /// The escape character (`\` or `` ` ``).
    #[arg(long, default_value = "\\")]
    pub escape: char,
    /// The word, after `--`.
    #[arg(allow_hyphen_values = true)]
    pub word: String,
}

pub fn run(global: &GlobalArgs, cmd: DebugCommand) -> CmdResult {
    match cmd {
        DebugCommand::Sandbox(args) => sandbox::run(global, args),
        DebugCommand::Diff(args) => diff::run(global, args),
        DebugCommand::Layer(args) => layer::run(global, args),
        DebugCommand::Parse(args) => parse(args),
        DebugCommand::ExpandWord(args) => expand(args, false),
        DebugCommand::ExpandWords(args) => expand(args, true),
    }
}

fn parse(args: ParseArgs) -> CmdResult {
    let src = std::fs::read_to_string(&args.file)
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot read {}", args.file.display()))?;
    let name = args.file.display().to_string();
    let out = if args.typed {
        let df = kiln_parser::Dockerfile::parse(&src)
            .map_err(|e| diagnostic::dockerfile_error(&name, &src, &e))?;
        format!("{df:#?}\n")
    } else {
        kiln_parser::SyntaxTree::parse(&src)
            .map_err(|e| diagnostic::dockerfile_error(&name, &src, &e))?
            .dump()
    };
    write_stdout(&out)
}

fn expand(args: ExpandArgs, split: bool) -> CmdResult {
    if args.escape != '\\' && args.escape != '`' {
        miette::bail!("the escape character must be \\ or `");
    }
    let mut env = BTreeMap::new();
    for kv in &args.env {
        let (k, v) = kv.split_once('=').unwrap_or((kv.as_str(), ""));
        env.insert(k.to_string(), v.to_string());
    }
    let lexer = kiln_parser::Lexer::new(args.escape);
    let out = if split {
        let words = lexer.expand_words(&args.word, &env).into_diagnostic()?;
        let mut out = words.value.join("\n");
        out.push('\n');
        out
    } else {
        let word = lexer.expand(&args.word, &env).into_diagnostic()?;
        format!("{}\n", word.value)
    };
    write_stdout(&out)
}

fn write_stdout(out: &str) -> CmdResult {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(out.as_bytes())
        .and_then(|_| stdout.flush())
    {
        Ok(()) => Ok(ExitCode::SUCCESS),
        // A closed pipe (`| head`) is not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(e) => Err(e).into_diagnostic().wrap_err("cannot write to stdout"),
    }
}
