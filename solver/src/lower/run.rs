//! RUN: a process on top of the stage's filesystem, with the shell form
//! wrapped in SHELL, heredocs handled as BuildKit does, the environment of
//! ENV and ARGs, the image's user and working directory, `--network`,
//! `--security` and `--mount`s.

use kiln_parser::{CommandLine, Mount as PMount, Run, Step};
use petgraph::graph::NodeIndex;

use crate::error::{LowerError, LowerErrorKind};
use crate::image::{format_platform, same_platform};
use crate::op::{Op, SourceRef};
use crate::worker::{CacheSharing, ExecSpec, Mount, MountKind, NetworkMode, Security};

use super::state::{StageState, clean_path, invalid, location, uppercase_keyword};
use super::{Ctx, gofmt};

/// The shell of the shell form when SHELL was not used.
pub(crate) const DEFAULT_SHELL: [&str; 2] = ["/bin/sh", "-c"];

/// SHELL + `[text]`.
pub(crate) fn with_shell(st: &StageState, text: String) -> Vec<String> {
    let mut args: Vec<String> = if st.image.shell.is_empty() {
        DEFAULT_SHELL.iter().map(|s| s.to_string()).collect()
    } else {
        st.image.shell.clone()
    };
    args.push(text);
    args
}

/// Whether `line` is nothing but a heredoc marker (`<<EOF`, `<<-"EOF"`).
fn is_lone_heredoc(line: &str) -> bool {
    let s = line.trim();
    let s = s.trim_start_matches(|c: char| c.is_ascii_digit());
    let Some(s) = s.strip_prefix("<<") else {
        return false;
    };
    let s = s.strip_prefix('-').unwrap_or(s).trim_start();
    let (s, quote) = match s.chars().next() {
        Some(q @ ('"' | '\'')) => (&s[1..], Some(q)),
        _ => (s, None),
    };
    let s = match quote {
        Some(q) => match s.strip_suffix(q) {
            Some(s) => s,
            None => return false,
        },
        None => s,
    };
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// BuildKit's short form of a heredoc for progress names.
fn summarize_heredoc(doc: &str) -> String {
    let doc = doc.trim();
    let mut lines = doc.lines();
    let first = lines.next().unwrap_or_default().to_string();
    if lines.next().is_some() {
        format!("{first}...")
    } else {
        first
    }
}

/// History form of a RUN: the stage's declared ARGs (`|N K=V ...`) then
/// the command (BuildKit's `runCommandString`).
pub(crate) fn run_command_string(st: &StageState, args: &[String]) -> String {
    let env = st.scope.run_env();
    let mut pairs: Vec<String> = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    for name in &st.declared_args {
        let value = env
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        match seen.iter().position(|n| n == name) {
            Some(i) => pairs[i] = format!("{name}={value}"),
            None => {
                seen.push(name.clone());
                pairs.push(format!("{name}={value}"));
            }
        }
    }
    let mut out: Vec<String> = Vec::new();
    if !pairs.is_empty() {
        out.push(format!("|{}", pairs.len()));
        out.extend(pairs);
    }
    out.extend(args.iter().cloned());
    out.join(" ")
}

/// The source a `from=` (mount) or `--from` (COPY) word names: a stage's
/// filesystem or an image, added as an input of the vertex being built.
pub(crate) fn from_source(
    ctx: &mut Ctx<'_>,
    word: &str,
    span: kiln_parser::Span,
    inputs: &mut Vec<NodeIndex>,
) -> Result<SourceRef, LowerError> {
    let vertex = match ctx.stage_ref(word, true) {
        Some(i) => ctx.stage_state(i, word, span)?.vertex,
        None => {
            let platform = ctx.target_platform.clone();
            let img = ctx
                .image(word, &platform)
                .cloned()
                .ok_or_else(|| invalid(format!("image {word} was not resolved"), span))?;
            let display = format!("FROM {}@{}", img.name, img.manifest_digest);
            Some(ctx.image_vertex(word, &platform, display, span)?)
        }
    };
    Ok(match vertex {
        None => SourceRef::Scratch,
        Some(v) => {
            let pos = match inputs.iter().position(|i| *i == v) {
                Some(p) => p,
                None => {
                    inputs.push(v);
                    inputs.len() - 1
                }
            };
            SourceRef::Input(pos)
        }
    })
}

/// An absolute path for a mount target (relative ones are under WORKDIR).
fn mount_target(st: &StageState, target: &str) -> String {
    if target.starts_with('/') {
        clean_path(target)
    } else {
        clean_path(&format!("{}/{target}", st.workdir()))
    }
}

pub(crate) fn lower(
    ctx: &mut Ctx<'_>,
    st: &mut StageState,
    step: &Step,
    run: &Run,
) -> Result<(), LowerError> {
    if !same_platform(&st.platform, &ctx.host_platform) {
        return Err(LowerError::new(
            LowerErrorKind::ForeignPlatform {
                wanted: format_platform(&st.platform),
                host: format_platform(&ctx.host_platform),
            },
            Some(location(step.span)),
        ));
    }
    let mut inputs: Vec<NodeIndex> = st.vertex.into_iter().collect();
    let root = st.vertex.map(|_| 0);
    let mut mounts = Vec::new();
    let mut secret_env = Vec::new();
    let mut ssh_mounts = 0usize;
    let mut display = uppercase_keyword(&step.original);

    let args = match &run.command {
        CommandLine::Exec(v) => v.clone(),
        CommandLine::Shell(text) if run.heredocs.is_empty() => with_shell(st, text.clone()),
        CommandLine::Shell(text) => {
            let first = &run.heredocs[0];
            display.push_str(&format!(" ({})", summarize_heredoc(&first.content)));
            if run.heredocs.len() == 1 && is_lone_heredoc(text) {
                let data = first.body();
                if data.starts_with("#!") {
                    // A script with a shebang runs as a file.
                    mounts.push(Mount {
                        target: "/dev/pipes".into(),
                        kind: MountKind::Bind {
                            from: SourceRef::Inline {
                                name: first.name.clone(),
                                data: data.into_bytes(),
                                mode: 0o755,
                            },
                            source: "/".into(),
                            readwrite: false,
                        },
                    });
                    with_shell(st, format!("/dev/pipes/{}", first.name))
                } else {
                    with_shell(st, data)
                }
            } else {
                let mut script = text.clone();
                for h in &run.heredocs {
                    script.push('\n');
                    script.push_str(&h.content);
                    script.push_str(&h.name);
                }
                with_shell(st, script)
            }
        }
    };

    for spec in &run.mounts {
        let resolved = spec
            .resolve(&st.scope)
            .map_err(|e| LowerError::new(LowerErrorKind::Mount(e), Some(location(spec.span))))?
            .value;
        match resolved {
            PMount::Bind(b) => {
                let from = match &b.from {
                    None => SourceRef::Context,
                    Some(f) => from_source(ctx, f, spec.span, &mut inputs)?,
                };
                mounts.push(Mount {
                    target: mount_target(st, &b.target),
                    kind: MountKind::Bind {
                        from,
                        source: clean_path(b.source.as_deref().unwrap_or("/")),
                        readwrite: b.readwrite,
                    },
                });
            }
            PMount::Cache(c) => {
                let from = match &c.from {
                    None => None,
                    Some(f) => Some((
                        from_source(ctx, f, spec.span, &mut inputs)?,
                        clean_path(c.source.as_deref().unwrap_or("/")),
                    )),
                };
                mounts.push(Mount {
                    target: mount_target(st, &c.target),
                    kind: MountKind::Cache {
                        id: c.id.clone(),
                        sharing: match c.sharing {
                            kiln_parser::CacheSharing::Shared => CacheSharing::Shared,
                            kiln_parser::CacheSharing::Private => CacheSharing::Private,
                            kiln_parser::CacheSharing::Locked => CacheSharing::Locked,
                        },
                        readonly: c.readonly,
                        from,
                        mode: c.mode,
                        uid: c.uid,
                        gid: c.gid,
                    },
                });
            }
            PMount::Tmpfs(t) => mounts.push(Mount {
                target: mount_target(st, &t.target),
                kind: MountKind::Tmpfs { size: t.size },
            }),
            PMount::Secret(s) => {
                if let Some(var) = &s.env {
                    secret_env.push((var.clone(), s.id.clone(), s.required));
                }
                if let Some(target) = &s.target {
                    mounts.push(Mount {
                        target: mount_target(st, target),
                        kind: MountKind::Secret {
                            id: s.id.clone(),
                            required: s.required,
                            mode: s.mode,
                            uid: s.uid,
                            gid: s.gid,
                        },
                    });
                }
            }
            PMount::Ssh(s) => {
                // BuildKit's default: /run/buildkit/ssh_agent.N, N counting
                // the step's ssh mounts.
                let target = match &s.target {
                    Some(t) => mount_target(st, t),
                    None => format!("/run/buildkit/ssh_agent.{ssh_mounts}"),
                };
                ssh_mounts += 1;
                mounts.push(Mount {
                    target,
                    kind: MountKind::Ssh {
                        id: s.id.clone(),
                        required: s.required,
                        mode: s.mode,
                        uid: s.uid,
                        gid: s.gid,
                    },
                });
            }
        }
    }

    let env: Vec<String> = st
        .scope
        .run_env()
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    // Proxy build args reach RUN without being declared, and stay out of
    // the cache key and the history.
    let proxy_env: Vec<String> = kiln_parser::PREDEFINED_ARGS
        .iter()
        .filter(|k| !env.iter().any(|e| e.split('=').next() == Some(**k)))
        .filter_map(|k| ctx.opts.build_args.get(*k).map(|v| format!("{k}={v}")))
        .collect();
    let network = match run.network {
        None => ctx.opts.network,
        Some(kiln_parser::NetworkMode::Default) => ctx.opts.network,
        Some(kiln_parser::NetworkMode::None) => NetworkMode::None,
        Some(kiln_parser::NetworkMode::Host) => NetworkMode::Host,
    };
    let security = match run.security {
        Some(kiln_parser::SecurityMode::Insecure) => Security::Insecure,
        _ => Security::Sandbox,
    };
    let spec = ExecSpec {
        args: args.clone(),
        env,
        cwd: st.workdir(),
        user: st.image.user(),
        network,
        security,
        mounts,
        secret_env,
    };
    let created_by = format!("RUN {} # buildkit", run_command_string(st, &args));
    let name = st.step_name(&display);
    let id = ctx.progress.vertex();
    let n = ctx.graph.add(
        Op::Exec {
            root,
            spec,
            proxy_env,
        },
        inputs,
        name,
        Some(location(step.span)),
        id,
    );
    st.vertex = Some(n);
    st.history_layer(created_by, n);
    Ok(())
}

/// `CMD`/`ENTRYPOINT`/`HEALTHCHECK` argv from a command line.
pub(crate) fn command_args(st: &StageState, c: &CommandLine) -> Vec<String> {
    match c {
        CommandLine::Exec(v) => v.clone(),
        CommandLine::Shell(text) => with_shell(st, text.clone()),
    }
}

/// `%q` of an argv, for CMD/ENTRYPOINT history.
pub(crate) fn quoted(args: &[String]) -> String {
    gofmt::quote_list(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lone_heredocs() {
        assert!(is_lone_heredoc("<<EOF"));
        assert!(is_lone_heredoc(" <<-EOF "));
        assert!(is_lone_heredoc("<<\"EOF\""));
        assert!(is_lone_heredoc("3<<'X1'"));
        assert!(!is_lone_heredoc("cat <<EOF"));
        assert!(!is_lone_heredoc("<<EOF > file"));
        assert!(!is_lone_heredoc("<<\"EOF'"));
    }

    #[test]
    fn heredoc_summary() {
        assert_eq!(summarize_heredoc("\necho hi\n"), "echo hi");
        assert_eq!(summarize_heredoc("a\nb\n"), "a...");
    }
}
