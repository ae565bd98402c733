//! File operations of a build step — COPY, ADD, heredoc files, WORKDIR —
//! applied onto a destination root filesystem directory (the mounted or
//! copied rootfs of the step, or an empty directory for `--link`), with
//! BuildKit's semantics:
//!
//! - a directory source copies its contents; a file source lands in the
//!   destination directory when the destination is one (or ends with `/`),
//!   else it becomes the destination file;
//! - wildcards (Go `filepath.Match`) expand in lexical order; a wildcard
//!   that matches nothing is allowed;
//! - several sources need a directory destination;
//! - a relative destination is relative to WORKDIR;
//! - missing parents (and a missing destination directory) are created
//!   with mode 0755, or the `--chmod` mode when one is given (as BuildKit
//!   does since 0.21), owned by the `--chown` owner (root without one);
//! - a source symlink is followed inside its tree; symlinks below it are
//!   copied as symlinks; nothing is ever resolved outside the source tree or
//!   the destination root;
//! - ownership: `--chown` when given, else root for the build context,
//!   heredocs and downloads, and the source's own for `--from` trees;
//! - `--chmod` sets the permission bits of everything copied: an octal
//!   mode as it is, a symbolic one (`u+x,g-w`) applied to each source's
//!   own mode (see [`Chmod`]);
//! - `--exclude`, `--parents`, and `.dockerignore` for the context;
//! - ADD extracts local tar archives (by content) and downloads URLs.
//!
//! The caller (the build worker) resolves everything outside the file
//! system first: which directory a `--from` names, the owner of `--chown`
//! (with [`resolve_owner`]), URLs (with [`download`]).

mod apply;
mod chmod;
mod chown;
mod error;
mod http;
pub(crate) mod meta;
mod pattern;
pub(crate) mod plan;
pub(crate) mod rootpath;
pub(crate) mod select;
mod unpack;

use std::path::Path;
use std::time::SystemTime;

pub use chmod::{Chmod, SymbolicMode};
pub use chown::{ChownSpec, resolve_owner};
pub use error::{FileOpError, PatternCause};
pub use http::{Downloaded, download, parse_checksum};
pub use pattern::{PathMatcher, PatternCompiler};

pub(crate) use apply::{Copier, MetaPolicy};
use plan::Item;

/// A numeric owner (user id and group id) in the destination image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
}

impl Owner {
    /// `0:0`.
    pub const ROOT: Owner = Owner { uid: 0, gid: 0 };
}

/// Which instruction a copy serves (error messages and ADD's extras).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Instruction {
    Copy,
    Add,
}

impl Instruction {
    fn name(self) -> &'static str {
        match self {
            Instruction::Copy => "COPY",
            Instruction::Add => "ADD",
        }
    }
}

/// What kind of tree [`Source::Path`] sources are read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TreeKind {
    /// The build context: files are written owned by root (BuildKit resets
    /// the context's ownership) unless `--chown` says otherwise.
    Context,
    /// The root filesystem of another stage or an image (`--from`):
    /// ownership is kept unless `--chown` says otherwise.
    Rootfs,
}

/// The tree path sources are read from.
#[derive(Clone, Copy)]
pub struct SourceTree<'a> {
    /// Host directory standing for `/` of the sources.
    pub root: &'a Path,
    pub kind: TreeKind,
    /// `.dockerignore` of the context: what it matches does not exist for
    /// the copy. Only meaningful for [`TreeKind::Context`].
    pub ignore: Option<&'a dyn PathMatcher>,
}

/// A heredoc file of `COPY <<EOF /dest`: written under its name with
/// `mode` (0644 for a COPY heredoc, as BuildKit) unless `--chmod` says
/// otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlineFile {
    pub name: String,
    pub content: Vec<u8>,
    pub mode: u32,
}

/// One source of a COPY/ADD, in the order written.
#[derive(Debug, Clone)]
pub enum Source {
    /// A path in the source tree, as written (wildcards allowed, `\`
    /// escapes them).
    Path(String),
    /// A heredoc.
    Inline(InlineFile),
    /// A URL already fetched with [`download`] (ADD only).
    Download(Downloaded),
}

/// Flags of a COPY/ADD, resolved.
#[derive(Clone, Copy)]
pub struct CopyOptions<'a> {
    pub instruction: Instruction,
    /// `--chown`, resolved with [`resolve_owner`]. `None` = the default
    /// ownership of the tree kind.
    pub owner: Option<Owner>,
    /// `--chmod`, parsed with [`parse_chmod`].
    pub mode: Option<&'a Chmod>,
    /// `--exclude` patterns (`.dockerignore` syntax, relative to each
    /// source).
    pub exclude: &'a [String],
    /// `--parents`: keep each source's parent directories (from the root or
    /// from a `/./` pivot in the source).
    pub parents: bool,
    /// Extract local tar archives (ADD's default; `ADD --unpack=false`
    /// turns it off).
    pub unpack: bool,
    /// Timestamp for everything written (`SOURCE_DATE_EPOCH`); `None` keeps
    /// source times (and uses the current time for created directories).
    pub timestamp: Option<SystemTime>,
    /// Compiles `--exclude` and `--parents` patterns. Required when either
    /// is used.
    pub patterns: Option<&'a dyn PatternCompiler>,
}

