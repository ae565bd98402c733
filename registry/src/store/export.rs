//! The manifest an image leaves the machine with (`save`, `push`): layers
//! stored uncompressed are compressed (once, remembered — see
//! `compress.rs`); layers already compressed go as they are. When nothing
//! changes, the stored manifest's exact bytes are used, so a pulled image
//! keeps its digest.

use oci_spec::image::{Descriptor, DescriptorBuilder, ImageManifest, MediaType};

use super::canonical::canonical_json;
use super::media::{self, Compression, DocKind};
use super::{Image, Store, StoreError};

/// How to export.
#[derive(Debug, Clone, Copy)]
pub struct ExportOptions {
    /// What uncompressed layers become (`None`: they stay uncompressed).
    pub compression: Compression,
    /// Rewrite Docker schema 2 media types to OCI ones (an OCI layout
    /// wants them; a registry push keeps the original).
    pub oci_media_types: bool,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            compression: Compression::Gzip,
            oci_media_types: false,
        }
    }
}

/// An image ready to leave: the manifest bytes to send and every blob it
/// refers to (all in the store).
#[derive(Debug, Clone)]
pub struct ExportedImage {
    pub manifest: ImageManifest,
    pub manifest_bytes: Vec<u8>,
    /// The manifest's descriptor (digest of `manifest_bytes`).
    pub descriptor: Descriptor,
    pub config: Descriptor,
    /// Layer blobs as they go out, base first.
    pub layers: Vec<Descriptor>,
}

fn oci_media_type(mt: &MediaType) -> MediaType {
    match media::kind_of_media(mt) {
        DocKind::Manifest => MediaType::ImageManifest,
        DocKind::Config => MediaType::ImageConfig,
        DocKind::Layer(c) => c.oci_layer_media_type(),
        _ => mt.clone(),
    }
}

impl Store {
    /// Prepares `image` for `save` or `push` (see the module docs).
    pub fn export_image(
        &self,
        image: &Image,
        opts: ExportOptions,
    ) -> Result<ExportedImage, StoreError> {
        let needs_compression = opts.compression != Compression::None
            && image.layers.iter().any(|l| {
                media::kind_of_media(l.descriptor.media_type()) == DocKind::Layer(Compression::None)
            });
        let is_docker = media::kind_of_media(image.manifest_descriptor.media_type())
            == DocKind::Manifest
            && image.manifest_descriptor.media_type() != &MediaType::ImageManifest;
        let rewrite = needs_compression || (opts.oci_media_types && is_docker);
        if !rewrite {
            let bytes = self.read_blob(image.manifest_digest())?;
            return Ok(ExportedImage {
                manifest: image.manifest.clone(),
                descriptor: Descriptor::new(
                    image.manifest_descriptor.media_type().clone(),
                    bytes.len() as u64,
                    image.manifest_digest().clone(),
                ),
                manifest_bytes: bytes,
                config: image.config_descriptor.clone(),
                layers: image.layers.iter().map(|l| l.descriptor.clone()).collect(),
            });
        }
        let mut layers = Vec::with_capacity(image.layers.len());
        for l in &image.layers {
            let d = &l.descriptor;
            let out = if media::kind_of_media(d.media_type()) == DocKind::Layer(Compression::None)
                && opts.compression != Compression::None
            {
                let mut c = self.compressed_layer(d.digest(), opts.compression)?;
                c.set_annotations(d.annotations().clone());
                c
            } else {
                let mut c = d.clone();
                if opts.oci_media_types {
                    c.set_media_type(oci_media_type(d.media_type()));
                }
                c
            };
            layers.push(out);
        }
        let mut config = image.config_descriptor.clone();
        let mut manifest = image.manifest.clone();
        if opts.oci_media_types || !is_docker {
            config.set_media_type(oci_media_type(config.media_type()));
            manifest.set_media_type(Some(MediaType::ImageManifest));
        } else {
            // a Docker manifest stays Docker: its layers use Docker types
            for l in &mut layers {
                if l.media_type() == &MediaType::ImageLayerGzip {
                    l.set_media_type(MediaType::Other(media::DOCKER_LAYER_GZIP.into()));
                }
            }
        }
        manifest.set_config(config.clone());
        manifest.set_layers(layers.clone());
        let bytes = canonical_json(&manifest).map_err(StoreError::serialize("manifest"))?;
        let digest = super::sha256_of(&bytes);
        let descriptor = DescriptorBuilder::default()
            .media_type(
                manifest
                    .media_type()
                    .clone()
                    .unwrap_or(MediaType::ImageManifest),
            )
            .size(bytes.len() as u64)
            .digest(digest)
            .build()
            .expect("all descriptor fields are set");
        Ok(ExportedImage {
            manifest,
            manifest_bytes: bytes,
            descriptor,
            config,
            layers,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::image::tests::make_image;

    #[test]
    fn compresses_uncompressed_layers_deterministically() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let m = make_image(&store, "a");
        let image = store.image_for(&m).unwrap();
        let a = store
            .export_image(&image, ExportOptions::default())
            .unwrap();
        assert_eq!(a.layers[0].media_type(), &MediaType::ImageLayerGzip);
        assert_ne!(a.descriptor.digest(), m.digest());
        assert_eq!(a.descriptor.digest(), &crate::sha256_of(&a.manifest_bytes));
        assert!(store.has_blob(a.layers[0].digest()));
        let b = store
            .export_image(&image, ExportOptions::default())
            .unwrap();
        assert_eq!(a.manifest_bytes, b.manifest_bytes);
        // uncompressed: the stored manifest itself
        let c = store
            .export_image(
                &image,
                ExportOptions {
                    compression: Compression::None,
                    oci_media_types: true,
                },
            )
            .unwrap();
        assert_eq!(c.descriptor.digest(), m.digest());
        assert_eq!(c.manifest_bytes, store.read_blob(m.digest()).unwrap());
    }
}
