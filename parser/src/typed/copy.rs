//! COPY and ADD: sources (paths, URLs, git refs, heredocs), destination and
//! their flags.

use crate::syntax::Heredoc;

/// What COPY and ADD share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopySpec {
    /// Sources in order, raw. Paths are expanded (one word each, no
    /// splitting); heredoc bodies are expanded with
    /// [`crate::Scope::expand_heredoc`] when [`Heredoc::expand`] says so.
    pub sources: Vec<Source>,
    /// The destination, raw; expanded. A trailing `/` means "into this
    /// directory" (required when there are several sources).
    pub dest: String,
    /// `--chown=user[:group]`, raw; expanded.
    pub chown: Option<String>,
    /// `--chmod=0755` (octal) or symbolic (`u+x`), raw; expanded.
    pub chmod: Option<String>,
    /// `--link`.
    pub link: bool,
    /// `--exclude=pattern` (repeatable), raw; expanded.
    pub exclude: Vec<String>,
    /// Whether the sources were given in JSON form (`COPY ["a", "b"]`).
    pub json: bool,
}

/// One COPY/ADD source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A path in the context (or stage), a URL or a git reference, raw.
    Path(String),
    /// An inline file: `COPY <<EOF /dst` creates a file named after the
    /// heredoc with its body as content.
    Heredoc(Heredoc),
}

/// `COPY [--from=...] [--chown] [--chmod] [--link] [--parents]
/// [--exclude]... src... dest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copy {
    /// Sources, destination and the flags COPY shares with ADD.
    pub spec: CopySpec,
    /// `--from=stage|index|image`, raw. BuildKit expands it in the global
    /// scope (build args and global ARGs only).
    pub from: Option<String>,
    /// `--parents`: keep the source's parent directories under `dest`.
    pub parents: bool,
}

/// `ADD [--chown] [--chmod] [--link] [--exclude]... [--checksum]
/// [--keep-git-dir] [--unpack] src... dest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Add {
    /// Sources, destination and the flags ADD shares with COPY.
    pub spec: CopySpec,
    /// `--checksum=sha256:...` of a remote source, raw; expanded.
    pub checksum: Option<String>,
    /// `--keep-git-dir`: keep `.git` of a git source.
    pub keep_git_dir: bool,
    /// `--unpack[=bool]`: force (or forbid) unpacking an archive; `None`
    /// means the default (local archives unpacked, remote ones not).
    pub unpack: Option<bool>,
}
