//! `kiln pull`: tag or digest → manifest (an index selects the platform) →
//! config and layers fetched concurrently (bounded), streamed into the store
//! with their digests checked, blobs already present skipped → the image
//! recorded and tagged. `FROM` and `kiln run` use [`pull_if_missing`].

use futures_util::{StreamExt, TryStreamExt};
use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};

use super::client::RemoteRepo;
use super::error::{Operation, RemoteError, RemoteErrorKind};
use super::platform::{self, Platform, is_index_media_type};
use super::progress::{BlobOutcome, BlobRole, TransferEvent, TransferProgress};
use super::sources;
use super::transport::RemoteConfig;
use crate::reference::Reference;
use crate::store::{Image, Store};

/// Options of a pull.
#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    /// The platform to take from an index; the host's when `None`.
    pub platform: Option<Platform>,
}

/// What a pull did.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// What the tag (or the image record) points at: the index for the
    /// host platform, else the platform's manifest.
    pub target: Descriptor,
    pub image: Image,
    /// Blobs downloaded (the others were already in the store).
    pub downloaded: usize,
    /// Bytes downloaded.
    pub bytes: u64,
}

/// The kind of a fetched document, from its own `mediaType` or its shape.
fn document_media_type(bytes: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    if let Some(mt) = value.get("mediaType").and_then(|v| v.as_str()) {
        return Some(mt.to_string());
    }
    if value.get("schemaVersion").and_then(|v| v.as_i64()) == Some(1) {
        return Some("application/vnd.docker.distribution.manifest.v1+json".into());
    }
    Some(if value.get("manifests").is_some() {
        "application/vnd.oci.image.index.v1+json".into()
    } else {
        "application/vnd.oci.image.manifest.v1+json".into()
    })
}

fn is_manifest_media_type(mt: &str) -> bool {
    mt == "application/vnd.oci.image.manifest.v1+json"
        || mt == "application/vnd.docker.distribution.manifest.v2+json"
}

/// Pulls `reference` into the store and tags it (unless it names a digest).
pub async fn pull(
    store: &Store,
    config: &RemoteConfig,
    reference: &Reference,
    options: &PullOptions,
    progress: &dyn TransferProgress,
) -> Result<Pulled, RemoteError> {
    let target = super::target_of(reference);
    let err = |kind| RemoteError::new(Operation::Pull, target.clone(), kind);
    let repo = super::connect(config, reference, Operation::Pull).await?;
    pull_from(
        &repo,
        store,
        reference,
        options,
        config.max_concurrent_transfers,
        progress,
    )
    .await
    .map_err(err)
}

/// The image `reference` names in the store, pulled first when missing.
/// What `FROM` and `kiln run` call.
pub async fn pull_if_missing(
    store: &Store,
    config: &RemoteConfig,
    reference: &Reference,
    options: &PullOptions,
    progress: &dyn TransferProgress,
) -> Result<Image, RemoteError> {
    let local = |kind| {
        RemoteError::new(
            Operation::Pull,
            format!("{}/{}", reference.registry(), reference.repository()),
            kind,
        )
    };
    if let Some(target) = store.resolve(reference).map_err(|e| local(e.into()))? {
        match store.image_for(&target) {
            Ok(image) if platform_ok(&image, options) => return Ok(image),
            Ok(_) => {}
            Err(e) => {
                tracing::debug!(%reference, error = %e, "local image unusable; pulling");
            }
        }
    }
    Ok(pull(store, config, reference, options, progress)
        .await?
        .image)
}

/// Whether a local image fits the requested platform.
fn platform_ok(image: &Image, options: &PullOptions) -> bool {
    match &options.platform {
        None => true,
        Some(p) => {
            image.config.os().to_string() == p.os
                && image.config.architecture().to_string() == p.architecture
        }
    }
}

