//! A fake worker for the solver's unit tests: an in-memory filesystem model.
//!
//! Files are `path → bytes` maps; a layer is the set of files a step wrote.
//! RUN understands a tiny script language, `;`-separated:
//! `echo TEXT > /path` (writes), `echo TEXT` (output), `exit N`,
//! `sleep MS`, `true` (no change); anything else is printed. File actions
//! copy context files (exact names, or every file under a directory) and
//! make directories. Every call is recorded so tests can assert what ran.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use oci_spec::image::{Descriptor, Digest, MediaType, Platform};

use crate::cachekey::sha256_digest;
use crate::progress::{LogStream, OpContext};
use crate::worker::{
    ChecksumRequest, ExecSpec, ExitStatus, FetchOutcome, FileAction, FileSource, ImageRecord,
    Layer, MountKind, ResolvedImage, Worker, WorkerError,
};

type Files = BTreeMap<String, Vec<u8>>;

/// One recorded call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    Exec {
        args: Vec<String>,
        env: Vec<String>,
        cwd: String,
        user: String,
        mounts: Vec<String>,
        started: Instant,
        finished: Instant,
    },
    File(String),
    Fetch(String),
    /// Layers of imported cache records made local (their diffIDs).
    FetchCached(Vec<Digest>),
    Checksum(Vec<String>),
}

#[derive(Default)]
pub struct FakeWorker {
    pub context: Mutex<Files>,
    pub images: Mutex<HashMap<String, (ResolvedImage, Files)>>,
    layers: Mutex<HashMap<Digest, Files>>,
    pub calls: Mutex<Vec<Call>>,
    pub images_written: Mutex<Vec<(Vec<u8>, Vec<Layer>)>>,
    running: AtomicUsize,
    pub max_running: AtomicUsize,
    /// Layers reported missing from the store.
    pub pruned: Mutex<Vec<Digest>>,
    /// Secrets by id.
    pub secrets: Mutex<HashMap<String, Vec<u8>>>,
}

pub struct FakeRootfs {
    base: Files,
    changes: Files,
}

impl FakeRootfs {
    fn read(&self, path: &str) -> Option<&Vec<u8>> {
        self.changes.get(path).or_else(|| self.base.get(path))
    }
}

fn layer_for(files: &Files) -> Layer {
    let bytes = serde_json::to_vec(files).unwrap();
    let diff_id = sha256_digest(&bytes);
    Layer {
        diff_id: diff_id.clone(),
        blob: Descriptor::new(MediaType::ImageLayer, bytes.len() as u64, diff_id),
    }
}

impl FakeWorker {
    pub fn new() -> FakeWorker {
        FakeWorker::default()
    }

    /// Adds an image `name` whose single layer holds `files`, with `config`
    /// (a JSON object, without rootfs: it is added).
    pub fn add_image(&self, name: &str, files: &[(&str, &str)], config: serde_json::Value) {
        let files: Files = files
            .iter()
            .map(|(p, c)| (p.to_string(), c.as_bytes().to_vec()))
            .collect();
        let layer = layer_for(&files);
        self.layers
            .lock()
            .unwrap()
            .insert(layer.diff_id.clone(), files.clone());
        let mut config = config;
        config["rootfs"] =
            serde_json::json!({"type": "layers", "diff_ids": [layer.diff_id.to_string()]});
        let config_json = serde_json::to_vec(&config).unwrap();
        let config_digest = sha256_digest(&config_json);
        let image = ResolvedImage {
            name: name.to_string(),
            manifest_digest: sha256_digest(format!("manifest {config_digest}").as_bytes()),
            config_digest,
            config_json,
            layers: vec![layer],
        };
        self.images
            .lock()
            .unwrap()
            .insert(name.to_string(), (image, files));
    }

    pub fn set_context(&self, files: &[(&str, &str)]) {
        *self.context.lock().unwrap() = files
            .iter()
            .map(|(p, c)| (p.to_string(), c.as_bytes().to_vec()))
            .collect();
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    /// The scripts of the RUN steps that ran, in order.
    pub fn runs(&self) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter_map(|c| match c {
                Call::Exec { args, .. } => args.last().cloned(),
                _ => None,
            })
            .collect()
    }

