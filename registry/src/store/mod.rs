//! The local content-addressed store under the kiln root.
//!
//! Layout (see ../shared/DESIGN.md "On disk" and docs/architecture.md):
//! - `blobs/sha256/<hex>`: every blob (layers, configs, manifests, indexes),
//!   written through `tmp/`, digest-checked, fsynced and renamed into place;
//!   never rewritten.
//! - `meta/images.json`: image records, tags and holds (see `meta.rs`);
//!   `meta/roots/<owner>.json`: GC roots registered by other components.
//! - `locks/`: flock files (see `lock.rs`).
//! - `tmp/`: blobs being written. Temp names carry the writer's pid, so a
//!   writer killed with SIGKILL leaves a file that [`Store::open`] removes
//!   once its pid is gone; nothing half-written is ever visible under `blobs/`.

mod blob;
mod canonical;
pub mod compress;
pub mod decompress;
mod export;
pub(crate) mod gc;
mod image;
pub(crate) mod lock;
pub mod media;
mod meta;
mod objects;

pub use blob::{BlobInfo, BlobWriter};
pub use canonical::canonical_json;
pub use export::{ExportOptions, ExportedImage};
pub use gc::{GcReport, PruneOptions};
pub use image::{Image, ImageSummary, Layer, RemovedImage, short_hex};
pub use lock::Lease;
pub use media::Compression;

use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};

use oci_spec::image::Digest;

/// Largest JSON document (manifest, config, index) [`Store::read_blob`] loads
/// into memory; layers are always streamed.
pub const MAX_METADATA_BLOB: u64 = 64 * 1024 * 1024;

/// Errors of the local store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error("size mismatch for {digest}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        digest: Digest,
        expected: u64,
        actual: u64,
    },
    #[error("blob {0} is not in the store")]
    BlobNotFound(Digest),
    #[error("blob {digest} is {size} bytes, more than the {limit} a metadata document may have")]
    BlobTooLarge {
        digest: Digest,
        size: u64,
        limit: u64,
    },
    #[error("unsupported digest algorithm in {0} (only sha256 is supported)")]
    UnsupportedAlgorithm(Digest),
    #[error("{what} {digest} is not valid JSON of its kind")]
    InvalidDocument {
        what: &'static str,
        digest: Digest,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot serialise {what}")]
    Serialize {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("{digest} has media type {media_type:?}, expected {expected}")]
    UnexpectedMediaType {
        digest: Digest,
        media_type: String,
        expected: &'static str,
    },
    #[error("manifest {manifest} has {layers} layers but its config lists {diff_ids} diffIDs")]
    LayerCountMismatch {
        manifest: Digest,
        layers: usize,
        diff_ids: usize,
    },
    #[error("config {config} has an invalid diffID {diff_id:?}")]
    InvalidDiffId { config: Digest, diff_id: String },
    #[error("index {index} has no manifest for platform {platform}")]
    PlatformNotFound { index: Digest, platform: String },
    #[error("store metadata {path} is corrupt: {reason}")]
    CorruptMetadata { path: PathBuf, reason: String },
    #[error("invalid {what} {name:?}")]
    InvalidName { what: &'static str, name: String },
    #[error("no such image: {name}")]
    ImageNotFound { name: String },
    #[error("image id prefix {prefix:?} is ambiguous: it matches {count} images")]
    AmbiguousId { prefix: String, count: usize },
    #[error("{} names no tag (a tag is needed here, without a digest)", .0.familiar())]
    NotATag(crate::reference::Reference),
    #[error("cannot remove image {image}: {reason}")]
    ImageInUse { image: String, reason: String },
}

impl StoreError {
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| StoreError::Io { op, path, source }
    }

    pub(crate) fn serialize(what: &'static str) -> impl FnOnce(serde_json::Error) -> Self {
        move |source| StoreError::Serialize { what, source }
    }
}