/// The pull itself, against any [`RemoteRepo`].
pub(crate) async fn pull_from<R: RemoteRepo>(
    repo: &R,
    store: &Store,
    reference: &Reference,
    options: &PullOptions,
    max_concurrent: usize,
    progress: &dyn TransferProgress,
) -> Result<Pulled, RemoteErrorKind> {
    // From the first blob written until the image is tagged, GC waits.
    let _lease = store.lease()?;
    let wanted = match (reference.digest(), reference.tag()) {
        (Some(d), _) => d.to_string(),
        (None, Some(t)) => t.to_string(),
        (None, None) => crate::reference::DEFAULT_TAG.to_string(),
    };
    let (top_bytes, top_digest) = repo.fetch_manifest(&wanted).await?;
    let top_type = document_media_type(&top_bytes).unwrap_or_default();
    progress.event(TransferEvent::Resolved {
        reference: reference.to_string(),
        digest: top_digest.clone(),
    });

    let wanted_platform = options.platform.clone().unwrap_or_else(Platform::host);
    let (index, manifest_bytes, manifest_digest, manifest_type) = if is_index_media_type(&top_type)
    {
        let index: ImageIndex = serde_json::from_slice(&top_bytes).map_err(|source| {
            RemoteErrorKind::InvalidManifest {
                digest: top_digest.to_string(),
                source,
            }
        })?;
        let chosen = wanted_platform.select(&index).cloned().ok_or_else(|| {
            RemoteErrorKind::NoMatchingPlatform {
                reference: reference.to_string(),
                wanted: wanted_platform.to_string(),
                available: platform::available(&index),
            }
        })?;
        let (bytes, digest) = repo.fetch_manifest(chosen.digest().as_ref()).await?;
        let mt = document_media_type(&bytes).unwrap_or_default();
        // Which manifest the store itself would resolve the index to.
        let host_pick = Platform::host().select(&index).map(|d| d.digest().clone());
        let host_pick_is_ours = host_pick.as_ref() == Some(chosen.digest());
        (Some((index, host_pick_is_ours)), bytes, digest, mt)
    } else {
        (
            None,
            top_bytes.clone(),
            top_digest.clone(),
            top_type.clone(),
        )
    };
    if !is_manifest_media_type(&manifest_type) {
        return Err(RemoteErrorKind::UnsupportedMediaType {
            reference: reference.to_string(),
            media_type: manifest_type,
        });
    }
    let manifest: ImageManifest = serde_json::from_slice(&manifest_bytes).map_err(|source| {
        RemoteErrorKind::InvalidManifest {
            digest: manifest_digest.to_string(),
            source,
        }
    })?;

    let mut blobs = vec![(manifest.config().clone(), BlobRole::Config)];
    blobs.extend(
        manifest
            .layers()
            .iter()
            .map(|l| (l.clone(), BlobRole::Layer)),
    );
    let results: Vec<Option<u64>> = futures_util::stream::iter(blobs)
        .map(|(desc, role)| fetch_one(repo, store, desc, role, progress))
        .buffer_unordered(max_concurrent.max(1))
        .try_collect()
        .await?;
    let downloaded = results.iter().filter(|r| r.is_some()).count();
    let bytes = results.iter().flatten().sum();

    // A single-platform image must be the platform asked for.
    if let (None, Some(p)) = (&index, &options.platform) {
        let config = store.config(manifest.config().digest())?;
        let actual = format!("{}/{}", config.os(), config.architecture());
        if config.os().to_string() != p.os || config.architecture().to_string() != p.architecture {
            return Err(RemoteErrorKind::NoMatchingPlatform {
                reference: reference.to_string(),
                wanted: p.to_string(),
                available: actual,
            });
        }
    }
    let manifest_desc = store.put_manifest_bytes(&manifest_bytes, Some(&manifest_type))?;
    let target = match &index {
        // The index is the image's identity on the host platform (its
        // digest is what `pull NAME@sha256:…` names); elsewhere the store
        // could not resolve it to the manifest we pulled.
        Some((_, true)) if options.platform.as_ref().is_none_or(Platform::is_host) => {
            store.put_manifest_bytes(&top_bytes, Some(&top_type))?
        }
        _ => manifest_desc,
    };
    let image = store.add_image(&target)?;
    if reference.digest().is_none() && reference.tag().is_some() {
        store.tag(reference, &target)?;
    }
    Ok(Pulled {
        target,
        image,
        downloaded,
        bytes,
    })
}

/// Fetches one blob unless the store has it; `Some(bytes)` when fetched.
async fn fetch_one<R: RemoteRepo>(
    repo: &R,
    store: &Store,
    desc: Descriptor,
    role: BlobRole,
    progress: &dyn TransferProgress,
) -> Result<Option<u64>, RemoteErrorKind> {
    let digest = desc.digest().clone();
    let size = desc.size();
    progress.event(TransferEvent::BlobStarted {
        digest: digest.clone(),
        size,
        role,
    });
    let (registry, repository) = repo.location();
    if store.has_blob(&digest) {
        remember(store, &digest, &registry, &repository);
        progress.event(TransferEvent::BlobFinished {
            digest,
            outcome: BlobOutcome::AlreadyPresent,
        });
        return Ok(None);
    }
    let on_bytes = |done: u64| {
        progress.event(TransferEvent::BlobProgress {
            digest: digest.clone(),
            done,
        })
    };
    let info = repo.fetch_blob(store, &digest, size, &on_bytes).await?;
    remember(store, &digest, &registry, &repository);
    progress.event(TransferEvent::BlobFinished {
        digest,
        outcome: BlobOutcome::Downloaded,
    });
    Ok(Some(info.size))
}

/// Records a blob's source; a failure only costs a later mount.
pub(crate) fn remember(
    store: &Store,
    digest: &oci_spec::image::Digest,
    registry: &str,
    repository: &str,
) {
    if let Err(e) = sources::record(store, digest, registry, repository) {
        tracing::warn!(%digest, error = %e, "cannot remember where a blob came from");
    }
}
