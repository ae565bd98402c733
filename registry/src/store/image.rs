//! Images: the view others use ([`Image`]: manifest, config, layers with
//! their diffIDs), image records, tags, holds, and looking an image up by
//! name, digest or id prefix as docker does.
//!
//! An image's id is its config digest (as docker's); what a record or tag
//! points at is a manifest or an index (for an index, the host platform's
//! manifest is the image).

use std::collections::BTreeSet;
use std::str::FromStr;

use oci_spec::image::{
    Arch, Descriptor, Digest, ImageConfiguration, ImageIndex, ImageManifest, Os,
};

use super::media::{self, DocKind};
use super::meta::{ImageEntry, parse_digest};
use super::{Store, StoreError};
use crate::reference::Reference;

/// One layer of an image: its blob (possibly compressed) and the digest of
/// its uncompressed tar (the diffID, as in the config's `rootfs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    pub descriptor: Descriptor,
    pub diff_id: Digest,
}

/// An image of the store, resolved to one manifest.
#[derive(Debug, Clone)]
pub struct Image {
    /// What the image record and its tags point at: the manifest, or an
    /// index whose host-platform entry is `manifest`.
    pub target: Descriptor,
    /// The manifest's descriptor (equal to `target` unless it is an index).
    pub manifest_descriptor: Descriptor,
    pub manifest: ImageManifest,
    pub config_descriptor: Descriptor,
    pub config: ImageConfiguration,
    /// Layers, base first, each with its diffID.
    pub layers: Vec<Layer>,
}

impl Image {
    /// The image id: the config digest.
    pub fn id(&self) -> &Digest {
        self.config_descriptor.digest()
    }

    /// The first 12 hex digits of the id, as `kiln images` shows it.
    pub fn short_id(&self) -> String {
        short_hex(self.id())
    }

    /// The manifest digest.
    pub fn manifest_digest(&self) -> &Digest {
        self.manifest_descriptor.digest()
    }

    /// Bytes the image's blobs take in the store (layers as stored, config
    /// and manifest).
    pub fn size(&self) -> u64 {
        self.layers.iter().map(|l| l.descriptor.size()).sum::<u64>()
            + self.config_descriptor.size()
            + self.manifest_descriptor.size()
    }
}

/// An image record with its tags, as `kiln images` lists them.
#[derive(Debug, Clone)]
pub struct ImageSummary {
    pub target: Descriptor,
    /// The image id (config digest of the host platform's manifest).
    pub id: Digest,
    /// Tags pointing at `target`, sorted.
    pub tags: Vec<Reference>,
    /// When the record was added to this store (RFC 3339).
    pub added: String,
    /// Holders using the image (containers), sorted.
    pub holders: Vec<String>,
}

/// What [`Store::remove_image`] did.
#[derive(Debug, Clone, Default)]
pub struct RemovedImage {
    pub untagged: Vec<Reference>,
    /// The record removed (the image is deleted), if it was.
    pub deleted: Option<Descriptor>,
}

