//! `kiln save`: images into one tar that is both an OCI image layout
//! (`oci-layout`, `index.json`, `blobs/sha256/…`, read by umoci and
//! `skopeo … oci-archive:`) and a docker archive (`manifest.json` naming the
//! same blobs, read by `docker load` and `skopeo … docker-archive:`), as
//! `docker save` writes since docker 25.
//!
//! Layers stored uncompressed are compressed on the way out (gzip by
//! default, remembered in the store). Entries are written in a fixed order
//! with fixed owners and times, so the same images give the same tar.

use std::collections::HashSet;
use std::io::{self, Write};

use oci_spec::image::Digest;
use serde_json::{Value, json};

use super::ArchiveError;
use crate::reference::Reference;
use crate::store::{Compression, ExportOptions, Image, Store, canonical_json};

/// One image to save and the names it is saved under (none: unnamed).
#[derive(Debug, Clone)]
pub struct SaveItem {
    pub image: Image,
    pub names: Vec<Reference>,
}

fn header(size: u64, mode: u32, kind: tar::EntryType) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h
}

impl Store {
    /// Writes `items` as one archive into `out` and returns it.
    pub fn save<W: Write>(
        &self,
        items: &[SaveItem],
        compression: Compression,
        out: W,
    ) -> Result<W, ArchiveError> {
        let werr = |source: io::Error| ArchiveError::Write {
            what: "the archive".into(),
            source,
        };
        let mut tar = tar::Builder::new(out);
        let put_bytes = |tar: &mut tar::Builder<W>, path: &str, bytes: &[u8]| {
            let mut h = header(bytes.len() as u64, 0o644, tar::EntryType::Regular);
            tar.append_data(&mut h, path, bytes)
        };
        put_bytes(&mut tar, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#).map_err(werr)?;
        for dir in ["blobs/", "blobs/sha256/"] {
            let mut h = header(0, 0o755, tar::EntryType::Directory);
            tar.append_data(&mut h, dir, io::empty()).map_err(werr)?;
        }
        let mut written: HashSet<Digest> = HashSet::new();
        let mut index = Vec::new();
        let mut docker = Vec::new();
        for item in items {
            let exported = self.export_image(
                &item.image,
                ExportOptions {
                    compression,
                    oci_media_types: true,
                },
            )?;
            let blob_path = |d: &Digest| format!("blobs/sha256/{}", d.digest());
            for d in std::iter::once(&exported.config).chain(exported.layers.iter()) {
                if written.insert(d.digest().clone()) {
                    let file = self.open_blob(d.digest())?;
                    let size = file
                        .metadata()
                        .map_err(|source| ArchiveError::Read {
                            what: d.digest().to_string(),
                            source,
                        })?
                        .len();
                    let mut h = header(size, 0o644, tar::EntryType::Regular);
                    tar.append_data(
                        &mut h,
                        blob_path(d.digest()),
                        io::BufReader::with_capacity(1 << 20, file),
                    )
                    .map_err(werr)?;
                }
            }
            if written.insert(exported.descriptor.digest().clone()) {
                put_bytes(
                    &mut tar,
                    &blob_path(exported.descriptor.digest()),
                    &exported.manifest_bytes,
                )
                .map_err(werr)?;
            }
            let desc = |annotations: Option<Value>| {
                let mut v = json!({
                    "mediaType": exported.descriptor.media_type().to_string(),
                    "digest": exported.descriptor.digest().to_string(),
                    "size": exported.descriptor.size(),
                });
                if let Some(a) = annotations {
                    v["annotations"] = a;
                }
                v
            };
            if item.names.is_empty() {
                index.push(desc(None));
            }
            for name in &item.names {
                index.push(desc(Some(json!({
                    "io.containerd.image.name": name.to_string(),
                    "org.opencontainers.image.ref.name": name.tag().unwrap_or("latest"),
                }))));
            }
            docker.push(json!({
                "Config": blob_path(exported.config.digest()),
                "RepoTags": item.names.iter().map(|n| n.familiar()).collect::<Vec<_>>(),
                "Layers": exported.layers.iter().map(|l| blob_path(l.digest())).collect::<Vec<_>>(),
            }));
        }
        let index = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": index,
        });
        let ser = |v: &Value| {
            canonical_json(v).map_err(|e| ArchiveError::Write {
                what: "the archive index".into(),
                source: io::Error::other(e),
            })
        };
        put_bytes(&mut tar, "index.json", &ser(&index)?).map_err(werr)?;
        put_bytes(&mut tar, "manifest.json", &ser(&Value::Array(docker))?).map_err(werr)?;
        tar.into_inner().map_err(werr)
    }
}
