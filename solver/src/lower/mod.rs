//! Lowering: typed Dockerfile stages become the build graph, the way
//! BuildKit's Dockerfile frontend (`dockerfile2llb`) does it.
//!
//! 1. Plan: the target stage (`--target`, else the last) and every stage it
//!    needs — its base stage, `COPY --from` and `RUN --mount from=` stages,
//!    and the same in ONBUILD triggers it inherits. Other stages are never
//!    lowered, so they never run.
//! 2. Resolve: every image those stages name (FROM, `--from=image`) is
//!    resolved to content by the worker, concurrently (`[internal] load
//!    metadata for …`). A base image's ONBUILD triggers can name more
//!    stages and images, so planning repeats until nothing new appears.
//! 3. Dispatch: the needed stages in file order, each instruction through
//!    its own lowering (one file per instruction), which adds vertices,
//!    changes the stage's scope and image config, and records history.

mod add;
mod arg;
mod cmd;
mod copy;
mod entrypoint;
mod env;
mod expose;
mod from;
mod gofmt;
mod healthcheck;
mod label;
mod maintainer;
mod onbuild;
mod run;
mod shell;
pub(crate) mod state;
mod stopsignal;
mod user;
mod volume;
mod workdir;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use futures::future::try_join_all;
use kiln_parser::{Dockerfile, Instruction, PlatformArgs, Scope, Span};
use oci_spec::image::Platform;
use petgraph::graph::NodeIndex;

use crate::error::{LowerError, LowerErrorKind, SolveError};
use crate::graph::BuildGraph;
use crate::image::{ImageConfig, format_platform};
use crate::op::Op;
use crate::progress::{OpContext, Progress};
use crate::worker::{NetworkMode, ResolvedImage, Worker};
use state::{StageState, location};
use tokio_util::sync::CancellationToken;

/// What a build needs besides the Dockerfile.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// `--build-arg` values.
    pub build_args: BTreeMap<String, String>,
    /// `--target`: the stage to build (default: the last).
    pub target: Option<String>,
    /// `--label`s added to the image.
    pub labels: BTreeMap<String, String>,
    /// `--platform`: the target platform (default: the host's).
    pub platform: Option<Platform>,
    /// `--network`: RUN's network when the step does not say.
    pub network: NetworkMode,
    /// `--no-cache`.
    pub no_cache: bool,
    /// `--jobs`: steps running at once (0: the number of cores).
    pub jobs: usize,
    /// `--cache-from`: records imported from elsewhere, consulted after the
    /// local index.
    pub cache_from: std::sync::Arc<crate::transfer::ImportedCache>,
}

/// The lowered build.
pub(crate) struct Lowered {
    pub graph: BuildGraph,
    pub target: StageState,
}

/// Something a stage depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Dep {
    Stage(usize),
    /// An image by name and platform, and where it is named.
    Image(String, String, Span),
}

/// The lowering context shared by the instruction lowerings.
pub(crate) struct Ctx<'a> {
    pub df: &'a Dockerfile,
    pub opts: &'a BuildOptions,
    pub graph: BuildGraph,
    pub progress: Progress,
    pub global: Scope,
    /// Final states of the stages lowered so far.
    pub stages: Vec<Option<StageState>>,
    /// Resolved images by (name, platform).
    pub images: HashMap<(String, String), ResolvedImage>,
    /// Image vertices already added, by config digest.
    image_vertices: HashMap<(String, String), NodeIndex>,
    pub target_platform: Platform,
    pub host_platform: Platform,
    /// Names shown for stages in progress.
    display_names: Vec<String>,
}

