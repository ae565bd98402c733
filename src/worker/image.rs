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

/// Parses an image name as docker normalises it.
pub fn reference(name: &str) -> Result<Reference, BuildWorkerError> {
    Reference::parse(name).map_err(|source| BuildWorkerError::Reference {
        name: name.to_string(),
        source,
    })
}

/// Whether an image's config is for `platform` (os and architecture).
fn platform_matches(image: &kiln_registry::Image, platform: &Platform) -> bool {
    image.config.os() == platform.os() && image.config.architecture() == platform.architecture()
}

/// What the local store has for a name.
pub enum Local {
    Found(Box<ResolvedImage>),
    Missing,
    /// The image is here, but for this other platform (`os/arch`).
    OtherPlatform(String),
}

/// Resolves `name` in the local store (an image of another platform than
/// `platform` does not count).
pub fn resolve_local(store: &Store, name: &str, platform: &Platform) -> Result<Local, WorkerError> {
    let reference = reference(name)?;
    let Some(target) = store.resolve(&reference).map_err(BuildWorkerError::from)? else {
        return Ok(Local::Missing);
    };
    let image = store.image_for(&target).map_err(BuildWorkerError::from)?;
    if !platform_matches(&image, platform) {
        return Ok(Local::OtherPlatform(format!(
            "{}/{}",
            image.config.os(),
            image.config.architecture()
        )));
    }
    Ok(Local::Found(Box::new(resolved(store, &reference, &image)?)))
}

/// The solver's view of a store image.
pub fn resolved(
    store: &Store,
    reference: &Reference,
    image: &kiln_registry::Image,
) -> Result<ResolvedImage, BuildWorkerError> {
    let config_json = store.read_blob(image.config_descriptor.digest())?;
    Ok(ResolvedImage {
        name: reference.to_string(),
        manifest_digest: image.manifest_descriptor.digest().clone(),
        config_digest: image.config_descriptor.digest().clone(),
        config_json,
        layers: image.layers.iter().map(to_solver_layer).collect(),
    })
}

/// Writes the image: the config exactly as given, an OCI manifest over the
/// layers, and names it with `tags` (the first tag records the image; with
/// none, it is recorded untagged). What the store already has (a rebuild
/// from cache) is not written again, so a cached build syncs nothing.
pub fn write_image(
    store: &Store,
    config_json: &[u8],
    layers: &[Layer],
    tags: &[Reference],
    status: &dyn Fn(&str),
) -> Result<ImageRecord, BuildWorkerError> {
    let _lease = store.lease()?;
    let config_digest = kiln_registry::sha256_of(config_json);
    if !store.has_blob(&config_digest) {
        store.put_config_bytes(config_json)?;
    }
    let config = DescriptorBuilder::default()
        .media_type(MediaType::ImageConfig)
        .digest(config_digest.clone())
        .size(config_json.len() as u64)
        .build()
        .expect("descriptor fields are set");
    let manifest = ImageManifestBuilder::default()
        .schema_version(SCHEMA_VERSION)
        .media_type(MediaType::ImageManifest)
        .config(config)
        .layers(
            layers
                .iter()
                .map(|l| l.blob.clone())
                .collect::<Vec<Descriptor>>(),
        )
        .build()
        .expect("manifest fields are set");
    let bytes = kiln_registry::canonical_json(&manifest).map_err(BuildWorkerError::Config)?;
    let manifest_digest = kiln_registry::sha256_of(&bytes);
    let descriptor = if store.has_blob(&manifest_digest) {
        Descriptor::new(
            MediaType::ImageManifest,
            bytes.len() as u64,
            manifest_digest.clone(),
        )
    } else {
        store.put_manifest(&manifest)?
    };
    status(&format!("writing image {config_digest} done"));
    if tags.is_empty() {
        // Recorded already (same manifest built before)? Then nothing to do.
        let recorded = store
            .find_image(manifest_digest.as_ref())
            .is_ok_and(|i| i.target.digest() == &manifest_digest);
        if !recorded {
            store.add_image(&descriptor)?;
        }
    }
    for t in tags {
        // A tag that already names this image is left alone.
        match store.resolve(t)? {
            Some(d) if d.digest() == &manifest_digest => {}
            _ => {
                store.tag(t, &descriptor)?;
            }
        }
        status(&format!("naming to {t} done"));
    }
    Ok(ImageRecord {
        manifest_digest: descriptor.digest().clone(),
        config_digest,
        manifest: descriptor,
    })
}

/// Whether every blob of these layers is in the store.
pub fn has_layers(store: &Store, layers: &[Layer]) -> bool {
    layers.iter().all(|l| store.has_blob(l.blob.digest()))
}
