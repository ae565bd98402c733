//! One repository on one registry, as pull and push see it: the
//! [`RemoteRepo`] trait (so their logic is unit-tested against an in-memory
//! fake) and [`OciRepo`], its implementation on oci-client.
//!
//! oci-client does the HTTP and the token dance. Around it kiln adds what it
//! lacks (see ../shared/DEPENDENCIES.md): retries with backoff, an explicit
//! authentication step so a refused token is reported instead of silently
//! going anonymous, streaming blobs into the store through a bounded channel
//! with the digest checked twice (while receiving and at commit), uploads
//! streamed from files as one monolithic PUT, mount's 202 read as "upload
//! needed", and errors that name the request.

use std::future::Future;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::manifest::OciDescriptor;
use oci_client::secrets::RegistryAuth;
use oci_client::{Reference, RegistryOperation};
use oci_spec::image::Digest;

use super::error::{Cause, RemoteErrorKind, Request};
use super::retry::{Failure, classify, retry};
use super::transport::RemoteConfig;
use crate::auth::Credentials;
use crate::store::{BlobInfo, Store, StoreError};

/// Manifest media types kiln accepts, most specific first.
pub(crate) const MANIFEST_ACCEPT: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// Progress callback: bytes of the current blob transferred so far.
pub(crate) type ByteProgress<'a> = &'a (dyn Fn(u64) + Send + Sync);

/// One repository on one registry.
pub(crate) trait RemoteRepo: Send + Sync {
    /// The registry (`host[:port]`) and repository.
    fn location(&self) -> (String, String);

    /// Fetches a manifest or index by tag or digest: its exact bytes and
    /// digest (checked against the reference when it is a digest).
    fn fetch_manifest(
        &self,
        reference: &str,
    ) -> impl Future<Output = Result<(Bytes, Digest), RemoteErrorKind>> + Send;

    /// Whether the registry has the blob in this repository (HEAD).
    fn has_blob(
        &self,
        digest: &Digest,
    ) -> impl Future<Output = Result<bool, RemoteErrorKind>> + Send;

    /// Streams a blob into the store, digest-checked; nothing is stored when
    /// anything fails.
    fn fetch_blob(
        &self,
        store: &Store,
        digest: &Digest,
        size: u64,
        progress: ByteProgress<'_>,
    ) -> impl Future<Output = Result<BlobInfo, RemoteErrorKind>> + Send;

    /// Asks the registry to link a blob from another repository; false when
    /// it cannot (the blob must then be uploaded).
    fn mount_blob(
        &self,
        digest: &Digest,
        from_repository: &str,
    ) -> impl Future<Output = Result<bool, RemoteErrorKind>> + Send;

    /// Uploads the file at `path` (`size` bytes hashing to `digest`),
    /// streamed.
    fn upload_blob(
        &self,
        path: PathBuf,
        digest: &Digest,
        size: u64,
        progress: ByteProgress<'_>,
    ) -> impl Future<Output = Result<(), RemoteErrorKind>> + Send;

    /// Puts a manifest's exact bytes under a tag or digest.
    fn put_manifest(
        &self,
        reference: &str,
        bytes: Bytes,
        media_type: &str,
    ) -> impl Future<Output = Result<(), RemoteErrorKind>> + Send;
}

/// A repository reached through oci-client.
pub(crate) struct OciRepo {
    client: oci_client::Client,
    auth: RegistryAuth,
    has_credentials: bool,
    registry: String,
    repository: String,
    config: Arc<RemoteConfig>,
}