impl Ctx<'_> {
    /// The stage a `--from` / `from=` / FROM word refers to: by name, else
    /// by index (FROM: by name only).
    pub(crate) fn stage_ref(&self, word: &str, allow_index: bool) -> Option<usize> {
        let lower = word.to_ascii_lowercase();
        if let Some(i) = self
            .df
            .stages
            .iter()
            .position(|s| s.name.as_deref() == Some(lower.as_str()))
        {
            return Some(i);
        }
        if allow_index {
            return word.parse::<usize>().ok();
        }
        None
    }

    /// The final state of an earlier stage.
    pub(crate) fn stage_state(
        &self,
        idx: usize,
        word: &str,
        span: Span,
    ) -> Result<&StageState, LowerError> {
        if idx >= self.df.stages.len() {
            return Err(LowerError::new(
                LowerErrorKind::BadStageIndex(idx),
                Some(location(span)),
            ));
        }
        self.stages
            .get(idx)
            .and_then(Option::as_ref)
            .ok_or_else(|| {
                LowerError::new(
                    LowerErrorKind::LaterStage {
                        from: word.to_string(),
                    },
                    Some(location(span)),
                )
            })
    }

    /// The vertex of an image source (added once per image).
    pub(crate) fn image_vertex(
        &mut self,
        name: &str,
        platform: &Platform,
        display: String,
        span: Span,
    ) -> Result<NodeIndex, LowerError> {
        let key = (name.to_string(), format_platform(platform));
        if let Some(n) = self.image_vertices.get(&key) {
            return Ok(*n);
        }
        let img = self.images.get(&key).cloned().ok_or_else(|| {
            LowerError::new(
                LowerErrorKind::Invalid {
                    what: format!("image {name} was not resolved"),
                },
                Some(location(span)),
            )
        })?;
        let id = self.progress.vertex();
        let n = self
            .graph
            .add(Op::Image(img), vec![], display, Some(location(span)), id);
        self.image_vertices.insert(key, n);
        Ok(n)
    }

    /// The resolved image `name` for `platform`.
    pub(crate) fn image(&self, name: &str, platform: &Platform) -> Option<&ResolvedImage> {
        self.images
            .get(&(name.to_string(), format_platform(platform)))
    }
}

/// Parses the ONBUILD triggers of a base image config.
fn parse_triggers(triggers: &[String], span: Span) -> Result<Vec<kiln_parser::Step>, LowerError> {
    let mut out = Vec::new();
    for t in triggers {
        let text = format!("FROM scratch\n{t}\n");
        let df = Dockerfile::parse(&text).map_err(|e| {
            LowerError::new(
                LowerErrorKind::Trigger {
                    trigger: t.clone(),
                    source: Box::new(e),
                },
                Some(location(span)),
            )
        })?;
        for mut step in df.stages.into_iter().flat_map(|s| s.instructions) {
            // Errors of a trigger point at the FROM that inherited it.
            step.span = span;
            out.push(step);
        }
    }
    Ok(out)
}

