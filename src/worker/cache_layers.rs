//! Layers of build cache records imported with `--cache-from`: where each
//! one can be fetched, and fetching it into the store when a build uses the
//! record. A layer kiln stores uncompressed (digest = diffID, as kiln's own
//! steps write them) travels gzip-compressed; it is decompressed back into
//! the very blob the exporting machine had (checked against its diffID), so
//! the image built here is byte for byte the one built there, and the
//! compressed blob is remembered for a later push.

use std::collections::HashMap;
use std::io::BufReader;
use std::sync::Arc;

use kiln_registry::remote::Repository;
use kiln_registry::store::decompress::decompressed;
use kiln_registry::{Compression, Store};
use kiln_solver::Layer;
use oci_spec::image::{Descriptor, Digest};

use super::BuildWorkerError;

/// Where the layers of imported cache records can be fetched from.
#[derive(Default)]
pub struct RemoteLayers {
    /// By (diffID, local blob digest): the repository and the blob there.
    layers: HashMap<(Digest, Digest), (Arc<Repository>, Descriptor)>,
}

impl RemoteLayers {
    /// Remembers that `layer` can be fetched from `repo` as `remote`.
    pub fn insert(&mut self, layer: &Layer, repo: Arc<Repository>, remote: Descriptor) {
        self.layers
            .entry((layer.diff_id.clone(), layer.blob.digest().clone()))
            .or_insert((repo, remote));
    }

    /// Where `layer` can be fetched: the repository and the blob there.
    pub fn get(&self, layer: &Layer) -> Option<(&Repository, &Descriptor)> {
        self.layers
            .get(&(layer.diff_id.clone(), layer.blob.digest().clone()))
            .map(|(r, d)| (&**r, d))
    }
}

/// Errors fetching an imported cache layer.
#[derive(Debug, thiserror::Error)]
pub enum CacheLayerError {
    #[error("layer {diff_id} is not in the store and no --cache-from source has it")]
    Unknown { diff_id: Digest },
    #[error("cannot fetch cached layer {diff_id}")]
    Fetch {
        diff_id: Digest,
        #[source]
        source: kiln_registry::remote::RemoteError,
    },
    #[error("cannot decompress cached layer {diff_id}")]
    Decompress {
        diff_id: Digest,
        #[source]
        source: std::io::Error,
    },
}

impl From<CacheLayerError> for BuildWorkerError {
    fn from(e: CacheLayerError) -> Self {
        BuildWorkerError::CacheLayer(Box::new(e))
    }
}

/// Makes every layer of `layers` local; returns the blobs it added.
pub async fn fetch(
    store: &Store,
    remote: Option<&RemoteLayers>,
    layers: &[Layer],
) -> Result<Vec<Digest>, BuildWorkerError> {
    let mut added = Vec::new();
    for layer in layers {
        let local = layer.blob.digest();
        if store.has_blob(local) {
            continue;
        }
        let (repo, desc) = remote
            .and_then(|r| r.layers.get(&(layer.diff_id.clone(), local.clone())))
            .ok_or_else(|| CacheLayerError::Unknown {
                diff_id: layer.diff_id.clone(),
            })?;
        tracing::info!(diff_id = %layer.diff_id, blob = %desc.digest(), size = desc.size(), "fetching a cached layer");
        repo.fetch_blob(store, desc)
            .await
            .map_err(|source| CacheLayerError::Fetch {
                diff_id: layer.diff_id.clone(),
                source,
            })?;
        if desc.digest() != local {
            // Stored uncompressed here and there: decompress it back.
            let store2 = store.clone();
            let fetched = desc.digest().clone();
            let diff_id = layer.diff_id.clone();
            let expected = local.clone();
            tokio::task::spawn_blocking(move || decompress(&store2, &fetched, &diff_id, &expected))
                .await
                .map_err(BuildWorkerError::Join)??;
        }
        added.push(local.clone());
    }
    Ok(added)
}

fn decompress(
    store: &Store,
    fetched: &Digest,
    diff_id: &Digest,
    expected: &Digest,
) -> Result<(), BuildWorkerError> {
    let err = |source| CacheLayerError::Decompress {
        diff_id: diff_id.clone(),
        source,
    };
    let file = store.open_blob(fetched)?;
    let (algorithm, mut reader) =
        decompressed(BufReader::with_capacity(1 << 20, file), None).map_err(err)?;
    let mut writer = store.blob_writer()?;
    std::io::copy(&mut reader, &mut writer).map_err(err)?;
    writer.commit(Some(expected))?;
    if algorithm != Compression::None {
        store.record_compressed(diff_id, algorithm, fetched)?;
    }
    Ok(())
}
