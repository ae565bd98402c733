//! An in-memory registry repository for unit tests of pull and push: it
//! keeps manifests and blobs in maps and logs every call.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

use bytes::Bytes;
use oci_spec::image::Digest;

use super::client::{ByteProgress, RemoteRepo};
use super::error::{RemoteErrorKind, Request};
use crate::store::{BlobInfo, Store, sha256_of};

pub(crate) struct FakeRepo {
    pub registry: String,
    pub repository: String,
    pub manifests: Mutex<HashMap<String, Bytes>>,
    pub blobs: Mutex<HashMap<Digest, Bytes>>,
    /// Blobs other repositories of the registry have (mountable).
    pub elsewhere: Mutex<HashMap<String, HashSet<Digest>>>,
    pub calls: Mutex<Vec<String>>,
    /// Flip a byte of every blob sent.
    pub corrupt: bool,
}

impl FakeRepo {
    pub fn new(repository: &str) -> FakeRepo {
        FakeRepo {
            registry: "fake.test".into(),
            repository: repository.into(),
            manifests: Mutex::default(),
            blobs: Mutex::default(),
            elsewhere: Mutex::default(),
            calls: Mutex::default(),
            corrupt: false,
        }
    }

    pub fn add_blob(&self, bytes: &[u8]) -> Digest {
        let d = sha256_of(bytes);
        self.blobs
            .lock()
            .unwrap()
            .insert(d.clone(), Bytes::copy_from_slice(bytes));
        d
    }

    /// Stores a manifest under its digest and, if given, a tag.
    pub fn add_manifest(&self, bytes: &[u8], tag: Option<&str>) -> Digest {
        let d = sha256_of(bytes);
        let mut m = self.manifests.lock().unwrap();
        m.insert(d.to_string(), Bytes::copy_from_slice(bytes));
        if let Some(t) = tag {
            m.insert(t.to_string(), Bytes::copy_from_slice(bytes));
        }
        d
    }

    pub fn calls(&self, prefix: &str) -> usize {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c.starts_with(prefix))
            .count()
    }

    fn log(&self, call: String) {
        self.calls.lock().unwrap().push(call);
    }
}

impl RemoteRepo for FakeRepo {
    fn location(&self) -> (String, String) {
        (self.registry.clone(), self.repository.clone())
    }

    async fn fetch_manifest(&self, reference: &str) -> Result<(Bytes, Digest), RemoteErrorKind> {
        self.log(format!("GET manifest {reference}"));
        let bytes = self.manifests.lock().unwrap().get(reference).cloned();
        match bytes {
            Some(b) => {
                let d = sha256_of(&b);
                Ok((b, d))
            }
            None => Err(RemoteErrorKind::NotFound {
                what: "manifest",
                name: reference.into(),
                request: Request::new("GET", reference.to_string()),
            }),
        }
    }

    async fn has_blob(&self, digest: &Digest) -> Result<bool, RemoteErrorKind> {
        self.log(format!("HEAD {digest}"));
        Ok(self.blobs.lock().unwrap().contains_key(digest))
    }

    async fn fetch_blob(
        &self,
        store: &Store,
        digest: &Digest,
        _size: u64,
        progress: ByteProgress<'_>,
    ) -> Result<BlobInfo, RemoteErrorKind> {
        self.log(format!("GET {digest}"));
        let bytes = self.blobs.lock().unwrap().get(digest).cloned().unwrap();
        let mut data = bytes.to_vec();
        if self.corrupt && !data.is_empty() {
            data[0] ^= 0xff;
        }
        let mut w = store.blob_writer()?;
        w.write_all(&data).unwrap();
        progress(data.len() as u64);
        match w.commit(Some(digest)) {
            Ok(info) => Ok(info),
            Err(crate::store::StoreError::DigestMismatch { expected, actual }) => {
                Err(RemoteErrorKind::DigestMismatch {
                    expected: expected.to_string(),
                    actual: actual.to_string(),
                    request: Request::new("GET", digest.to_string()),
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn mount_blob(&self, digest: &Digest, from: &str) -> Result<bool, RemoteErrorKind> {
        self.log(format!("MOUNT {digest} from {from}"));
        let there = self
            .elsewhere
            .lock()
            .unwrap()
            .get(from)
            .is_some_and(|s| s.contains(digest));
        if there {
            // The registry links the blob; its content is the same.
            let placeholder = Bytes::new();
            self.blobs
                .lock()
                .unwrap()
                .insert(digest.clone(), placeholder);
        }
        Ok(there)
    }

    async fn upload_blob(
        &self,
        path: PathBuf,
        digest: &Digest,
        size: u64,
        progress: ByteProgress<'_>,
    ) -> Result<(), RemoteErrorKind> {
        self.log(format!("PUT {digest}"));
        let data = std::fs::read(&path).unwrap();
        assert_eq!(data.len() as u64, size);
        assert_eq!(&sha256_of(&data), digest);
        progress(size);
        self.blobs
            .lock()
            .unwrap()
            .insert(digest.clone(), Bytes::from(data));
        Ok(())
    }

    async fn put_manifest(
        &self,
        reference: &str,
        bytes: Bytes,
        media_type: &str,
    ) -> Result<(), RemoteErrorKind> {
        self.log(format!("PUT manifest {reference} {media_type}"));
        self.add_manifest(&bytes, Some(reference));
        Ok(())
    }
}