impl OciRepo {
    /// Connects to `registry/repository` and authenticates for `operation`
    /// (and pull, which HEAD requests need). Fails when the registry's token
    /// service refuses the credentials, instead of carrying on anonymously.
    pub(crate) async fn connect(
        config: Arc<RemoteConfig>,
        registry: &str,
        repository: &str,
        credentials: Option<Credentials>,
        operation: RegistryOperation,
    ) -> Result<OciRepo, RemoteErrorKind> {
        // Library users may not have installed a TLS provider; the CLI has.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let protocol = if config.is_plain_http(registry) {
            ClientProtocol::Http
        } else {
            ClientProtocol::Https
        };
        let client_config = ClientConfig {
            protocol,
            use_monolithic_push: true,
            platform_resolver: None,
            connect_timeout: Some(std::time::Duration::from_secs(30)),
            read_timeout: Some(std::time::Duration::from_secs(120)),
            user_agent: concat!("kiln/", env!("CARGO_PKG_VERSION")),
            ..ClientConfig::default()
        };
        let client = oci_client::Client::try_from(client_config)
            .map_err(|e| RemoteErrorKind::ClientSetup(Cause::from(e)))?;
        let has_credentials = credentials.is_some();
        let auth = match credentials {
            Some(c) => RegistryAuth::Basic(c.username, c.password.expose().to_string()),
            None => RegistryAuth::Anonymous,
        };
        let repo = OciRepo {
            client,
            auth,
            has_credentials,
            registry: registry.to_string(),
            repository: repository.to_string(),
            config,
        };
        repo.authenticate(RegistryOperation::Pull).await?;
        if operation == RegistryOperation::Push {
            repo.authenticate(RegistryOperation::Push).await?;
        }
        Ok(repo)
    }

    fn reference(&self) -> Reference {
        Reference::with_tag(
            self.registry.clone(),
            self.repository.clone(),
            "latest".into(),
        )
    }

    fn reference_for(&self, tag_or_digest: &str) -> Reference {
        if tag_or_digest.contains(':') {
            Reference::with_digest(
                self.registry.clone(),
                self.repository.clone(),
                tag_or_digest.to_string(),
            )
        } else {
            Reference::with_tag(
                self.registry.clone(),
                self.repository.clone(),
                tag_or_digest.to_string(),
            )
        }
    }

    fn request(&self, method: &'static str, tail: impl std::fmt::Display) -> Request {
        Request::new(method, format!("/v2/{}/{tail}", self.repository))
    }

    /// Runs oci-client's challenge → token flow now, with retries, so a
    /// refused token is an error here rather than a silent fall-back to
    /// anonymous requests later.
    async fn authenticate(&self, op: RegistryOperation) -> Result<(), RemoteErrorKind> {
        let request = Request::new("GET", "/v2/");
        retry(
            &self.config.retry,
            &request,
            || async { self.auth_once(op).await },
            || async { Ok(()) },
        )
        .await
        .map_err(|(f, n)| {
            self.fail(
                f,
                request.clone(),
                n,
                "authentication",
                ("registry", "/v2/"),
            )
        })
    }

    async fn auth_once(&self, op: RegistryOperation) -> Result<(), Failure> {
        self.client
            .auth(&self.reference(), &self.auth, op)
            .await
            .map(|_| ())
            .map_err(classify)
    }

    /// The final error for a failure: a 401 with credentials means the
    /// credentials are wrong, without them that some are needed.
    fn fail(
        &self,
        failure: Failure,
        request: Request,
        attempts: u32,
        what: &'static str,
        not_found: (&'static str, &str),
    ) -> RemoteErrorKind {
        match failure {
            Failure::Unauthorized if self.has_credentials => RemoteErrorKind::BadCredentials {
                request,
                status: super::error::Status {
                    code: Some(401),
                    message: format!(
                        "the registry refused the stored credentials; log in again with `kiln login {}`",
                        self.registry
                    ),
                },
            },
            // Anonymous and no token: the registry wants credentials.
            Failure::Token(_) if !self.has_credentials => RemoteErrorKind::AuthRequired {
                registry: self.registry.clone(),
                request,
            },
            f => f.into_kind(request, attempts, &self.registry, what, not_found),
        }
    }

    async fn run<T, F, Fut>(
        &self,
        request: &Request,
        op: RegistryOperation,
        what: &'static str,
        not_found: (&'static str, &str),
        attempt: F,
    ) -> Result<T, RemoteErrorKind>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        retry(&self.config.retry, request, attempt, || self.auth_once(op))
            .await
            .map_err(|(f, n)| self.fail(f, request.clone(), n, what, not_found))
    }
}

impl RemoteRepo for OciRepo {
    fn location(&self) -> (String, String) {
        (self.registry.clone(), self.repository.clone())
    }

