//! `kiln build`: build an image from a Dockerfile.
//!
//! Options are checked first (no I/O), then the Dockerfile and
//! `.dockerignore` are read and parsed, the worker is set up over the
//! store, and the solver runs under a progress renderer. Ctrl-C cancels the
//! build: running steps are stopped and cleaned up before kiln exits 130.
//! After a successful build the image is tagged and exported as asked.

mod cache;
mod export;
mod failure;
mod options;
pub mod prune;
mod ssh;

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;
use kiln_parser::{DockerIgnore, Dockerfile};
use kiln_registry::Reference;
use kiln_solver::{BuildOptions, CacheIndex, SolveError};
use miette::{IntoDiagnostic, WrapErr, miette};
use tokio_util::sync::CancellationToken;

use crate::cli::GlobalArgs;
use crate::commands::{CmdResult, store};
use crate::progress::{ProgressMode, Renderer};
use crate::worker::{Context, KilnWorker};
use kiln_executor::SecretSource;
use options::OutputSpec;

/// Build an image from a Dockerfile.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Name (and tag) the image: `name[:tag]` (repeatable).
    #[arg(short = 't', long = "tag", value_name = "NAME")]
    tags: Vec<String>,
    /// The Dockerfile (default: CONTEXT/Dockerfile; `-` reads it from stdin).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file: Option<PathBuf>,
    /// Set a build argument (`KEY` alone takes kiln's own environment value).
    #[arg(long = "build-arg", value_name = "KEY=VALUE")]
    build_args: Vec<String>,
    /// Build this stage (default: the last).
    #[arg(long, value_name = "STAGE")]
    target: Option<String>,
    /// Do not use the build cache.
    #[arg(long)]
    no_cache: bool,
    /// How to show progress.
    #[arg(long, value_enum, default_value = "auto", overrides_with = "progress")]
    progress: ProgressMode,
    /// Print only the image id.
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Push the image (every -t name) after building.
    #[arg(long)]
    push: bool,
    /// Target platform (`os/arch[/variant]`).
    #[arg(long, value_name = "PLATFORM")]
    platform: Option<String>,
    /// Expose a secret to RUN --mount=type=secret: `id=ID[,src=PATH|,env=VAR]`.
    #[arg(long = "secret", value_name = "SPEC")]
    secrets: Vec<String>,
    /// Add a label to the image (repeatable).
    #[arg(long = "label", value_name = "KEY=VALUE")]
    labels: Vec<String>,
    /// Write the image id to this file.
    #[arg(long, value_name = "FILE")]
    iidfile: Option<PathBuf>,
    /// Write the image digests as JSON to this file.
    #[arg(long, value_name = "FILE")]
    metadata_file: Option<PathBuf>,
    /// Network of RUN steps that do not set one: default, none or host.
    #[arg(long, value_name = "MODE", default_value = "default")]
    network: String,
    /// Also export the image: `type=oci|docker,dest=FILE` or `type=local,dest=DIR`.
    #[arg(short = 'o', long = "output", value_name = "SPEC")]
    outputs: Vec<String>,
    /// Forward an SSH agent to RUN --mount=type=ssh: `default|ID[=SOCKET]`
    /// (without a socket, $SSH_AUTH_SOCK).
    #[arg(long = "ssh", value_name = "ID[=SOCKET]")]
    ssh: Vec<String>,
    /// Import build cache from a registry: `REF` or
    /// `type=registry,ref=REF` (repeatable; a missing cache is a warning).
    #[arg(long = "cache-from", value_name = "REF")]
    cache_from: Vec<String>,
    /// Export the build cache to a registry: `REF` or
    /// `type=registry,ref=REF[,mode=min|max][,ignore-error=true]`.
    #[arg(long = "cache-to", value_name = "REF")]
    cache_to: Vec<String>,
    /// Steps running at once (default: the number of cores).
    #[arg(short = 'j', long, value_name = "N", default_value_t = 0)]
    jobs: usize,
    /// The build context: a directory, or `-` for a Dockerfile on stdin and
    /// no context.
    #[arg(value_name = "CONTEXT")]
    context: String,
}

/// Options checked before anything runs.
struct Plan {
    tags: Vec<Reference>,
    outputs: Vec<OutputSpec>,
    secrets: HashMap<String, SecretSource>,
    opts: BuildOptions,
    cache_from: Vec<cache::CacheSpec>,
    cache_to: Vec<cache::CacheSpec>,
}

