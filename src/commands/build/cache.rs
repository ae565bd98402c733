//! `kiln build --cache-from REF` / `--cache-to REF`: the build cache in a
//! registry, so a CI runner with an empty kiln root reuses what another
//! machine built.
//!
//! As BuildKit's registry cache (`type=registry,ref=…,mode=min|max`), the
//! cache is one manifest in a repository, whose layers are the cached layer
//! blobs and whose config describes the cache records. kiln's is an OCI
//! image manifest with its own media types (docs/cache-keys.md):
//! - `artifactType` and config `mediaType` [`ARTIFACT_TYPE`] /
//!   [`CONFIG_MEDIA_TYPE`];
//! - the config: `{"keySchema":N,"layers":[{"diffID","blob"}],
//!   "steps":[{"key","chain":[i…],"layer":i|null,"created"}],
//!   "images":[{"key","created"}]}` — layer `i` is the manifest's layer `i`
//!   (gzip when kiln stores it uncompressed), `blob` the descriptor the
//!   exporting machine stores it under, so an importer stores the same.
//!
//! `mode=min` (the default) exports the records of the steps whose result
//! is part of the image; `mode=max` those of every stage built. An import
//! that fails is a warning and the build goes on, as BuildKit does; an
//! export that fails fails the build unless `ignore-error=true`.

use std::collections::HashMap;
use std::sync::Arc;

use kiln_registry::remote::{RemoteConfig, Repository};
use kiln_registry::{Compression, Reference, Store};
use kiln_solver::{
    CacheExport, CacheKey, ImageTimeRecord, ImportedCache, Layer, Progress, SCHEMA_VERSION,
    StateRecord,
};
use miette::{IntoDiagnostic, WrapErr, miette};
use oci_spec::image::{
    Descriptor, DescriptorBuilder, Digest, ImageManifest, ImageManifestBuilder, MediaType,
};
use serde::{Deserialize, Serialize};

use crate::worker::RemoteLayers;

/// `artifactType` of a kiln build cache manifest.
pub const ARTIFACT_TYPE: &str = "application/vnd.kiln.build-cache.v1";
/// Media type of its config, the cache records.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.kiln.build-cache.config.v1+json";

/// A `--cache-from` / `--cache-to` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheSpec {
    pub reference: Reference,
    /// `mode=max`: export every stage's records, not only the image's.
    pub max: bool,
    /// `ignore-error=true`: a failed export is a warning.
    pub ignore_error: bool,
}

/// Errors in `--cache-from` / `--cache-to` values.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CacheSpecError {
    #[error("invalid --{flag} {value:?}: {reason}")]
    Invalid {
        flag: &'static str,
        value: String,
        reason: String,
    },
}

/// Parses `REF` or `type=registry,ref=REF[,mode=min|max][,ignore-error=BOOL]`
/// (BuildKit's other registry options are accepted and ignored).
pub fn parse_spec(value: &str, to: bool) -> Result<CacheSpec, CacheSpecError> {
    let flag = if to { "cache-to" } else { "cache-from" };
    let invalid = |reason: String| CacheSpecError::Invalid {
        flag,
        value: value.to_string(),
        reason,
    };
    let mut reference = None;
    let mut max = false;
    let mut ignore_error = false;
    if !value.contains('=') {
        reference = Some(value.to_string());
    } else {
        for field in value.split(',') {
            let (k, v) = field
                .split_once('=')
                .ok_or_else(|| invalid("fields are key=value".into()))?;
            match k.trim() {
                "type" if v == "registry" => {}
                "type" => {
                    return Err(invalid(format!(
                        "type={v} is not supported (kiln keeps its build cache in registries: type=registry)"
                    )));
                }
                "ref" => reference = Some(v.to_string()),
                "mode" => {
                    max = match v {
                        "min" => false,
                        "max" => true,
                        _ => return Err(invalid("mode= must be min or max".into())),
                    }
                }
                "ignore-error" => {
                    ignore_error = v
                        .parse()
                        .map_err(|_| invalid("ignore-error= must be true or false".into()))?
                }
                // BuildKit's manifest and compression options: kiln's format
                // has one shape (OCI, gzip).
                "oci-mediatypes" | "image-manifest" | "compression" | "compression-level"
                | "force-compression" => {}
                other => return Err(invalid(format!("unknown field {other:?}"))),
            }
        }
    }
    let reference = reference.ok_or_else(|| invalid("ref= is required".into()))?;
    let reference = Reference::parse(&reference).map_err(|e| invalid(e.to_string()))?;
    if to && reference.digest().is_some() {
        return Err(invalid(
            "the cache is written under a tag, not a digest".into(),
        ));
    }
    Ok(CacheSpec {
        reference,
        max,
        ignore_error,
    })
}