/// The first 12 hex digits of a digest.
pub fn short_hex(d: &Digest) -> String {
    d.digest().chars().take(12).collect()
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl Store {
    /// Resolves what a record or tag points at to an [`Image`]: for an index,
    /// the host platform's manifest (it must be in the store). Checks that
    /// manifest and config agree on the number of layers.
    pub fn image_for(&self, target: &Descriptor) -> Result<Image, StoreError> {
        let manifest_descriptor = match media::kind_of_media(target.media_type()) {
            DocKind::Index => {
                let index = self.index(target.digest())?;
                pick_platform(&index, target.digest())?
            }
            DocKind::Manifest => target.clone(),
            _ => {
                return Err(StoreError::UnexpectedMediaType {
                    digest: target.digest().clone(),
                    media_type: target.media_type().to_string(),
                    expected: "an image manifest or index",
                });
            }
        };
        let manifest = self.manifest(manifest_descriptor.digest())?;
        let config_descriptor = manifest.config().clone();
        let config = self.config(config_descriptor.digest())?;
        let diff_ids = config.rootfs().diff_ids();
        if diff_ids.len() != manifest.layers().len() {
            return Err(StoreError::LayerCountMismatch {
                manifest: manifest_descriptor.digest().clone(),
                layers: manifest.layers().len(),
                diff_ids: diff_ids.len(),
            });
        }
        let layers = manifest
            .layers()
            .iter()
            .zip(diff_ids)
            .map(|(d, id)| {
                let diff_id = Digest::from_str(id).map_err(|_| StoreError::InvalidDiffId {
                    config: config_descriptor.digest().clone(),
                    diff_id: id.clone(),
                })?;
                Ok(Layer {
                    descriptor: d.clone(),
                    diff_id,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(Image {
            target: target.clone(),
            manifest_descriptor,
            manifest,
            config_descriptor,
            config,
            layers,
        })
    }

    /// Records `target` (a manifest or index) as an image of the store,
    /// untagged unless tagged later. Everything it needs must be present:
    /// manifest, config and every layer blob. Idempotent.
    ///
    /// The caller wrote those blobs under a [`Lease`](super::Lease) it still
    /// holds; this takes its own lease too.
    pub fn add_image(&self, target: &Descriptor) -> Result<Image, StoreError> {
        let _lease = self.lease()?;
        let image = self.image_for(target)?;
        self.check_complete(&image)?;
        self.update_meta(|doc| {
            record(doc, &image);
            Ok(())
        })?;
        Ok(image)
    }

    fn check_complete(&self, image: &Image) -> Result<(), StoreError> {
        for layer in &image.layers {
            if !self.has_blob(layer.descriptor.digest()) {
                return Err(StoreError::BlobNotFound(layer.descriptor.digest().clone()));
            }
        }
        Ok(())
    }

    /// Points the tag `reference` at `target` (recording the image if it is
    /// not yet), atomically. Returns what the tag pointed at before.
    /// `reference` must carry a tag and no digest.
    pub fn tag(
        &self,
        reference: &Reference,
        target: &Descriptor,
    ) -> Result<Option<Digest>, StoreError> {
        if reference.tag().is_none() || reference.digest().is_some() {
            return Err(StoreError::NotATag(reference.clone()));
        }
        let _lease = self.lease()?;
        let image = self.image_for(target)?;
        self.check_complete(&image)?;
        self.update_meta(|doc| {
            record(doc, &image);
            let previous = doc
                .tags
                .insert(reference.to_string(), target.digest().to_string());
            previous.map(|p| parse_digest(&p)).transpose()
        })
    }

    /// Removes a tag; returns what it pointed at, `None` if it did not
    /// exist. The image record stays (untagged: "dangling").
    pub fn untag(&self, reference: &Reference) -> Result<Option<Descriptor>, StoreError> {
        self.update_meta(|doc| match doc.tags.remove(&reference.to_string()) {
            Some(d) => match doc.images.get(&d) {
                Some(entry) => entry.descriptor(&d).map(Some),
                None => Ok(None),
            },
            None => Ok(None),
        })
    }

    /// What a reference names in this store: a tag's target, or for a
    /// reference with a digest, the image record with that digest.
    pub fn resolve(&self, reference: &Reference) -> Result<Option<Descriptor>, StoreError> {
        let doc = self.read_meta()?;
        if let Some(d) = reference.digest() {
            let key = d.to_string();
            return match doc.images.get(&key) {
                Some(e) => e.descriptor(&key).map(Some),
                None => Ok(None),
            };
        }
        match doc.tags.get(&reference.to_string()) {
            Some(d) => match doc.images.get(d) {
                Some(e) => e.descriptor(d).map(Some),
                None => Ok(None),
            },
            None => Ok(None),
        }
    }

    /// Every tag and what it points at, sorted by name.
    pub fn tags(&self) -> Result<Vec<(Reference, Descriptor)>, StoreError> {
        let doc = self.read_meta()?;
        let mut out = Vec::new();
        for (name, d) in &doc.tags {
            let Ok(r) = Reference::parse(name) else {
                continue;
            };
            if let Some(e) = doc.images.get(d) {
                out.push((r, e.descriptor(d)?));
            }
        }
        Ok(out)
    }

    /// Every image record with its tags and holders.
    pub fn images(&self) -> Result<Vec<ImageSummary>, StoreError> {
        let doc = self.read_meta()?;
        let mut out = Vec::new();
        for (d, entry) in &doc.images {
            let mut tags: Vec<Reference> = doc
                .tags
                .iter()
                .filter(|(_, t)| *t == d)
                .filter_map(|(n, _)| Reference::parse(n).ok())
                .collect();
            tags.sort();
            let holders = doc
                .holds
                .iter()
                .filter(|(_, set)| set.contains(d))
                .map(|(h, _)| h.clone())
                .collect();
            out.push(ImageSummary {
                target: entry.descriptor(d)?,
                id: parse_digest(&entry.id)?,
                tags,
                added: entry.added.clone(),
                holders,
            });
        }
        Ok(out)
    }

    /// Looks an image up as docker does: a name (`busybox`, `a/b:tag`,
    /// `name@sha256:…`), a full digest (`sha256:…`, the id or the manifest
    /// digest), or a unique prefix of the id's hex digits.
    pub fn find_image(&self, name_or_id: &str) -> Result<Image, StoreError> {
        let not_found = || StoreError::ImageNotFound {
            name: name_or_id.to_string(),
        };
        let doc = self.read_meta()?;
        // 1. a digest: the manifest/index digest or the id
        let hex_part = name_or_id.strip_prefix("sha256:");
        if let Some(hex) = hex_part {
            if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(not_found());
            }
            if let Some(entry) = doc.images.get(name_or_id) {
                return self.image_for(&entry.descriptor(name_or_id)?);
            }
            return self.find_by_id_prefix(&doc, &hex.to_ascii_lowercase(), name_or_id);
        }
        // 2. a name
        if let Ok(reference) = Reference::parse(name_or_id)
            && let Some(target) = self.resolve(&reference)?
        {
            return self.image_for(&target);
        }
        // 3. an id prefix
        if !name_or_id.is_empty() && name_or_id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return self.find_by_id_prefix(&doc, &name_or_id.to_ascii_lowercase(), name_or_id);
        }
        Err(not_found())
    }

    fn find_by_id_prefix(
        &self,
        doc: &super::meta::MetaDoc,
        hex: &str,
        input: &str,
    ) -> Result<Image, StoreError> {
        let mut matches: Vec<(&String, &ImageEntry)> = doc
            .images
            .iter()
            .filter(|(_, e)| {
                e.id.strip_prefix("sha256:")
                    .is_some_and(|h| h.starts_with(hex))
            })
            .collect();
        // Several records (e.g. an index and a manifest) can share one id.
        let ids: BTreeSet<&String> = matches.iter().map(|(_, e)| &e.id).collect();
        match ids.len() {
            0 => Err(StoreError::ImageNotFound {
                name: input.to_string(),
            }),
            1 => {
                // prefer a tagged record
                matches.sort_by_key(|(d, _)| !doc.tags.values().any(|t| t == *d));
                let (d, e) = matches[0];
                self.image_for(&e.descriptor(d)?)
            }
            n => Err(StoreError::AmbiguousId {
                prefix: input.to_string(),
                count: n,
            }),
        }
    }

    /// Removes an image as `kiln rmi` does. For a tag: untags it, and
    /// deletes the image record if no other tag points at it. For an id or
    /// digest: deletes the record with all its tags (with more than one
    /// repository tagged, only when `force`). A held image (a container
    /// uses it) is refused unless `force`; forced, the record goes but the
    /// hold keeps its blobs until released. Blobs are freed by
    /// [`Store::collect_garbage`].
    pub fn remove_image(&self, name_or_id: &str, force: bool) -> Result<RemovedImage, StoreError> {
        let image = self.find_image(name_or_id)?;
        let target = image.target.digest().to_string();
        let by_tag = Reference::parse(name_or_id)
            .ok()
            .filter(|r| r.digest().is_none())
            .filter(|r| {
                self.read_meta()
                    .map(|d| d.tags.get(&r.to_string()) == Some(&target))
                    .unwrap_or(false)
            });
        self.update_meta(|doc| {
            let mut removed = RemovedImage::default();
            let tags: Vec<String> = doc
                .tags
                .iter()
                .filter(|(_, t)| **t == target)
                .map(|(n, _)| n.clone())
                .collect();
            if let Some(r) = &by_tag
                && tags.len() > 1
            {
                doc.tags.remove(&r.to_string());
                removed.untagged.push(r.clone());
                return Ok(removed);
            }
            let repos: BTreeSet<String> = tags
                .iter()
                .filter_map(|t| Reference::parse(t).ok().map(|r| r.name()))
                .collect();
            if by_tag.is_none() && repos.len() > 1 && !force {
                return Err(StoreError::ImageInUse {
                    image: short_hex(image.id()),
                    reason: format!(
                        "it is tagged in {} repositories (untag them, or force)",
                        repos.len()
                    ),
                });
            }
            let holders: Vec<String> = doc
                .holds
                .iter()
                .filter(|(_, s)| s.contains(&target))
                .map(|(h, _)| h.clone())
                .collect();
            if !holders.is_empty() && !force {
                return Err(StoreError::ImageInUse {
                    image: short_hex(image.id()),
                    reason: format!("it is used by {}", holders.join(", ")),
                });
            }
            for t in tags {
                doc.tags.remove(&t);
                if let Ok(r) = Reference::parse(&t) {
                    removed.untagged.push(r);
                }
            }
            if let Some(entry) = doc.images.remove(&target) {
                removed.deleted = Some(entry.descriptor(&target)?);
            }
            Ok(removed)
        })
    }

    // ---- holds ----------------------------------------------------------

    /// Records that `holder` (e.g. `container:<id>`) uses the image
    /// `target` — its manifest/index digest or its id (config digest) —
    /// which must be in the store: `rmi` refuses the image without force,
    /// and GC keeps its blobs, until [`Store::release`].
    pub fn hold(&self, holder: &str, target: &Digest) -> Result<(), StoreError> {
        if holder.is_empty() {
            return Err(StoreError::InvalidName {
                what: "holder",
                name: holder.to_string(),
            });
        }
        let _lease = self.lease()?;
        let key = target.to_string();
        self.update_meta(|doc| {
            // an image id names the record(s) with that config
            let held = if doc.images.contains_key(&key) {
                key.clone()
            } else if let Some((d, _)) = doc.images.iter().find(|(_, e)| e.id == key) {
                d.clone()
            } else if self.has_blob(target) {
                key.clone()
            } else {
                return Err(StoreError::ImageNotFound { name: key.clone() });
            };
            doc.holds
                .entry(holder.to_string())
                .or_default()
                .insert(held);
            Ok(())
        })
    }

    /// Releases every hold of `holder`; returns whether it had any.
    pub fn release(&self, holder: &str) -> Result<bool, StoreError> {
        self.update_meta(|doc| Ok(doc.holds.remove(holder).is_some()))
    }

    /// The holders of the image `target` (manifest/index digest or id).
    pub fn holders(&self, target: &Digest) -> Result<Vec<String>, StoreError> {
        let key = target.to_string();
        let doc = self.read_meta()?;
        let keys: BTreeSet<&String> = doc
            .images
            .iter()
            .filter(|(d, e)| **d == key || e.id == key)
            .map(|(d, _)| d)
            .chain(std::iter::once(&key))
            .collect();
        Ok(doc
            .holds
            .iter()
            .filter(|(_, s)| s.iter().any(|d| keys.contains(d)))
            .map(|(h, _)| h.clone())
            .collect())
    }
}

fn record(doc: &mut super::meta::MetaDoc, image: &Image) {
    doc.images
        .entry(image.target.digest().to_string())
        .or_insert_with(|| ImageEntry {
            media_type: image.target.media_type().to_string(),
            size: image.target.size(),
            id: image.id().to_string(),
            added: now_rfc3339(),
        });
}

/// The host platform's manifest in an index: same os and architecture;
/// among several, the one whose variant matches (arm), else the first.
fn pick_platform(index: &ImageIndex, index_digest: &Digest) -> Result<Descriptor, StoreError> {
    let arch = Arch::default();
    let os = Os::default();
    let candidates: Vec<&Descriptor> = index
        .manifests()
        .iter()
        .filter(|d| media::kind_of_media(d.media_type()) == DocKind::Manifest)
        .filter(|d| match d.platform() {
            Some(p) => p.architecture() == &arch && p.os() == &os,
            None => false,
        })
        .collect();
    candidates
        .first()
        .map(|d| (*d).clone())
        .ok_or_else(|| StoreError::PlatformNotFound {
            index: index_digest.clone(),
            platform: format!("{os}/{arch}"),
        })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use oci_spec::image::{
        ConfigBuilder, DescriptorBuilder, HistoryBuilder, ImageConfigurationBuilder,
        ImageIndexBuilder, ImageManifestBuilder, MediaType, PlatformBuilder, RootFsBuilder,
    };

    /// A one-layer image from in-memory bytes; returns the manifest
    /// descriptor. `seed` makes distinct images.
    pub(crate) fn make_image(store: &Store, seed: &str) -> Descriptor {
        let layer = store
            .write_blob(format!("layer {seed}").as_bytes())
            .unwrap();
        let config = ImageConfigurationBuilder::default()
            .architecture(Arch::default())
            .os(Os::default())
            .config(
                ConfigBuilder::default()
                    .cmd(vec!["sh".to_string()])
                    .build()
                    .unwrap(),
            )
            .rootfs(
                RootFsBuilder::default()
                    .diff_ids(vec![layer.digest.to_string()])
                    .build()
                    .unwrap(),
            )
            .history(vec![
                HistoryBuilder::default().created_by(seed).build().unwrap(),
            ])
            .build()
            .unwrap();
        let c = store.put_config(&config).unwrap();
        let m = ImageManifestBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageManifest)
            .config(c)
            .layers(vec![Descriptor::new(
                MediaType::ImageLayer,
                layer.size,
                layer.digest,
            )])
            .build()
            .unwrap();
        store.put_manifest(&m).unwrap()
    }

    fn r(s: &str) -> Reference {
        Reference::parse(s).unwrap()
    }

    #[test]
    fn tag_resolve_list_untag() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let m = make_image(&store, "a");
        assert_eq!(store.tag(&r("busybox"), &m).unwrap(), None);
        assert_eq!(
            store
                .resolve(&r("docker.io/library/busybox:latest"))
                .unwrap(),
            Some(m.clone())
        );
        assert_eq!(store.resolve(&r("busybox:other")).unwrap(), None);
        let pinned = r("busybox").with_digest(m.digest());
        assert_eq!(store.resolve(&pinned).unwrap(), Some(m.clone()));
        let m2 = make_image(&store, "b");
        assert_eq!(
            store.tag(&r("busybox"), &m2).unwrap(),
            Some(m.digest().clone())
        );
        store.tag(&r("example/echo:1"), &m).unwrap();
        let tags = store.tags().unwrap();
        assert_eq!(tags.len(), 2);
        // sorted by full name: docker.io/example/… before docker.io/library/…
        assert_eq!(tags[0].0.familiar(), "example/echo:1");
        assert_eq!(tags[1].0.familiar(), "busybox:latest");
        assert_eq!(tags[1].1, m2);
        assert!(matches!(
            store.tag(&pinned, &m),
            Err(StoreError::NotATag(_))
        ));
        assert_eq!(store.untag(&r("busybox")).unwrap(), Some(m2.clone()));
        assert_eq!(store.untag(&r("busybox")).unwrap(), None);
        // the record stays, dangling
        assert_eq!(store.images().unwrap().len(), 2);
    }

    #[test]
    fn concurrent_taggers_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let m = make_image(&store, "a");
        std::thread::scope(|s| {
            for t in 0..8 {
                let store = store.clone();
                let m = m.clone();
                s.spawn(move || {
                    for i in 0..15 {
                        store.tag(&r(&format!("t{t}:v{i}")), &m).unwrap();
                        store.hold(&format!("h{t}-{i}"), m.digest()).unwrap();
                    }
                });
            }
        });
        assert_eq!(store.tags().unwrap().len(), 120);
        assert_eq!(store.holders(m.digest()).unwrap().len(), 120);
    }

    #[test]
    fn tag_refuses_incomplete_images() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let m = make_image(&store, "a");
        let image = store.image_for(&m).unwrap();
        std::fs::remove_file(
            store
                .blob_path(image.layers[0].descriptor.digest())
                .unwrap(),
        )
        .unwrap();
        assert!(matches!(
            store.tag(&r("x"), &m),
            Err(StoreError::BlobNotFound(_))
        ));
        assert!(store.images().unwrap().is_empty());
    }

    #[test]
    fn image_view_and_lookup() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let m = make_image(&store, "a");
        store.tag(&r("example/echo"), &m).unwrap();
        let img = store.find_image("example/echo").unwrap();
        assert_eq!(img.manifest_digest(), m.digest());
        assert_eq!(img.layers.len(), 1);
        assert_eq!(img.layers[0].diff_id, *img.layers[0].descriptor.digest());
        let id = img.id().to_string();
        for q in [
            &id[..],
            &id[7..],
            &id[7..19],
            &id[7..10],
            &m.digest().to_string()[..],
        ] {
            assert_eq!(store.find_image(q).unwrap().id(), img.id(), "{q}");
        }
        assert_eq!(img.short_id(), &id[7..19]);
        assert!(matches!(
            store.find_image("nope"),
            Err(StoreError::ImageNotFound { .. })
        ));
        assert!(matches!(
            store.find_image("sha256:zz"),
            Err(StoreError::ImageNotFound { .. })
        ));
        // an ambiguous prefix: make images until two ids share a first digit
        let mut seen = std::collections::HashMap::new();
        seen.insert(id[7..8].to_string(), ());
        let mut i = 0;
        let first = loop {
            i += 1;
            let m = make_image(&store, &format!("x{i}"));
            let img = store.add_image(&m).unwrap();
            let c = img.id().digest()[..1].to_string();
            if seen.insert(c.clone(), ()).is_some() {
                break c;
            }
        };
        assert!(matches!(
            store.find_image(&first),
            Err(StoreError::AmbiguousId { .. })
        ));
    }

    #[test]
    fn index_resolves_to_host_platform() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let m = make_image(&store, "a");
        let other = DescriptorBuilder::default()
            .media_type(MediaType::ImageManifest)
            .digest(store.write_blob(b"{}").unwrap().digest)
            .size(2u64)
            .platform(
                PlatformBuilder::default()
                    .architecture(Arch::from("s390x"))
                    .os(Os::Linux)
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        let mut host = m.clone();
        host.set_platform(Some(
            PlatformBuilder::default()
                .architecture(Arch::default())
                .os(Os::default())
                .build()
                .unwrap(),
        ));
        let index = ImageIndexBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageIndex)
            .manifests(vec![other.clone(), host])
            .build()
            .unwrap();
        let i = store.put_index(&index).unwrap();
        store.tag(&r("multi"), &i).unwrap();
        let img = store.find_image("multi").unwrap();
        assert_eq!(img.manifest_digest(), m.digest());
        assert_eq!(img.target, i);
        let only_other = ImageIndexBuilder::default()
            .schema_version(2u32)
            .manifests(vec![other])
            .build()
            .unwrap();
        let i2 = store.put_index(&only_other).unwrap();
        assert!(matches!(
            store.image_for(&i2),
            Err(StoreError::PlatformNotFound { .. })
        ));
    }

    #[test]
    fn rmi_rules_and_holds() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let m = make_image(&store, "a");
        store.tag(&r("a"), &m).unwrap();
        store.tag(&r("a:2"), &m).unwrap();
        store.tag(&r("b"), &m).unwrap();
        // by tag with other tags left: only untag
        let out = store.remove_image("a:2", false).unwrap();
        assert_eq!(out.untagged.len(), 1);
        assert!(out.deleted.is_none());
        // by id with two repositories: refused unless forced
        let id = store.find_image("a").unwrap().short_id();
        assert!(matches!(
            store.remove_image(&id, false),
            Err(StoreError::ImageInUse { .. })
        ));
        // held: refused
        store.hold("container:c1", m.digest()).unwrap();
        assert_eq!(
            store.holders(m.digest()).unwrap(),
            vec!["container:c1".to_string()]
        );
        store.remove_image("b", false).unwrap();
        let err = store.remove_image("a", false).unwrap_err();
        assert!(err.to_string().contains("container:c1"), "{err}");
        assert!(store.release("container:c1").unwrap());
        assert!(!store.release("container:c1").unwrap());
        let out = store.remove_image("a", false).unwrap();
        assert_eq!(out.deleted.as_ref(), Some(&m));
        assert!(store.images().unwrap().is_empty());
        // holding by image id holds the image record
        let m3 = make_image(&store, "c");
        let img3 = store.add_image(&m3).unwrap();
        store.hold("container:c3", img3.id()).unwrap();
        assert_eq!(
            store.holders(m3.digest()).unwrap(),
            vec!["container:c3".to_string()]
        );
        assert_eq!(
            store.holders(img3.id()).unwrap(),
            vec!["container:c3".to_string()]
        );
        assert!(
            store.read_meta().unwrap().holds["container:c3"].contains(&m3.digest().to_string())
        );
        assert!(matches!(
            store.hold("x", &crate::sha256_of(b"nothing")),
            Err(StoreError::ImageNotFound { .. })
        ));
        // forced removal of a held image
        let m2 = make_image(&store, "b");
        store.tag(&r("c"), &m2).unwrap();
        store.hold("container:c2", m2.digest()).unwrap();
        let out = store.remove_image("c", true).unwrap();
        assert!(out.deleted.is_some());
        assert_eq!(store.holders(m2.digest()).unwrap().len(), 1);
    }
}