    async fn fetch_manifest(&self, reference: &str) -> Result<(Bytes, Digest), RemoteErrorKind> {
        let request = self.request("GET", format_args!("manifests/{reference}"));
        let target = self.reference_for(reference);
        let (bytes, digest) = self
            .run(
                &request,
                RegistryOperation::Pull,
                "manifest fetch",
                ("manifest", reference),
                || async {
                    self.client
                        .pull_manifest_raw(&target, &self.auth, MANIFEST_ACCEPT)
                        .await
                        .map_err(classify)
                },
            )
            .await?;
        let digest = digest
            .parse::<Digest>()
            .map_err(|_| RemoteErrorKind::Rejected {
                what: "manifest fetch",
                request: request.clone(),
                status: super::error::Status {
                    code: None,
                    message: format!("the registry sent an invalid digest {digest:?}"),
                },
            })?;
        Ok((bytes, digest))
    }

    async fn has_blob(&self, digest: &Digest) -> Result<bool, RemoteErrorKind> {
        let request = self.request("HEAD", format_args!("blobs/{digest}"));
        let target = self.reference();
        self.run(
            &request,
            RegistryOperation::Pull,
            "blob check",
            ("blob", digest.as_ref()),
            || async {
                self.client
                    .blob_exists(&target, digest.as_ref())
                    .await
                    .map_err(classify)
            },
        )
        .await
    }

    async fn fetch_blob(
        &self,
        store: &Store,
        digest: &Digest,
        size: u64,
        progress: ByteProgress<'_>,
    ) -> Result<BlobInfo, RemoteErrorKind> {
        let request = self.request("GET", format_args!("blobs/{digest}"));
        let target = self.reference();
        let desc = OciDescriptor {
            digest: digest.to_string(),
            size: size as i64,
            ..OciDescriptor::default()
        };
        self.run(
            &request,
            RegistryOperation::Pull,
            "blob fetch",
            ("blob", digest.as_ref()),
            || async {
                progress(0);
                let stream = self
                    .client
                    .pull_blob_stream(&target, &desc)
                    .await
                    .map_err(classify)?;
                write_to_store(store, stream, digest, size, progress).await
            },
        )
        .await
    }

    async fn mount_blob(&self, digest: &Digest, from: &str) -> Result<bool, RemoteErrorKind> {
        let request = self
            .request("POST", "blobs/uploads/")
            .about(format_args!("mount {digest} from {from}"));
        let target = self.reference();
        let source = Reference::with_tag(self.registry.clone(), from.to_string(), "latest".into());
        let mounted = retry(
            &self.config.retry,
            &request,
            || async {
                match self
                    .client
                    .mount_blob(&target, &source, digest.as_ref())
                    .await
                {
                    Ok(()) => Ok(true),
                    // 202 Accepted: the registry opened an upload session
                    // instead; the blob must be uploaded.
                    Err(OciDistributionError::SpecViolationError(_)) => Ok(false),
                    Err(e) => Err(classify(e)),
                }
            },
            || self.auth_once(RegistryOperation::Push),
        )
        .await;
        match mounted {
            Ok(m) => Ok(m),
            Err((f @ Failure::Transient { .. }, n)) => {
                Err(self.fail(f, request, n, "blob mount", ("blob", digest.as_ref())))
            }
            Err((f, _)) => {
                // A refused mount is not an error: the upload follows.
                tracing::debug!(%digest, from, failure = ?f, "mount refused; uploading");
                Ok(false)
            }
        }
    }

