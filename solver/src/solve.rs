//! `build`: a whole build — lower the Dockerfile, schedule the graph,
//! assemble the image config and history, write the image.
//!
//! The image's creation time is remembered in the cache index under a key
//! of everything else in the image, so a fully cached rebuild writes the
//! very same config and gets the very same image id (docker's classic
//! builder behaves so too). `SOURCE_DATE_EPOCH` (build arg) pins it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use kiln_parser::Dockerfile;
use oci_spec::image::{History, RootFs};
use petgraph::graph::NodeIndex;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::cachekey;
use crate::error::SolveError;
use crate::image::{ImageConfig, history_entry};
use crate::index::{CacheIndex, ImageTimeRecord, StateRecord};
use crate::lower::state::{PendingHistory, StageState};
use crate::lower::{BuildOptions, lower};
use crate::progress::Progress;
use crate::scheduler::{Scheduler, SchedulerOptions};
use crate::transfer::{CacheExport, ExportedState};
use crate::worker::{ImageRecord, Layer, Worker};

/// The result of a build.
#[derive(Debug, Clone)]
pub struct BuildOutput {
    /// The image config as written (canonical JSON).
    pub config_json: Vec<u8>,
    pub config: ImageConfig,
    /// The image's layers, bottom first.
    pub layers: Vec<Layer>,
    /// The image in the store.
    pub image: ImageRecord,
    /// The cache records the build used or made (for `--cache-to`).
    pub cache: CacheExport,
}

/// RFC 3339 with nanoseconds, as docker writes `created`.
fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_nanos(t).to_string()
}

/// Builds the Dockerfile with `worker`: the target stage's image, written
/// to the store. Cancelling `cancel` stops running steps and returns
/// [`SolveError::Cancelled`] once they are cleaned up.
pub async fn build<W: Worker>(
    worker: Arc<W>,
    index: &CacheIndex,
    dockerfile: &Dockerfile,
    opts: &BuildOptions,
    progress: &Progress,
    cancel: &CancellationToken,
) -> Result<BuildOutput, SolveError> {
    let lowered = lower(&*worker, dockerfile, opts, progress, cancel).await?;
    let target = lowered.target;
    let graph = Arc::new(lowered.graph);

    let mut demands: Vec<NodeIndex> = Vec::new();
    demands.extend(target.vertex);
    for h in &target.history {
        if let PendingHistory::Step { layer: Some(n), .. } = h
            && !demands.contains(n)
        {
            demands.push(*n);
        }
    }
    let epoch = opts
        .build_args
        .get("SOURCE_DATE_EPOCH")
        .and_then(|v| v.parse::<u64>().ok())
        .map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s));
    let now = rfc3339(epoch.unwrap_or_else(SystemTime::now));
    let jobs = if opts.jobs == 0 {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    } else {
        opts.jobs
    };
    let scheduler = Scheduler::new(
        worker.clone(),
        graph,
        index.clone(),
        progress.clone(),
        cancel.child_token(),
        SchedulerOptions {
            jobs,
            no_cache: opts.no_cache,
            now: now.clone(),
            imported: opts.cache_from.clone(),
        },
    );
    let records = scheduler.run(&demands).await?;
    let results: HashMap<NodeIndex, Arc<StateRecord>> =
        demands.iter().copied().zip(records).collect();
    let chain: Vec<Layer> = target
        .vertex
        .map(|v| results[&v].chain.clone())
        .unwrap_or_default();

    // The creation time: remembered for an identical image, else now.
    let draft = assemble(&target, &results, &chain, "");
    let mut image_time = None;
    let created = match epoch {
        Some(t) => rfc3339(t),
        None => {
            let key = image_time_key(&draft.to_json());
            let known = if opts.no_cache {
                None
            } else {
                index
                    .get::<ImageTimeRecord>(&key)
                    .or_else(|| opts.cache_from.image(&key).cloned())
            };
            let record = match known {
                Some(r) => r,
                None => ImageTimeRecord {
                    created: now.clone(),
                },
            };
            if index.get::<ImageTimeRecord>(&key).as_ref() != Some(&record) {
                index.put(&key, &record)?;
            }
            let created = record.created.clone();
            image_time = Some((key, record));
            created
        }
    };
    let cache = CacheExport {
        states: scheduler
            .records()
            .into_iter()
            .map(|(key, rec)| ExportedState {
                key,
                in_image: chain.starts_with(&rec.chain),
                record: (*rec).clone(),
            })
            .collect(),
        image: image_time,
    };
    let config = assemble(&target, &results, &chain, &created);
    let config_json = config.to_json();

    let v = progress.vertex();
    progress.started(v, "exporting to image");
    let ctx = crate::progress::OpContext::new(progress.clone(), v, cancel.clone());
    let image = match worker.write_image(&config_json, &chain, &ctx).await {
        Ok(img) => img,
        Err(e) => {
            progress.failed(v, &e.to_string());
            return Err(SolveError::WriteImage(e));
        }
    };
    progress.completed(v);
    Ok(BuildOutput {
        config_json,
        config,
        layers: chain,
        image,
        cache,
    })
}

