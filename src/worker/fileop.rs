//! File operations (COPY, ADD, WORKDIR, heredoc files) and the content
//! checksums of what they read, on kiln-executor's file operations.
//!
//! A file operation needs the step's filesystem as one directory tree on
//! the host: it runs on a thread of its own inside a private mount
//! namespace where the step's overlay stack (and, for `--from`, the source
//! stage's stack, read-only) is mounted (see `rootfs.rs`). Checksums read
//! the context in place, with the root's file-hash cache.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use kiln_executor::{
    ActiveSnapshot, ChownSpec, CopyOptions, CopyRequest, Downloaded, FileOpError, InlineFile,
    Instruction, Owner, PathMatcher, PatternCompiler, SnapshotMode, Source, SourceTree, TreeKind,
};
use kiln_parser::DockerIgnore;
use kiln_solver::{ChecksumRequest, CopyAction, FileAction, FileSource, OpContext, WorkerError};
use oci_spec::image::Digest;

use super::error::BuildWorkerError;
use super::rootfs::{lowers, with_mounted};
use super::{BuildRootfs, KilnWorker, blocking};

/// `.dockerignore` (and `--exclude`, `--parents` patterns) as the file
/// operations' matcher.
pub struct Patterns(pub DockerIgnore);

impl PathMatcher for Patterns {
    fn matches(&self, path: &str) -> bool {
        self.0.matches(path)
    }

    fn can_skip_dir(&self, dir: &str) -> bool {
        self.0.can_skip_dir(dir)
    }
}

/// Compiles instruction pattern lists with the parser's `.dockerignore`
/// matcher.
pub struct Compiler;

impl PatternCompiler for Compiler {
    fn compile(
        &self,
        patterns: &[String],
    ) -> Result<Box<dyn PathMatcher>, kiln_executor::fileop::PatternCause> {
        let m = DockerIgnore::from_patterns(patterns.iter().map(String::as_str))
            .map_err(|e| Box::new(e) as kiln_executor::fileop::PatternCause)?;
        Ok(Box::new(Patterns(m)))
    }
}

fn owner(root: &Path, chown: Option<&str>) -> Result<Option<Owner>, FileOpError> {
    match chown {
        None => Ok(None),
        Some(c) => {
            let spec = ChownSpec::parse(c)?;
            Ok(Some(kiln_executor::resolve_owner(root, &spec)?))
        }
    }
}

fn timestamp(epoch: Option<i64>) -> Option<SystemTime> {
    epoch.map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s.max(0) as u64))
}

/// A temp mountpoint under the store's tmp dir, removed when dropped.
fn mountpoint(tmp: &Path) -> Result<tempfile::TempDir, BuildWorkerError> {
    tempfile::Builder::new()
        .prefix(&format!("{}-from-", std::process::id()))
        .tempdir_in(tmp)
        .map_err(BuildWorkerError::io("create a mountpoint in", tmp))
}

fn fileop_err(e: FileOpError) -> BuildWorkerError {
    BuildWorkerError::FileOp(e)
}

/// Applies one file action to the step's rootfs.
pub async fn apply(
    worker: &KilnWorker,
    rootfs: &mut BuildRootfs,
    action: &FileAction,
    _ctx: &OpContext,
) -> Result<(), WorkerError> {
    let epoch = timestamp(worker.source_date_epoch);
    let dest_mount = match rootfs.snapshot.rootfs() {
        kiln_executor::Rootfs::Overlay(ov) => (ov.lowers, Some((ov.upper, ov.work)), ov.mountpoint),
        // A plain-copy snapshot is the rootfs itself: used without a mount.
        kiln_executor::Rootfs::Dir(dir) => (vec![dir.clone()], None, dir),
    };
    match action {
        FileAction::Mkdir {
            path,
            mode: _,
            owner: user,
        } => {
            let path = path.clone();
            let user = user.clone();
            blocking(move || {
                with_mounted(vec![dest_mount], move |roots| {
                    let root = &roots[0];
                    let o = owner(root, user.as_deref()).map_err(fileop_err)?;
                    kiln_executor::make_workdir(root, &path, "/", o, epoch).map_err(fileop_err)
                })
            })
            .await?;
            Ok(())
        }
        FileAction::Copy(c) => copy(worker, dest_mount, c, epoch).await,
    }
}

type MountSpec = (Vec<PathBuf>, Option<(PathBuf, PathBuf)>, PathBuf);

