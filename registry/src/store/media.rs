//! Media types kiln reads and writes, OCI and Docker schema 2, and what each
//! one means for the store (manifest, index, config, layer and its
//! compression).

use oci_spec::image::MediaType;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const DOCKER_LAYER_FOREIGN_GZIP: &str =
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";

/// What a JSON document or blob is, by its media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocKind {
    Manifest,
    Index,
    Config,
    Layer(Compression),
    Unknown,
}

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// The name used in flags and on disk: `none`, `gzip`, `zstd`.
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }

    /// The OCI layer media type for this compression.
    pub fn oci_layer_media_type(self) -> MediaType {
        match self {
            Compression::None => MediaType::ImageLayer,
            Compression::Gzip => MediaType::ImageLayerGzip,
            Compression::Zstd => MediaType::ImageLayerZstd,
        }
    }

    /// Detects compression from a stream's first bytes (gzip `1f 8b`, zstd
    /// `28 b5 2f fd`); anything else is taken as uncompressed.
    pub fn from_magic(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }
}

impl std::str::FromStr for Compression {
    type Err = String;
    fn from_str(s: &str) -> Result<Compression, String> {
        match s {
            "none" | "uncompressed" => Ok(Compression::None),
            "gzip" => Ok(Compression::Gzip),
            "zstd" => Ok(Compression::Zstd),
            other => Err(format!(
                "unknown compression {other:?} (expected gzip, zstd or none)"
            )),
        }
    }
}

impl std::fmt::Display for Compression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Classifies a media type string (OCI or Docker schema 2).
pub fn kind_of(media_type: &str) -> DocKind {
    match media_type {
        OCI_MANIFEST | DOCKER_MANIFEST => DocKind::Manifest,
        OCI_INDEX | DOCKER_MANIFEST_LIST => DocKind::Index,
        OCI_CONFIG | DOCKER_CONFIG => DocKind::Config,
        OCI_LAYER | DOCKER_LAYER | "application/vnd.oci.image.layer.nondistributable.v1.tar" => {
            DocKind::Layer(Compression::None)
        }
        OCI_LAYER_GZIP
        | DOCKER_LAYER_GZIP
        | DOCKER_LAYER_FOREIGN_GZIP
        | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip" => {
            DocKind::Layer(Compression::Gzip)
        }
        OCI_LAYER_ZSTD | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd" => {
            DocKind::Layer(Compression::Zstd)
        }
        _ => DocKind::Unknown,
    }
}

/// [`kind_of`] for an oci-spec media type.
pub fn kind_of_media(media_type: &MediaType) -> DocKind {
    kind_of(media_type.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_oci_and_docker() {
        assert_eq!(kind_of(DOCKER_MANIFEST), DocKind::Manifest);
        assert_eq!(kind_of_media(&MediaType::ImageManifest), DocKind::Manifest);
        assert_eq!(kind_of(DOCKER_MANIFEST_LIST), DocKind::Index);
        assert_eq!(kind_of_media(&MediaType::ImageIndex), DocKind::Index);
        assert_eq!(kind_of(DOCKER_CONFIG), DocKind::Config);
        assert_eq!(
            kind_of(DOCKER_LAYER_GZIP),
            DocKind::Layer(Compression::Gzip)
        );
        assert_eq!(
            kind_of_media(&MediaType::ImageLayerZstd),
            DocKind::Layer(Compression::Zstd)
        );
        assert_eq!(
            kind_of_media(&MediaType::ImageLayer),
            DocKind::Layer(Compression::None)
        );
        assert_eq!(kind_of("text/plain"), DocKind::Unknown);
        assert_eq!(Compression::from_magic(&[0x1f, 0x8b, 8]), Compression::Gzip);
        assert_eq!(
            Compression::from_magic(&[0x28, 0xb5, 0x2f, 0xfd, 0]),
            Compression::Zstd
        );
        assert_eq!(Compression::from_magic(b"bin/"), Compression::None);
    }
}
