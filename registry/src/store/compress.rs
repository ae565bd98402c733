//! Layer compression for `save` and `push`: layers kiln builds are stored
//! uncompressed (digest = diffID) and compressed only when they leave the
//! machine.
//!
//! [`compress_stream`] compresses any reader into any writer (callable from
//! a benchmark): gzip with gzp (parallel deflate, flate2's zlib-rs backend)
//! or zstd (zstdmt). Output is deterministic — no timestamp or name in the
//! gzip header, fixed block size — so identical layers give identical blobs.
//!
//! [`Store::compressed_layer`] remembers "diffID X + algorithm Y = blob Z"
//! in `compressed/<algorithm>/<hex of X>` (a file holding Z's digest,
//! written atomically), so each layer is compressed at most once. GC keeps Z
//! while X is live, and drops the record when Z is gone.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::str::FromStr;

use oci_spec::image::{Descriptor, Digest};

use super::lock::FileLock;
use super::media::Compression;
use super::{BlobWriter, Store, StoreError, sha256_hex};

/// gzip level. Docker and BuildKit use zlib's default, 6; with zlib-rs,
/// level 5 gives output 0.2% larger for 29% more throughput on a 262 MB
/// layer of real files (`sh bench/compress.sh`: 105 → 135 MB/s on 2
/// threads; level 3 is +3% size for 196 MB/s), so kiln takes 5.
pub const GZIP_LEVEL: u32 = 5;
/// zstd level (zstd's default).
pub const ZSTD_LEVEL: i32 = 3;

/// Tunables for [`compress_stream`].
#[derive(Debug, Clone, Copy)]
pub struct CompressOptions {
    pub algorithm: Compression,
    /// Compression threads (gzp workers / zstdmt workers), at least 1.
    /// The default is one per core this process may run on.
    pub threads: usize,
}

impl Default for CompressOptions {
    fn default() -> Self {
        CompressOptions {
            algorithm: Compression::Gzip,
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
        }
    }
}

/// Compresses everything `reader` yields into `writer` and returns the
/// writer. Streaming: memory stays bounded (a few blocks per thread).
pub fn compress_stream<R: Read, W: Write + Send + 'static>(
    mut reader: R,
    writer: W,
    opts: CompressOptions,
) -> io::Result<W> {
    let threads = opts.threads.max(1);
    match opts.algorithm {
        Compression::None => {
            let mut w = writer;
            io::copy(&mut reader, &mut w)?;
            Ok(w)
        }
        Compression::Gzip => {
            use gzp::ZWriter;
            use gzp::deflate::Gzip;
            use gzp::par::compress::ParCompressBuilder;
            let builder = ParCompressBuilder::<Gzip>::new()
                .num_threads(threads)
                .map_err(io::Error::other)?
                .compression_level(gzp::Compression::new(GZIP_LEVEL));
            let mut z = builder.from_writer(writer);
            let copied = copy_buffered(&mut reader, &mut z);
            match copied {
                Ok(()) => z.finish().map_err(io::Error::other),
                Err(e) => {
                    let _ = z.finish();
                    Err(e)
                }
            }
        }
        Compression::Zstd => {
            let mut z = zstd::stream::Encoder::new(writer, ZSTD_LEVEL)?;
            // Always zstdmt, even with one worker: its output does not
            // depend on the worker count, but differs from single-threaded
            // zstd's, and a layer must compress to the same bytes on every
            // machine.
            z.multithread(threads as u32)?;
            copy_buffered(&mut reader, &mut z)?;
            z.finish()
        }
    }
}

fn copy_buffered<R: Read, W: Write>(reader: &mut R, writer: &mut W) -> io::Result<()> {
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => return writer.flush(),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        writer.write_all(&buf[..n])?;
    }
}