    async fn upload_blob(
        &self,
        path: PathBuf,
        digest: &Digest,
        size: u64,
        progress: ByteProgress<'_>,
    ) -> Result<(), RemoteErrorKind> {
        let request = self.request("PUT", "blobs/uploads/").about(digest);
        let target = self.reference();
        self.run(
            &request,
            RegistryOperation::Push,
            "blob upload",
            ("upload session for", digest.as_ref()),
            || async {
                progress(0);
                let file = tokio::fs::File::open(&path)
                    .await
                    .map_err(|e| Failure::Store(StoreError::io("open", &path)(e)))?;
                // The body stream must be 'static: it reports the bytes it
                // hands to the connection through a channel read here.
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
                let stream = tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024)
                    .inspect_ok(move |chunk| {
                        let _ = tx.send(chunk.len() as u64);
                    })
                    .map_err(OciDistributionError::IoError);
                let push =
                    self.client
                        .push_blob_stream(&target, stream, digest.as_ref(), Some(size));
                tokio::pin!(push);
                let mut done = 0u64;
                loop {
                    tokio::select! {
                        result = &mut push => {
                            while let Ok(n) = rx.try_recv() { done += n; }
                            progress(done);
                            return result.map(|_| ()).map_err(classify);
                        }
                        Some(n) = rx.recv() => {
                            done += n;
                            progress(done);
                        }
                    }
                }
            },
        )
        .await
    }

    async fn put_manifest(
        &self,
        reference: &str,
        bytes: Bytes,
        media_type: &str,
    ) -> Result<(), RemoteErrorKind> {
        let request = self.request("PUT", format_args!("manifests/{reference}"));
        let target = self.reference_for(reference);
        let content_type = reqwest::header::HeaderValue::from_str(media_type).map_err(|_| {
            RemoteErrorKind::UnsupportedMediaType {
                reference: reference.to_string(),
                media_type: media_type.to_string(),
            }
        })?;
        self.run(
            &request,
            RegistryOperation::Push,
            "manifest upload",
            ("repository", &self.repository),
            || async {
                self.client
                    .push_manifest_raw(&target, bytes.clone(), content_type.clone())
                    .await
                    .map(|_| ())
                    .map_err(classify)
            },
        )
        .await
    }
}

/// Streams a response body into a new store blob through a bounded channel
/// (the file writes happen on a blocking thread), checking the size as it
/// goes and the digest at the end. On any failure the temp file is removed.
async fn write_to_store<S>(
    store: &Store,
    mut stream: S,
    digest: &Digest,
    size: u64,
    progress: ByteProgress<'_>,
) -> Result<BlobInfo, Failure>
where
    S: futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Unpin,
{
    let writer = store.blob_writer().map_err(Failure::Store)?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(16);
    let tmp = store.tmp_dir();
    let write_task = tokio::task::spawn_blocking(move || {
        let mut writer = writer;
        while let Some(chunk) = rx.blocking_recv() {
            writer
                .write_all(&chunk)
                .map_err(|e| StoreError::io("write", &tmp)(e))?;
        }
        Ok::<_, StoreError>(writer)
    });
    let mut received = 0u64;
    let mut failure = None;
    while let Some(item) = stream.next().await {
        match item {
            Ok(chunk) => {
                received += chunk.len() as u64;
                if received > size {
                    failure = Some(Failure::Size {
                        expected: size,
                        actual: received,
                    });
                    break;
                }
                if tx.send(chunk).await.is_err() {
                    break; // the writer failed; its error is reported below
                }
                progress(received);
            }
            Err(e) => {
                failure = Some(super::retry::classify(OciDistributionError::IoError(e)));
                break;
            }
        }
    }
    drop(tx);
    let writer = match write_task.await {
        Ok(Ok(w)) => w,
        Ok(Err(e)) => return Err(Failure::Store(e)),
        Err(join) => {
            return Err(Failure::Fatal(Cause::Io(std::io::Error::other(join))));
        }
    };
    if let Some(f) = failure {
        drop(writer); // removes the temp file
        return Err(f);
    }
    if received != size {
        return Err(Failure::Size {
            expected: size,
            actual: received,
        });
    }
    let expected = digest.clone();
    let committed = tokio::task::spawn_blocking(move || writer.commit(Some(&expected)))
        .await
        .map_err(|join| Failure::Fatal(Cause::Io(std::io::Error::other(join))))?;
    match committed {
        Ok(info) => Ok(info),
        Err(StoreError::DigestMismatch { expected, actual }) => Err(Failure::Digest {
            expected: expected.to_string(),
            actual: actual.to_string(),
        }),
        Err(e) => Err(Failure::Store(e)),
    }
}
