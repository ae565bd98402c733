//! The build worker: BuildKit's "worker" role. It implements
//! [`kiln_solver::Worker`] with kiln-registry (image store, layer
//! unpacking) and kiln-executor (snapshots, sandbox, file operations,
//! context hashing, layer writing). Blocking work runs on tokio's blocking
//! pool; RUN steps in the sandbox's single-threaded helper process.

mod cache_layers;
mod error;
mod exec;
mod fileop;
mod image;
mod rootfs;
pub mod transfer;

pub use cache_layers::RemoteLayers;
pub use error::BuildWorkerError;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kiln_executor::{FileHashCache, LinuxSandbox, SecretSource, Snapshotter};
use kiln_registry::Store;
use kiln_solver::{
    ChecksumRequest, ExecSpec, ExitStatus, FetchOutcome, FileAction, ImageRecord, Layer, OpContext,
    ResolvedImage, Worker, WorkerError,
};
use oci_spec::image::{Digest, Platform};

pub use rootfs::BuildRootfs;

/// The owner name of the build cache's GC roots in the store.
pub const BUILD_CACHE_ROOTS: &str = "build-cache";

/// The build context as the worker reads it.
#[derive(Debug, Clone)]
pub struct Context {
    /// The context directory; `None` when there is none (`kiln build -`).
    pub dir: Option<PathBuf>,
    /// `.dockerignore` patterns of the context.
    pub ignore: Option<Arc<kiln_parser::DockerIgnore>>,
}

/// What the worker needs to know about one build.
pub struct KilnWorker {
    store: Store,
    root: PathBuf,
    pub(crate) snapshotter: Snapshotter,
    sandbox: Arc<LinuxSandbox>,
    context: Context,
    secrets: HashMap<String, SecretSource>,
    /// `--ssh` agent sockets by id.
    ssh_agents: HashMap<String, PathBuf>,
    /// Content hashes of context files, kept in the root between builds.
    hash_cache: Arc<FileHashCache>,
    downloads: fileop::Downloads,
    /// `SOURCE_DATE_EPOCH`: clamps layer times.
    source_date_epoch: Option<i64>,
    /// Names given to the image (`-t`).
    tags: Vec<kiln_registry::Reference>,
    /// Layers this build's steps wrote: kept from garbage collection as the
    /// build cache's GC roots (see [`KilnWorker::save_caches`]).
    new_layers: std::sync::Mutex<Vec<oci_spec::image::Digest>>,
    /// Where layers of `--cache-from` records can be fetched.
    remote_layers: std::sync::OnceLock<RemoteLayers>,
    /// Held for the whole build: garbage collection waits, so no layer a
    /// step wrote disappears before the image refers to it.
    _lease: kiln_registry::Lease,
}

impl KilnWorker {
    pub fn new(
        store: Store,
        root: &Path,
        context: Context,
        secrets: HashMap<String, SecretSource>,
        source_date_epoch: Option<i64>,
        tags: Vec<kiln_registry::Reference>,
    ) -> Result<KilnWorker, BuildWorkerError> {
        Ok(KilnWorker {
            _lease: store.lease()?,
            tags,
            new_layers: std::sync::Mutex::new(Vec::new()),
            remote_layers: std::sync::OnceLock::new(),
            hash_cache: Arc::new(FileHashCache::open(root)?),
            downloads: fileop::Downloads::default(),
            snapshotter: Snapshotter::open(root)?,
            store,
            root: root.to_path_buf(),
            sandbox: Arc::new(LinuxSandbox::new()),
            context,
            secrets,
            ssh_agents: HashMap::new(),
            source_date_epoch,
        })
    }
}

impl KilnWorker {
    /// Sets the SSH agent sockets `RUN --mount=type=ssh` reaches (`--ssh`).
    pub fn with_ssh_agents(mut self, agents: HashMap<String, PathBuf>) -> KilnWorker {
        self.ssh_agents = agents;
        self
    }

    /// Sets where the layers of `--cache-from` records come from (once,
    /// before the build).
    pub fn set_remote_layers(&self, remote: RemoteLayers) {
        if self.remote_layers.set(remote).is_err() {
            tracing::warn!("the --cache-from layer sources were set twice");
        }
    }

    /// Where the layers of `--cache-from` records come from, if any were
    /// imported.
    pub fn remote_layers(&self) -> Option<&RemoteLayers> {
        self.remote_layers.get()
    }

    /// Starts unpacking a base image's layers in the background, so the
    /// snapshot is ready (or nearly) when the first step needs it, while the
    /// build computes its cache keys. Errors are left for `prepare` to
    /// report; unpacking a snapshot that exists costs a stat.
    fn unpack_ahead(&self, layers: &[Layer]) {
        if layers
            .iter()
            .all(|l| self.store.snapshot(&l.diff_id).is_some())
        {
            return;
        }
        let store = self.store.clone();
        let layers = layers.to_vec();
        tokio::task::spawn_blocking(move || {
            for l in &layers {
                if let Err(e) = store.unpack_layer(&image::to_store_layer(l)) {
                    tracing::debug!(diff_id = %l.diff_id, error = %e, "unpacking ahead failed");
                    return;
                }
            }
        });
    }

    /// Saves what the build learnt: the hashes of context files, and the
    /// layers its steps wrote as GC roots of the build cache (so `kiln
    /// prune` keeps them until the build cache itself is pruned).
    pub fn save_caches(&self) {
        if let Err(e) = self.hash_cache.save() {
            tracing::warn!(error = %e, "cannot save the file-hash cache");
        }
        let layers =
            std::mem::take(&mut *self.new_layers.lock().unwrap_or_else(|e| e.into_inner()));
        if !layers.is_empty()
            && let Err(e) = self.store.add_gc_roots(BUILD_CACHE_ROOTS, layers.iter())
        {
            tracing::warn!(error = %e, "cannot register the build cache's layers");
        }
    }
}

