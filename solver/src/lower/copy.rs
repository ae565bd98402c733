//! COPY: files from the build context, a stage or an image into the
//! stage's filesystem. ADD shares this lowering (see `add.rs`).
//!
//! The destination is resolved against WORKDIR (a trailing `/` kept: it
//! means "into this directory"); sources, `--chown`, `--chmod` and
//! `--exclude` are expanded in the stage's scope, `--from` in the global
//! one. Context paths become one copy action keyed by the checksum of
//! exactly the files it selects; heredocs become inline files; with
//! `--link` (and no `--chmod`) the files land in a layer of their own,
//! independent of what is below (a merge), as BuildKit does.

use kiln_parser::{Copy, CopySpec, Source, Step};
use petgraph::graph::NodeIndex;

use crate::error::{LowerError, LowerErrorKind};
use crate::op::{Op, SourceRef};
use crate::worker::{CopyAction, FileAction};

use super::Ctx;
use super::run::from_source;
use super::state::{StageState, expand_error, invalid, location, resolve_dest, uppercase_keyword};

/// What differs between COPY and ADD.
pub(crate) struct CopyConfig<'a> {
    pub keyword: &'static str,
    pub spec: &'a CopySpec,
    /// `--from`, raw (COPY only).
    pub from: Option<&'a str>,
    pub parents: bool,
    /// ADD: remote sources allowed, `--checksum`, unpacking.
    pub add: Option<AddConfig>,
}

pub(crate) struct AddConfig {
    pub checksum: Option<String>,
    pub keep_git_dir: bool,
    pub unpack: Option<bool>,
}

pub(crate) fn lower_copy(
    ctx: &mut Ctx<'_>,
    st: &mut StageState,
    step: &Step,
    copy: &Copy,
) -> Result<(), LowerError> {
    lower_copy_like(
        ctx,
        st,
        step,
        CopyConfig {
            keyword: "COPY",
            spec: &copy.spec,
            from: copy.from.as_deref(),
            parents: copy.parents,
            add: None,
        },
    )
}

pub(crate) use super::add::lower as lower_add;

fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

fn is_git(s: &str) -> bool {
    s.starts_with("git@")
        || s.starts_with("git://")
        || (is_url(s) && (s.ends_with(".git") || s.contains(".git#")))
}

/// Checks `--chmod`: octal up to 07777, or a symbolic mode.
fn check_chmod(mode: &str, span: kiln_parser::Span) -> Result<(), LowerError> {
    let bad = || {
        invalid(
            format!(
                "invalid chmod parameter: '{mode}'. it should be octal string and between 0 and 07777"
            ),
            span,
        )
    };
    if mode.chars().all(|c| c.is_ascii_digit()) {
        return match u32::from_str_radix(mode, 8) {
            Ok(v) if v <= 0o7777 => Ok(()),
            _ => Err(bad()),
        };
    }
    let symbolic = mode.split(',').all(|clause| {
        let ops = clause.trim_start_matches(['u', 'g', 'o', 'a']);
        !ops.is_empty()
            && ops.starts_with(['+', '-', '='])
            && ops.chars().all(|c| {
                matches!(
                    c,
                    '+' | '-' | '=' | 'r' | 'w' | 'x' | 'X' | 's' | 't' | 'u' | 'g' | 'o'
                )
            })
    });
    if symbolic { Ok(()) } else { Err(bad()) }
}

/// Whether `--chown` names a user or group (as opposed to ids or `root`,
/// which need no lookup in the destination's /etc/passwd and /etc/group).
fn names_a_user_or_group(chown: &str) -> bool {
    chown
        .split(':')
        .take(2)
        .any(|p| !p.is_empty() && p != "root" && !p.bytes().all(|b| b.is_ascii_digit()))
}

