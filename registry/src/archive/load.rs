//! `kiln load`: images from an OCI image layout tar (`index.json`,
//! `blobs/…`; what `kiln save`, `skopeo copy … oci-archive:` and docker 25
//! write) or a docker archive (`manifest.json` naming a config and layer
//! files; what `docker save` and `skopeo copy … docker-archive:` write).
//!
//! Streaming: every file goes straight into the blob store as it is read
//! (OCI blobs checked against their names), only the small index files are
//! held in memory; the images are assembled at the end, under one lease, so
//! a concurrent GC can never take blobs before their image is recorded.

use std::collections::HashMap;
use std::io::{self, Read};

use oci_spec::image::{Descriptor, Digest, ImageIndex, ImageManifestBuilder, MediaType};
use serde::Deserialize;

use super::ArchiveError;
use crate::reference::Reference;
use crate::store::decompress::sniff;
use crate::store::media::{self, Compression, DocKind};
use crate::store::{BlobInfo, Image, MAX_METADATA_BLOB, Store, StoreError, sha256_hex};

/// An image loaded, with the names it was tagged with.
#[derive(Debug, Clone)]
pub struct LoadedImage {
    pub image: Image,
    pub names: Vec<Reference>,
}

/// An entry of docker's `manifest.json`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

const META_FILES: [&str; 4] = ["index.json", "oci-layout", "manifest.json", "repositories"];

/// `./a//b` → `a/b`.
fn clean(path: &str) -> String {
    path.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect::<Vec<_>>()
        .join("/")
}

/// Resolves `link` relative to the directory of `from` (a symlink entry).
fn join_link(from: &str, link: &str) -> String {
    if link.starts_with('/') {
        return clean(link);
    }
    let mut parts: Vec<&str> = from.split('/').collect();
    parts.pop();
    for c in link.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    parts.join("/")
}

