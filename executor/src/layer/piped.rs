//! A writer that hands what it is given, in 1 MiB chunks, to a thread of
//! its own, which hashes and writes it into the store's [`BlobWriter`]: the
//! thread archiving a layer (reading files, making tar headers) and the one
//! hashing and writing it work at the same time, on two cores. At most
//! [`IN_FLIGHT`] chunks wait between them, so memory stays bounded.

use std::io::{self, Write};
use std::sync::mpsc::{SyncSender, sync_channel};
use std::thread::JoinHandle;

use kiln_registry::BlobWriter;

/// Bytes gathered before a chunk is handed over.
const CHUNK: usize = 1 << 20;
/// Chunks waiting for the writing thread at most.
const IN_FLIGHT: usize = 4;

/// See the module docs. [`Piped::finish`] returns the blob writer once all
/// bytes are in; dropping a `Piped` without finishing discards the blob.
pub(crate) struct Piped {
    buf: Vec<u8>,
    tx: Option<SyncSender<Vec<u8>>>,
    thread: Option<JoinHandle<io::Result<BlobWriter>>>,
}

impl Piped {
    pub(crate) fn new(mut writer: BlobWriter) -> io::Result<Piped> {
        let (tx, rx) = sync_channel::<Vec<u8>>(IN_FLIGHT);
        let thread = std::thread::Builder::new()
            .name("kiln-layer-write".into())
            .spawn(move || {
                for chunk in rx {
                    writer.write_all(&chunk)?;
                }
                Ok(writer)
            })?;
        Ok(Piped {
            buf: Vec::with_capacity(CHUNK),
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    /// Hands the gathered bytes over; when the writing thread is gone (it
    /// failed), returns its error.
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        let sent = self.tx.as_ref().map(|tx| tx.send(chunk).is_ok());
        if sent == Some(true) {
            return Ok(());
        }
        Err(self
            .join()
            .err()
            .unwrap_or_else(|| io::Error::other("the layer writing thread stopped early")))
    }

    /// Waits for the writing thread to write everything sent.
    fn join(&mut self) -> io::Result<BlobWriter> {
        self.tx = None;
        match self.thread.take() {
            Some(t) => t.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
            None => Err(io::Error::other("the layer writing thread stopped early")),
        }
    }

    /// Writes the last bytes and returns the blob writer, ready to commit.
    pub(crate) fn finish(mut self) -> io::Result<BlobWriter> {
        self.send()?;
        self.join()
    }
}

impl Write for Piped {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == CHUNK {
            self.send()?;
        }
        Ok(n)
    }

    /// Only hands over what was gathered; durability is the commit's job.
    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

impl Drop for Piped {
    fn drop(&mut self) {
        if self.thread.is_some() {
            // the blob writer, dropped on the thread, removes its temp file
            let _ = self.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_arrive_whole_and_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = kiln_registry::Store::open(dir.path()).unwrap();
        let mut p = Piped::new(store.blob_writer().unwrap()).unwrap();
        let mut all = Vec::new();
        for i in 0..3000u32 {
            let piece: Vec<u8> = (0..(i % 977 + 1) * 7).map(|j| (i + j) as u8).collect();
            p.write_all(&piece).unwrap();
            all.extend_from_slice(&piece);
        }
        let info = p.finish().unwrap().commit(None).unwrap();
        let mut back = Vec::new();
        std::io::Read::read_to_end(&mut store.open_blob(&info.digest).unwrap(), &mut back).unwrap();
        assert_eq!(back.len(), all.len());
        assert!(back == all);
    }

    #[test]
    fn dropping_unfinished_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = kiln_registry::Store::open(dir.path()).unwrap();
        let mut p = Piped::new(store.blob_writer().unwrap()).unwrap();
        p.write_all(&vec![1u8; 3 * CHUNK + 5]).unwrap();
        drop(p);
        assert_eq!(std::fs::read_dir(store.tmp_dir()).unwrap().count(), 0);
    }
}
