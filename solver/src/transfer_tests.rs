//! Cache records carried from one machine to another: a build on a fresh
//! index with the first build's records imported runs nothing, fetches the
//! layers it needs, and writes the very same image.

use std::sync::Arc;

use kiln_parser::Dockerfile;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::{CacheExport, ImportedCache};
use crate::fake::{Call, FakeWorker};
use crate::index::CacheIndex;
use crate::lower::BuildOptions;
use crate::progress::Progress;
use crate::solve::{BuildOutput, build};

const DF: &str = "FROM base AS builder\nRUN echo built > /out\nFROM base\nCOPY app.txt /app.txt\nCOPY --from=builder /out /out\nRUN echo final > /f\n";

fn worker() -> Arc<FakeWorker> {
    let w = Arc::new(FakeWorker::new());
    w.add_image(
        "base",
        &[("/bin/sh", "sh")],
        json!({"architecture": std::env::consts::ARCH.replace("x86_64", "amd64").replace("aarch64", "arm64"),
               "os": "linux", "config": {"Cmd": ["sh"]}}),
    );
    w.set_context(&[("app.txt", "v1")]);
    w
}

async fn run(w: &Arc<FakeWorker>, dir: &std::path::Path, imported: ImportedCache) -> BuildOutput {
    let index = CacheIndex::open(dir).unwrap();
    let opts = BuildOptions {
        cache_from: Arc::new(imported),
        ..BuildOptions::default()
    };
    build(
        w.clone(),
        &index,
        &Dockerfile::parse(DF).unwrap(),
        &opts,
        &Progress::null(),
        &CancellationToken::new(),
    )
    .await
    .unwrap()
}

fn import(export: &CacheExport, max: bool) -> ImportedCache {
    let mut c = ImportedCache::default();
    for s in &export.states {
        if max || s.in_image {
            c.insert_state(s.key, s.record.clone());
        }
    }
    if let Some((k, r)) = &export.image {
        c.insert_image(*k, r.clone());
    }
    c
}

/// Pretends the built layers exist only on the first machine.
fn forget_built_layers(w: &FakeWorker, out: &BuildOutput) {
    let mut pruned = w.pruned.lock().unwrap();
    for l in &out.layers[1..] {
        pruned.push(l.diff_id.clone());
    }
}

#[tokio::test]
async fn imported_records_replace_running_and_give_the_same_image() {
    let w = worker();
    let a = tempfile::tempdir().unwrap();
    let first = run(&w, a.path(), ImportedCache::default()).await;
    assert_eq!(w.runs(), vec!["echo built > /out", "echo final > /f"]);
    // min mode leaves out the builder stage's RUN: its layer is not in the image.
    let min: Vec<bool> = first.cache.states.iter().map(|s| s.in_image).collect();
    assert_eq!(min.iter().filter(|b| !**b).count(), 1, "{min:?}");
    assert!(first.cache.image.is_some());

    // Another machine: an empty index, the built layers absent.
    forget_built_layers(&w, &first);
    w.calls.lock().unwrap().clear();
    let b = tempfile::tempdir().unwrap();
    let second = run(&w, b.path(), import(&first.cache, false)).await;
    assert!(w.runs().is_empty(), "{:?}", w.runs());
    assert!(w.file_ops().is_empty(), "{:?}", w.file_ops());
    let fetched: Vec<_> = w
        .calls()
        .into_iter()
        .filter_map(|c| match c {
            Call::FetchCached(d) => Some(d),
            _ => None,
        })
        .collect();
    assert_eq!(fetched.concat().len(), first.layers.len() - 1);
    assert_eq!(second.config_json, first.config_json);
    assert_eq!(second.image, first.image);

    // Adopted records are now local: a third build needs no import.
    w.calls.lock().unwrap().clear();
    let third = run(&w, b.path(), ImportedCache::default()).await;
    assert!(w.runs().is_empty());
    assert_eq!(third.image, first.image);
}

#[tokio::test]
async fn a_changed_file_reruns_from_its_copy_on() {
    let w = worker();
    let a = tempfile::tempdir().unwrap();
    let first = run(&w, a.path(), ImportedCache::default()).await;
    forget_built_layers(&w, &first);
    w.calls.lock().unwrap().clear();
    w.set_context(&[("app.txt", "v2")]);
    let b = tempfile::tempdir().unwrap();
    // Max mode: the builder stage is cached too, only the final stage reruns.
    let out = run(&w, b.path(), import(&first.cache, true)).await;
    assert_eq!(w.runs(), vec!["echo final > /f"]);
    assert_eq!(w.files(&out.layers)["/app.txt"], b"v2");
    assert_eq!(w.files(&out.layers)["/out"], w.files(&first.layers)["/out"]);
}