impl<'a> CopyOptions<'a> {
    /// Plain `COPY` defaults: no flags.
    pub fn copy() -> CopyOptions<'a> {
        CopyOptions {
            instruction: Instruction::Copy,
            owner: None,
            mode: None,
            exclude: &[],
            parents: false,
            unpack: false,
            timestamp: None,
            patterns: None,
        }
    }

    /// Plain `ADD` defaults: archives are extracted.
    pub fn add() -> CopyOptions<'a> {
        CopyOptions {
            instruction: Instruction::Add,
            unpack: true,
            ..CopyOptions::copy()
        }
    }
}

/// One COPY/ADD instruction to apply.
#[derive(Clone, Copy)]
pub struct CopyRequest<'a> {
    /// Where [`Source::Path`] sources are read.
    pub tree: SourceTree<'a>,
    pub sources: &'a [Source],
    /// The destination as written (relative to `workdir` unless absolute;
    /// a trailing `/` makes it a directory).
    pub dest: &'a str,
    /// The image's working directory (`""` means `/`).
    pub workdir: &'a str,
    pub options: CopyOptions<'a>,
}

/// What a copy wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CopyStats {
    /// Files, symlinks and special files written.
    pub files: u64,
    /// Directories created.
    pub dirs: u64,
    /// Bytes of file content written.
    pub bytes: u64,
}

impl CopyStats {
    fn add(&mut self, o: CopyStats) {
        self.files += o.files;
        self.dirs += o.dirs;
        self.bytes += o.bytes;
    }
}

/// Parses `--chmod`: an octal mode between 0 and 07777, or a symbolic mode
/// (see [`Chmod`]).
pub fn parse_chmod(value: &str) -> Result<Chmod, FileOpError> {
    Chmod::parse(value)
}

/// The destination of a COPY/ADD inside the image, as BuildKit computes it:
/// a relative path is joined to `workdir`; `""`, `.` and a trailing `/`
/// mark a directory (the result then ends with `/`).
pub fn dest_path(dest: &str, workdir: &str) -> String {
    let is_dir = dest.is_empty() || dest == "." || dest.ends_with('/');
    let joined = if dest.starts_with('/') {
        dest.to_owned()
    } else {
        let wd = if workdir.is_empty() { "/" } else { workdir };
        format!("{}/{}", wd.trim_end_matches('/'), dest)
    };
    let mut clean = format!("/{}", rootpath::clean(&joined).join("/"));
    if is_dir && !clean.ends_with('/') {
        clean.push('/');
    }
    clean
}

