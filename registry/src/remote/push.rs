//! `kiln push`: the local image's layers compressed when stored
//! uncompressed (once; the store remembers the compressed blob), each blob
//! checked with HEAD and skipped when the registry has it, mounted from
//! another repository of the same registry when kiln knows one that has it,
//! else uploaded streamed from the store; then the manifest's exact bytes
//! PUT with its media type. `kiln build --push` calls [`push`] too.

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use oci_spec::image::{Descriptor, Digest, MediaType};

use super::client::RemoteRepo;
use super::error::{Operation, RemoteError, RemoteErrorKind};
use super::progress::{BlobOutcome, BlobRole, TransferEvent, TransferProgress};
use super::pull::remember;
use super::sources;
use super::transport::RemoteConfig;
use crate::reference::Reference;
use crate::store::media;
use crate::store::{Compression, Image, Store, canonical_json, sha256_of};

/// What a push did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// The digest of the manifest as pushed (what `NAME@digest` pulls).
    pub digest: Digest,
    /// The manifest's size in bytes and media type.
    pub size: u64,
    pub media_type: String,
    /// Blobs uploaded, mounted from another repository, already there.
    pub uploaded: usize,
    pub mounted: usize,
    pub skipped: usize,
}

/// Pushes the local image `reference` names to `reference`'s registry and
/// repository, under its tag (or digest).
pub async fn push(
    store: &Store,
    config: &RemoteConfig,
    reference: &Reference,
    progress: &dyn TransferProgress,
) -> Result<Pushed, RemoteError> {
    let target = super::target_of(reference);
    let err = |kind| RemoteError::new(Operation::Push, target.clone(), kind);
    let image = local_image(store, reference).map_err(err)?;
    let repo = super::connect(config, reference, Operation::Push).await?;
    push_to(
        &repo,
        store,
        &image,
        reference,
        config.max_concurrent_transfers,
        progress,
    )
    .await
    .map_err(err)
}

fn local_image(store: &Store, reference: &Reference) -> Result<Image, RemoteErrorKind> {
    let target = store
        .resolve(reference)?
        .ok_or_else(|| RemoteErrorKind::LocalImageMissing {
            reference: reference.familiar(),
        })?;
    Ok(store.image_for(&target)?)
}

fn is_uncompressed_layer(mt: &MediaType) -> bool {
    let s = mt.to_string();
    s == media::OCI_LAYER || s == media::DOCKER_LAYER
}

/// The manifest to push and its media type: the stored bytes when every
/// layer is already compressed, else a manifest naming the compressed
/// layers (serialised canonically, so the same image always gives the same
/// digest).
async fn distributable_manifest(
    store: &Store,
    image: &Image,
    progress: &dyn TransferProgress,
) -> Result<(Bytes, String, Vec<Descriptor>), RemoteErrorKind> {
    let manifest_type = image.manifest_descriptor.media_type().to_string();
    let docker = manifest_type == media::DOCKER_MANIFEST;
    let mut layers = Vec::with_capacity(image.layers.len());
    let mut changed = false;
    for layer in &image.layers {
        if !is_uncompressed_layer(layer.descriptor.media_type()) {
            layers.push(layer.descriptor.clone());
            continue;
        }
        changed = true;
        let diff_id = layer.descriptor.digest().clone();
        if store
            .lookup_compressed(&diff_id, Compression::Gzip)?
            .is_none()
        {
            progress.event(TransferEvent::Compressing {
                diff_id: diff_id.clone(),
            });
        }
        let s = store.clone();
        let compressed =
            tokio::task::spawn_blocking(move || s.compressed_layer(&diff_id, Compression::Gzip))
                .await
                .map_err(|e| {
                    RemoteErrorKind::Store(crate::store::StoreError::io(
                        "compress",
                        store.tmp_dir(),
                    )(std::io::Error::other(e)))
                })??;
        let mut desc = layer.descriptor.clone();
        desc.set_digest(compressed.digest().clone());
        desc.set_size(compressed.size());
        desc.set_media_type(if docker {
            MediaType::Other(media::DOCKER_LAYER_GZIP.to_string())
        } else {
            compressed.media_type().clone()
        });
        layers.push(desc);
    }
    if !changed {
        let bytes = store.read_blob(image.manifest_descriptor.digest())?;
        return Ok((Bytes::from(bytes), manifest_type, layers));
    }
    let mut manifest = image.manifest.clone();
    manifest.set_layers(layers.clone());
    let bytes =
        canonical_json(&manifest).map_err(|source| crate::store::StoreError::Serialize {
            what: "manifest",
            source,
        })?;
    Ok((Bytes::from(bytes), manifest_type, layers))
}

