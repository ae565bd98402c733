//! The scheduler: computes cache keys, consults the index, and runs what
//! is missing, in parallel on tokio.
//!
//! Three phases:
//! 1. keys — every vertex the demanded ones depend on gets its cache key,
//!    which needs its inputs' keys and the content checksums of what it reads
//!    from the context (computed by the worker, concurrently);
//! 2. lookups — in dependency order, each key is looked up in the index
//!    (unless `--no-cache`); a hit whose layers are still in the store is
//!    reported `CACHED`;
//! 3. results — demand-driven: a vertex runs only when its result is needed
//!    (it is demanded, or a vertex that missed reads it) and the cache had
//!    nothing. Executions run in tracked tokio tasks bounded by a semaphore
//!    (`--jobs`); a vertex shared by two dependents runs once.
//!
//! The first failure cancels every running step (the worker stops its
//! processes when the token fires) and the scheduler waits for all of them
//! to wind down before returning, so nothing outlives a build.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::FutureExt;
use futures::future::{BoxFuture, try_join_all};
use oci_spec::image::Digest;
use petgraph::graph::NodeIndex;
use tokio::sync::{OnceCell, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::cachekey::CacheKey;
use crate::error::{ExitDisplay, SolveError, StepError, StepErrorKind};
use crate::graph::BuildGraph;
use crate::index::{CacheIndex, StateRecord};
use crate::op::{ContentRequest, Op, SourceRef, result_identity};
use crate::progress::{OpContext, Progress};
use crate::transfer::ImportedCache;
use crate::worker::{
    ChecksumRequest, ExecSpec, FetchOutcome, FileAction, Layer, Mount, Worker, WorkerError,
};

/// Options of one scheduling run.
#[derive(Debug, Clone)]
pub struct SchedulerOptions {
    /// Maximum number of steps running at once.
    pub jobs: usize,
    /// Ignore the index (results are still recorded).
    pub no_cache: bool,
    /// RFC 3339 time recorded for new results.
    pub now: String,
    /// Records imported with `--cache-from`, consulted after the index.
    pub imported: Arc<ImportedCache>,
}

type Shared<T> = Result<T, StepError>;

pub(crate) struct Scheduler<W: Worker> {
    worker: Arc<W>,
    graph: Arc<BuildGraph>,
    index: CacheIndex,
    progress: Progress,
    cancel: CancellationToken,
    jobs: Semaphore,
    opts: SchedulerOptions,
    keys: Vec<OnceCell<Shared<CacheKey>>>,
    lookups: Vec<OnceCell<Option<Arc<StateRecord>>>>,
    /// Whether a vertex's lookup hit an imported record (whose layers may
    /// still have to be fetched).
    imported_hits: Vec<AtomicBool>,
    /// Per vertex, its content checksums (phase 1), for its result-based
    /// key.
    contents: Vec<std::sync::OnceLock<Vec<Digest>>>,
    results: Vec<OnceCell<Shared<Arc<StateRecord>>>>,
    tracker: TaskTracker,
}

impl<W: Worker> Scheduler<W> {
    pub(crate) fn new(
        worker: Arc<W>,
        graph: Arc<BuildGraph>,
        index: CacheIndex,
        progress: Progress,
        cancel: CancellationToken,
        opts: SchedulerOptions,
    ) -> Arc<Scheduler<W>> {
        let n = graph.len();
        Arc::new(Scheduler {
            worker,
            graph,
            index,
            progress,
            cancel,
            jobs: Semaphore::new(opts.jobs.max(1)),
            opts,
            keys: (0..n).map(|_| OnceCell::new()).collect(),
            lookups: (0..n).map(|_| OnceCell::new()).collect(),
            imported_hits: (0..n).map(|_| AtomicBool::new(false)).collect(),
            contents: (0..n).map(|_| std::sync::OnceLock::new()).collect(),
            results: (0..n).map(|_| OnceCell::new()).collect(),
            tracker: TaskTracker::new(),
        })
    }

    /// Solves `demands`, returning their results in order.
    pub(crate) async fn run(
        self: &Arc<Self>,
        demands: &[NodeIndex],
    ) -> Result<Vec<Arc<StateRecord>>, SolveError> {
        let work = async {
            // Phase 1: keys, concurrently.
            try_join_all(demands.iter().map(|n| self.key(*n))).await?;
            // Phase 2: lookups, in dependency order (stable CACHED output).
            let mut seen = vec![false; self.graph.len()];
            for d in demands {
                for n in self.graph.ancestors(*d) {
                    if !std::mem::replace(&mut seen[n.index()], true) {
                        self.lookup(n).await?;
                    }
                }
            }
            // Phase 3: results.
            try_join_all(demands.iter().map(|n| self.result(*n))).await
        };
        let outcome = tokio::select! {
            r = work => r.map_err(SolveError::Step),
            _ = self.cancel.cancelled() => Err(SolveError::Cancelled),
        };
        if outcome.is_err() {
            self.cancel.cancel();
        }
        self.tracker.close();
        self.tracker.wait().await;
        match outcome {
            Err(SolveError::Step(e)) if e.is_cancelled() => Err(SolveError::Cancelled),
            other => other,
        }
    }

    fn ctx(&self, n: NodeIndex) -> OpContext {
        OpContext::new(
            self.progress.clone(),
            self.graph.vertex(n).id,
            self.cancel.clone(),
        )
    }

    fn step_error(&self, n: NodeIndex, kind: StepErrorKind) -> StepError {
        let v = self.graph.vertex(n);
        StepError {
            step: v.name.clone(),
            vertex: Some(v.id),
            location: v.location,
            kind,
        }
    }

    fn worker_error(&self, n: NodeIndex, err: WorkerError) -> StepError {
        let kind = match err {
            WorkerError::Cancelled => StepErrorKind::Cancelled,
            other => StepErrorKind::Worker(Arc::new(other)),
        };
        self.step_error(n, kind)
    }

    /// The cache key of `n`.
    pub(crate) fn key(self: &Arc<Self>, n: NodeIndex) -> BoxFuture<'static, Shared<CacheKey>> {
        let this = self.clone();
        async move {
            this.keys[n.index()]
                .get_or_init(|| this.compute_key(n))
                .await
                .clone()
        }
        .boxed()
    }

    async fn compute_key(self: &Arc<Self>, n: NodeIndex) -> Shared<CacheKey> {
        let v = self.graph.vertex(n);
        let inputs = try_join_all(v.inputs.iter().map(|i| self.key(*i))).await?;
        let requests = v.op.content_requests();
        let content: Vec<Digest> =
            try_join_all(requests.iter().map(|r| self.checksum(n, r))).await?;
        let key = v.op.cache_key(&inputs, &content);
        let _ = self.contents[n.index()].set(content);
        Ok(key)
    }

    async fn checksum(&self, n: NodeIndex, req: &ContentRequest) -> Shared<Digest> {
        let from = req.from.resolve(&[]);
        let req = ChecksumRequest {
            from,
            sources: req.sources.clone(),
            excludes: req.excludes.clone(),
            parents: req.parents,
            apply_dockerignore: req.apply_dockerignore,
        };
        let ctx = self.ctx(n);
        self.worker
            .checksum(&req, &ctx)
            .await
            .map_err(|e| self.worker_error(n, e))
    }

    /// The cached result of `n`, if the index has one whose layers are all
    /// still in the store. Reports `CACHED`.
    async fn lookup(self: &Arc<Self>, n: NodeIndex) -> Shared<Option<Arc<StateRecord>>> {
        let key = self.key(n).await?;
        let found = self.lookups[n.index()]
            .get_or_init(|| async {
                let v = self.graph.vertex(n);
                let rec = match &v.op {
                    Op::Image(img) => {
                        if self.worker.has_layers(&img.layers).await {
                            Some(StateRecord {
                                chain: img.layers.clone(),
                                layer: None,
                                created: self.opts.now.clone(),
                            })
                        } else {
                            None
                        }
                    }
                    Op::Merge => None,
                    Op::Exec { .. } | Op::File { .. } => {
                        if self.opts.no_cache {
                            None
                        } else {
                            match self.index.get::<StateRecord>(&key) {
                                Some(r) if self.worker.has_layers(&r.chain).await => Some(r),
                                Some(_) => {
                                    tracing::debug!(step = %v.name, "cache record refers to pruned layers");
                                    self.imported_state(n, &key)
                                }
                                None => self.imported_state(n, &key),
                            }
                        }
                    }
                };
                if rec.is_some() {
                    self.progress.cached(v.id, &v.name);
                }
                rec.map(Arc::new)
            })
            .await
            .clone();
        Ok(found)
    }

    /// The record imported for `key` (`--cache-from`), remembered as such.
    fn imported_state(&self, n: NodeIndex, key: &CacheKey) -> Option<StateRecord> {
        let rec = self.opts.imported.state(key)?.clone();
        self.imported_hits[n.index()].store(true, Ordering::Release);
        Some(rec)
    }

    /// Makes the layers of an imported hit local and records it in the
    /// local index. `false` when they cannot be fetched: the step then runs
    /// (the cache is an optimisation, never a reason to fail).
    async fn adopt_imported(&self, n: NodeIndex, rec: &StateRecord) -> bool {
        let v = self.graph.vertex(n);
        let ctx = self.ctx(n);
        if let Err(e) = self.worker.fetch_cached_layers(&rec.chain, &ctx).await {
            tracing::warn!(step = %v.name, error = %e, "cannot fetch the layers of an imported cache record; running the step");
            self.progress.status(
                v.id,
                &format!("WARNING: cannot fetch cached layers ({e}); running the step"),
            );
            return false;
        }
        if let Some(key) = self.key_now(n)
            && let Err(e) = self.index.put(&key, rec)
        {
            tracing::warn!(step = %v.name, error = %e, "cannot record an imported cache record");
        }
        true
    }

    /// The key of `n`, already computed (phase 1).
    fn key_now(&self, n: NodeIndex) -> Option<CacheKey> {
        match self.keys[n.index()].get() {
            Some(Ok(k)) => Some(*k),
            _ => None,
        }
    }

    /// Every step record this run used or made, with its key, in graph
    /// order (for `--cache-to`), including imported hits nothing needed
    /// (their layers may not be local: the exporter decides).
    pub(crate) fn records(&self) -> Vec<(CacheKey, Arc<StateRecord>)> {
        let mut out = Vec::new();
        for n in self.graph.node_indices() {
            if !matches!(self.graph.vertex(n).op, Op::Exec { .. } | Op::File { .. }) {
                continue;
            }
            let Some(key) = self.key_now(n) else { continue };
            let rec = match self.results[n.index()].get() {
                Some(Ok(r)) => Some(r.clone()),
                _ => match self.lookups[n.index()].get() {
                    Some(Some(r)) => Some(r.clone()),
                    _ => None,
                },
            };
            if let Some(rec) = rec {
                out.push((key, rec));
            }
        }
        out
    }

    /// The result of `n`: from the cache, or by running it.
    pub(crate) fn result(
        self: &Arc<Self>,
        n: NodeIndex,
    ) -> BoxFuture<'static, Shared<Arc<StateRecord>>> {
        let this = self.clone();
        async move {
            this.results[n.index()]
                .get_or_init(|| this.compute_result(n))
                .await
                .clone()
        }
        .boxed()
    }

    async fn compute_result(self: &Arc<Self>, n: NodeIndex) -> Shared<Arc<StateRecord>> {
        if let Some(rec) = self.lookup(n).await?
            && (!self.imported_hits[n.index()].load(Ordering::Acquire)
                || self.adopt_imported(n, &rec).await)
        {
            return Ok(rec);
        }
        let v = self.graph.vertex(n);
        let inputs = try_join_all(v.inputs.iter().map(|i| self.result(*i))).await?;
        if let Op::Merge = v.op {
            let mut chain = inputs[0].chain.clone();
            chain.extend(inputs[1].layer.iter().cloned());
            return Ok(Arc::new(StateRecord {
                chain,
                layer: inputs[1].layer.clone(),
                created: inputs[1].created.clone(),
            }));
        }
        let key = self.key(n).await?;
        // Inputs that were rebuilt may still be what they were last time
        // (and the files a COPY --from takes from a changed stage the
        // same): look the step up by what its inputs are.
        let content_key = self.result_key(n, &inputs).await;
        if let Some(k2) = content_key
            && let Some(rec) = self.index.get::<StateRecord>(&k2)
            && self.worker.has_layers(&rec.chain).await
        {
            tracing::debug!(step = %v.name, key = %k2, "cached by what its inputs are");
            self.progress.cached(v.id, &v.name);
            if let Err(e) = self.index.put(&key, &rec) {
                tracing::warn!(step = %v.name, error = %e, "cannot record a cache hit");
            }
            return Ok(Arc::new(rec));
        }
        let this = self.clone();
        let handle = self
            .tracker
            .spawn(async move { this.execute(n, key, inputs).await });
        let result = match handle.await {
            Ok(r) => r,
            Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
            Err(_) => Err(self.step_error(n, StepErrorKind::Cancelled)),
        };
        if let (Ok(rec), Some(k2)) = (&result, content_key)
            && let Err(e) = self.index.put(&k2, &**rec)
        {
            tracing::warn!(step = %v.name, error = %e, "cannot record a result-based cache key");
        }
        result
    }

    /// The result-based key of a RUN or file operation whose inputs are
    /// built ([`Op::result_cache_key`]): inputs by their results' identity,
    /// what a COPY --from takes from a stage by its checksum. `None` for
    /// other vertices, with `--no-cache`, or when a checksum cannot be
    /// computed (the copy then reports the real error).
    async fn result_key(&self, n: NodeIndex, inputs: &[Arc<StateRecord>]) -> Option<CacheKey> {
        let v = self.graph.vertex(n);
        if self.opts.no_cache || !matches!(v.op, Op::Exec { .. } | Op::File { .. }) {
            return None;
        }
        // An image's identity is its content already: no checksum needed.
        let stages: Vec<_> =
            v.op.stage_content_requests()
                .into_iter()
                .filter(|(i, _)| !matches!(self.graph.vertex(v.inputs[*i]).op, Op::Image(_)))
                .collect();
        let content = self.contents[n.index()].get()?.clone();
        let identities: Vec<CacheKey> = inputs.iter().map(|r| result_identity(&r.chain)).collect();
        let chains: Vec<Vec<Layer>> = inputs.iter().map(|r| r.chain.clone()).collect();
        let ctx = self.ctx(n);
        let mut sums = Vec::with_capacity(stages.len());
        for (i, r) in stages {
            let req = ChecksumRequest {
                from: r.from.resolve(&chains),
                sources: r.sources,
                excludes: r.excludes,
                parents: r.parents,
                apply_dockerignore: false,
            };
            match self.worker.checksum(&req, &ctx).await {
                Ok(d) => sums.push((i, d)),
                Err(e) => {
                    tracing::debug!(step = %v.name, error = %e, "no content-based key");
                    return None;
                }
            }
        }
        Some(v.op.result_cache_key(&identities, &content, &sums))
    }

    /// Runs vertex `n` (in its own task), reporting progress.
    async fn execute(
        self: Arc<Self>,
        n: NodeIndex,
        key: CacheKey,
        inputs: Vec<Arc<StateRecord>>,
    ) -> Shared<Arc<StateRecord>> {
        let v = self.graph.vertex(n);
        let _permit = tokio::select! {
            p = self.jobs.acquire() => p.expect("the job semaphore is never closed"),
            _ = self.cancel.cancelled() => {
                return Err(self.step_error(n, StepErrorKind::Cancelled));
            }
        };
        if self.cancel.is_cancelled() {
            return Err(self.step_error(n, StepErrorKind::Cancelled));
        }
        self.progress.started(v.id, &v.name);
        tracing::debug!(step = %v.name, key = %key, "running");
        let outcome = self.run_op(n, &inputs).await;
        match outcome {
            Ok(layer) => {
                let mut chain = match &v.op {
                    Op::Image(img) => img.layers.clone(),
                    Op::Exec { root, .. } | Op::File { root, .. } => {
                        root.map(|r| inputs[r].chain.clone()).unwrap_or_default()
                    }
                    Op::Merge => unreachable!("merges do not execute"),
                };
                chain.extend(layer.iter().cloned());
                let rec = StateRecord {
                    chain,
                    layer,
                    created: self.opts.now.clone(),
                };
                if !matches!(v.op, Op::Image(_))
                    && let Err(e) = self.index.put(&key, &rec)
                {
                    let err = self.step_error(n, StepErrorKind::Index(Arc::new(e)));
                    self.progress.failed(v.id, &err.to_string());
                    return Err(err);
                }
                self.progress.completed(v.id);
                Ok(Arc::new(rec))
            }
            Err(err) => {
                let msg = if err.is_cancelled() {
                    "cancelled".to_string()
                } else {
                    err.to_string()
                };
                self.progress.failed(v.id, &msg);
                Err(err)
            }
        }
    }

    /// Does the work of one vertex; returns the layer it added.
    async fn run_op(&self, n: NodeIndex, inputs: &[Arc<StateRecord>]) -> Shared<Option<Layer>> {
        let v = self.graph.vertex(n);
        let ctx = self.ctx(n);
        let werr = |e| self.worker_error(n, e);
        let chains: Vec<Vec<Layer>> = inputs.iter().map(|r| r.chain.clone()).collect();
        match &v.op {
            Op::Image(img) => {
                let outcome = self.worker.fetch_layers(img, &ctx).await.map_err(werr)?;
                if outcome == FetchOutcome::AlreadyLocal {
                    tracing::debug!(image = %img.name, "base layers already local");
                }
                Ok(None)
            }
            Op::Exec {
                root,
                spec,
                proxy_env,
            } => {
                let spec = resolve_exec(spec, proxy_env, &chains);
                let parent = root.map(|r| chains[r].clone()).unwrap_or_default();
                let mut rootfs = self.worker.prepare(&parent, &ctx).await.map_err(werr)?;
                let status = self
                    .worker
                    .exec(&mut rootfs, &spec, &ctx)
                    .await
                    .map_err(werr)?;
                if !status.success() {
                    drop(rootfs);
                    return Err(self.step_error(
                        n,
                        StepErrorKind::Exit {
                            command: display_args(&spec.args),
                            status: ExitDisplay(status),
                        },
                    ));
                }
                self.worker.commit(rootfs, &ctx).await.map_err(werr)
            }
            Op::File { root, actions } => {
                let parent = root.map(|r| chains[r].clone()).unwrap_or_default();
                let mut rootfs = self.worker.prepare(&parent, &ctx).await.map_err(werr)?;
                for action in actions {
                    let action: FileAction = action
                        .clone()
                        .map_source(|s| Ok::<_, std::convert::Infallible>(s.resolve(&chains)))
                        .unwrap_or_else(|e| match e {});
                    if self.cancel.is_cancelled() {
                        return Err(self.step_error(n, StepErrorKind::Cancelled));
                    }
                    self.worker
                        .file(&mut rootfs, &action, &ctx)
                        .await
                        .map_err(werr)?;
                }
                self.worker.commit(rootfs, &ctx).await.map_err(werr)
            }
            Op::Merge => unreachable!("merges do not execute"),
        }
    }
}

fn resolve_exec(
    spec: &ExecSpec<SourceRef>,
    proxy_env: &[String],
    chains: &[Vec<Layer>],
) -> ExecSpec {
    let mounts = spec
        .mounts
        .iter()
        .map(|m| Mount {
            target: m.target.clone(),
            kind: m
                .kind
                .clone()
                .map_source(|s| Ok::<_, std::convert::Infallible>(s.resolve(chains)))
                .unwrap_or_else(|e| match e {}),
        })
        .collect();
    let mut env = spec.env.clone();
    env.extend(proxy_env.iter().cloned());
    ExecSpec {
        args: spec.args.clone(),
        env,
        cwd: spec.cwd.clone(),
        user: spec.user.clone(),
        network: spec.network,
        security: spec.security,
        mounts,
        secret_env: spec.secret_env.clone(),
    }
}

/// argv as BuildKit shows it in errors: joined with spaces.
pub(crate) fn display_args(args: &[String]) -> String {
    args.join(" ")
}

#[cfg(test)]
#[path = "scheduler_tests.rs"]
mod tests;