/// Applies one COPY/ADD onto `dest_root`. See the module documentation for
/// the rules. The destination root is only ever written below itself.
pub fn copy(dest_root: &Path, req: &CopyRequest<'_>) -> Result<CopyStats, FileOpError> {
    let opts = &req.options;
    let dest = dest_path(req.dest, req.workdir);
    let dest_is_dir = dest.ends_with('/');
    let plan = plan::plan(req)?;
    let items = &plan.items;
    let resolved_dest = rootpath::resolve(dest_root, &dest, true)?;
    let dest_host = resolved_dest.under(dest_root);
    let dest_exists_dir = std::fs::metadata(&dest_host)
        .map(|m| m.is_dir())
        .unwrap_or(false);
    let several = items.len() > 1 || (opts.parents && !items.is_empty());
    // Which items ADD extracts (into the destination, as a directory).
    let archives: Vec<bool> = items
        .iter()
        .map(|p| match &p.item {
            Item::Tree { m, .. } => opts.unpack && m.meta.is_file() && unpack::is_archive(&m.abs),
            Item::Inline(_) => false,
        })
        .collect();
    let all_dir_like = items
        .iter()
        .zip(&archives)
        .all(|(p, archive)| p.item.is_dir() || *archive);
    if items.len() > 1 && !dest_is_dir && !dest_exists_dir && !all_dir_like {
        return Err(FileOpError::DestinationNotDirectory {
            instruction: opts.instruction.name(),
            dest: req.dest.to_owned(),
        });
    }
    let treat_as_dir = dest_is_dir || several;

    let mut total = CopyStats::default();
    let mut created: Vec<std::path::PathBuf> = Vec::new();
    let mut copier = Copier::new(MetaPolicy {
        owner: None,
        mode: None,
        time: None,
    });
    for (planned, &archive) in items.iter().zip(&archives) {
        let (item, owner) = (&planned.item, planned.owner);
        // Directories the copy creates get the `--chmod` mode (applied to
        // 0755 when symbolic), as BuildKit's copier does since fsutil's
        // "custom chmod for parent directories"; archives are extracted
        // into plain 0755 directories, as BuildKit's unpacking does.
        let dir_mode = match opts.mode {
            Some(c) if !archive => c.apply(0o755, true),
            _ => 0o755,
        };
        // Parents of the destination: the destination itself when it is a
        // directory, else its parent directory.
        let ensure = if treat_as_dir {
            resolved_dest.clone()
        } else {
            let parent = match dest.trim_end_matches('/').rsplit_once('/') {
                Some((p, _)) if !p.is_empty() => p.to_owned(),
                _ => "/".to_owned(),
            };
            rootpath::resolve(dest_root, &parent, true)?
        };
        meta::mkdir_all(
            &ensure.under(dest_root),
            dir_mode,
            opts.owner,
            opts.timestamp,
            &ensure.display(),
            &mut created,
        )?;

        let policy = MetaPolicy {
            owner,
            mode: opts.mode,
            time: opts.timestamp,
        };
        match item {
            Item::Inline(f) => {
                let target = file_target(dest_root, &resolved_dest, &f.name);
                let shown = shown_of(dest_root, &target);
                apply::remove_file_target(&target, &shown)?;
                write_inline(&target, f, policy)?;
                total.files += 1;
                total.bytes += f.content.len() as u64;
            }
            Item::Tree { m, .. } => {
                if archive {
                    let shown_ar = format!("/{}", m.resolved.rel());
                    meta::mkdir_all(
                        &dest_host,
                        dir_mode,
                        opts.owner,
                        opts.timestamp,
                        &resolved_dest.display(),
                        &mut created,
                    )?;
                    total.add(unpack::extract(&m.abs, &shown_ar, &dest_host, opts.owner)?);
                    continue;
                }
                copier.policy = policy;
                let filters = plan.filters(item);
                let target = if m.meta.is_dir() {
                    // Contents go into the destination (created when missing).
                    if !dest_host.exists() {
                        meta::mkdir_all(
                            &dest_host,
                            dir_mode,
                            opts.owner,
                            opts.timestamp,
                            &resolved_dest.display(),
                            &mut created,
                        )?;
                    } else if !dest_host.is_dir() {
                        return Err(FileOpError::CopyDirOntoFile {
                            path: resolved_dest.display(),
                        });
                    }
                    dest_host.clone()
                } else {
                    file_target(dest_root, &resolved_dest, &m.name.to_string_lossy())
                };
                let shown = shown_of(dest_root, &target);
                copier.copy_match(m, &filters, &target, &shown)?;
            }
        }
    }
    total.add(copier.stats);
    total.dirs += created.len() as u64;
    // Writing into the directories created above changed their times back.
    if let Some(t) = opts.timestamp {
        for d in created.iter().rev() {
            meta::set_time(d, t)?;
        }
    }
    tracing::debug!(dest = %dest, files = total.files, dirs = total.dirs, bytes = total.bytes, "copied");
    Ok(total)
}

/// Where a non-directory source named `name` goes: into the destination
/// when it is an existing directory, else the destination itself.
fn file_target(dest_root: &Path, dest: &rootpath::Resolved, name: &str) -> std::path::PathBuf {
    let host = dest.under(dest_root);
    if host.is_dir() { host.join(name) } else { host }
}

/// A host path under `dest_root` as seen inside the image.
fn shown_of(dest_root: &Path, p: &Path) -> String {
    match p.strip_prefix(dest_root) {
        Ok(rel) => format!("/{}", rel.display()),
        Err(_) => p.display().to_string(),
    }
}

fn write_inline(target: &Path, f: &InlineFile, policy: MetaPolicy<'_>) -> Result<(), FileOpError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(target)
        .map_err(FileOpError::io("create", target))?;
    out.write_all(&f.content)
        .map_err(FileOpError::io("write", target))?;
    drop(out);
    meta::chown(target, policy.owner.unwrap_or(Owner::ROOT))?;
    meta::chmod(
        target,
        policy.mode.map_or(f.mode, |c| c.apply(f.mode, false)),
    )?;
    if let Some(t) = policy.time {
        meta::set_time(target, t)?;
    }
    Ok(())
}

/// WORKDIR: creates `path` (relative to `workdir`, the previous working
/// directory) and its missing parents inside `rootfs`, mode 0755, owned by
/// `owner` (the stage's USER, resolved with [`resolve_owner`]; root when
/// none), as BuildKit does. An existing directory is left untouched.
pub fn make_workdir(
    rootfs: &Path,
    path: &str,
    workdir: &str,
    owner: Option<Owner>,
    timestamp: Option<SystemTime>,
) -> Result<(), FileOpError> {
    let p = dest_path(path, workdir);
    let resolved = rootpath::resolve(rootfs, &p, true)?;
    let mut created = Vec::new();
    meta::mkdir_all(
        &resolved.under(rootfs),
        0o755,
        owner,
        timestamp,
        &resolved.display(),
        &mut created,
    )?;
    if let Some(t) = timestamp {
        for d in created.iter().rev() {
            meta::set_time(d, t)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