/// The stages and images `steps` refer to (COPY --from, RUN --mount from=).
fn step_deps(ctx: &Ctx<'_>, steps: &[kiln_parser::Step]) -> Result<Vec<Dep>, LowerError> {
    let mut out = Vec::new();
    for step in steps {
        match &step.instruction {
            Instruction::Copy(c) => {
                if let Some(from) = &c.from {
                    let word = ctx
                        .global
                        .expand(from)
                        .map_err(|e| state::expand_error(e, step.span))?
                        .value;
                    match ctx.stage_ref(&word, true) {
                        Some(i) => out.push(Dep::Stage(i)),
                        None => out.push(Dep::Image(
                            word,
                            format_platform(&ctx.target_platform),
                            step.span,
                        )),
                    }
                }
            }
            Instruction::Run(r) => {
                for m in &r.mounts {
                    if let Some(from) = &m.from {
                        match ctx.stage_ref(from, true) {
                            Some(i) => out.push(Dep::Stage(i)),
                            None => out.push(Dep::Image(
                                from.clone(),
                                format_platform(&ctx.target_platform),
                                m.span,
                            )),
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Where a stage starts from.
#[derive(Debug, Clone)]
pub(crate) enum Base {
    Scratch,
    Stage(usize),
    Image { name: String, platform: Platform },
}

/// Expands a stage's FROM line.
pub(crate) fn stage_base(ctx: &Ctx<'_>, idx: usize) -> Result<Base, LowerError> {
    let stage = &ctx.df.stages[idx];
    let loc = Some(location(stage.span));
    let name = ctx
        .global
        .expand(&stage.base)
        .map_err(|e| state::expand_error(e, stage.span))?
        .value;
    if name.is_empty() {
        return Err(LowerError::new(
            LowerErrorKind::BlankBase(stage.base.clone()),
            loc,
        ));
    }
    if name.eq_ignore_ascii_case("scratch") {
        return Ok(Base::Scratch);
    }
    if let Some(i) = ctx.stage_ref(&name, false)
        && i < idx
    {
        return Ok(Base::Stage(i));
    }
    let platform = match &stage.platform {
        Some(p) => {
            let word = ctx
                .global
                .expand(p)
                .map_err(|e| state::expand_error(e, stage.span))?
                .value;
            crate::image::parse_platform_lenient(&word)
                .ok_or_else(|| LowerError::new(LowerErrorKind::BadPlatform(word), loc))?
        }
        None => ctx.target_platform.clone(),
    };
    Ok(Base::Image { name, platform })
}

/// Resolves images concurrently, each under its own progress vertex.
async fn resolve_images<W: Worker>(
    worker: &W,
    wanted: Vec<(String, Platform, Span)>,
    progress: &Progress,
    cancel: &CancellationToken,
) -> Result<Vec<((String, String), ResolvedImage)>, LowerError> {
    let futs = wanted.into_iter().map(|(name, platform, span)| {
        let progress = progress.clone();
        let cancel = cancel.clone();
        async move {
            let v = progress.vertex();
            let label = format!("[internal] load metadata for {name}");
            progress.started(v, &label);
            let ctx = OpContext::new(progress.clone(), v, cancel);
            match worker.resolve_image(&name, &platform, &ctx).await {
                Ok(img) => {
                    progress.completed(v);
                    Ok(((name, format_platform(&platform)), img))
                }
                Err(e) => {
                    progress.failed(v, &e.to_string());
                    Err(LowerError::new(
                        LowerErrorKind::Resolve {
                            name,
                            source: Arc::new(e),
                        },
                        Some(location(span)),
                    ))
                }
            }
        }
    });
    try_join_all(futs).await
}

/// Lowers the Dockerfile for `opts`, resolving images with `worker`.
pub(crate) async fn lower<W: Worker>(
    worker: &W,
    df: &Dockerfile,
    opts: &BuildOptions,
    progress: &Progress,
    cancel: &CancellationToken,
) -> Result<Lowered, SolveError> {
    if df.stages.is_empty() {
        return Err(LowerError::new(LowerErrorKind::NoStages, None).into());
    }
    let host_platform = crate::image::host_platform();
    let target_platform = opts
        .platform
        .clone()
        .unwrap_or_else(|| host_platform.clone());
    let platform_args = PlatformArgs {
        build: to_parser_platform(&host_platform),
        target: to_parser_platform(&target_platform),
    };
    let global = df
        .global_scope(&opts.build_args, &platform_args)
        .map_err(|e| {
            let span = e.span;
            LowerError::new(LowerErrorKind::Parse(Box::new(e)), Some(location(span)))
        })?;
    let target_idx = match &opts.target {
        None => df.stages.len() - 1,
        Some(t) => df
            .stages
            .iter()
            .position(|s| s.name.as_deref() == Some(t.to_ascii_lowercase().as_str()))
            .ok_or_else(|| LowerError::new(LowerErrorKind::UnknownTarget(t.clone()), None))?,
    };
    let display_names: Vec<String> = df
        .stages
        .iter()
        .map(|s| match &s.name {
            _ if df.stages.len() == 1 => String::new(),
            Some(n) => n.clone(),
            None => format!("stage-{}", s.index),
        })
        .collect();
    let mut ctx = Ctx {
        df,
        opts,
        graph: BuildGraph::new(),
        progress: progress.clone(),
        global,
        stages: vec![None; df.stages.len()],
        images: HashMap::new(),
        image_vertices: HashMap::new(),
        target_platform,
        host_platform,
        display_names,
    };

    // Plan and resolve until ONBUILD triggers add nothing new.
    let mut needed: BTreeSet<usize>;
    let mut triggers: HashMap<usize, Vec<kiln_parser::Step>> = HashMap::new();
    loop {
        let mut stack = vec![target_idx];
        let mut reach = BTreeSet::new();
        let mut images: BTreeSet<(String, String)> = BTreeSet::new();
        let mut wanted_images = Vec::new();
        while let Some(i) = stack.pop() {
            if !reach.insert(i) {
                continue;
            }
            let mut deps = step_deps(&ctx, &df.stages[i].instructions)?;
            match stage_base(&ctx, i)? {
                Base::Stage(b) => {
                    deps.push(Dep::Stage(b));
                    let inherited = onbuild::stage_triggers(&df.stages[b]);
                    deps.extend(step_deps(&ctx, &inherited)?);
                    triggers.insert(i, inherited);
                }
                Base::Image { name, platform } => {
                    deps.push(Dep::Image(
                        name.clone(),
                        format_platform(&platform),
                        df.stages[i].span,
                    ));
                    if let Some(img) = ctx.image(&name, &platform) {
                        let cfg = ImageConfig::parse(&img.config_json).map_err(|e| {
                            LowerError::new(
                                LowerErrorKind::BaseConfig {
                                    name: name.clone(),
                                    source: e,
                                },
                                Some(location(df.stages[i].span)),
                            )
                        })?;
                        let t = parse_triggers(&cfg.on_build, df.stages[i].span)?;
                        deps.extend(step_deps(&ctx, &t)?);
                        triggers.insert(i, t);
                    }
                }
                Base::Scratch => {}
            }
            for d in deps {
                match d {
                    Dep::Stage(s) => {
                        if s >= df.stages.len() {
                            return Err(LowerError::new(
                                LowerErrorKind::BadStageIndex(s),
                                Some(location(df.stages[i].span)),
                            )
                            .into());
                        }
                        if s == i {
                            return Err(LowerError::new(
                                LowerErrorKind::Cycle(display_stage(df, s)),
                                Some(location(df.stages[i].span)),
                            )
                            .into());
                        }
                        stack.push(s);
                    }
                    Dep::Image(name, plat, span) => {
                        if images.insert((name.clone(), plat.clone()))
                            && !ctx.images.contains_key(&(name.clone(), plat.clone()))
                        {
                            let p = crate::image::parse_platform_lenient(&plat)
                                .unwrap_or_else(|| ctx.target_platform.clone());
                            wanted_images.push((name, p, span));
                        }
                    }
                }
            }
        }
        needed = reach;
        if wanted_images.is_empty() {
            break;
        }
        let resolved = resolve_images(worker, wanted_images, progress, cancel).await?;
        ctx.images.extend(resolved);
    }

    // Dispatch the needed stages in file order.
    for &i in &needed {
        let mut st = from::lower_from(&mut ctx, i)?;
        if let Some(ts) = triggers.get(&i) {
            st.cmd_total += ts.len();
            st.in_onbuild = true;
            for step in ts {
                dispatch(&mut ctx, &mut st, step)?;
            }
            st.in_onbuild = false;
        }
        for step in &df.stages[i].instructions {
            dispatch(&mut ctx, &mut st, step)?;
        }
        ctx.stages[i] = Some(st);
    }
    let mut target = ctx.stages[target_idx]
        .take()
        .expect("the target was lowered");
    if !opts.labels.is_empty() {
        target.image.update_config(|c| {
            let mut labels = c.labels().clone().unwrap_or_default();
            labels.extend(opts.labels.clone());
            c.set_labels(Some(labels));
        });
    }
    if opts.platform.is_some() {
        target.image.oci.set_os(ctx.target_platform.os().clone());
        target
            .image
            .oci
            .set_architecture(ctx.target_platform.architecture().clone());
        target
            .image
            .oci
            .set_variant(ctx.target_platform.variant().clone());
    }
    Ok(Lowered {
        graph: ctx.graph,
        target,
    })
}

fn display_stage(df: &Dockerfile, i: usize) -> String {
    df.stages[i]
        .name
        .clone()
        .unwrap_or_else(|| format!("stage-{i}"))
}

fn to_parser_platform(p: &Platform) -> kiln_parser::Platform {
    kiln_parser::Platform {
        os: p.os().to_string(),
        architecture: p.architecture().to_string(),
        variant: p.variant().clone(),
    }
}

/// Lowers one instruction of a stage.
fn dispatch(
    ctx: &mut Ctx<'_>,
    st: &mut StageState,
    step: &kiln_parser::Step,
) -> Result<(), LowerError> {
    match &step.instruction {
        Instruction::Run(r) => run::lower(ctx, st, step, r),
        Instruction::Copy(c) => copy::lower_copy(ctx, st, step, c),
        Instruction::Add(a) => copy::lower_add(ctx, st, step, a),
        Instruction::Workdir(w) => workdir::lower(ctx, st, step, w),
        Instruction::Env(pairs) => env::lower(st, step, pairs),
        Instruction::Arg(decls) => arg::lower(st, step, decls),
        Instruction::Label(pairs) => label::lower(st, step, pairs),
        Instruction::Cmd(c) => cmd::lower(st, c),
        Instruction::Entrypoint(c) => entrypoint::lower(st, c),
        Instruction::Shell(s) => shell::lower(st, s),
        Instruction::User(u) => user::lower(st, step, u),
        Instruction::Expose(p) => expose::lower(st, step, p),
        Instruction::Volume(v) => volume::lower(st, step, v),
        Instruction::StopSignal(s) => stopsignal::lower(st, step, s),
        Instruction::Healthcheck(h) => healthcheck::lower(st, h),
        Instruction::Maintainer(m) => maintainer::lower(st, m),
        Instruction::Onbuild(o) => onbuild::lower(st, o),
    }
}

#[cfg(test)]
mod tests;
