//! Manifests, indexes and configs as blobs: written canonically when kiln
//! makes them, kept byte for byte when they come from elsewhere, read back
//! with oci-spec types whether OCI or Docker schema 2.
//!
//! These methods only write blobs. Whoever writes blobs and then records a
//! reference to them (a tag, an image record) holds a
//! [`Lease`](super::Lease) across both, so garbage collection cannot remove
//! the blobs in between.

use oci_spec::image::{
    Descriptor, Digest, ImageConfiguration, ImageIndex, ImageManifest, MediaType,
};
use serde_json::Value;

use super::canonical::canonical_json;
use super::media::{self, DocKind};
use super::{Store, StoreError};

impl Store {
    /// Stores a manifest or index exactly as given (its digest is the digest
    /// of these bytes). The kind comes from `media_type` (e.g. the registry's
    /// Content-Type), else the document's own `mediaType`, else its shape.
    /// The document must parse as an OCI / Docker schema 2 manifest or index.
    pub fn put_manifest_bytes(
        &self,
        bytes: &[u8],
        media_type: Option<&str>,
    ) -> Result<Descriptor, StoreError> {
        let value: Value =
            serde_json::from_slice(bytes).map_err(|source| StoreError::InvalidDocument {
                what: "manifest",
                digest: super::sha256_of(bytes),
                source,
            })?;
        let declared = value.get("mediaType").and_then(Value::as_str);
        let media_type = match media_type.or(declared) {
            Some(mt) => mt.to_string(),
            None if value.get("manifests").is_some() => media::OCI_INDEX.to_string(),
            None => media::OCI_MANIFEST.to_string(),
        };
        let digest = super::sha256_of(bytes);
        match media::kind_of(&media_type) {
            DocKind::Manifest => {
                parse_doc::<ImageManifest>(bytes, "manifest", &digest)?;
            }
            DocKind::Index => {
                parse_doc::<ImageIndex>(bytes, "index", &digest)?;
            }
            _ => {
                return Err(StoreError::UnexpectedMediaType {
                    digest,
                    media_type,
                    expected: "an image manifest or index",
                });
            }
        }
        let info = self.write_blob(bytes)?;
        Ok(Descriptor::new(
            MediaType::from(media_type.as_str()),
            info.size,
            info.digest,
        ))
    }

    /// Stores a manifest kiln made, serialised canonically.
    pub fn put_manifest(&self, manifest: &ImageManifest) -> Result<Descriptor, StoreError> {
        let bytes = canonical_json(manifest).map_err(StoreError::serialize("manifest"))?;
        let media_type = manifest
            .media_type()
            .clone()
            .unwrap_or(MediaType::ImageManifest);
        let info = self.write_blob(&bytes)?;
        Ok(Descriptor::new(media_type, info.size, info.digest))
    }

    /// Stores an index kiln made, serialised canonically.
    pub fn put_index(&self, index: &ImageIndex) -> Result<Descriptor, StoreError> {
        let bytes = canonical_json(index).map_err(StoreError::serialize("index"))?;
        let media_type = index.media_type().clone().unwrap_or(MediaType::ImageIndex);
        let info = self.write_blob(&bytes)?;
        Ok(Descriptor::new(media_type, info.size, info.digest))
    }

    /// Stores an image config kiln made, serialised canonically, with the OCI
    /// config media type.
    pub fn put_config(&self, config: &ImageConfiguration) -> Result<Descriptor, StoreError> {
        let bytes = canonical_json(config).map_err(StoreError::serialize("config"))?;
        let info = self.write_blob(&bytes)?;
        Ok(Descriptor::new(
            MediaType::ImageConfig,
            info.size,
            info.digest,
        ))
    }

    /// Stores an image config given as JSON, for fields oci-spec's
    /// [`ImageConfiguration`] lacks (docker's `Healthcheck`, `OnBuild`,
    /// `Shell`, `ArgsEscaped`): it must still parse as a configuration; it is
    /// serialised canonically.
    pub fn put_config_json(&self, config: &Value) -> Result<Descriptor, StoreError> {
        let bytes = canonical_json(config).map_err(StoreError::serialize("config"))?;
        parse_doc::<ImageConfiguration>(&bytes, "config", &super::sha256_of(&bytes))?;
        let info = self.write_blob(&bytes)?;
        Ok(Descriptor::new(
            MediaType::ImageConfig,
            info.size,
            info.digest,
        ))
    }

    /// Stores a config exactly as given (pulled or loaded): its digest is
    /// the digest of these bytes. It must parse as an image configuration.
    pub fn put_config_bytes(&self, bytes: &[u8]) -> Result<Descriptor, StoreError> {
        parse_doc::<ImageConfiguration>(bytes, "config", &super::sha256_of(bytes))?;
        let info = self.write_blob(bytes)?;
        Ok(Descriptor::new(
            MediaType::ImageConfig,
            info.size,
            info.digest,
        ))
    }

    /// Reads an image manifest (OCI or Docker schema 2).
    pub fn manifest(&self, digest: &Digest) -> Result<ImageManifest, StoreError> {
        parse_doc(&self.read_blob(digest)?, "manifest", digest)
    }

