//! Image sources and results: FROM names resolved in the local store,
//! layers checked, and the built image written (config, manifest, record).

use kiln_registry::{Reference, Store};
use kiln_solver::{ImageRecord, Layer, ResolvedImage, WorkerError};
use oci_spec::image::{
    Descriptor, DescriptorBuilder, ImageManifestBuilder, MediaType, Platform, SCHEMA_VERSION,
};

use super::error::BuildWorkerError;

/// A store layer as the solver sees it.
pub fn to_solver_layer(l: &kiln_registry::Layer) -> Layer {
    Layer {
        diff_id: l.diff_id.clone(),
        blob: l.descriptor.clone(),
    }
}

/// A solver layer as the store sees it.
pub fn to_store_layer(l: &Layer) -> kiln_registry::Layer {
    kiln_registry::Layer {
        descriptor: l.blob.clone(),
        diff_id: l.diff_id.clone(),
    }
}

/// Resolves `name` in the local store.
pub fn resolve_local(
    store: &Store,
    name: &str,
    _platform: &Platform,
) -> Result<Option<ResolvedImage>, WorkerError> {
    let reference = Reference::parse(name).map_err(|source| BuildWorkerError::Reference {
        name: name.to_string(),
        source,
    })?;
    let Some(target) = store.resolve(&reference).map_err(BuildWorkerError::from)? else {
        return Ok(None);
    };
    let image = store.image_for(&target).map_err(BuildWorkerError::from)?;
    let config_json = store
        .read_blob(image.config_descriptor.digest())
        .map_err(BuildWorkerError::from)?;
    Ok(Some(ResolvedImage {
        name: reference.to_string(),
        manifest_digest: image.manifest_descriptor.digest().clone(),
        config_digest: image.config_descriptor.digest().clone(),
        config_json,
        layers: image.layers.iter().map(to_solver_layer).collect(),
    }))
}

/// Writes the image: the config exactly as given, an OCI manifest over the
/// layers, and the image record.
pub fn write_image(
    store: &Store,
    config_json: &[u8],
    layers: &[Layer],
) -> Result<ImageRecord, BuildWorkerError> {
    let _lease = store.lease()?;
    let config = store.put_config_bytes(config_json)?;
    let config = DescriptorBuilder::default()
        .media_type(MediaType::ImageConfig)
        .digest(config.digest().clone())
        .size(config.size())
        .build()
        .expect("descriptor fields are set");
    let manifest = ImageManifestBuilder::default()
        .schema_version(SCHEMA_VERSION)
        .media_type(MediaType::ImageManifest)
        .config(config.clone())
        .layers(
            layers
                .iter()
                .map(|l| l.blob.clone())
                .collect::<Vec<Descriptor>>(),
        )
        .build()
        .expect("manifest fields are set");
    let descriptor = store.put_manifest(&manifest)?;
    store.add_image(&descriptor)?;
    Ok(ImageRecord {
        manifest_digest: descriptor.digest().clone(),
        config_digest: config.digest().clone(),
        manifest: descriptor,
    })
}

/// Whether every blob of these layers is in the store.
pub fn has_layers(store: &Store, layers: &[Layer]) -> bool {
    layers.iter().all(|l| store.has_blob(l.blob.digest()))
}
