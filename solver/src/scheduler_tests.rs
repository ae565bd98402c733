//! Scheduler tests on hand-built graphs with the fake worker.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use petgraph::graph::NodeIndex;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::fake::{Call, FakeWorker};
use crate::worker::{CopyAction, ExitStatus, NetworkMode, ResolvedImage, Security};

struct Fixture {
    worker: Arc<FakeWorker>,
    index_dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let worker = Arc::new(FakeWorker::new());
        worker.add_image(
            "base",
            &[("/bin/sh", "sh")],
            serde_json::json!({"architecture": "amd64", "os": "linux"}),
        );
        Fixture {
            worker,
            index_dir: tempfile::tempdir().unwrap(),
        }
    }

    fn image(&self) -> ResolvedImage {
        self.worker.images.lock().unwrap()["base"].0.clone()
    }

    async fn solve(
        &self,
        graph: BuildGraph,
        demands: &[NodeIndex],
        opts: SchedulerOptions,
        cancel: CancellationToken,
    ) -> Result<Vec<Arc<StateRecord>>, SolveError> {
        let index = CacheIndex::open(self.index_dir.path()).unwrap();
        let s = Scheduler::new(
            self.worker.clone(),
            Arc::new(graph),
            index,
            Progress::null(),
            cancel,
            opts,
        );
        s.run(demands).await
    }
}

fn opts(jobs: usize) -> SchedulerOptions {
    SchedulerOptions {
        jobs,
        no_cache: false,
        now: "2024-01-01T00:00:00Z".into(),
        imported: Default::default(),
    }
}

fn run(script: &str) -> Op {
    Op::Exec {
        root: Some(0),
        spec: ExecSpec {
            args: vec!["/bin/sh".into(), "-c".into(), script.into()],
            env: vec!["PATH=/bin".into()],
            cwd: "/".into(),
            user: String::new(),
            network: NetworkMode::Default,
            security: Security::Sandbox,
            mounts: vec![],
            secret_env: vec![],
        },
        proxy_env: vec![],
    }
}

fn copy(src: &str, dest: &str) -> Op {
    Op::File {
        root: Some(0),
        actions: vec![FileAction::Copy(CopyAction {
            from: SourceRef::Context,
            sources: vec![src.into()],
            dest: dest.into(),
            chown: None,
            chmod: None,
            link: false,
            parents: false,
            excludes: vec![],
            unpack: false,
            keep_git_dir: false,
            apply_dockerignore: true,
        })],
    }
}

/// FROM base; COPY a.txt /a.txt; RUN echo x > /x; RUN echo y > /y
fn chain(f: &Fixture) -> (BuildGraph, NodeIndex) {
    let p = Progress::null();
    let mut g = BuildGraph::new();
    let from = g.add(
        Op::Image(f.image()),
        vec![],
        "FROM base".into(),
        None,
        p.vertex(),
    );
    let c = g.add(
        copy("a.txt", "/a.txt"),
        vec![from],
        "COPY".into(),
        None,
        p.vertex(),
    );
    let r1 = g.add(
        run("echo x > /x"),
        vec![c],
        "RUN x".into(),
        None,
        p.vertex(),
    );
    let r2 = g.add(
        run("echo y > /y"),
        vec![r1],
        "RUN y".into(),
        None,
        p.vertex(),
    );
    (g, r2)
}

