//! `kiln import`: a one-layer image from a root filesystem tarball (plain,
//! gzip or zstd), the offline way to get a base image.
//!
//! The tarball is decompressed while read, checked to be a tar archive, and
//! stored uncompressed as the layer (so its digest is its diffID and
//! identical tarballs give identical layers); the config and manifest are
//! generated canonically.

use std::io::{self, Read};

use oci_spec::image::{
    Arch, Config, Descriptor, HistoryBuilder, ImageConfigurationBuilder, ImageManifestBuilder,
    MediaType, Os, RootFsBuilder,
};

use super::ArchiveError;
use crate::reference::Reference;
use crate::store::decompress::{TeeReader, decompressed};
use crate::store::{Image, Store};

/// How to import.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// The tag to give the image (none: the image is only recorded).
    pub reference: Option<Reference>,
    /// The container config (Cmd, Env, …) the image gets.
    pub config: Option<Config>,
    /// The creation time, RFC 3339 (default: now, or `SOURCE_DATE_EPOCH`).
    pub created: Option<String>,
    /// What the history entry says the layer was imported from.
    pub source: String,
    /// A history comment (`kiln import -m`).
    pub message: Option<String>,
}

/// Creation time: `SOURCE_DATE_EPOCH` when set (reproducible builds), else now.
pub fn default_created() -> String {
    let now = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
        .unwrap_or_else(chrono::Utc::now);
    now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl Store {
    /// Imports a root filesystem tarball read from `reader` as a one-layer
    /// image, records it, and tags it when `opts.reference` is set.
    pub fn import_rootfs<R: Read + Send>(
        &self,
        reader: R,
        opts: &ImportOptions,
    ) -> Result<Image, ArchiveError> {
        let _lease = self.lease()?;
        let (_, plain) = decompressed(reader, None).map_err(|source| ArchiveError::Read {
            what: opts.source.clone(),
            source,
        })?;
        let writer = self.blob_writer()?;
        let mut tee = TeeReader {
            inner: plain,
            sink: writer,
        };
        let entries = check_tar(&mut tee).map_err(|source| ArchiveError::NotATar {
            what: opts.source.clone(),
            source,
        })?;
        io::copy(&mut tee, &mut io::sink()).map_err(|source| ArchiveError::Read {
            what: opts.source.clone(),
            source,
        })?;
        let layer = tee.sink.commit(None)?;
        tracing::debug!(layer = %layer.digest, size = layer.size, entries, "imported layer");

        let created = opts.created.clone().unwrap_or_else(default_created);
        let mut history = HistoryBuilder::default()
            .created(created.clone())
            .created_by(format!("kiln import {}", opts.source));
        if let Some(m) = &opts.message {
            history = history.comment(m.clone());
        }
        let mut config = ImageConfigurationBuilder::default()
            .created(created)
            .architecture(Arch::default())
            .os(Os::default())
            .rootfs(
                RootFsBuilder::default()
                    .diff_ids(vec![layer.digest.to_string()])
                    .build()
                    .map_err(ArchiveError::spec("rootfs"))?,
            )
            .history(vec![
                history.build().map_err(ArchiveError::spec("history"))?,
            ]);
        if let Some(c) = &opts.config {
            config = config.config(c.clone());
        }
        let config = config.build().map_err(ArchiveError::spec("config"))?;
        let config = self.put_config(&config)?;
        let manifest = ImageManifestBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageManifest)
            .config(config)
            .layers(vec![Descriptor::new(
                MediaType::ImageLayer,
                layer.size,
                layer.digest,
            )])
            .build()
            .map_err(ArchiveError::spec("manifest"))?;
        let manifest = self.put_manifest(&manifest)?;
        let image = match &opts.reference {
            Some(r) => {
                self.tag(r, &manifest)?;
                self.image_for(&manifest)?
            }
            None => self.add_image(&manifest)?,
        };
        Ok(image)
    }
}

/// Reads a whole tar stream's entries (so every byte passes through the
/// reader); returns the number of entries. An empty stream is no tar.
fn check_tar<R: Read>(reader: R) -> io::Result<usize> {
    let mut archive = tar::Archive::new(reader);
    let mut n = 0;
    for entry in archive.entries()? {
        let mut entry = entry?;
        entry.path()?;
        io::copy(&mut entry, &mut io::sink())?;
        n += 1;
    }
    if n == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the archive has no entries",
        ));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn small_rootfs() -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        h.set_mtime(0);
        b.append_data(&mut h, "etc/", &[][..]).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(5);
        h.set_mtime(0);
        b.append_data(&mut h, "etc/hostname", &b"kiln\n"[..])
            .unwrap();
        b.into_inner().unwrap()
    }

    #[test]
    fn imports_plain_and_gzip_to_the_same_layer() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let tar = small_rootfs();
        let opts = ImportOptions {
            reference: Some(Reference::parse("base").unwrap()),
            created: Some("2024-01-01T00:00:00Z".into()),
            source: "rootfs.tar".into(),
            ..Default::default()
        };
        let a = store.import_rootfs(&tar[..], &opts).unwrap();
        assert_eq!(a.layers.len(), 1);
        assert_eq!(&a.layers[0].diff_id, a.layers[0].descriptor.digest());
        assert_eq!(a.layers[0].descriptor.size(), tar.len() as u64);
        assert_eq!(store.find_image("base").unwrap().id(), a.id());
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar).unwrap();
        let gz = gz.finish().unwrap();
        let b = store.import_rootfs(&gz[..], &opts).unwrap();
        // same bytes, same time: the same image
        assert_eq!(a.id(), b.id());
        assert_eq!(a.manifest_digest(), b.manifest_digest());
    }

    #[test]
    fn rejects_what_is_not_a_tar() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for bad in [
            &b""[..],
            b"hello, this is not a tar archive at all",
            &[0u8; 1024][..],
        ] {
            let err = store
                .import_rootfs(bad, &ImportOptions::default())
                .unwrap_err();
            assert!(matches!(err, ArchiveError::NotATar { .. }), "{err}");
        }
        assert!(store.images().unwrap().is_empty());
        assert_eq!(std::fs::read_dir(store.tmp_dir()).unwrap().count(), 0);
    }
}