fn plan(args: &BuildArgs) -> miette::Result<Plan> {
    let mut tags = Vec::new();
    for t in &args.tags {
        let r = Reference::parse(t)
            .into_diagnostic()
            .wrap_err_with(|| format!("invalid tag {t:?}"))?;
        if r.digest().is_some() {
            return Err(miette!("invalid tag {t:?}: a tag cannot carry a digest"));
        }
        tags.push(r);
    }
    if args.push && tags.is_empty() {
        return Err(miette!(
            help = "name the image with -t registry/repository:tag",
            "--push needs a name to push to"
        ));
    }
    let outputs = args
        .outputs
        .iter()
        .map(|o| options::parse_output(o))
        .collect::<Result<Vec<_>, _>>()
        .into_diagnostic()?;
    let mut secrets = HashMap::new();
    for s in &args.secrets {
        let spec = options::parse_secret(s).into_diagnostic()?;
        let source = match spec.source {
            options::SecretSource::File(p) => SecretSource::File(p),
            options::SecretSource::Env(v) => SecretSource::Env(v),
        };
        secrets.insert(spec.id, source);
    }
    let platform = match &args.platform {
        None => None,
        Some(p) => Some(
            kiln_solver::parse_platform_lenient(p)
                .ok_or_else(|| options::OptionError::Platform(p.clone()))
                .into_diagnostic()?,
        ),
    };
    let opts = BuildOptions {
        build_args: options::parse_build_args(&args.build_args).into_diagnostic()?,
        target: args.target.clone(),
        labels: options::parse_labels(&args.labels).into_diagnostic()?,
        platform,
        network: options::parse_network(&args.network).into_diagnostic()?,
        no_cache: args.no_cache,
        jobs: args.jobs,
        cache_from: Default::default(),
    };
    let cache_from = args
        .cache_from
        .iter()
        .map(|s| cache::parse_spec(s, false))
        .collect::<Result<Vec<_>, _>>()
        .into_diagnostic()?;
    let cache_to = args
        .cache_to
        .iter()
        .map(|s| cache::parse_spec(s, true))
        .collect::<Result<Vec<_>, _>>()
        .into_diagnostic()?;
    Ok(Plan {
        tags,
        outputs,
        secrets,
        opts,
        cache_from,
        cache_to,
    })
}

/// The Dockerfile: its text, the name shown in messages, and where it is.
struct DockerfileSource {
    text: String,
    display: String,
    path: Option<PathBuf>,
}

fn read_stdin() -> miette::Result<String> {
    let mut s = String::new();
    std::io::stdin()
        .read_to_string(&mut s)
        .into_diagnostic()
        .wrap_err("cannot read the Dockerfile from stdin")?;
    Ok(s)
}

fn read_dockerfile(args: &BuildArgs, context: Option<&Path>) -> miette::Result<DockerfileSource> {
    let path = match (&args.file, context) {
        (Some(f), _) if f.as_os_str() == "-" => {
            if context.is_none() {
                return Err(miette!(
                    "the Dockerfile and the context cannot both come from stdin"
                ));
            }
            return Ok(DockerfileSource {
                text: read_stdin()?,
                display: "Dockerfile".into(),
                path: None,
            });
        }
        (Some(f), _) => f.clone(),
        (None, Some(c)) => c.join("Dockerfile"),
        (None, None) => {
            return Ok(DockerfileSource {
                text: read_stdin()?,
                display: "Dockerfile".into(),
                path: None,
            });
        }
    };
    let text = std::fs::read_to_string(&path)
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot read the Dockerfile {}", path.display()))?;
    let display = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "Dockerfile".into());
    Ok(DockerfileSource {
        text,
        display,
        path: Some(path),
    })
}

fn read_dockerignore(
    dockerfile: Option<&Path>,
    context: Option<&Path>,
) -> miette::Result<Option<DockerIgnore>> {
    let Some(context) = context else {
        return Ok(None);
    };
    let dockerfile = dockerfile
        .map(Path::to_path_buf)
        .unwrap_or_else(|| context.join("Dockerfile"));
    for candidate in kiln_parser::ignore_file_candidates(&dockerfile, context) {
        match std::fs::read_to_string(&candidate) {
            Ok(text) => {
                let ignore = DockerIgnore::parse(&text)
                    .into_diagnostic()
                    .wrap_err_with(|| format!("invalid {}", candidate.display()))?;
                return Ok(Some(ignore));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(e)
                    .into_diagnostic()
                    .wrap_err_with(|| format!("cannot read {}", candidate.display()));
            }
        }
    }
    Ok(None)
}