/// The cache config: the records, over the manifest's layers.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CacheConfig {
    key_schema: u32,
    layers: Vec<CachedLayer>,
    steps: Vec<CachedStep>,
    images: Vec<CachedImage>,
}

#[derive(Debug, Serialize, Deserialize)]
struct CachedLayer {
    #[serde(rename = "diffID")]
    diff_id: Digest,
    /// The blob as the exporting machine stores it.
    blob: Descriptor,
}

#[derive(Debug, Serialize, Deserialize)]
struct CachedStep {
    key: String,
    /// Indexes into `layers`, bottom first.
    chain: Vec<usize>,
    layer: Option<usize>,
    created: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct CachedImage {
    key: String,
    created: String,
}

fn key_of(s: &str) -> Option<CacheKey> {
    CacheKey::from_hex(s.strip_prefix("sha256:")?)
}

fn tag_of(reference: &Reference) -> String {
    match (reference.digest(), reference.tag()) {
        (Some(d), _) => d.to_string(),
        (None, Some(t)) => t.to_string(),
        (None, None) => "latest".to_string(),
    }
}

/// What `--cache-from` brought: records for the solver, and where their
/// layers are for the worker.
#[derive(Default)]
pub struct Imported {
    pub cache: ImportedCache,
    pub layers: RemoteLayers,
}

/// Imports every `--cache-from`, each as a progress step. A source that
/// cannot be read is a warning (returned, and shown in its step).
pub async fn import(
    store: &Store,
    specs: &[CacheSpec],
    progress: &Progress,
) -> (Imported, Vec<String>) {
    let config = RemoteConfig::from_env();
    let mut imported = Imported::default();
    let mut warnings = Vec::new();
    for spec in specs {
        let v = progress.vertex();
        let name = spec.reference.to_string();
        progress.started(v, &format!("importing cache manifest from {name}"));
        match import_one(store, &config, spec, &mut imported).await {
            Ok(n) => progress.status(v, &format!("{n} cache records")),
            Err(e) => {
                let msg = format!(
                    "cache import from {name} failed: {}",
                    crate::report::one_line(&*e)
                );
                tracing::debug!(reference = %name, error = %msg, "cache import failed");
                progress.status(v, &format!("WARNING: {msg}"));
                warnings.push(msg);
            }
        }
        progress.completed(v);
    }
    (imported, warnings)
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

async fn import_one(
    store: &Store,
    config: &RemoteConfig,
    spec: &CacheSpec,
    into: &mut Imported,
) -> Result<usize, BoxError> {
    let repo = Arc::new(Repository::connect(config, &spec.reference, false).await?);
    let (bytes, _) = repo.fetch_manifest(&tag_of(&spec.reference)).await?;
    let manifest: ImageManifest = serde_json::from_slice(&bytes)?;
    if manifest.config().media_type().to_string() != CONFIG_MEDIA_TYPE {
        return Err(format!(
            "not a kiln build cache (config media type {})",
            manifest.config().media_type()
        )
        .into());
    }
    let info = repo.fetch_blob(store, manifest.config()).await?;
    let cache: CacheConfig = serde_json::from_slice(&store.read_blob(&info.digest)?)?;
    if cache.key_schema != SCHEMA_VERSION {
        return Err(format!(
            "made with cache key schema {} (this kiln uses {SCHEMA_VERSION})",
            cache.key_schema
        )
        .into());
    }
    if cache.layers.len() != manifest.layers().len() {
        return Err("its config and manifest list different layers".into());
    }
    let layers: Vec<Layer> = cache
        .layers
        .iter()
        .map(|l| Layer {
            diff_id: l.diff_id.clone(),
            blob: l.blob.clone(),
        })
        .collect();
    for (layer, remote) in layers.iter().zip(manifest.layers()) {
        into.layers.insert(layer, repo.clone(), remote.clone());
    }
    let pick = |i: usize| {
        layers
            .get(i)
            .cloned()
            .ok_or("a record names a missing layer")
    };
    let mut n = 0;
    for step in &cache.steps {
        let Some(key) = key_of(&step.key) else {
            continue;
        };
        let record = StateRecord {
            chain: step
                .chain
                .iter()
                .map(|i| pick(*i))
                .collect::<Result<_, _>>()?,
            layer: step.layer.map(pick).transpose()?,
            created: step.created.clone(),
        };
        into.cache.insert_state(key, record);
        n += 1;
    }
    for image in &cache.images {
        if let Some(key) = key_of(&image.key) {
            into.cache.insert_image(
                key,
                ImageTimeRecord {
                    created: image.created.clone(),
                },
            );
        }
    }
    Ok(n)
}

fn is_uncompressed(layer: &Layer) -> bool {
    layer.blob.digest() == &layer.diff_id
}

/// Exports the build's cache records to `spec`, as a progress step;
/// returns a warning when it failed and `ignore-error=true` said to go on.
/// `remote` knows the layers of imported records: one that is not local
/// but already in the target repository (`--cache-from X --cache-to X`)
/// is exported without being downloaded.
pub async fn export(
    store: &Store,
    spec: &CacheSpec,
    cache: &CacheExport,
    remote: Option<&RemoteLayers>,
    progress: &Progress,
) -> miette::Result<Option<String>> {
    let v = progress.vertex();
    let name = spec.reference.to_string();
    progress.started(v, &format!("exporting cache to {name}"));
    match export_one(store, spec, cache, remote, progress, v).await {
        Ok(()) => {
            progress.completed(v);
            Ok(None)
        }
        Err(e) if spec.ignore_error => {
            let cause: Vec<String> = e.chain().map(|c| c.to_string()).collect();
            let msg = format!(
                "cache export to {name} failed (ignore-error=true): {}",
                cause.join(": ")
            );
            progress.status(v, &format!("WARNING: {msg}"));
            progress.completed(v);
            Ok(Some(msg))
        }
        Err(e) => {
            progress.failed(v, &e.to_string());
            Err(e.wrap_err(format!("cannot export the build cache to {name}")))
        }
    }
}

async fn export_one(
    store: &Store,
    spec: &CacheSpec,
    cache: &CacheExport,
    remote: Option<&RemoteLayers>,
    progress: &Progress,
    v: kiln_solver::VertexId,
) -> miette::Result<()> {
    let target = (
        spec.reference.registry().to_string(),
        spec.reference.repository().to_string(),
    );
    let mut layers: Vec<CachedLayer> = Vec::new();
    let mut pushed_layers: Vec<Descriptor> = Vec::new();
    let mut seen: HashMap<(Digest, Digest), usize> = HashMap::new();
    let mut steps = Vec::new();
    'records: for s in cache.states.iter().filter(|s| spec.max || s.in_image) {
        let mut chain = Vec::with_capacity(s.record.chain.len());
        for l in &s.record.chain {
            let id = (l.diff_id.clone(), l.blob.digest().clone());
            if let Some(i) = seen.get(&id) {
                chain.push(*i);
                continue;
            }
            let already_there = match remote.and_then(|r| r.get(l)) {
                Some((repo, desc)) if repo.location() == target => Some(desc.clone()),
                _ => None,
            };
            let desc = if !store.has_blob(l.blob.digest()) {
                match already_there {
                    Some(desc) => desc,
                    None => continue 'records,
                }
            } else if let Some(desc) = already_there {
                desc
            } else if is_uncompressed(l) {
                progress.status(v, &format!("preparing layer {}", l.diff_id));
                let store = store.clone();
                let diff_id = l.diff_id.clone();
                tokio::task::spawn_blocking(move || {
                    store.compressed_layer(&diff_id, Compression::Gzip)
                })
                .await
                .into_diagnostic()?
                .into_diagnostic()
                .wrap_err("cannot compress a cached layer")?
            } else {
                l.blob.clone()
            };
            seen.insert(id, layers.len());
            chain.push(layers.len());
            layers.push(CachedLayer {
                diff_id: l.diff_id.clone(),
                blob: l.blob.clone(),
            });
            pushed_layers.push(desc);
        }
        let layer = s
            .record
            .layer
            .as_ref()
            .and_then(|l| seen.get(&(l.diff_id.clone(), l.blob.digest().clone())))
            .copied();
        steps.push(CachedStep {
            key: s.key.to_string(),
            chain,
            layer,
            created: s.record.created.clone(),
        });
    }
    let images = cache
        .image
        .iter()
        .map(|(k, r)| CachedImage {
            key: k.to_string(),
            created: r.created.clone(),
        })
        .collect();
    let config = CacheConfig {
        key_schema: SCHEMA_VERSION,
        layers,
        steps,
        images,
    };
    let bytes = kiln_registry::canonical_json(&config).into_diagnostic()?;
    let info = store.write_blob(&bytes).into_diagnostic()?;
    let config_desc = DescriptorBuilder::default()
        .media_type(MediaType::Other(CONFIG_MEDIA_TYPE.into()))
        .digest(info.digest)
        .size(info.size)
        .build()
        .into_diagnostic()?;
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .artifact_type(MediaType::Other(ARTIFACT_TYPE.into()))
        .config(config_desc)
        .layers(pushed_layers)
        .build()
        .into_diagnostic()?;
    let remote_config = RemoteConfig::from_env();
    let repo = Repository::connect(&remote_config, &spec.reference, true)
        .await
        .map_err(|e| miette!("{}", crate::report::one_line(&e)))?;
    let pushed = repo
        .push_manifest(store, &tag_of(&spec.reference), &manifest)
        .await
        .map_err(|e| miette!("{}", crate::report::one_line(&e)))?;
    progress.status(
        v,
        &format!(
            "writing cache manifest {} ({} records, {} layers pushed, {} already there)",
            pushed.digest,
            config.steps.len(),
            pushed.uploaded + pushed.mounted,
            pushed.skipped
        ),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs() {
        let s = parse_spec("localhost:5000/app:cache", false).unwrap();
        assert_eq!(s.reference.to_string(), "localhost:5000/app:cache");
        assert!(!s.max);
        let s = parse_spec("type=registry,ref=localhost:5000/app:cache,mode=max", true).unwrap();
        assert!(s.max);
        assert!(!s.ignore_error);
        let s = parse_spec(
            "type=registry,ref=r.example/a:c,ignore-error=true,oci-mediatypes=true",
            true,
        )
        .unwrap();
        assert!(s.ignore_error);
        assert!(parse_spec("type=local,src=/tmp/x", false).is_err());
        assert!(parse_spec("type=registry", false).is_err());
        assert!(parse_spec("type=registry,ref=a,mode=all", true).is_err());
        assert!(parse_spec("type=registry,ref=a,bogus=1", true).is_err());
        assert!(
            parse_spec(
                "ref=r.example/a@sha256:0000000000000000000000000000000000000000000000000000000000000000",
                true
            )
            .is_err()
        );
    }
}