impl Store {
    /// The compressed blob for the uncompressed layer blob `diff_id` (whose
    /// digest is its diffID): the remembered one if it is still stored,
    /// else compressed now, stored and remembered. With
    /// [`Compression::None`], the layer itself. Concurrent callers for the
    /// same layer compress it once.
    pub fn compressed_layer(
        &self,
        diff_id: &Digest,
        algorithm: Compression,
    ) -> Result<Descriptor, StoreError> {
        let media_type = algorithm.oci_layer_media_type();
        if algorithm == Compression::None {
            return Ok(Descriptor::new(
                media_type,
                self.blob_size(diff_id)?,
                diff_id.clone(),
            ));
        }
        let _lease = self.lease()?;
        if let Some(d) = self.lookup_compressed(diff_id, algorithm)? {
            return Ok(d);
        }
        let hex = sha256_hex(diff_id)?;
        let _lock = FileLock::exclusive(
            &self
                .root()
                .join(format!("locks/compress-{}-{hex}.lock", algorithm.as_str())),
        )?;
        if let Some(d) = self.lookup_compressed(diff_id, algorithm)? {
            return Ok(d);
        }
        let source = BufReader::with_capacity(1 << 20, self.open_blob(diff_id)?);
        let start = std::time::Instant::now();
        let writer: BlobWriter = compress_stream(
            source,
            self.blob_writer()?,
            CompressOptions {
                algorithm,
                ..CompressOptions::default()
            },
        )
        .map_err(StoreError::io("compress", self.blob_path(diff_id)?))?;
        let info = writer.commit(None)?;
        tracing::debug!(layer = %diff_id, blob = %info.digest, %algorithm,
            size = info.size, elapsed_ms = start.elapsed().as_millis() as u64, "compressed layer");
        self.record_compressed(diff_id, algorithm, &info.digest)?;
        Ok(Descriptor::new(media_type, info.size, info.digest))
    }

    /// Remembers that `blob` is the layer `diff_id` compressed with
    /// `algorithm` (e.g. after a pull, so a push reuses the pulled blob).
    pub fn record_compressed(
        &self,
        diff_id: &Digest,
        algorithm: Compression,
        blob: &Digest,
    ) -> Result<(), StoreError> {
        let hex = sha256_hex(diff_id)?;
        let dir = self.root().join("compressed").join(algorithm.as_str());
        fs::create_dir_all(&dir).map_err(StoreError::io("create directory", &dir))?;
        self.write_file_atomic(&dir.join(hex), blob.to_string().as_bytes())
    }