pub fn run(global: &GlobalArgs, args: BuildArgs) -> CmdResult {
    let plan = plan(&args)?;
    let context = if args.context == "-" {
        None
    } else {
        let dir = PathBuf::from(&args.context);
        let meta = std::fs::metadata(&dir)
            .into_diagnostic()
            .wrap_err_with(|| format!("cannot read the build context {}", dir.display()))?;
        if !meta.is_dir() {
            return Err(miette!(
                "the build context {} is not a directory",
                dir.display()
            ));
        }
        Some(dir)
    };
    let source = read_dockerfile(&args, context.as_deref())?;
    let dockerfile = Dockerfile::parse(&source.text)
        .map_err(|e| crate::diagnostic::dockerfile_error(&source.display, &source.text, &e))?;
    let ignore = read_dockerignore(source.path.as_deref(), context.as_deref())?;

    let store = store::open(global)?;
    let root = global.root_dir();
    let index = CacheIndex::open(&root)
        .into_diagnostic()
        .wrap_err("cannot open the build cache")?;
    let epoch = plan
        .opts
        .build_args
        .get("SOURCE_DATE_EPOCH")
        .and_then(|v| v.parse::<i64>().ok());
    let worker = KilnWorker::new(
        store.clone(),
        &root,
        Context {
            dir: context.clone(),
            ignore: ignore.map(Arc::new),
        },
        plan.secrets.clone(),
        epoch,
        plan.tags.clone(),
    )
    .into_diagnostic()?;
    let ssh_agents =
        ssh::parse(&args.ssh, std::env::var("SSH_AUTH_SOCK").ok().as_deref()).into_diagnostic()?;
    let worker = Arc::new(worker.with_ssh_agents(ssh_agents));

    let mode = if args.quiet {
        ProgressMode::Quiet
    } else {
        args.progress.resolve()
    };
    let renderer = Renderer::start(mode);
    let progress = renderer.progress.clone();
    let v = progress.vertex();
    progress.started(
        v,
        &format!("[internal] load build definition from {}", source.display),
    );
    progress.status(
        v,
        &format!("transferring dockerfile: {}B done", source.text.len()),
    );
    progress.completed(v);

    let cancel = CancellationToken::new();
    let mut cache_warnings = Vec::new();
    let mut export_warnings = Vec::new();
    let outcome = super::block_on(async {
        let ctrl_c = {
            let cancel = cancel.clone();
            tokio::spawn(async move {
                if tokio::signal::ctrl_c().await.is_ok() {
                    cancel.cancel();
                }
            })
        };
        let mut opts = plan.opts.clone();
        if !plan.cache_from.is_empty() && !opts.no_cache {
            // Ctrl-C skips the import; the build then stops at once.
            let (imported, warnings) = tokio::select! {
                r = cache::import(&store, &plan.cache_from, &progress) => r,
                _ = cancel.cancelled() => Default::default(),
            };
            cache_warnings = warnings;
            worker.set_remote_layers(imported.layers);
            opts.cache_from = Arc::new(imported.cache);
        }
        let r = kiln_solver::build(
            worker.clone(),
            &index,
            &dockerfile,
            &opts,
            &progress,
            &cancel,
        )
        .await;
        let r = match r {
            Ok(out) => export::finish(
                &store,
                &worker,
                &out,
                &plan.tags,
                &plan.outputs,
                args.push,
                &progress,
            )
            .await
            .map(|()| out),
            Err(e) => Err(export::Failure::Solve(e)),
        };
        let r = match r {
            Ok(out) => {
                let mut failed = None;
                for spec in &plan.cache_to {
                    let remote = worker.remote_layers();
                    let exported = tokio::select! {
                        r = cache::export(&store, spec, &out.cache, remote, &progress) => r,
                        _ = cancel.cancelled() => {
                            failed = Some(export::Failure::Solve(SolveError::Cancelled));
                            break;
                        }
                    };
                    match exported {
                        Ok(warning) => export_warnings.extend(warning),
                        Err(e) => {
                            failed = Some(export::Failure::Export(e));
                            break;
                        }
                    }
                }
                match failed {
                    Some(f) => Err(f),
                    None => Ok(out),
                }
            }
            e => e,
        };
        ctrl_c.abort();
        r
    })?;
    drop(progress);
    worker.save_caches();
    let report = renderer.finish();
    for w in cache_warnings.iter().chain(&export_warnings) {
        eprintln!("WARNING: {w}");
    }

    match outcome {
        Ok(out) => {
            let id = out.image.config_digest.to_string();
            if let Some(f) = &args.iidfile {
                crate::commands::build::export::write_file(f, id.as_bytes())?;
            }
            if let Some(f) = &args.metadata_file {
                let meta = export::metadata(&out, &plan.tags);
                crate::commands::build::export::write_file(f, meta.as_bytes())?;
            }
            if args.quiet {
                println!("{id}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(export::Failure::Solve(SolveError::Cancelled)) => {
            eprintln!("build cancelled");
            Ok(ExitCode::from(130))
        }
        Err(export::Failure::Solve(e)) => {
            failure::report(&source.display, &source.text, &e, &report);
            Ok(ExitCode::from(1))
        }
        Err(export::Failure::Export(e)) => Err(e),
    }
}