/// The push itself, against any [`RemoteRepo`].
pub(crate) async fn push_to<R: RemoteRepo>(
    repo: &R,
    store: &Store,
    image: &Image,
    reference: &Reference,
    max_concurrent: usize,
    progress: &dyn TransferProgress,
) -> Result<Pushed, RemoteErrorKind> {
    // Compressed copies are written under a lease; hold one so GC leaves
    // every blob of the image alone until the manifest is up.
    let _lease = store.lease()?;
    let (manifest_bytes, media_type, layers) =
        distributable_manifest(store, image, progress).await?;
    let mut blobs = vec![(image.config_descriptor.clone(), BlobRole::Config)];
    blobs.extend(layers.into_iter().map(|d| (d, BlobRole::Layer)));
    let outcomes: Vec<BlobOutcome> = futures_util::stream::iter(blobs)
        .map(|(desc, role)| push_one(repo, store, desc, role, progress))
        .buffer_unordered(max_concurrent.max(1))
        .try_collect()
        .await?;
    let name = match (reference.digest(), reference.tag()) {
        (Some(d), _) => d.to_string(),
        (None, Some(t)) => t.to_string(),
        (None, None) => crate::reference::DEFAULT_TAG.to_string(),
    };
    let digest = sha256_of(&manifest_bytes);
    let size = manifest_bytes.len() as u64;
    repo.put_manifest(&name, manifest_bytes, &media_type)
        .await?;
    tracing::info!(%reference, %digest, "pushed");
    Ok(Pushed {
        digest,
        size,
        media_type,
        uploaded: outcomes
            .iter()
            .filter(|o| **o == BlobOutcome::Uploaded)
            .count(),
        mounted: outcomes
            .iter()
            .filter(|o| matches!(o, BlobOutcome::Mounted { .. }))
            .count(),
        skipped: outcomes
            .iter()
            .filter(|o| **o == BlobOutcome::AlreadyExists)
            .count(),
    })
}

pub(crate) async fn push_one<R: RemoteRepo>(
    repo: &R,
    store: &Store,
    desc: Descriptor,
    role: BlobRole,
    progress: &dyn TransferProgress,
) -> Result<BlobOutcome, RemoteErrorKind> {
    let digest = desc.digest().clone();
    let size = desc.size();
    let (registry, repository) = repo.location();
    progress.event(TransferEvent::BlobStarted {
        digest: digest.clone(),
        size,
        role,
    });
    let outcome = if repo.has_blob(&digest).await? {
        BlobOutcome::AlreadyExists
    } else {
        let mounted = match sources::mount_source(store, &digest, &registry, &repository) {
            Some(from) if repo.mount_blob(&digest, &from).await? => Some(from),
            _ => None,
        };
        match mounted {
            Some(from) => BlobOutcome::Mounted { from },
            None => {
                let path = store.blob_path(&digest)?;
                let on_bytes = |done: u64| {
                    progress.event(TransferEvent::BlobProgress {
                        digest: digest.clone(),
                        done,
                    })
                };
                repo.upload_blob(path, &digest, size, &on_bytes).await?;
                BlobOutcome::Uploaded
            }
        }
    };
    remember(store, &digest, &registry, &repository);
    progress.event(TransferEvent::BlobFinished {
        digest,
        outcome: outcome.clone(),
    });
    Ok(outcome)
}