    /// Reads an image index (OCI index or Docker manifest list).
    pub fn index(&self, digest: &Digest) -> Result<ImageIndex, StoreError> {
        parse_doc(&self.read_blob(digest)?, "index", digest)
    }

    /// Reads an image config.
    pub fn config(&self, digest: &Digest) -> Result<ImageConfiguration, StoreError> {
        parse_doc(&self.read_blob(digest)?, "config", digest)
    }

    /// Reads any stored JSON document as a generic value (for fields
    /// oci-spec does not model, as `docker inspect` shows them).
    pub fn json(&self, digest: &Digest) -> Result<Value, StoreError> {
        parse_doc(&self.read_blob(digest)?, "document", digest)
    }
}

pub(crate) fn parse_doc<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    what: &'static str,
    digest: &Digest,
) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|source| StoreError::InvalidDocument {
        what,
        digest: digest.clone(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::image::{
        ConfigBuilder, ImageConfigurationBuilder, ImageManifestBuilder, RootFsBuilder,
    };
    use std::collections::HashMap;

    pub(crate) const DOCKER_MANIFEST: &str = r#"{
   "schemaVersion": 2,
   "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
   "config": {
      "mediaType": "application/vnd.docker.container.image.v1+json",
      "size": 1457,
      "digest": "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
   },
   "layers": [
      {
         "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
         "size": 2,
         "digest": "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
      }
   ]
}"#;

    #[test]
    fn docker_manifest_kept_byte_for_byte() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let desc = store
            .put_manifest_bytes(DOCKER_MANIFEST.as_bytes(), None)
            .unwrap();
        assert_eq!(desc.media_type().as_ref(), media::DOCKER_MANIFEST);
        assert_eq!(
            desc.digest(),
            &super::super::sha256_of(DOCKER_MANIFEST.as_bytes())
        );
        assert_eq!(
            store.read_blob(desc.digest()).unwrap(),
            DOCKER_MANIFEST.as_bytes()
        );
        let m = store.manifest(desc.digest()).unwrap();
        assert_eq!(m.layers().len(), 1);
        assert_eq!(
            media::kind_of_media(m.layers()[0].media_type()),
            DocKind::Layer(media::Compression::Gzip)
        );
    }

    #[test]
    fn rejects_non_manifests() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert!(matches!(
            store.put_manifest_bytes(b"{not json", None),
            Err(StoreError::InvalidDocument { .. })
        ));
        assert!(matches!(
            store.put_manifest_bytes(b"{\"schemaVersion\":2}", Some(media::OCI_MANIFEST)),
            Err(StoreError::InvalidDocument { .. })
        ));
        assert!(matches!(
            store.put_manifest_bytes(DOCKER_MANIFEST.as_bytes(), Some(media::OCI_CONFIG)),
            Err(StoreError::UnexpectedMediaType { .. })
        ));
    }

    #[test]
    fn generated_config_digest_is_stable() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut digests = std::collections::HashSet::new();
        for _ in 0..10 {
            let labels: HashMap<String, String> = (0..30)
                .map(|i| (format!("l{i}"), format!("v{i}")))
                .collect();
            let config = ImageConfigurationBuilder::default()
                .config(
                    ConfigBuilder::default()
                        .labels(labels)
                        .exposed_ports(vec![
                            "80/tcp".to_string(),
                            "443/tcp".into(),
                            "53/udp".into(),
                        ])
                        .build()
                        .unwrap(),
                )
                .rootfs(RootFsBuilder::default().build().unwrap())
                .build()
                .unwrap();
            digests.insert(store.put_config(&config).unwrap().digest().clone());
        }
        assert_eq!(digests.len(), 1);
        let d = digests.into_iter().next().unwrap();
        let back = store.config(&d).unwrap();
        assert_eq!(
            back.config()
                .as_ref()
                .unwrap()
                .labels()
                .as_ref()
                .unwrap()
                .len(),
            30
        );
    }

    #[test]
    fn generated_manifest_and_extra_config_fields() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let cfg = serde_json::json!({
            "architecture": "amd64", "os": "linux",
            "config": {"Cmd": ["sh"], "Healthcheck": {"Test": ["CMD", "true"]}, "OnBuild": ["RUN x"]},
            "rootfs": {"type": "layers", "diff_ids": []}
        });
        let c = store.put_config_json(&cfg).unwrap();
        assert_eq!(
            store.json(c.digest()).unwrap()["config"]["Healthcheck"]["Test"][1],
            "true"
        );
        assert!(
            store
                .put_config_json(&serde_json::json!({"os": 3}))
                .is_err()
        );
        let m = ImageManifestBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageManifest)
            .config(c)
            .layers(vec![])
            .build()
            .unwrap();
        let d = store.put_manifest(&m).unwrap();
        assert_eq!(d.media_type(), &MediaType::ImageManifest);
        assert_eq!(store.manifest(d.digest()).unwrap(), m);
        assert_eq!(store.put_manifest(&m).unwrap(), d);
    }
}