pub(crate) fn lower_copy_like(
    ctx: &mut Ctx<'_>,
    st: &mut StageState,
    step: &Step,
    cfg: CopyConfig<'_>,
) -> Result<(), LowerError> {
    let span = step.span;
    let spec = cfg.spec;
    let dest_word = st.expand(&spec.dest, span)?;
    let dest = resolve_dest(&st.workdir(), &dest_word);
    let chown = spec
        .chown
        .as_ref()
        .map(|c| st.expand(c, span))
        .transpose()?;
    let chmod = spec
        .chmod
        .as_ref()
        .map(|c| st.expand(c, span))
        .transpose()?;
    if let Some(m) = &chmod {
        check_chmod(m, span)?;
    }
    let excludes = spec
        .exclude
        .iter()
        .map(|e| st.expand(e, span))
        .collect::<Result<Vec<_>, _>>()?;
    let link = spec.link && chmod.is_none();
    if link
        && let Some(c) = &chown
        && names_a_user_or_group(c)
    {
        return Err(LowerError::new(
            LowerErrorKind::LinkChownByName {
                keyword: cfg.keyword,
                chown: c.clone(),
            },
            Some(location(span)),
        ));
    }

    // With --link the files go on an empty filesystem, merged on top later.
    let mut inputs: Vec<NodeIndex> = if link {
        Vec::new()
    } else {
        st.vertex.into_iter().collect()
    };
    let root = if link { None } else { st.vertex.map(|_| 0) };
    let (from, from_context) = match cfg.from {
        None => (SourceRef::Context, true),
        Some(raw) => {
            let word = ctx
                .global
                .expand(raw)
                .map_err(|e| expand_error(e, span))?
                .value;
            (from_source(ctx, &word, span, &mut inputs)?, false)
        }
    };

    let checksum = match cfg.add.as_ref().and_then(|a| a.checksum.as_ref()) {
        Some(c) => {
            let c = st.expand(c, span)?;
            Some(c.parse::<oci_spec::image::Digest>().map_err(|_| {
                invalid(
                    format!("invalid checksum {c:?}: expected sha256:<hex>"),
                    span,
                )
            })?)
        }
        None => None,
    };

    let action = |from: SourceRef, sources: Vec<String>, unpack: bool, dockerignore: bool| {
        FileAction::Copy(CopyAction {
            from,
            sources,
            dest: dest.clone(),
            chown: chown.clone(),
            chmod: chmod.clone(),
            link: spec.link,
            parents: cfg.parents,
            excludes: excludes.clone(),
            unpack,
            keep_git_dir: cfg.add.as_ref().is_some_and(|a| a.keep_git_dir),
            apply_dockerignore: dockerignore,
        })
    };

    let mut actions: Vec<FileAction<SourceRef>> = Vec::new();
    let mut paths: Vec<String> = Vec::new();
    let mut paths_at: Option<usize> = None;
    let mut shown_sources: Vec<String> = Vec::new();
    let mut shown_heredocs: Vec<String> = Vec::new();
    for source in &spec.sources {
        match source {
            Source::Path(p) => {
                let word = st.expand(p, span)?;
                shown_sources.push(word.clone());
                if is_git(&word) {
                    return Err(LowerError::new(
                        LowerErrorKind::Unsupported {
                            instruction: format!("{} of a git repository", cfg.keyword),
                        },
                        Some(location(span)),
                    ));
                }
                if is_url(&word) {
                    let Some(add) = &cfg.add else {
                        return Err(invalid("source can't be a URL for COPY", span));
                    };
                    actions.push(action(
                        SourceRef::Url {
                            url: word,
                            checksum: checksum.clone(),
                        },
                        Vec::new(),
                        add.unpack.unwrap_or(false),
                        false,
                    ));
                } else {
                    if paths_at.is_none() {
                        paths_at = Some(actions.len());
                    }
                    paths.push(word);
                }
            }
            Source::Heredoc(h) => {
                let body = h.body();
                let data = if h.expand {
                    st.scope
                        .expand_heredoc(&body)
                        .map_err(|e| expand_error(e, span))?
                        .value
                } else {
                    body
                };
                shown_heredocs.push(format!("<<{}", h.name));
                actions.push(action(
                    SourceRef::Inline {
                        name: h.name.clone(),
                        data: data.into_bytes(),
                        mode: 0o644,
                    },
                    vec![h.name.clone()],
                    false,
                    false,
                ));
            }
        }
    }
    if checksum.is_some()
        && actions
            .iter()
            .all(|a| !matches!(a, FileAction::Copy(c) if matches!(c.from, SourceRef::Url { .. })))
    {
        return Err(invalid("checksum requires HTTP(S) or Git sources", span));
    }
    if let Some(at) = paths_at {
        let unpack = cfg.add.as_ref().is_some_and(|a| a.unpack.unwrap_or(true));
        actions.insert(at, action(from, paths, unpack, from_context));
    }

    let mut created_by = String::from(cfg.keyword);
    if cfg.parents {
        created_by.push_str(" --parents");
    }
    if let Some(c) = &chown {
        created_by.push_str(&format!(" --chown={c}"));
    }
    if let Some(c) = &chmod {
        created_by.push_str(&format!(" --chmod={c}"));
    }
    for s in shown_sources.iter().chain(shown_heredocs.iter()) {
        created_by.push(' ');
        created_by.push_str(s);
    }
    created_by.push(' ');
    created_by.push_str(&dest_word);
    created_by.push_str(" # buildkit");

    let text = st
        .scope
        .expand(&step.original)
        .map(|e| e.value)
        .unwrap_or_else(|_| step.original.clone());
    let name = st.step_name(&uppercase_keyword(&text));
    let id = ctx.progress.vertex();
    let file = ctx.graph.add(
        Op::File { root, actions },
        inputs,
        name.clone(),
        Some(location(span)),
        id,
    );
    let n = match (link, st.vertex) {
        (true, Some(below)) => {
            let id = ctx.progress.vertex();
            ctx.graph.add(
                Op::Merge,
                vec![below, file],
                format!("LINK {name}"),
                Some(location(span)),
                id,
            )
        }
        _ => file,
    };
    st.vertex = Some(n);
    st.history_layer(created_by, n);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chmod_values() {
        let s = kiln_parser::Span::default();
        assert!(check_chmod("755", s).is_ok());
        assert!(check_chmod("0644", s).is_ok());
        assert!(check_chmod("7777", s).is_ok());
        assert!(check_chmod("17777", s).is_err());
        assert!(check_chmod("u+x", s).is_ok());
        assert!(check_chmod("u+rwx,go-w", s).is_ok());
        assert!(check_chmod("abc", s).is_err());
        assert!(check_chmod("", s).is_err());
    }

    #[test]
    fn url_kinds() {
        assert!(is_url("https://example.com/a.tar.gz"));
        assert!(!is_url("./http"));
        assert!(is_git("https://github.com/o/r.git"));
        assert!(is_git("git@github.com:o/r.git"));
        assert!(!is_git("https://example.com/file"));
    }
}
