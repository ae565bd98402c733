//! After the solver: tag the image, export it (`-o`), push it, and write
//! `--iidfile` / `--metadata-file`.

use std::path::Path;
use std::sync::Arc;

use kiln_registry::{Reference, Store};
use kiln_solver::{BuildOutput, Progress, SolveError};
use miette::{IntoDiagnostic, WrapErr};

use super::options::OutputSpec;
use crate::worker::KilnWorker;

/// Why a build did not produce what was asked.
pub enum Failure {
    /// The build itself failed.
    Solve(SolveError),
    /// Tagging, exporting or pushing failed.
    Export(miette::Report),
}

impl From<miette::Report> for Failure {
    fn from(e: miette::Report) -> Self {
        Failure::Export(e)
    }
}

/// Tags, exports and pushes the built image, each as a progress step.
pub async fn finish(
    store: &Store,
    _worker: &Arc<KilnWorker>,
    out: &BuildOutput,
    tags: &[Reference],
    outputs: &[OutputSpec],
    push: bool,
    progress: &Progress,
) -> Result<(), Failure> {
    for o in outputs {
        let v = progress.vertex();
        match o {
            OutputSpec::Local(dir) => {
                progress.started(v, &format!("exporting to directory {}", dir.display()));
                let store = store.clone();
                let dir = dir.clone();
                let layers = out.layers.clone();
                tokio::task::spawn_blocking(move || export_local(&store, &layers, &dir))
                    .await
                    .into_diagnostic()??;
            }
            OutputSpec::Oci(dest) | OutputSpec::Docker(dest) => {
                let kind = if matches!(o, OutputSpec::Oci(_)) {
                    "oci"
                } else {
                    "docker"
                };
                progress.started(v, &format!("exporting to {kind} image format"));
                let store = store.clone();
                let dest = dest.clone();
                let target = out.image.manifest_digest.to_string();
                let names = tags.to_vec();
                let r = tokio::task::spawn_blocking(move || {
                    export_archive(&store, &target, names, &dest)
                })
                .await
                .into_diagnostic()?;
                if let Err(e) = r {
                    progress.failed(v, &e.to_string());
                    return Err(e.into());
                }
            }
        }
        progress.completed(v);
    }
    if push {
        let config = kiln_registry::remote::RemoteConfig::from_env();
        for t in tags {
            let v = progress.vertex();
            progress.started(v, &format!("pushing {t}"));
            let ctx = kiln_solver::OpContext::new(
                progress.clone(),
                v,
                tokio_util::sync::CancellationToken::new(),
            );
            let reporter = crate::worker::transfer::StatusReporter::new(ctx);
            match kiln_registry::remote::push(store, &config, t, &reporter).await {
                Ok(pushed) => {
                    progress.status(v, &format!("pushed {t}@{}", pushed.digest));
                    progress.completed(v);
                }
                Err(e) => {
                    progress.failed(v, &e.to_string());
                    return Err(miette::Report::from_err(e)
                        .wrap_err(format!("cannot push {t}"))
                        .into());
                }
            }
        }
    }
    Ok(())
}

/// Writes the image as one tar that is both an OCI layout and a docker
/// archive (the store's `save` format), to `dest` (`-`: stdout), atomically.
fn export_archive(
    store: &Store,
    target: &str,
    names: Vec<Reference>,
    dest: &Path,
) -> miette::Result<()> {
    use std::io::{BufWriter, Write};
    let image = store
        .find_image(target)
        .into_diagnostic()
        .wrap_err("cannot read the built image")?;
    let items = [kiln_registry::SaveItem { image, names }];
    let werr = |what: &str| format!("cannot write the image archive {what}");
    if dest.as_os_str() == "-" {
        let stdout = std::io::stdout();
        let out = store
            .save(
                &items,
                kiln_registry::Compression::Gzip,
                BufWriter::with_capacity(1 << 20, stdout.lock()),
            )
            .into_diagnostic()
            .wrap_err_with(|| werr("to standard output"))?;
        let mut out = out;
        out.flush()
            .into_diagnostic()
            .wrap_err_with(|| werr("to standard output"))?;
        return Ok(());
    }
    let dir = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = tempfile::NamedTempFile::new_in(dir)
        .into_diagnostic()
        .wrap_err_with(|| werr(&dest.display().to_string()))?;
    let file = tmp
        .reopen()
        .into_diagnostic()
        .wrap_err_with(|| werr(&dest.display().to_string()))?;
    let out = store
        .save(
            &items,
            kiln_registry::Compression::Gzip,
            BufWriter::with_capacity(1 << 20, file),
        )
        .into_diagnostic()
        .wrap_err_with(|| werr(&dest.display().to_string()))?;
    let file = out
        .into_inner()
        .map_err(|e| e.into_error())
        .into_diagnostic()
        .wrap_err_with(|| werr(&dest.display().to_string()))?;
    file.sync_all()
        .into_diagnostic()
        .wrap_err_with(|| werr(&dest.display().to_string()))?;
    tmp.persist(dest)
        .map_err(|e| e.error)
        .into_diagnostic()
        .wrap_err_with(|| werr(&dest.display().to_string()))?;
    Ok(())
}

/// Writes the image's root filesystem into `dir` (created when missing).
fn export_local(store: &Store, layers: &[kiln_solver::Layer], dir: &Path) -> miette::Result<()> {
    std::fs::create_dir_all(dir)
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot create {}", dir.display()))?;
    for l in layers {
        let layer = kiln_registry::Layer {
            descriptor: l.blob.clone(),
            diff_id: l.diff_id.clone(),
        };
        store
            .apply_layer(&layer, dir)
            .into_diagnostic()
            .wrap_err_with(|| format!("cannot export the image to {}", dir.display()))?;
    }
    Ok(())
}

/// `--metadata-file`: BuildKit's keys.
pub fn metadata(out: &BuildOutput, tags: &[Reference]) -> String {
    let mut m = serde_json::Map::new();
    m.insert(
        "containerimage.config.digest".into(),
        out.image.config_digest.to_string().into(),
    );
    m.insert(
        "containerimage.digest".into(),
        out.image.manifest_digest.to_string().into(),
    );
    m.insert(
        "containerimage.descriptor".into(),
        serde_json::to_value(&out.image.manifest).unwrap_or_default(),
    );
    if !tags.is_empty() {
        m.insert(
            "image.name".into(),
            tags.iter()
                .map(|t| t.to_string())
                .collect::<Vec<_>>()
                .join(",")
                .into(),
        );
    }
    serde_json::to_string_pretty(&serde_json::Value::Object(m)).unwrap_or_default()
}

/// Writes `bytes` to `path` atomically (temp file beside it + rename).
pub fn write_file(path: &Path, bytes: &[u8]) -> miette::Result<()> {
    use std::io::Write;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot write {}", path.display()))?;
    tmp.write_all(bytes)
        .and_then(|_| tmp.as_file().sync_all())
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot write {}", path.display()))?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
