//! Pull and push logic against the in-memory [`FakeRepo`](super::fake::FakeRepo).

use std::io::Write as _;
use std::sync::Mutex;

use oci_spec::image::{
    ConfigBuilder, DescriptorBuilder, ImageConfigurationBuilder, ImageIndexBuilder,
    ImageManifestBuilder, MediaType, PlatformBuilder, RootFsBuilder,
};

use super::fake::FakeRepo;
use super::progress::{BlobOutcome, TransferEvent, TransferProgress};
use super::pull::{PullOptions, pull_from};
use super::push::push_to;
use super::{Platform, RemoteErrorKind};
use crate::reference::Reference;
use crate::store::{Store, sha256_of};

#[derive(Default)]
struct Recorder(Mutex<Vec<TransferEvent>>);
impl TransferProgress for Recorder {
    fn event(&self, e: TransferEvent) {
        self.0.lock().unwrap().push(e);
    }
}

fn tar_with(name: &str, body: &[u8]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(body.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, name, body).unwrap();
    b.into_inner().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// An image in the fake registry: one gzip layer, for `arch`.
fn remote_image(repo: &FakeRepo, arch: &str, seed: &str) -> (Vec<u8>, oci_spec::image::Descriptor) {
    let tar = tar_with("hello", seed.as_bytes());
    let layer = gzip(&tar);
    let layer_d = repo.add_blob(&layer);
    let config = ImageConfigurationBuilder::default()
        .architecture(arch)
        .os("linux")
        .config(ConfigBuilder::default().build().unwrap())
        .rootfs(
            RootFsBuilder::default()
                .diff_ids(vec![sha256_of(&tar).to_string()])
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let config_bytes = serde_json::to_vec(&config).unwrap();
    let config_d = repo.add_blob(&config_bytes);
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(
            DescriptorBuilder::default()
                .media_type(MediaType::ImageConfig)
                .size(config_bytes.len() as u64)
                .digest(config_d)
                .build()
                .unwrap(),
        )
        .layers(vec![
            DescriptorBuilder::default()
                .media_type(MediaType::ImageLayerGzip)
                .size(layer.len() as u64)
                .digest(layer_d)
                .build()
                .unwrap(),
        ])
        .build()
        .unwrap();
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let d = repo.add_manifest(&bytes, None);
    let desc = DescriptorBuilder::default()
        .media_type(MediaType::ImageManifest)
        .size(bytes.len() as u64)
        .digest(d)
        .platform(
            PlatformBuilder::default()
                .os("linux")
                .architecture(arch)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    (bytes, desc)
}

fn other_arch() -> &'static str {
    if Platform::host().architecture == "s390x" {
        "riscv64"
    } else {
        "s390x"
    }
}

/// The fake registry with a two-platform index tagged `1`.
fn multi_platform(repo: &FakeRepo) -> oci_spec::image::Digest {
    let host = Platform::host().architecture;
    let (_, d1) = remote_image(repo, other_arch(), "other");
    let (_, d2) = remote_image(repo, &host, "host");
    let index = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(vec![d1, d2])
        .build()
        .unwrap();
    repo.add_manifest(&serde_json::to_vec(&index).unwrap(), Some("1"))
}

fn reference(tag: &str) -> Reference {
    format!("fake.test/a/b:{tag}").parse().unwrap()
}

#[tokio::test]
async fn pulls_the_host_platform_then_skips_what_it_has() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let repo = FakeRepo::new("a/b");
    let index = multi_platform(&repo);
    let rec = Recorder::default();
    let pulled = pull_from(
        &repo,
        &store,
        &reference("1"),
        &PullOptions::default(),
        4,
        &rec,
    )
    .await
    .unwrap();
    assert_eq!(
        pulled.target.digest(),
        &index,
        "the tag points at the index"
    );
    assert_eq!(pulled.downloaded, 2);
    assert_eq!(
        pulled.image.config.architecture().to_string(),
        Platform::host().architecture
    );
    assert_eq!(
        store.resolve(&reference("1")).unwrap().unwrap().digest(),
        &index
    );
    assert_eq!(repo.calls("GET sha256"), 2, "only the host's blobs");

    let again = pull_from(
        &repo,
        &store,
        &reference("1"),
        &PullOptions::default(),
        4,
        &rec,
    )
    .await
    .unwrap();
    assert_eq!(again.downloaded, 0);
    assert_eq!(repo.calls("GET sha256"), 2);
    let events = rec.0.lock().unwrap();
    assert!(events.iter().any(|e| matches!(
        e,
        TransferEvent::BlobFinished {
            outcome: BlobOutcome::AlreadyPresent,
            ..
        }
    )));
}

#[tokio::test]
async fn another_platform_is_tagged_by_its_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let repo = FakeRepo::new("a/b");
    multi_platform(&repo);
    let options = PullOptions {
        platform: Some(format!("linux/{}", other_arch()).parse().unwrap()),
    };
    let pulled = pull_from(
        &repo,
        &store,
        &reference("1"),
        &options,
        4,
        &super::NoProgress,
    )
    .await
    .unwrap();
    assert_eq!(pulled.target.digest(), pulled.image.manifest_digest());
    assert_eq!(pulled.image.config.architecture().to_string(), other_arch());

    let options = PullOptions {
        platform: Some("windows/arm64".parse().unwrap()),
    };
    let err = pull_from(
        &repo,
        &store,
        &reference("1"),
        &options,
        4,
        &super::NoProgress,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, RemoteErrorKind::NoMatchingPlatform { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("windows/arm64"), "{err}");
}

#[tokio::test]
async fn corrupt_blobs_store_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut repo = FakeRepo::new("a/b");
    repo.corrupt = true;
    multi_platform(&repo);
    let err = pull_from(
        &repo,
        &store,
        &reference("1"),
        &PullOptions::default(),
        4,
        &super::NoProgress,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, RemoteErrorKind::DigestMismatch { .. }),
        "{err}"
    );
    assert!(store.resolve(&reference("1")).unwrap().is_none());
    assert_eq!(std::fs::read_dir(store.tmp_dir()).unwrap().count(), 0);
}