#[derive(Serialize)]
struct ImageTimeKey<'a> {
    config: &'a str,
}

fn image_time_key(draft_json: &[u8]) -> cachekey::CacheKey {
    let config = String::from_utf8_lossy(draft_json);
    cachekey::compute("image-config", &ImageTimeKey { config: &config }, &[], &[])
}

/// The final config: the target stage's config with its rootfs and
/// history; new history entries get `created`.
fn assemble(
    target: &StageState,
    results: &HashMap<NodeIndex, Arc<StateRecord>>,
    chain: &[Layer],
    created: &str,
) -> ImageConfig {
    let mut history: Vec<History> = target
        .history
        .iter()
        .map(|h| match h {
            PendingHistory::Base(h) => h.clone(),
            PendingHistory::Step { created_by, layer } => {
                let empty = match layer {
                    None => true,
                    Some(n) => results.get(n).is_none_or(|r| r.layer.is_none()),
                };
                history_entry(created_by, created, empty)
            }
        })
        .collect();
    normalize_history(&mut history, chain.len());
    let mut config = target.image.clone();
    let mut rootfs = RootFs::default();
    rootfs.set_diff_ids(chain.iter().map(|l| l.diff_id.to_string()).collect());
    config.oci.set_rootfs(rootfs);
    config.oci.set_history(Some(history));
    config
        .oci
        .set_created((!created.is_empty()).then(|| created.to_string()));
    config
}

/// Makes the history's non-empty entries match the layers, as BuildKit's
/// exporter does: surplus entries become empty from the bottom, missing
/// ones are added.
fn normalize_history(history: &mut Vec<History>, layers: usize) {
    let non_empty = history
        .iter()
        .filter(|h| !h.empty_layer().unwrap_or(false))
        .count();
    if non_empty > layers {
        let mut seen = 0;
        for h in history.iter_mut() {
            if h.empty_layer().unwrap_or(false) {
                continue;
            }
            if seen >= layers {
                h.set_empty_layer(Some(true));
            } else {
                seen += 1;
            }
        }
    } else {
        for _ in non_empty..layers {
            history.push(history_entry("created by kiln", "", false));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_is_normalized_to_the_layers() {
        let mut h = vec![
            history_entry("a", "", false),
            history_entry("b", "", true),
            history_entry("c", "", false),
        ];
        normalize_history(&mut h, 1);
        assert_eq!(h[2].empty_layer(), Some(true));
        assert_eq!(h[0].empty_layer(), None);
        let mut h = vec![history_entry("a", "", false)];
        normalize_history(&mut h, 3);
        assert_eq!(h.len(), 3);
    }
}