async fn blocking<R: Send + 'static>(
    f: impl FnOnce() -> Result<R, BuildWorkerError> + Send + 'static,
) -> Result<R, BuildWorkerError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(BuildWorkerError::Join)?
}

impl Worker for KilnWorker {
    type Rootfs = BuildRootfs;

    async fn resolve_image(
        &self,
        name: &str,
        platform: &Platform,
        ctx: &OpContext,
    ) -> Result<ResolvedImage, WorkerError> {
        let local = match image::resolve_local(&self.store, name, platform)? {
            image::Local::Found(img) => {
                self.unpack_ahead(&img.layers);
                return Ok(*img);
            }
            image::Local::Missing => None,
            image::Local::OtherPlatform(p) => Some(p),
        };
        // Not here: pull it (metadata and layers) from its registry.
        let reference = image::reference(name)?;
        let options = kiln_registry::remote::PullOptions {
            platform: Some(kiln_registry::remote::Platform {
                os: platform.os().to_string(),
                architecture: platform.architecture().to_string(),
                variant: platform.variant().clone(),
            }),
        };
        let config = kiln_registry::remote::RemoteConfig::from_env();
        let reporter = transfer::StatusReporter::new(ctx.clone());
        let pulled = tokio::select! {
            r = kiln_registry::remote::pull_if_missing(&self.store, &config, &reference, &options, &reporter) => r,
            _ = ctx.cancel.cancelled() => return Err(WorkerError::Cancelled),
        };
        match pulled {
            Ok(img) => {
                let img = image::resolved(&self.store, &reference, &img)?;
                self.unpack_ahead(&img.layers);
                Ok(img)
            }
            Err(e) => Err(match local {
                Some(have) => BuildWorkerError::OtherPlatform {
                    name: reference.familiar(),
                    have,
                    want: kiln_solver::format_platform(platform),
                    source: e,
                },
                None => BuildWorkerError::Pull {
                    name: reference.familiar(),
                    source: e,
                },
            }
            .into()),
        }
    }

    async fn fetch_layers(
        &self,
        image: &ResolvedImage,
        _ctx: &OpContext,
    ) -> Result<FetchOutcome, WorkerError> {
        if image::has_layers(&self.store, &image.layers) {
            return Ok(FetchOutcome::AlreadyLocal);
        }
        Err(WorkerError::ImageNotFound {
            name: image.name.clone(),
            source: None,
        })
    }

    async fn fetch_cached_layers(
        &self,
        layers: &[Layer],
        ctx: &OpContext,
    ) -> Result<(), WorkerError> {
        let added = tokio::select! {
            r = cache_layers::fetch(&self.store, self.remote_layers.get(), layers) => r?,
            _ = ctx.cancel.cancelled() => return Err(WorkerError::Cancelled),
        };
        self.new_layers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(added);
        Ok(())
    }

    async fn has_layers(&self, layers: &[Layer]) -> bool {
        image::has_layers(&self.store, layers)
    }

    async fn checksum(
        &self,
        req: &ChecksumRequest,
        ctx: &OpContext,
    ) -> Result<Digest, WorkerError> {
        fileop::checksum(self, req, ctx).await
    }

    async fn prepare(
        &self,
        parent: &[Layer],
        _ctx: &OpContext,
    ) -> Result<BuildRootfs, WorkerError> {
        let store = self.store.clone();
        let snapshotter = self.snapshotter.clone();
        let root = self.root.clone();
        let parent = parent.to_vec();
        Ok(blocking(move || rootfs::prepare(&store, &snapshotter, &root, &parent)).await?)
    }

    async fn exec(
        &self,
        rootfs: &mut BuildRootfs,
        spec: &ExecSpec,
        ctx: &OpContext,
    ) -> Result<ExitStatus, WorkerError> {
        let parts = exec::WorkerParts {
            sandbox: self.sandbox.clone(),
            store: self.store.clone(),
            root: self.root.clone(),
            tmp: self.store.tmp_dir(),
            context: self.context.dir.clone(),
            ignore: self.context.ignore.as_deref().cloned(),
            secrets: self.secrets.clone(),
            ssh_agents: self.ssh_agents.clone(),
        };
        exec::run(parts, rootfs, spec, ctx).await
    }

    async fn file(
        &self,
        rootfs: &mut BuildRootfs,
        action: &FileAction,
        ctx: &OpContext,
    ) -> Result<(), WorkerError> {
        fileop::apply(self, rootfs, action, ctx).await
    }

    async fn commit(
        &self,
        rootfs: BuildRootfs,
        _ctx: &OpContext,
    ) -> Result<Option<Layer>, WorkerError> {
        let store = self.store.clone();
        let epoch = self.source_date_epoch;
        let layer = blocking(move || rootfs::commit(&store, rootfs, epoch)).await?;
        if let Some(l) = &layer {
            self.new_layers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(l.diff_id.clone());
        }
        Ok(layer)
    }

    async fn write_image(
        &self,
        config_json: &[u8],
        layers: &[Layer],
        ctx: &OpContext,
    ) -> Result<ImageRecord, WorkerError> {
        let store = self.store.clone();
        let config = config_json.to_vec();
        let layers = layers.to_vec();
        let tags = self.tags.clone();
        let ctx = ctx.clone();
        Ok(blocking(move || {
            image::write_image(&store, &config, &layers, &tags, &|s| ctx.status(s))
        })
        .await?)
    }
}