    pub fn file_ops(&self) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter_map(|c| match c {
                Call::File(s) => Some(s),
                _ => None,
            })
            .collect()
    }

    /// The files of the root filesystem made of `layers`.
    pub fn files(&self, layers: &[Layer]) -> Files {
        let store = self.layers.lock().unwrap();
        let mut out = Files::new();
        for l in layers {
            if let Some(f) = store.get(&l.diff_id) {
                out.extend(f.clone());
            }
        }
        out
    }

    fn select(files: &Files, sources: &[String]) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        for src in sources {
            let s = src.trim_start_matches("./").trim_start_matches('/');
            let s = s.trim_end_matches('/');
            for (path, content) in files {
                let p = path.trim_start_matches('/');
                if s.is_empty() || s == "." {
                    out.push((p.to_string(), content.clone()));
                } else if p == s {
                    let name = p.rsplit('/').next().unwrap().to_string();
                    out.push((name, content.clone()));
                } else if let Some(rest) = p.strip_prefix(&format!("{s}/")) {
                    out.push((rest.to_string(), content.clone()));
                }
            }
        }
        out
    }
}

fn join(dest: &str, rel: &str, single: bool) -> String {
    if single && !dest.ends_with('/') {
        dest.to_string()
    } else {
        format!("{}/{}", dest.trim_end_matches('/'), rel)
    }
}

impl Worker for FakeWorker {
    type Rootfs = FakeRootfs;

    async fn resolve_image(
        &self,
        name: &str,
        _platform: &Platform,
        _ctx: &OpContext,
    ) -> Result<ResolvedImage, WorkerError> {
        self.images
            .lock()
            .unwrap()
            .get(name)
            .map(|(i, _)| i.clone())
            .ok_or(WorkerError::ImageNotFound {
                name: name.to_string(),
                source: None,
            })
    }

    async fn fetch_layers(
        &self,
        image: &ResolvedImage,
        _ctx: &OpContext,
    ) -> Result<FetchOutcome, WorkerError> {
        self.calls
            .lock()
            .unwrap()
            .push(Call::Fetch(image.name.clone()));
        self.pruned
            .lock()
            .unwrap()
            .retain(|d| !image.layers.iter().any(|l| &l.diff_id == d));
        Ok(FetchOutcome::Fetched)
    }

    async fn fetch_cached_layers(
        &self,
        layers: &[Layer],
        _ctx: &OpContext,
    ) -> Result<(), WorkerError> {
        let mut pruned = self.pruned.lock().unwrap();
        let missing: Vec<Digest> = layers
            .iter()
            .filter(|l| pruned.contains(&l.diff_id))
            .map(|l| l.diff_id.clone())
            .collect();
        pruned.retain(|d| !missing.contains(d));
        self.calls.lock().unwrap().push(Call::FetchCached(missing));
        Ok(())
    }

    async fn has_layers(&self, layers: &[Layer]) -> bool {
        let pruned = self.pruned.lock().unwrap();
        layers.iter().all(|l| !pruned.contains(&l.diff_id))
    }

    async fn checksum(
        &self,
        req: &ChecksumRequest,
        _ctx: &OpContext,
    ) -> Result<Digest, WorkerError> {
        self.calls
            .lock()
            .unwrap()
            .push(Call::Checksum(req.sources.clone()));
        let files = match &req.from {
            FileSource::Context => self.context.lock().unwrap().clone(),
            FileSource::Layers(l) => self.files(l),
            FileSource::Url { url, .. } => {
                return Ok(sha256_digest(url.as_bytes()));
            }
            FileSource::Inline { data, .. } => return Ok(sha256_digest(data)),
        };
        let selected = FakeWorker::select(&files, &req.sources);
        Ok(sha256_digest(&serde_json::to_vec(&selected).unwrap()))
    }

    async fn prepare(&self, parent: &[Layer], _ctx: &OpContext) -> Result<FakeRootfs, WorkerError> {
        Ok(FakeRootfs {
            base: self.files(parent),
            changes: Files::new(),
        })
    }

