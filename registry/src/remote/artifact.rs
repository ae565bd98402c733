//! Arbitrary content in a repository: a manifest by tag (or digest) and
//! the blobs it names, pulled into the store or pushed from it. `kiln build
//! --cache-from/--cache-to` keep the build cache there (an OCI manifest of
//! kiln's own media types, see docs/cache-keys.md); images go through
//! [`super::pull`] and [`super::push`] instead.

use futures_util::{StreamExt, TryStreamExt};
use oci_spec::image::{Descriptor, Digest, ImageManifest};

use super::client::{OciRepo, RemoteRepo};
use super::error::{Operation, RemoteError, RemoteErrorKind};
use super::progress::{BlobOutcome, BlobRole, NoProgress};
use super::pull::remember;
use super::push::{Pushed, push_one};
use super::transport::RemoteConfig;
use crate::reference::Reference;
use crate::store::{BlobInfo, Store, StoreError, canonical_json, sha256_of};

/// One repository, connected (and authenticated) for pulling, or pushing
/// and pulling.
pub struct Repository {
    repo: OciRepo,
    operation: Operation,
    target: String,
    max_concurrent: usize,
}

impl Repository {
    /// Connects to `reference`'s registry and repository; `push` asks for
    /// push rights too.
    pub async fn connect(
        config: &RemoteConfig,
        reference: &Reference,
        push: bool,
    ) -> Result<Repository, RemoteError> {
        let operation = if push {
            Operation::Push
        } else {
            Operation::Pull
        };
        let repo = super::connect(config, reference, operation).await?;
        let target = super::target_of(reference);
        Ok(Repository {
            repo,
            operation,
            target,
            max_concurrent: config.max_concurrent_transfers,
        })
    }

    /// The registry (`host[:port]`) and repository.
    pub fn location(&self) -> (String, String) {
        self.repo.location()
    }

    fn err(&self, kind: RemoteErrorKind) -> RemoteError {
        RemoteError::new(self.operation, self.target.clone(), kind)
    }

    /// The manifest a tag or digest names: its exact bytes and digest.
    pub async fn fetch_manifest(
        &self,
        tag_or_digest: &str,
    ) -> Result<(Vec<u8>, Digest), RemoteError> {
        let (bytes, digest) = self
            .repo
            .fetch_manifest(tag_or_digest)
            .await
            .map_err(|k| self.err(k))?;
        Ok((bytes.to_vec(), digest))
    }

    /// Makes the blob `desc` names local (streamed, digest-checked; nothing
    /// is downloaded when the store has it).
    pub async fn fetch_blob(
        &self,
        store: &Store,
        desc: &Descriptor,
    ) -> Result<BlobInfo, RemoteError> {
        let digest = desc.digest();
        let (registry, repository) = self.repo.location();
        if store.has_blob(digest) {
            let size = store.blob_size(digest).map_err(|e| self.err(e.into()))?;
            return Ok(BlobInfo {
                digest: digest.clone(),
                size,
            });
        }
        let info = self
            .repo
            .fetch_blob(store, digest, desc.size(), &|_| {})
            .await
            .map_err(|k| self.err(k))?;
        remember(store, digest, &registry, &repository);
        Ok(info)
    }

    /// Pushes `manifest` under `tag`: first its config and layers (blobs of
    /// the store; those the registry has are skipped), then the manifest's
    /// canonical bytes with its media type.
    pub async fn push_manifest(
        &self,
        store: &Store,
        tag: &str,
        manifest: &ImageManifest,
    ) -> Result<Pushed, RemoteError> {
        let _lease = store.lease().map_err(|e| self.err(e.into()))?;
        let mut blobs = vec![(manifest.config().clone(), BlobRole::Config)];
        blobs.extend(
            manifest
                .layers()
                .iter()
                .cloned()
                .map(|d| (d, BlobRole::Layer)),
        );
        let outcomes: Vec<BlobOutcome> = futures_util::stream::iter(blobs)
            .map(|(desc, role)| push_one(&self.repo, store, desc, role, &NoProgress))
            .buffer_unordered(self.max_concurrent.max(1))
            .try_collect()
            .await
            .map_err(|k| self.err(k))?;
        let bytes = canonical_json(manifest)
            .map_err(|source| StoreError::Serialize {
                what: "manifest",
                source,
            })
            .map_err(|e| self.err(e.into()))?;
        let media_type = manifest
            .media_type()
            .as_ref()
            .map(|m| m.to_string())
            .unwrap_or_else(|| "application/vnd.oci.image.manifest.v1+json".to_string());
        let digest = sha256_of(&bytes);
        let size = bytes.len() as u64;
        self.repo
            .put_manifest(tag, bytes.into(), &media_type)
            .await
            .map_err(|k| self.err(k))?;
        let count = |f: fn(&BlobOutcome) -> bool| outcomes.iter().filter(|o| f(o)).count();
        Ok(Pushed {
            digest,
            size,
            media_type,
            uploaded: count(|o| *o == BlobOutcome::Uploaded),
            mounted: count(|o| matches!(o, BlobOutcome::Mounted { .. })),
            skipped: count(|o| *o == BlobOutcome::AlreadyExists),
        })
    }
}