/// A handle on the store at one kiln root. Cheap to clone; safe to use from
/// several threads and several processes at once.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// Opens (creating when needed) the store under `root`, and removes temp
    /// files left by writers that no longer exist.
    pub fn open(root: impl AsRef<Path>) -> Result<Store, StoreError> {
        let root = root.as_ref().to_path_buf();
        for dir in [
            root.join("blobs/sha256"),
            root.join("tmp"),
            root.join("meta/roots"),
            root.join("locks"),
        ] {
            fs::create_dir_all(&dir).map_err(StoreError::io("create directory", &dir))?;
        }
        let store = Store { root };
        store.remove_stale_temp_files();
        Ok(store)
    }

    /// The kiln root this store lives in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory for in-progress writes (same filesystem as `blobs/`, so
    /// a rename publishes atomically). Other modules may create their own
    /// temp files here, named `<pid>-<anything>` so stale ones are reclaimed.
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// A fresh temp path in [`Store::tmp_dir`], `<pid>-<n>-<what>`, reclaimed
    /// by [`Store::open`] once this process is gone.
    pub fn tmp_name(&self, what: &str) -> PathBuf {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        self.tmp_dir()
            .join(format!("{}-{n}-{nanos:x}-{what}", std::process::id()))
    }

    /// Takes a [`Lease`]: garbage collection does not run while it is held.
    /// Hold one from before writing blobs until what refers to them (a tag,
    /// an image record, a hold, a GC root) is recorded.
    pub fn lease(&self) -> Result<Lease, StoreError> {
        Lease::acquire(&self.root)
    }

    /// Where the blob with this digest lives (whether or not it exists).
    pub fn blob_path(&self, digest: &Digest) -> Result<PathBuf, StoreError> {
        let hex = sha256_hex(digest)?;
        Ok(self.root.join("blobs/sha256").join(hex))
    }

    /// Whether the blob is present.
    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).map(|p| p.is_file()).unwrap_or(false)
    }

    /// The blob's size, or `BlobNotFound`.
    pub fn blob_size(&self, digest: &Digest) -> Result<u64, StoreError> {
        let path = self.blob_path(digest)?;
        match fs::metadata(&path) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(StoreError::BlobNotFound(digest.clone()))
            }
            Err(e) => Err(StoreError::io("stat", path)(e)),
        }
    }

    /// Opens a blob for streaming reads.
    pub fn open_blob(&self, digest: &Digest) -> Result<File, StoreError> {
        let path = self.blob_path(digest)?;
        match File::open(&path) {
            Ok(f) => Ok(f),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(StoreError::BlobNotFound(digest.clone()))
            }
            Err(e) => Err(StoreError::io("open", path)(e)),
        }
    }

    /// Reads a small blob (a manifest, config or index) into memory; refuses
    /// anything larger than [`MAX_METADATA_BLOB`].
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>, StoreError> {
        let path = self.blob_path(digest)?;
        let file = self.open_blob(digest)?;
        let size = file
            .metadata()
            .map_err(StoreError::io("stat", &path))?
            .len();
        if size > MAX_METADATA_BLOB {
            return Err(StoreError::BlobTooLarge {
                digest: digest.clone(),
                size,
                limit: MAX_METADATA_BLOB,
            });
        }
        let mut buf = Vec::with_capacity(size as usize);
        file.take(MAX_METADATA_BLOB)
            .read_to_end(&mut buf)
            .map_err(StoreError::io("read", &path))?;
        Ok(buf)
    }

    /// Starts writing a new blob; see [`BlobWriter`].
    pub fn blob_writer(&self) -> Result<BlobWriter, StoreError> {
        BlobWriter::create(self)
    }

    /// Writes a small in-memory blob (JSON documents) and returns its digest.
    pub fn write_blob(&self, bytes: &[u8]) -> Result<BlobInfo, StoreError> {
        use std::io::Write;
        let mut w = self.blob_writer()?;
        w.write_all(bytes)
            .map_err(StoreError::io("write", self.tmp_dir()))?;
        w.commit(None)
    }

    fn remove_stale_temp_files(&self) {
        let Ok(entries) = fs::read_dir(self.tmp_dir()) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(pid) = name
                .to_str()
                .and_then(|n| n.split('-').next())
                .and_then(|p| p.parse::<u32>().ok())
            else {
                continue;
            };
            if !Path::new("/proc").join(pid.to_string()).exists() {
                let path = entry.path();
                let _ = if path.is_dir() {
                    fs::remove_dir_all(&path)
                } else {
                    fs::remove_file(&path)
                };
            }
        }
    }
}

/// The hex part of a sha256 digest, refusing other algorithms.
pub(crate) fn sha256_hex(digest: &Digest) -> Result<&str, StoreError> {
    if digest.algorithm() != &oci_spec::image::DigestAlgorithm::Sha256 {
        return Err(StoreError::UnsupportedAlgorithm(digest.clone()));
    }
    Ok(digest.digest())
}

/// Builds a sha256 [`Digest`] from a finished hasher's output.
pub fn sha256_digest(bytes: &[u8]) -> Digest {
    use std::str::FromStr;
    let s = format!("sha256:{}", hex::encode(bytes));
    // A 64-digit lower-case hex string is always a valid sha256 digest.
    Digest::from_str(&s).expect("hex sha256 is a valid digest")
}

/// The sha256 digest of in-memory bytes.
pub fn sha256_of(bytes: &[u8]) -> Digest {
    use sha2::Digest as _;
    sha256_digest(&sha2::Sha256::digest(bytes))
}

/// Fsyncs a directory so a rename into it survives a crash.
pub(crate) fn fsync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(StoreError::io("fsync directory", dir))
}