    /// The remembered compressed blob for `diff_id`, if it is still stored.
    pub fn lookup_compressed(
        &self,
        diff_id: &Digest,
        algorithm: Compression,
    ) -> Result<Option<Descriptor>, StoreError> {
        let hex = sha256_hex(diff_id)?;
        let path = self
            .root()
            .join("compressed")
            .join(algorithm.as_str())
            .join(hex);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StoreError::io("read", &path)(e)),
        };
        let Ok(blob) = Digest::from_str(text.trim()) else {
            return Ok(None);
        };
        match self.blob_size(&blob) {
            Ok(size) => Ok(Some(Descriptor::new(
                algorithm.oci_layer_media_type(),
                size,
                blob,
            ))),
            Err(StoreError::BlobNotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// GC: adds the compressed copies of live layers to `live`.
    pub(crate) fn keep_compressed_copies(
        &self,
        live: &mut HashSet<String>,
    ) -> Result<(), StoreError> {
        for (source, target, _) in self.compressed_records()? {
            if live.contains(&source) {
                live.insert(target);
            }
        }
        Ok(())
    }

    /// GC: forgets records whose compressed blob is gone.
    pub(crate) fn sweep_compressed_map(&self, live: &HashSet<String>) -> Result<(), StoreError> {
        for (_, target, path) in self.compressed_records()? {
            if !live.contains(&target) {
                let _ = fs::remove_file(&path);
            }
        }
        Ok(())
    }

    /// (source hex, compressed hex, record path) of every record.
    fn compressed_records(&self) -> Result<Vec<(String, String, std::path::PathBuf)>, StoreError> {
        let mut out = Vec::new();
        let base = self.root().join("compressed");
        let Ok(algos) = fs::read_dir(&base) else {
            return Ok(out);
        };
        for algo in algos.flatten() {
            let Ok(entries) = fs::read_dir(algo.path()) else {
                continue;
            };
            for e in entries.flatten() {
                let path = e.path();
                let source = e.file_name().to_string_lossy().into_owned();
                let target = File::open(&path)
                    .ok()
                    .and_then(|mut f| {
                        let mut s = String::new();
                        f.read_to_string(&mut s).ok().map(|_| s)
                    })
                    .and_then(|s| Digest::from_str(s.trim()).ok())
                    .map(|d| d.digest().to_string())
                    .unwrap_or_default();
                out.push((source, target, path));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        // compressible but not trivial: 3 MiB of pseudo-text
        let mut v = Vec::with_capacity(3 << 20);
        let mut x: u32 = 1;
        while v.len() < 3 << 20 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            v.extend_from_slice(format!("line {} value {}\n", x % 1000, x % 7).as_bytes());
        }
        v
    }

    #[test]
    fn gzip_and_zstd_round_trip_and_are_deterministic() {
        let data = sample();
        for algorithm in [Compression::Gzip, Compression::Zstd] {
            let mut outs = Vec::new();
            for threads in [1, 2, 3] {
                let out = compress_stream(
                    &data[..],
                    Vec::new(),
                    CompressOptions { algorithm, threads },
                )
                .unwrap();
                outs.push(out);
            }
            assert!(outs[0].len() < data.len() / 3, "{algorithm}");
            let mut back = Vec::new();
            match algorithm {
                Compression::Gzip => {
                    assert_eq!(&outs[0][..10], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255]);
                    flate2::read::MultiGzDecoder::new(&outs[0][..])
                        .read_to_end(&mut back)
                        .unwrap();
                    // deterministic whatever the thread count
                    assert_eq!(outs[0], outs[1]);
                    assert_eq!(outs[1], outs[2]);
                }
                _ => {
                    zstd::stream::read::Decoder::new(&outs[1][..])
                        .unwrap()
                        .read_to_end(&mut back)
                        .unwrap();
                    // deterministic whatever the thread count
                    assert_eq!(outs[0], outs[1]);
                    assert_eq!(outs[1], outs[2]);
                }
            }
            assert_eq!(back, data, "{algorithm}");
        }
    }

    #[test]
    fn compressed_once_and_remembered() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let layer = store.write_blob(&sample()).unwrap();
        let a = store
            .compressed_layer(&layer.digest, Compression::Gzip)
            .unwrap();
        assert_eq!(a.media_type(), &oci_spec::image::MediaType::ImageLayerGzip);
        let mtime = fs::metadata(store.blob_path(a.digest()).unwrap())
            .unwrap()
            .modified()
            .unwrap();
        let b = store
            .compressed_layer(&layer.digest, Compression::Gzip)
            .unwrap();
        assert_eq!(a, b);
        let mtime2 = fs::metadata(store.blob_path(a.digest()).unwrap())
            .unwrap()
            .modified()
            .unwrap();
        assert_eq!(mtime, mtime2);
        let z = store
            .compressed_layer(&layer.digest, Compression::Zstd)
            .unwrap();
        assert_ne!(z.digest(), a.digest());
        let none = store
            .compressed_layer(&layer.digest, Compression::None)
            .unwrap();
        assert_eq!(none.digest(), &layer.digest);
        // GC keeps the copies while the layer lives, then drops them and the records
        store.set_gc_roots("test", [&layer.digest]).unwrap();
        assert_eq!(store.collect_garbage().unwrap().blobs, 0);
        assert!(
            store
                .lookup_compressed(&layer.digest, Compression::Gzip)
                .unwrap()
                .is_some()
        );
        store.remove_gc_roots("test").unwrap();
        assert_eq!(store.collect_garbage().unwrap().blobs, 3);
        assert!(
            store
                .lookup_compressed(&layer.digest, Compression::Gzip)
                .unwrap()
                .is_none()
        );
        assert_eq!(
            fs::read_dir(dir.path().join("compressed/gzip"))
                .unwrap()
                .count(),
            0
        );
    }
}