async fn copy(
    worker: &KilnWorker,
    dest_mount: MountSpec,
    c: &CopyAction,
    epoch: Option<SystemTime>,
) -> Result<(), WorkerError> {
    let mut mounts = vec![dest_mount];
    let mut keep: Vec<tempfile::TempDir> = Vec::new();
    let mut views: Vec<ActiveSnapshot> = Vec::new();
    let mut tree: Option<(PathBuf, TreeKind)> = None;
    let mut sources: Vec<Source> = Vec::new();
    let instruction = if c.unpack || matches!(c.from, FileSource::Url { .. }) {
        Instruction::Add
    } else {
        Instruction::Copy
    };
    match &c.from {
        FileSource::Context => {
            let dir = worker
                .context
                .dir
                .clone()
                .ok_or(BuildWorkerError::NoContext)?;
            tree = Some((dir, TreeKind::Context));
            sources.extend(c.sources.iter().cloned().map(Source::Path));
        }
        FileSource::Layers(chain) => {
            let store = worker.store.clone();
            let root = worker.root.clone();
            let chain2 = chain.clone();
            let lowers = blocking(move || lowers(&store, &root, &chain2)).await?;
            if lowers.len() > 1 && worker.snapshotter.mode() == SnapshotMode::Copy {
                // No overlayfs to stack the layers: read a plain copy.
                let snapshotter = worker.snapshotter.clone();
                let view = blocking(move || Ok(snapshotter.prepare(&lowers)?)).await?;
                let dir = view.upper();
                mounts.push((vec![dir.clone()], None, dir));
                views.push(view);
            } else {
                let point = mountpoint(&worker.store.tmp_dir())?;
                mounts.push((lowers, None, point.path().to_path_buf()));
                keep.push(point);
            }
            tree = Some((PathBuf::new(), TreeKind::Rootfs));
            sources.extend(c.sources.iter().cloned().map(Source::Path));
        }
        FileSource::Inline { name, data, mode } => {
            sources.push(Source::Inline(InlineFile {
                name: name.clone(),
                content: data.clone(),
                mode: *mode,
            }));
        }
        FileSource::Url { url, checksum } => {
            let d = worker.download(url, checksum.as_ref()).await?;
            sources.push(Source::Download((*d).clone()));
        }
    }
    let ignore = if c.apply_dockerignore {
        worker.context.ignore.clone()
    } else {
        None
    };
    let c = c.clone();
    blocking(move || {
        let _keep = (keep, views);
        with_mounted(mounts, move |roots| {
            let dest_root = &roots[0];
            let o = owner(dest_root, c.chown.as_deref()).map_err(fileop_err)?;
            let mode = c
                .chmod
                .as_deref()
                .map(kiln_executor::parse_chmod)
                .transpose()
                .map_err(fileop_err)?;
            let matcher = ignore.map(|i| Patterns((*i).clone()));
            let empty = PathBuf::from("/nonexistent-kiln-tree");
            let (tree_root, kind) = match &tree {
                Some((_, TreeKind::Rootfs)) => (roots[1].clone(), TreeKind::Rootfs),
                Some((dir, kind)) => (dir.clone(), *kind),
                None => (empty, TreeKind::Context),
            };
            let req = CopyRequest {
                tree: SourceTree {
                    root: &tree_root,
                    kind,
                    ignore: matcher.as_ref().map(|m| m as &dyn PathMatcher),
                },
                sources: &sources,
                dest: &c.dest,
                workdir: "/",
                options: CopyOptions {
                    instruction,
                    owner: o,
                    mode: mode.as_ref(),
                    exclude: &c.excludes,
                    parents: c.parents,
                    unpack: c.unpack,
                    timestamp: epoch,
                    patterns: Some(&Compiler),
                },
            };
            let start = std::time::Instant::now();
            let stats = kiln_executor::copy(dest_root, &req).map_err(fileop_err)?;
            tracing::debug!(
                files = stats.files,
                bytes = stats.bytes,
                elapsed_ms = start.elapsed().as_millis() as u64,
                "copied"
            );
            Ok(())
        })
    })
    .await?;
    Ok(())
}