#[tokio::test]
async fn push_compresses_uploads_then_skips_and_mounts() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    // A local image with an uncompressed layer, as kiln builds them.
    let tar = tar_with("file", b"contents");
    let layer = store.write_blob(&tar).unwrap();
    let config = ImageConfigurationBuilder::default()
        .architecture(Platform::host().architecture.as_str())
        .os("linux")
        .config(ConfigBuilder::default().build().unwrap())
        .rootfs(
            RootFsBuilder::default()
                .diff_ids(vec![layer.digest.to_string()])
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let config_d = store.put_config(&config).unwrap();
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(config_d.clone())
        .layers(vec![
            DescriptorBuilder::default()
                .media_type(MediaType::ImageLayer)
                .size(layer.size)
                .digest(layer.digest.clone())
                .build()
                .unwrap(),
        ])
        .build()
        .unwrap();
    let m = store.put_manifest(&manifest).unwrap();
    let image = store.add_image(&m).unwrap();

    let repo = FakeRepo::new("a/b");
    let pushed = push_to(
        &repo,
        &store,
        &image,
        &reference("v1"),
        4,
        &super::NoProgress,
    )
    .await
    .unwrap();
    assert_eq!(pushed.uploaded, 2);
    let stored = repo.manifests.lock().unwrap().get("v1").cloned().unwrap();
    assert_eq!(sha256_of(&stored), pushed.digest);
    let sent: oci_spec::image::ImageManifest = serde_json::from_slice(&stored).unwrap();
    assert_eq!(sent.layers()[0].media_type(), &MediaType::ImageLayerGzip);
    assert_ne!(sent.layers()[0].digest(), &layer.digest);
    assert!(
        repo.blobs
            .lock()
            .unwrap()
            .contains_key(sent.layers()[0].digest())
    );

    // Again: HEAD finds everything, nothing uploaded, same digest.
    let again = push_to(
        &repo,
        &store,
        &image,
        &reference("v1"),
        4,
        &super::NoProgress,
    )
    .await
    .unwrap();
    assert_eq!((again.uploaded, again.skipped), (0, 2));
    assert_eq!(again.digest, pushed.digest);

    // Another repository of the same registry: mounted from a/b.
    let other = FakeRepo::new("c/d");
    other.elsewhere.lock().unwrap().insert(
        "a/b".into(),
        repo.blobs.lock().unwrap().keys().cloned().collect(),
    );
    let third = push_to(
        &other,
        &store,
        &image,
        &"fake.test/c/d:v1".parse().unwrap(),
        4,
        &super::NoProgress,
    )
    .await
    .unwrap();
    assert_eq!((third.uploaded, third.mounted), (0, 2));
    assert_eq!(other.calls("PUT sha256"), 0);
}