impl Store {
    /// Loads every image of the archive read from `reader`, tags them with
    /// the names the archive gives, and returns them.
    pub fn load<R: Read>(&self, reader: R, what: &str) -> Result<Vec<LoadedImage>, ArchiveError> {
        let _lease = self.lease()?;
        let tar_err = |source: io::Error| ArchiveError::NotATar {
            what: what.to_string(),
            source,
        };
        let mut archive = tar::Archive::new(reader);
        let mut files: HashMap<String, BlobInfo> = HashMap::new();
        let mut meta: HashMap<String, Vec<u8>> = HashMap::new();
        let mut links: Vec<(String, String)> = Vec::new();
        let mut count = 0;
        for entry in archive.entries().map_err(tar_err)? {
            let mut entry = entry.map_err(tar_err)?;
            count += 1;
            let path = clean(&String::from_utf8_lossy(&entry.path_bytes()));
            match entry.header().entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => {}
                tar::EntryType::Symlink => {
                    if let Some(l) = entry.link_name_bytes() {
                        links.push((path.clone(), join_link(&path, &String::from_utf8_lossy(&l))));
                    }
                    continue;
                }
                tar::EntryType::Link => {
                    if let Some(l) = entry.link_name_bytes() {
                        links.push((path.clone(), clean(&String::from_utf8_lossy(&l))));
                    }
                    continue;
                }
                _ => continue,
            }
            if META_FILES.contains(&path.as_str()) {
                if entry.size() > MAX_METADATA_BLOB {
                    return Err(ArchiveError::BadArchive {
                        what: what.to_string(),
                        reason: format!("{path} is too large"),
                    });
                }
                let mut buf = Vec::new();
                entry.read_to_end(&mut buf).map_err(tar_err)?;
                meta.insert(path, buf);
                continue;
            }
            let expected = path
                .strip_prefix("blobs/sha256/")
                .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
                .and_then(|h| format!("sha256:{h}").parse::<Digest>().ok());
            let mut w = self.blob_writer()?;
            io::copy(&mut entry, &mut w).map_err(tar_err)?;
            let info = w.commit(expected.as_ref())?;
            files.insert(path, info);
        }
        if count == 0 {
            return Err(tar_err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the archive is empty",
            )));
        }
        for (alias, target) in links {
            if let Some(info) = files.get(&target).cloned() {
                files.insert(alias, info);
            }
        }
        let docker: Option<Vec<DockerEntry>> = match meta.get("manifest.json") {
            Some(b) => Some(
                serde_json::from_slice(b).map_err(|e| ArchiveError::BadArchive {
                    what: what.to_string(),
                    reason: format!("manifest.json: {e}"),
                })?,
            ),
            None => None,
        };
        if let Some(index) = meta.get("index.json") {
            self.load_oci(index, docker.as_deref(), what)
        } else if let Some(docker) = docker {
            self.load_docker(&docker, &files, what)
        } else {
            Err(ArchiveError::BadArchive {
                what: what.to_string(),
                reason: "neither an OCI layout (index.json) nor a docker archive (manifest.json)"
                    .into(),
            })
        }
    }

    fn load_oci(
        &self,
        index: &[u8],
        docker: Option<&[DockerEntry]>,
        what: &str,
    ) -> Result<Vec<LoadedImage>, ArchiveError> {
        let index: ImageIndex =
            serde_json::from_slice(index).map_err(|e| ArchiveError::BadArchive {
                what: what.to_string(),
                reason: format!("index.json: {e}"),
            })?;
        let mut out: Vec<LoadedImage> = Vec::new();
        for m in index.manifests() {
            let bytes = self.read_blob(m.digest()).map_err(|e| missing(e, what))?;
            let desc = self.put_manifest_bytes(&bytes, Some(m.media_type().as_ref()))?;
            let image = self.image_for(&desc).map_err(|e| missing(e, what))?;
            check_layers(self, &image, what)?;
            let ann = m.annotations().clone().unwrap_or_default();
            let mut names = Vec::new();
            if let Some(n) = ann
                .get("io.containerd.image.name")
                .and_then(|n| Reference::parse(n).ok())
            {
                names.push(n);
            } else if let Some(n) = ann
                .get("org.opencontainers.image.ref.name")
                .filter(|n| n.contains('/') || n.contains(':'))
                .and_then(|n| Reference::parse(n).ok())
            {
                names.push(n);
            } else if let Some(d) = docker {
                // a bare tag: docker's manifest.json may name the image
                let cfg = format!("blobs/sha256/{}", image.id().digest());
                for e in d.iter().filter(|e| clean(&e.config) == cfg) {
                    for t in e.repo_tags.iter().flatten() {
                        if let Ok(r) = Reference::parse(t) {
                            names.push(r);
                        }
                    }
                }
            }
            self.record_loaded(&desc, &names)?;
            match out
                .iter_mut()
                .find(|l| l.image.target.digest() == image.target.digest())
            {
                Some(l) => l.names.extend(names),
                None => out.push(LoadedImage { image, names }),
            }
        }
        Ok(out)
    }

    fn load_docker(
        &self,
        entries: &[DockerEntry],
        files: &HashMap<String, BlobInfo>,
        what: &str,
    ) -> Result<Vec<LoadedImage>, ArchiveError> {
        let file = |p: &str| {
            files
                .get(&clean(p))
                .cloned()
                .ok_or_else(|| ArchiveError::BadArchive {
                    what: what.to_string(),
                    reason: format!("manifest.json names {p}, which the archive lacks"),
                })
        };
        let mut out = Vec::new();
        for e in entries {
            let cfg = file(&e.config)?;
            self.config(&cfg.digest)?; // it must be an image config
            let mut layers = Vec::new();
            for l in &e.layers {
                let info = file(l)?;
                let (c, _) =
                    sniff(self.open_blob(&info.digest)?).map_err(|source| ArchiveError::Read {
                        what: l.clone(),
                        source,
                    })?;
                layers.push(Descriptor::new(
                    c.oci_layer_media_type(),
                    info.size,
                    info.digest,
                ));
            }
            let manifest = ImageManifestBuilder::default()
                .schema_version(2u32)
                .media_type(MediaType::ImageManifest)
                .config(Descriptor::new(
                    MediaType::ImageConfig,
                    cfg.size,
                    cfg.digest,
                ))
                .layers(layers)
                .build()
                .map_err(ArchiveError::spec("manifest"))?;
            let desc = self.put_manifest(&manifest)?;
            let image = self.image_for(&desc)?;
            check_layers(self, &image, what)?;
            let names: Vec<Reference> = e
                .repo_tags
                .iter()
                .flatten()
                .filter_map(|t| Reference::parse(t).ok())
                .collect();
            self.record_loaded(&desc, &names)?;
            out.push(LoadedImage { image, names });
        }
        Ok(out)
    }

    fn record_loaded(&self, desc: &Descriptor, names: &[Reference]) -> Result<(), StoreError> {
        if names.is_empty() {
            self.add_image(desc)?;
        }
        for n in names {
            self.tag(n, desc)?;
        }
        Ok(())
    }
}

/// A blob an archive's index names but does not hold.
fn missing(e: StoreError, what: &str) -> ArchiveError {
    match e {
        StoreError::BlobNotFound(d) => ArchiveError::BadArchive {
            what: what.to_string(),
            reason: format!("it lacks blob {d}"),
        },
        e => ArchiveError::Store(e),
    }
}

/// Every layer is present, and an uncompressed one is its diffID.
fn check_layers(store: &Store, image: &Image, what: &str) -> Result<(), ArchiveError> {
    for l in &image.layers {
        let d = l.descriptor.digest();
        if !store.has_blob(d) {
            return Err(missing(StoreError::BlobNotFound(d.clone()), what));
        }
        if media::kind_of_media(l.descriptor.media_type()) == DocKind::Layer(Compression::None)
            && sha256_hex(d)? != sha256_hex(&l.diff_id)?
        {
            return Err(ArchiveError::BadArchive {
                what: what.to_string(),
                reason: format!("layer {d} does not match its diffID {}", l.diff_id),
            });
        }
    }
    Ok(())
}