/// The content checksum of what a COPY/ADD (or bind mount) reads.
pub async fn checksum(
    worker: &KilnWorker,
    req: &ChecksumRequest,
    _ctx: &OpContext,
) -> Result<Digest, WorkerError> {
    match &req.from {
        FileSource::Url { url, checksum } => {
            let d = worker.download(url, checksum.as_ref()).await?;
            Ok(d.digest.clone())
        }
        FileSource::Inline { data, .. } => Ok(kiln_solver::sha256_digest(data)),
        FileSource::Layers(chain) => stage_checksum(worker, chain, req).await,
        FileSource::Context => {
            let dir = worker
                .context
                .dir
                .clone()
                .ok_or(BuildWorkerError::NoContext)?;
            let ignore = if req.apply_dockerignore {
                worker.context.ignore.clone()
            } else {
                None
            };
            let cache = worker.hash_cache.clone();
            let sources: Vec<Source> = req.sources.iter().cloned().map(Source::Path).collect();
            let excludes = req.excludes.clone();
            let parents = req.parents;
            let sum = blocking(move || {
                let matcher = ignore.map(|i| Patterns((*i).clone()));
                let copy_req = CopyRequest {
                    tree: SourceTree {
                        root: &dir,
                        kind: TreeKind::Context,
                        ignore: matcher.as_ref().map(|m| m as &dyn PathMatcher),
                    },
                    sources: &sources,
                    dest: "/",
                    workdir: "/",
                    options: CopyOptions {
                        exclude: &excludes,
                        parents,
                        patterns: Some(&Compiler),
                        ..CopyOptions::copy()
                    },
                };
                let start = std::time::Instant::now();
                let sum = kiln_executor::checksum(&copy_req, &cache).map_err(fileop_err)?;
                tracing::debug!(
                    entries = sum.entries,
                    files_read = sum.files_read,
                    bytes_read = sum.bytes_read,
                    elapsed_ms = start.elapsed().as_millis() as u64,
                    "context checksum"
                );
                Ok(sum)
            })
            .await?;
            Ok(sum.digest)
        }
    }
}

/// The checksum of what a `COPY --from=STAGE` selects in the stage's
/// filesystem (its layers stacked read-only in a private mount namespace, or
/// a plain copy without overlayfs): files keep their own owners.
async fn stage_checksum(
    worker: &KilnWorker,
    chain: &[kiln_solver::Layer],
    req: &ChecksumRequest,
) -> Result<Digest, WorkerError> {
    let store = worker.store.clone();
    let root = worker.root.clone();
    let chain2 = chain.to_vec();
    let lowers = blocking(move || lowers(&store, &root, &chain2)).await?;
    let mut keep: Vec<tempfile::TempDir> = Vec::new();
    let mut views: Vec<ActiveSnapshot> = Vec::new();
    let mount: MountSpec = if lowers.len() > 1 && worker.snapshotter.mode() == SnapshotMode::Copy {
        let snapshotter = worker.snapshotter.clone();
        let view = blocking(move || Ok(snapshotter.prepare(&lowers)?)).await?;
        let dir = view.upper();
        views.push(view);
        (vec![dir.clone()], None, dir)
    } else {
        let point = mountpoint(&worker.store.tmp_dir())?;
        let p = point.path().to_path_buf();
        keep.push(point);
        (lowers, None, p)
    };
    let cache = worker.hash_cache.clone();
    let sources: Vec<Source> = req.sources.iter().cloned().map(Source::Path).collect();
    let excludes = req.excludes.clone();
    let parents = req.parents;
    let sum = blocking(move || {
        let _keep = (keep, views);
        with_mounted(vec![mount], move |roots| {
            let copy_req = CopyRequest {
                tree: SourceTree {
                    root: &roots[0],
                    kind: TreeKind::Rootfs,
                    ignore: None,
                },
                sources: &sources,
                dest: "/",
                workdir: "/",
                options: CopyOptions {
                    exclude: &excludes,
                    parents,
                    patterns: Some(&Compiler),
                    ..CopyOptions::copy()
                },
            };
            kiln_executor::checksum(&copy_req, &cache).map_err(fileop_err)
        })
    })
    .await?;
    Ok(sum.digest)
}

/// The worker's downloads by URL: a URL is fetched once per build (for its
/// checksum, then reused by the copy), into the store's tmp dir; the staging
/// directories are removed with the worker.
#[derive(Default)]
pub struct Downloads {
    files: tokio::sync::Mutex<std::collections::HashMap<String, Arc<Downloaded>>>,
    client: std::sync::OnceLock<reqwest::Client>,
}

impl Drop for Downloads {
    fn drop(&mut self) {
        for d in self.files.get_mut().values() {
            let _ = std::fs::remove_dir_all(&d.dir);
        }
    }
}

impl KilnWorker {
    /// `url`, downloaded once per build (and checked against `checksum`).
    pub(crate) async fn download(
        &self,
        url: &str,
        checksum: Option<&Digest>,
    ) -> Result<Arc<Downloaded>, BuildWorkerError> {
        let mut files = self.downloads.files.lock().await;
        if let Some(d) = files.get(url) {
            if let Some(c) = checksum
                && &d.digest != c
            {
                return Err(fileop_err(FileOpError::ChecksumMismatch {
                    url: url.to_string(),
                    expected: c.to_string(),
                    actual: d.digest.to_string(),
                }));
            }
            return Ok(d.clone());
        }
        let client = self.downloads.client.get_or_init(reqwest::Client::new);
        let staging = self.store.tmp_dir();
        let d = kiln_executor::download(client, url, &staging, checksum)
            .await
            .map_err(fileop_err)?;
        let d = Arc::new(d);
        files.insert(url.to_string(), d.clone());
        Ok(d)
    }
}