    async fn exec(
        &self,
        rootfs: &mut FakeRootfs,
        spec: &ExecSpec,
        ctx: &OpContext,
    ) -> Result<ExitStatus, WorkerError> {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_running.fetch_max(now, Ordering::SeqCst);
        let started = Instant::now();
        let script = spec.args.last().cloned().unwrap_or_default();
        let mut status = ExitStatus::Code(0);
        for part in script.split(';').map(str::trim) {
            if let Some(n) = part.strip_prefix("exit ") {
                status = ExitStatus::Code(n.trim().parse().unwrap_or(1));
                break;
            } else if let Some(ms) = part.strip_prefix("sleep ") {
                let ms: u64 = ms.trim().parse().unwrap_or(0);
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(ms)) => {}
                    _ = ctx.cancel.cancelled() => {
                        self.running.fetch_sub(1, Ordering::SeqCst);
                        return Err(WorkerError::Cancelled);
                    }
                }
            } else if let Some(rest) = part.strip_prefix("echo ") {
                if let Some((text, path)) = rest.split_once('>') {
                    rootfs
                        .changes
                        .insert(path.trim().to_string(), text.trim().as_bytes().to_vec());
                } else {
                    ctx.log(LogStream::Stdout, format!("{}\n", rest.trim()).as_bytes());
                }
            } else if let Some(path) = part.strip_prefix("cat ") {
                let content = rootfs.read(path.trim()).cloned().unwrap_or_default();
                ctx.log(LogStream::Stdout, &content);
            } else if part == "true" || part.is_empty() {
            } else {
                ctx.log(LogStream::Stdout, format!("ran {part}\n").as_bytes());
            }
        }
        let mut mounts = Vec::new();
        for m in &spec.mounts {
            if let MountKind::Secret { id, required, .. } = &m.kind {
                match self.secrets.lock().unwrap().get(id) {
                    Some(_) => {}
                    None if *required => {
                        self.running.fetch_sub(1, Ordering::SeqCst);
                        return Err(WorkerError::SecretNotFound { id: id.clone() });
                    }
                    None => {}
                }
            }
            mounts.push(format!(
                "{}:{}",
                m.target,
                serde_json::to_string(&m.kind).unwrap()
            ));
        }
        self.running.fetch_sub(1, Ordering::SeqCst);
        self.calls.lock().unwrap().push(Call::Exec {
            args: spec.args.clone(),
            env: spec.env.clone(),
            cwd: spec.cwd.clone(),
            user: spec.user.clone(),
            mounts,
            started,
            finished: Instant::now(),
        });
        Ok(status)
    }

    async fn file(
        &self,
        rootfs: &mut FakeRootfs,
        action: &FileAction,
        _ctx: &OpContext,
    ) -> Result<(), WorkerError> {
        self.calls
            .lock()
            .unwrap()
            .push(Call::File(serde_json::to_string(action).unwrap()));
        match action {
            FileAction::Mkdir { path, .. } => {
                if rootfs.read(&format!("{path}/")).is_none() {
                    rootfs.changes.insert(format!("{path}/"), Vec::new());
                }
            }
            FileAction::Copy(c) => {
                let files = match &c.from {
                    FileSource::Context => self.context.lock().unwrap().clone(),
                    FileSource::Layers(l) => self.files(l),
                    FileSource::Inline { name, data, .. } => {
                        [(name.clone(), data.clone())].into_iter().collect()
                    }
                    FileSource::Url { url, .. } => [(
                        url.rsplit('/').next().unwrap().to_string(),
                        url.as_bytes().to_vec(),
                    )]
                    .into_iter()
                    .collect(),
                };
                let sources = if c.sources.is_empty() {
                    files.keys().cloned().collect()
                } else {
                    c.sources.clone()
                };
                let selected = FakeWorker::select(&files, &sources);
                let single =
                    selected.len() == 1 && sources.len() == 1 && !sources[0].ends_with('/') && {
                        let s = sources[0].trim_start_matches('/');
                        files.contains_key(s) || files.contains_key(&format!("/{s}"))
                    };
                for (rel, content) in selected {
                    rootfs.changes.insert(join(&c.dest, &rel, single), content);
                }
            }
        }
        Ok(())
    }

    async fn commit(
        &self,
        rootfs: FakeRootfs,
        _ctx: &OpContext,
    ) -> Result<Option<Layer>, WorkerError> {
        if rootfs.changes.is_empty() {
            return Ok(None);
        }
        let layer = layer_for(&rootfs.changes);
        self.layers
            .lock()
            .unwrap()
            .insert(layer.diff_id.clone(), rootfs.changes);
        Ok(Some(layer))
    }

    async fn write_image(
        &self,
        config_json: &[u8],
        layers: &[Layer],
        _ctx: &OpContext,
    ) -> Result<ImageRecord, WorkerError> {
        self.images_written
            .lock()
            .unwrap()
            .push((config_json.to_vec(), layers.to_vec()));
        let config_digest = sha256_digest(config_json);
        let manifest = serde_json::json!({"config": config_digest.to_string(), "layers": layers.iter().map(|l| l.blob.digest().to_string()).collect::<Vec<_>>()});
        let bytes = serde_json::to_vec(&manifest).unwrap();
        let manifest_digest = sha256_digest(&bytes);
        Ok(ImageRecord {
            manifest_digest: manifest_digest.clone(),
            config_digest,
            manifest: Descriptor::new(
                MediaType::ImageManifest,
                bytes.len() as u64,
                manifest_digest,
            ),
        })
    }
}