#[tokio::test]
async fn a_second_build_is_all_cached() {
    let f = Fixture::new();
    f.worker.set_context(&[("a.txt", "A")]);
    let (g, t) = chain(&f);
    let first = f
        .solve(g, &[t], opts(2), CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(f.worker.runs(), vec!["echo x > /x", "echo y > /y"]);
    assert_eq!(first[0].chain.len(), 4);
    let files = f.worker.files(&first[0].chain);
    assert_eq!(files["/a.txt"], b"A");
    assert_eq!(files["/y"], b"y");

    f.worker.calls.lock().unwrap().clear();
    let (g, t) = chain(&f);
    let second = f
        .solve(g, &[t], opts(2), CancellationToken::new())
        .await
        .unwrap();
    assert!(f.worker.runs().is_empty(), "{:?}", f.worker.calls());
    assert!(f.worker.file_ops().is_empty());
    assert_eq!(second[0].chain, first[0].chain);
}

#[tokio::test]
async fn a_content_change_reruns_from_that_copy_on() {
    let f = Fixture::new();
    f.worker.set_context(&[("a.txt", "A")]);
    let (g, t) = chain(&f);
    f.solve(g, &[t], opts(2), CancellationToken::new())
        .await
        .unwrap();
    f.worker.calls.lock().unwrap().clear();
    f.worker.set_context(&[("a.txt", "B")]);
    let (g, t) = chain(&f);
    let out = f
        .solve(g, &[t], opts(2), CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(f.worker.runs(), vec!["echo x > /x", "echo y > /y"]);
    assert_eq!(f.worker.file_ops().len(), 1);
    assert_eq!(f.worker.files(&out[0].chain)["/a.txt"], b"B");
    // Nothing before the COPY was fetched again.
    assert!(!f.worker.calls().iter().any(|c| matches!(c, Call::Fetch(_))));
}

#[tokio::test]
async fn no_cache_reruns_everything_and_pruned_layers_miss() {
    let f = Fixture::new();
    f.worker.set_context(&[("a.txt", "A")]);
    let (g, t) = chain(&f);
    let first = f
        .solve(g, &[t], opts(2), CancellationToken::new())
        .await
        .unwrap();
    f.worker.calls.lock().unwrap().clear();
    let (g, t) = chain(&f);
    let mut o = opts(2);
    o.no_cache = true;
    f.solve(g, &[t], o, CancellationToken::new()).await.unwrap();
    assert_eq!(f.worker.runs().len(), 2);

    // The last RUN's layer disappears from the store: that step runs again.
    f.worker.calls.lock().unwrap().clear();
    let last = first[0].layer.clone().unwrap();
    f.worker.pruned.lock().unwrap().push(last.diff_id);
    let (g, t) = chain(&f);
    f.solve(g, &[t], opts(2), CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(f.worker.runs(), vec!["echo y > /y"]);
}

#[tokio::test]
async fn shared_vertices_run_once_and_independent_ones_overlap() {
    let f = Fixture::new();
    let p = Progress::null();
    let mut g = BuildGraph::new();
    let from = g.add(
        Op::Image(f.image()),
        vec![],
        "FROM".into(),
        None,
        p.vertex(),
    );
    let a = g.add(
        run("sleep 300; echo a > /a"),
        vec![from],
        "a".into(),
        None,
        p.vertex(),
    );
    let a2 = g.add(
        run("sleep 300; echo a > /a"),
        vec![from],
        "a again".into(),
        None,
        p.vertex(),
    );
    assert_eq!(a, a2);
    let b = g.add(
        run("sleep 300; echo b > /b"),
        vec![from],
        "b".into(),
        None,
        p.vertex(),
    );
    let out = f
        .solve(g, &[a, b, a2], opts(2), CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(out.len(), 3);
    assert_eq!(f.worker.runs().len(), 2);
    assert_eq!(f.worker.max_running.load(Ordering::SeqCst), 2);
    let spans: Vec<_> = f
        .worker
        .calls()
        .into_iter()
        .filter_map(|c| match c {
            Call::Exec {
                started, finished, ..
            } => Some((started, finished)),
            _ => None,
        })
        .collect();
    assert!(
        spans[0].0 < spans[1].1 && spans[1].0 < spans[0].1,
        "steps did not overlap"
    );
}

#[tokio::test]
async fn jobs_bounds_parallelism() {
    let f = Fixture::new();
    let p = Progress::null();
    let mut g = BuildGraph::new();
    let from = g.add(
        Op::Image(f.image()),
        vec![],
        "FROM".into(),
        None,
        p.vertex(),
    );
    let demands: Vec<_> = (0..4)
        .map(|i| {
            g.add(
                run(&format!("sleep 50; echo {i} > /{i}")),
                vec![from],
                format!("r{i}"),
                None,
                p.vertex(),
            )
        })
        .collect();
    f.solve(g, &demands, opts(1), CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(f.worker.max_running.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_failure_reports_the_exit_code_and_cancels_the_rest() {
    let f = Fixture::new();
    let p = Progress::null();
    let mut g = BuildGraph::new();
    let from = g.add(
        Op::Image(f.image()),
        vec![],
        "FROM".into(),
        None,
        p.vertex(),
    );
    let slow = g.add(
        run("sleep 5000; echo a > /a"),
        vec![from],
        "slow".into(),
        None,
        p.vertex(),
    );
    let bad = g.add(
        run("sleep 50; exit 3"),
        vec![from],
        "[2/2] RUN bad".into(),
        Some(crate::graph::Location {
            offset: 5,
            len: 10,
            line: 2,
            col: 1,
        }),
        p.vertex(),
    );
    let started = std::time::Instant::now();
    let err = f
        .solve(g, &[slow, bad], opts(2), CancellationToken::new())
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "the slow step was not cancelled"
    );
    let SolveError::Step(step) = err else {
        panic!("{err:?}")
    };
    assert_eq!(step.exit_status(), Some(ExitStatus::Code(3)));
    assert_eq!(step.step, "[2/2] RUN bad");
    assert_eq!(step.location.unwrap().line, 2);
    assert_eq!(
        step.to_string(),
        "process \"/bin/sh -c sleep 50; exit 3\" did not complete successfully: exit code: 3"
    );
}

#[tokio::test]
async fn cancelling_stops_the_build() {
    let f = Fixture::new();
    let p = Progress::null();
    let mut g = BuildGraph::new();
    let from = g.add(
        Op::Image(f.image()),
        vec![],
        "FROM".into(),
        None,
        p.vertex(),
    );
    let slow = g.add(
        run("sleep 5000"),
        vec![from],
        "slow".into(),
        None,
        p.vertex(),
    );
    let cancel = CancellationToken::new();
    let c2 = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        c2.cancel();
    });
    let err = f.solve(g, &[slow], opts(2), cancel).await.unwrap_err();
    assert!(matches!(err, SolveError::Cancelled), "{err:?}");
}

#[tokio::test]
async fn an_unchanged_run_with_no_changes_adds_no_layer() {
    let f = Fixture::new();
    let p = Progress::null();
    let mut g = BuildGraph::new();
    let from = g.add(
        Op::Image(f.image()),
        vec![],
        "FROM".into(),
        None,
        p.vertex(),
    );
    let noop = g.add(run("true"), vec![from], "noop".into(), None, p.vertex());
    let out = f
        .solve(g, &[noop], opts(2), CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(out[0].layer, None);
    assert_eq!(out[0].chain.len(), 1);
}
