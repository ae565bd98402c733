//! Reading layer streams: compression detected by magic bytes (gzip, zstd,
//! or none — whatever the media type claims), decompressed while streaming,
//! and hashed, so the uncompressed stream's digest can be checked against
//! the layer's diffID.

use std::io::{self, BufReader, Chain, Cursor, Read};

use oci_spec::image::Digest;
use sha2::{Digest as _, Sha256};

use super::media::Compression;
use super::sha256_digest;

/// A reader with its first bytes peeked.
pub type Peeked<R> = Chain<Cursor<Vec<u8>>, R>;

/// Reads the first (up to) 4 bytes of `reader` and returns the compression
/// they announce plus a reader that still yields every byte.
pub fn sniff<R: Read>(mut reader: R) -> io::Result<(Compression, Peeked<R>)> {
    let mut head = Vec::with_capacity(4);
    let mut buf = [0u8; 4];
    while head.len() < 4 {
        match reader.read(&mut buf[..4 - head.len()]) {
            Ok(0) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let c = Compression::from_magic(&head);
    Ok((c, Cursor::new(head).chain(reader)))
}

/// The uncompressed stream of a layer blob, whatever its compression.
/// `declared` (from the media type) is only logged when the bytes disagree.
pub fn decompressed<'a, R: Read + Send + 'a>(
    reader: R,
    declared: Option<Compression>,
) -> io::Result<(Compression, Box<dyn Read + Send + 'a>)> {
    let (actual, reader) = sniff(reader)?;
    if let Some(d) = declared
        && d != actual
    {
        tracing::debug!(declared = %d, actual = %actual, "layer compression differs from its media type");
    }
    let out: Box<dyn Read + Send + 'a> = match actual {
        Compression::None => Box::new(reader),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(BufReader::with_capacity(
            256 * 1024,
            reader,
        ))),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(reader)?),
    };
    Ok((actual, out))
}

/// Passes reads through and hashes every byte read.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> HashingReader<R> {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// Reads the rest of the stream (a tar's trailing padding is part of
    /// the diffID) and returns the digest and size of everything read.
    pub fn finish(mut self) -> io::Result<(Digest, u64)> {
        io::copy(&mut self, &mut io::sink())?;
        Ok((sha256_digest(&self.hasher.finalize()), self.count))
    }

    /// Bytes read so far.
    pub fn count(&self) -> u64 {
        self.count
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// Passes reads through and copies every byte read into a writer.
pub struct TeeReader<R, W> {
    pub inner: R,
    pub sink: W,
}

impl<R: Read, W: io::Write> Read for TeeReader<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sink.write_all(&buf[..n])?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn detects_and_decompresses() {
        let data = b"hello world, hello world, hello world".repeat(100);
        let z = zstd::encode_all(&data[..], 3).unwrap();
        for (bytes, want) in [
            (data.clone(), Compression::None),
            (gz(&data), Compression::Gzip),
            (z, Compression::Zstd),
        ] {
            let (c, mut r) = decompressed(&bytes[..], Some(Compression::Gzip)).unwrap();
            assert_eq!(c, want);
            let mut out = Vec::new();
            r.read_to_end(&mut out).unwrap();
            assert_eq!(out, data);
        }
        // tiny and empty inputs
        let (c, mut r) = decompressed(&b"ab"[..], None).unwrap();
        assert_eq!(c, Compression::None);
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"ab");
    }

    #[test]
    fn truncated_gzip_is_an_error() {
        let data: Vec<u8> = (0..200_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let g = gz(&data);
        for cut in [g.len() - 4, g.len() / 2, 12] {
            let (_, mut r) = decompressed(&g[..cut], None).unwrap();
            let mut out = Vec::new();
            assert!(r.read_to_end(&mut out).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn hashing_reader_counts_everything() {
        let mut h = HashingReader::new(&b"hello"[..]);
        let mut two = [0u8; 2];
        h.read_exact(&mut two).unwrap();
        let (d, n) = h.finish().unwrap();
        assert_eq!(n, 5);
        assert_eq!(d, crate::sha256_of(b"hello"));
    }
}
