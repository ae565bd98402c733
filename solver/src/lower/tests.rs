//! Whole builds through the fake worker: Dockerfile semantics as the graph,
//! the config and the history see them.

use std::sync::Arc;

use kiln_parser::Dockerfile;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::error::{LowerErrorKind, SolveError};
use crate::fake::{Call, FakeWorker};
use crate::index::CacheIndex;
use crate::lower::BuildOptions;
use crate::progress::{Progress, ProgressEvent, ProgressSink};
use crate::solve::{BuildOutput, build};
use crate::worker::ExitStatus;

struct T {
    worker: Arc<FakeWorker>,
    dir: tempfile::TempDir,
}

#[derive(Default)]
struct Events(std::sync::Mutex<Vec<ProgressEvent>>);
impl ProgressSink for Events {
    fn emit(&self, e: ProgressEvent) {
        self.0.lock().unwrap().push(e);
    }
}

impl T {
    fn new() -> T {
        let worker = Arc::new(FakeWorker::new());
        worker.add_image(
            "base",
            &[("/bin/sh", "sh"), ("/etc/passwd", "root:x:0:0::/root:/bin/sh")],
            json!({"architecture": std::env::consts::ARCH.replace("x86_64", "amd64").replace("aarch64", "arm64"),
                   "os": "linux",
                   "config": {"Env": ["PATH=/usr/bin:/bin", "BASE=1"], "Cmd": ["sh"]},
                   "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "base layer"}]}),
        );
        T {
            worker,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    async fn build_with(&self, df: &str, opts: BuildOptions) -> Result<BuildOutput, SolveError> {
        self.build_events(df, opts).await.0
    }

    async fn build_events(
        &self,
        df: &str,
        opts: BuildOptions,
    ) -> (Result<BuildOutput, SolveError>, Vec<ProgressEvent>) {
        let df = Dockerfile::parse(df).expect("test Dockerfiles parse");
        let index = CacheIndex::open(self.dir.path()).unwrap();
        let events = Arc::new(Events::default());
        let progress = Progress::new(events.clone());
        let r = build(
            self.worker.clone(),
            &index,
            &df,
            &opts,
            &progress,
            &CancellationToken::new(),
        )
        .await;
        let ev = events.0.lock().unwrap().clone();
        (r, ev)
    }

    async fn build(&self, df: &str) -> BuildOutput {
        self.build_with(df, BuildOptions::default()).await.unwrap()
    }

    fn clear(&self) {
        self.worker.calls.lock().unwrap().clear();
    }
}

fn config(out: &BuildOutput) -> Value {
    serde_json::from_slice(&out.config_json).unwrap()
}

fn created_by(out: &BuildOutput) -> Vec<(String, bool)> {
    config(out)["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["created_by"].as_str().unwrap_or_default().to_string(),
                h["empty_layer"].as_bool().unwrap_or(false),
            )
        })
        .collect()
}

fn args(a: BuildOptions, kv: &[(&str, &str)]) -> BuildOptions {
    let mut a = a;
    for (k, v) in kv {
        a.build_args.insert(k.to_string(), v.to_string());
    }
    a
}

const SEED: &str = "FROM base\nCOPY echo.sh /usr/local/bin/echo.sh\nRUN echo ok > /ran\nEXPOSE 8080\nCMD [\"/usr/local/bin/echo.sh\", \"world\"]\n";

#[tokio::test]
async fn the_seed_flow_makes_buildkits_config_and_history() {
    let t = T::new();
    t.worker.set_context(&[("echo.sh", "#!/bin/sh\necho hi\n")]);
    let out = t.build(SEED).await;
    let c = config(&out);
    assert_eq!(
        c["config"]["Cmd"],
        json!(["/usr/local/bin/echo.sh", "world"])
    );
    assert_eq!(c["config"]["ExposedPorts"], json!({"8080/tcp": {}}));
    assert_eq!(c["config"]["Env"], json!(["PATH=/usr/bin:/bin", "BASE=1"]));
    assert_eq!(c["config"]["ArgsEscaped"], json!(true));
    assert_eq!(out.layers.len(), 3);
    assert_eq!(c["rootfs"]["diff_ids"].as_array().unwrap().len(), 3);
    assert_eq!(
        created_by(&out),
        vec![
            ("base layer".to_string(), false),
            (
                "COPY echo.sh /usr/local/bin/echo.sh # buildkit".to_string(),
                false
            ),
            (
                "RUN /bin/sh -c echo ok > /ran # buildkit".to_string(),
                false
            ),
            ("EXPOSE [8080/tcp]".to_string(), true),
            (
                "CMD [\"/usr/local/bin/echo.sh\" \"world\"]".to_string(),
                true
            ),
        ]
    );
    let h = &c["history"][1];
    assert_eq!(h["comment"], "buildkit.dockerfile.v0");
    assert!(h["created"].as_str().unwrap().starts_with("20"));
    let files = t.worker.files(&out.layers);
    assert_eq!(files["/usr/local/bin/echo.sh"], b"#!/bin/sh\necho hi\n");
    assert_eq!(files["/ran"], b"ok");
}

#[tokio::test]
async fn a_rebuild_is_all_cached_and_gives_the_same_image() {
    let t = T::new();
    t.worker.set_context(&[("echo.sh", "x")]);
    let first = t.build(SEED).await;
    t.clear();
    let (second, events) = t.build_events(SEED, BuildOptions::default()).await;
    let second = second.unwrap();
    assert!(t.worker.runs().is_empty());
    assert!(t.worker.file_ops().is_empty());
    assert_eq!(second.image.config_digest, first.image.config_digest);
    assert_eq!(second.config_json, first.config_json);
    let cached: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            ProgressEvent::Cached { name, .. } => Some(name.clone()),
            _ => None,
        })
        .collect();
    assert!(
        cached
            .iter()
            .any(|n| n == "[2/3] COPY echo.sh /usr/local/bin/echo.sh"),
        "{cached:?}"
    );
    assert!(
        cached.iter().any(|n| n == "[3/3] RUN echo ok > /ran"),
        "{cached:?}"
    );
    assert!(
        cached
            .iter()
            .any(|n| n.starts_with("[1/3] FROM base@sha256:")),
        "{cached:?}"
    );

    // --no-cache runs everything again.
    t.clear();
    let opts = BuildOptions {
        no_cache: true,
        ..BuildOptions::default()
    };
    t.build_with(SEED, opts).await.unwrap();
    assert_eq!(t.worker.runs().len(), 1);
    assert_eq!(t.worker.file_ops().len(), 1);
}

#[tokio::test]
async fn a_content_change_reruns_from_that_copy_on_and_not_before() {
    let t = T::new();
    let df = "FROM base\nRUN echo 1 > /one\nCOPY a /a\nRUN echo 2 > /two\n";
    t.worker.set_context(&[("a", "A"), ("b", "B")]);
    t.build(df).await;
    // Another file of the context changes: nothing reruns.
    t.clear();
    t.worker.set_context(&[("a", "A"), ("b", "changed")]);
    t.build(df).await;
    assert!(t.worker.runs().is_empty());
    // The copied file changes: the COPY and what follows rerun.
    t.clear();
    t.worker.set_context(&[("a", "A2"), ("b", "changed")]);
    t.build(df).await;
    assert_eq!(t.worker.runs(), vec!["echo 2 > /two"]);
    assert_eq!(t.worker.file_ops().len(), 1);
}

#[tokio::test]
async fn a_build_arg_change_reruns_only_the_steps_that_see_it() {
    let t = T::new();
    let df = "FROM base AS other\nRUN echo other > /o\nFROM base\nRUN echo before > /b\nARG V=1\nRUN echo after > /a\nCOPY --from=other /o /o\n";
    t.build(df).await;
    t.clear();
    t.build_with(df, args(BuildOptions::default(), &[("V", "2")]))
        .await
        .unwrap();
    assert_eq!(t.worker.runs(), vec!["echo after > /a"]);
    let env = t
        .worker
        .calls()
        .into_iter()
        .find_map(|c| match c {
            Call::Exec { env, .. } => Some(env),
            _ => None,
        })
        .unwrap();
    assert!(env.contains(&"V=2".to_string()), "{env:?}");
}

#[tokio::test]
async fn arg_and_env_scoping() {
    let t = T::new();
    let df = "ARG G=global\nARG IMG=base\nFROM $IMG\nRUN echo [$G] > /g1\nARG G\nENV E=from-env-$G\nARG E=from-arg\nRUN echo $E > /e\n";
    let out = t.build(df).await;
    let execs: Vec<Vec<String>> = t
        .worker
        .calls()
        .into_iter()
        .filter_map(|c| match c {
            Call::Exec { env, .. } => Some(env),
            _ => None,
        })
        .collect();
    // The global ARG is invisible until re-declared.
    assert!(
        !execs[0].iter().any(|e| e.starts_with("G=")),
        "{:?}",
        execs[0]
    );
    assert!(execs[1].contains(&"G=global".to_string()));
    // ENV wins over an ARG of the same name.
    assert!(execs[1].contains(&"E=from-env-global".to_string()));
    assert!(!execs[1].contains(&"E=from-arg".to_string()));
    let c = config(&out);
    assert_eq!(
        c["config"]["Env"],
        json!(["PATH=/usr/bin:/bin", "BASE=1", "E=from-env-global"])
    );
    let h = created_by(&out);
    assert!(h.iter().any(|(c, _)| c == "ARG G=global"), "{h:?}");
    assert!(
        h.iter()
            .any(|(c, _)| c
                == "RUN |2 G=global E=from-env-global /bin/sh -c echo $E > /e # buildkit"),
        "{h:?}"
    );
}

#[tokio::test]
async fn user_workdir_and_shell_shape_later_steps() {
    let t = T::new();
    let df = "FROM base\nUSER app\nWORKDIR /work\nWORKDIR sub\nSHELL [\"/bin/bash\", \"-xc\"]\nRUN echo hi\nCMD echo cmd\n";
    let out = t.build(df).await;
    let exec = t
        .worker
        .calls()
        .into_iter()
        .find_map(|c| match c {
            Call::Exec {
                args, cwd, user, ..
            } => Some((args, cwd, user)),
            _ => None,
        })
        .unwrap();
    assert_eq!(exec.0, vec!["/bin/bash", "-xc", "echo hi"]);
    assert_eq!(exec.1, "/work/sub");
    assert_eq!(exec.2, "app");
    let mkdirs = t.worker.file_ops();
    assert!(
        mkdirs[0].contains("\"path\":\"/work\"") && mkdirs[0].contains("\"owner\":\"app\""),
        "{mkdirs:?}"
    );
    let c = config(&out);
    assert_eq!(c["config"]["WorkingDir"], "/work/sub");
    assert_eq!(c["config"]["User"], "app");
    assert_eq!(c["config"]["Shell"], json!(["/bin/bash", "-xc"]));
    assert_eq!(c["config"]["Cmd"], json!(["/bin/bash", "-xc", "echo cmd"]));
    let h = created_by(&out);
    assert!(h.contains(&("WORKDIR /work".to_string(), false)), "{h:?}");
    assert!(
        h.contains(&("SHELL [/bin/bash -xc]".to_string(), true)),
        "{h:?}"
    );
    assert!(h.contains(&("USER app".to_string(), true)), "{h:?}");
}

#[tokio::test]
async fn a_step_that_changes_nothing_has_an_empty_layer() {
    let t = T::new();
    let out = t.build("FROM base\nRUN true\nWORKDIR /\n").await;
    assert_eq!(out.layers.len(), 1);
    let h = created_by(&out);
    assert_eq!(h[1], ("RUN /bin/sh -c true # buildkit".to_string(), true));
    assert_eq!(h[2], ("WORKDIR /".to_string(), true));
}

#[tokio::test]
async fn only_the_target_and_what_it_needs_is_built() {
    let t = T::new();
    let df = "FROM base AS broken\nRUN exit 1\nFROM base AS dep\nRUN echo dep > /dep\nFROM base AS final\nCOPY --from=dep /dep /dep\nRUN echo final > /f\nFROM base AS last\nRUN echo last > /l\n";
    let out = t
        .build_with(
            df,
            BuildOptions {
                target: Some("final".into()),
                ..BuildOptions::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(t.worker.runs(), vec!["echo dep > /dep", "echo final > /f"]);
    let files = t.worker.files(&out.layers);
    assert_eq!(files["/dep"], b"dep");
    // Without --target the last stage is built, and the broken one never runs.
    t.clear();
    t.build(df).await;
    assert_eq!(t.worker.runs(), vec!["echo last > /l"]);
    // An unknown target is an error naming it.
    let err = t
        .build_with(
            df,
            BuildOptions {
                target: Some("nope".into()),
                ..BuildOptions::default()
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, SolveError::Lower(e) if matches!(&e.kind, LowerErrorKind::UnknownTarget(n) if n == "nope")),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_failing_run_reports_its_line_and_exit_code() {
    let t = T::new();
    let err = t
        .build_with(
            "FROM base\nRUN echo fine\nRUN exit 7\n",
            BuildOptions::default(),
        )
        .await
        .unwrap_err();
    let SolveError::Step(step) = err else {
        panic!("{err:?}")
    };
    assert_eq!(step.exit_status(), Some(ExitStatus::Code(7)));
    assert_eq!(step.location.unwrap().line, 3);
    assert_eq!(step.step, "[3/3] RUN exit 7");
}

#[tokio::test]
async fn shared_stages_run_once() {
    let t = T::new();
    let df = "FROM base AS a\nRUN echo shared > /s\nFROM base AS b\nRUN echo shared > /s\nFROM base\nCOPY --from=a /s /a\nCOPY --from=b /s /b\n";
    t.build(df).await;
    assert_eq!(t.worker.runs(), vec!["echo shared > /s"]);
}

#[tokio::test]
async fn onbuild_triggers_run_after_from() {
    let t = T::new();
    t.worker.add_image(
        "with-triggers",
        &[("/bin/sh", "sh")],
        json!({"architecture": "amd64", "os": "linux",
               "config": {"OnBuild": ["RUN echo triggered > /t"]}}),
    );
    let out = t.build("FROM with-triggers\nRUN echo own > /o\n").await;
    assert_eq!(
        t.worker.runs(),
        vec!["echo triggered > /t", "echo own > /o"]
    );
    assert!(config(&out)["config"].get("OnBuild").is_none());
    // A stage's own ONBUILD is recorded, and runs in a stage built FROM it.
    t.clear();
    let out = t
        .build("FROM base AS parent\nONBUILD RUN echo child > /c\nFROM parent\nRUN echo x > /x\n")
        .await;
    assert_eq!(t.worker.runs(), vec!["echo child > /c", "echo x > /x"]);
    assert!(config(&out)["config"].get("OnBuild").is_none());
    let out = t
        .build_with(
            "FROM base AS parent\nONBUILD RUN echo child > /c\n",
            BuildOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(
        config(&out)["config"]["OnBuild"],
        json!(["RUN echo child > /c"])
    );
}

#[tokio::test]
async fn config_instructions_match_docker() {
    let t = T::new();
    let df = r#"FROM base
LABEL a=1 "b c"=2
ENTRYPOINT ["/entry"]
EXPOSE 80/udp 8000-8001
VOLUME /data
STOPSIGNAL SIGINT
HEALTHCHECK --interval=30s --retries=3 CMD curl -f http://localhost/
MAINTAINER someone
"#;
    let mut opts = BuildOptions::default();
    opts.labels.insert("from-cli".into(), "yes".into());
    let out = t.build_with(df, opts).await.unwrap();
    let c = config(&out);
    let cfg = &c["config"];
    assert_eq!(
        cfg["Labels"],
        json!({"a": "1", "b c": "2", "from-cli": "yes"})
    );
    assert_eq!(cfg["Entrypoint"], json!(["/entry"]));
    // ENTRYPOINT resets the inherited CMD.
    assert!(cfg.get("Cmd").is_none(), "{cfg}");
    assert_eq!(
        cfg["ExposedPorts"],
        json!({"80/udp": {}, "8000/tcp": {}, "8001/tcp": {}})
    );
    assert_eq!(cfg["Volumes"], json!({"/data": {}}));
    assert_eq!(cfg["StopSignal"], "SIGINT");
    assert_eq!(
        cfg["Healthcheck"],
        json!({"Test": ["CMD-SHELL", "curl -f http://localhost/"], "Interval": 30_000_000_000u64, "Retries": 3})
    );
    assert_eq!(c["author"], "someone");
    let h: Vec<String> = created_by(&out).into_iter().map(|(c, _)| c).collect();
    assert!(h.contains(&"LABEL a=1 b c=2".to_string()), "{h:?}");
    assert!(h.contains(&"ENTRYPOINT [\"/entry\"]".to_string()), "{h:?}");
    assert!(
        h.contains(&"EXPOSE [80/udp 8000/tcp 8001/tcp]".to_string()),
        "{h:?}"
    );
    assert!(h.contains(&"VOLUME [/data]".to_string()), "{h:?}");
    assert!(h.contains(&"STOPSIGNAL SIGINT".to_string()), "{h:?}");
    assert!(
        h.contains(&"HEALTHCHECK {Test:[CMD-SHELL curl -f http://localhost/] Interval:30s Timeout:0s StartPeriod:0s StartInterval:0s Retries:3}".to_string()),
        "{h:?}"
    );
    assert!(h.contains(&"MAINTAINER someone".to_string()), "{h:?}");
}

#[tokio::test]
async fn scratch_stages_get_a_default_path() {
    let t = T::new();
    t.worker.set_context(&[("f", "x")]);
    let out = t.build("FROM scratch\nCOPY f /f\nCMD [\"/f\"]\n").await;
    let c = config(&out);
    assert_eq!(
        c["config"]["Env"],
        json!([format!("PATH={}", crate::image::DEFAULT_PATH)])
    );
    assert_eq!(c["config"]["WorkingDir"], "/");
    assert_eq!(out.layers.len(), 1);
}

#[tokio::test]
async fn secrets_and_proxies_stay_out_of_keys_and_history() {
    let t = T::new();
    let df = "FROM base\nRUN --mount=type=secret,id=tok,required cat /run/secrets/tok\n";
    // A required secret that was not given fails the step.
    let err = t.build_with(df, BuildOptions::default()).await.unwrap_err();
    assert!(err.to_string().contains("secret tok not found"), "{err}");
    t.worker
        .secrets
        .lock()
        .unwrap()
        .insert("tok".into(), b"one".to_vec());
    let opts = args(
        BuildOptions::default(),
        &[("http_proxy", "http://proxy:3128")],
    );
    let out = t.build_with(df, opts).await.unwrap();
    let (env, mounts) = t
        .worker
        .calls()
        .into_iter()
        .find_map(|c| match c {
            Call::Exec { env, mounts, .. } => Some((env, mounts)),
            _ => None,
        })
        .unwrap();
    assert!(env.contains(&"http_proxy=http://proxy:3128".to_string()));
    assert!(mounts[0].starts_with("/run/secrets/tok:"), "{mounts:?}");
    let h = created_by(&out);
    assert!(h.iter().all(|(c, _)| !c.contains("proxy")), "{h:?}");
    // Another secret value, another proxy: still cached.
    t.clear();
    t.worker
        .secrets
        .lock()
        .unwrap()
        .insert("tok".into(), b"two".to_vec());
    let opts = args(
        BuildOptions::default(),
        &[("http_proxy", "http://other:3128")],
    );
    t.build_with(df, opts).await.unwrap();
    assert!(t.worker.runs().is_empty());
}

#[tokio::test]
async fn run_heredocs() {
    let t = T::new();
    let df = "FROM base\nRUN <<EOF\necho one > /1\necho two > /2\nEOF\nRUN <<EOF\n#!/bin/sh\necho script\nEOF\n";
    t.build(df).await;
    let runs: Vec<(Vec<String>, Vec<String>)> = t
        .worker
        .calls()
        .into_iter()
        .filter_map(|c| match c {
            Call::Exec { args, mounts, .. } => Some((args, mounts)),
            _ => None,
        })
        .collect();
    assert_eq!(
        runs[0].0,
        vec!["/bin/sh", "-c", "echo one > /1\necho two > /2\n"]
    );
    assert_eq!(runs[1].0, vec!["/bin/sh", "-c", "/dev/pipes/EOF"]);
    assert!(runs[1].1[0].starts_with("/dev/pipes:"), "{:?}", runs[1].1);
}

#[tokio::test]
async fn foreign_platform_runs_are_refused() {
    let t = T::new();
    let other = if std::env::consts::ARCH == "x86_64" {
        "linux/arm64"
    } else {
        "linux/amd64"
    };
    t.worker.add_image(
        "foreign",
        &[("/bin/sh", "sh")],
        json!({"architecture": other.trim_start_matches("linux/"), "os": "linux"}),
    );
    let err = t
        .build_with(
            &format!("FROM --platform={other} foreign\nRUN true\n"),
            BuildOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, SolveError::Lower(e) if matches!(e.kind, LowerErrorKind::ForeignPlatform { .. })),
        "{err:?}"
    );
}

#[tokio::test]
async fn copy_from_a_later_stage_is_refused() {
    let t = T::new();
    let err = t
        .build_with(
            "FROM base AS a\nCOPY --from=b /x /x\nFROM base AS b\nRUN echo > /x\n",
            BuildOptions {
                target: Some("a".into()),
                ..BuildOptions::default()
            },
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("needs to be defined before"),
        "{err}"
    );
}

#[tokio::test]
async fn copy_link_chown_by_name_is_refused_at_its_line() {
    let t = T::new();
    t.worker.set_context(&[("f", "x")]);
    for chown in ["app", "app:app", "1000:app", "app:1000"] {
        let df = format!("FROM base\nCOPY --link --chown={chown} f /f\n");
        let err = t
            .build_with(&df, BuildOptions::default())
            .await
            .unwrap_err();
        let SolveError::Lower(e) = &err else {
            panic!("{err:?}")
        };
        assert!(
            matches!(&e.kind, LowerErrorKind::LinkChownByName { chown: c, .. } if c == chown),
            "{err:?}"
        );
        assert_eq!(e.location.map(|l| l.line), Some(2));
    }
    // Ids and root need no lookup; without --link (or with --chmod, which
    // turns --link off as in BuildKit) names resolve in the stage.
    for (flags, ok) in [
        ("--link --chown=1000:1000", true),
        ("--link --chown=root:root", true),
        ("--link --chown=0", true),
        ("--chown=root", true),
        ("--link --chmod=644 --chown=root", true),
    ] {
        let df = format!("FROM base\nCOPY {flags} f /f\n");
        assert_eq!(
            t.build_with(&df, BuildOptions::default()).await.is_ok(),
            ok,
            "{flags}"
        );
    }
}

#[tokio::test]
async fn ssh_mounts_get_buildkits_default_targets() {
    let t = T::new();
    let df = "FROM base\nWORKDIR /w\nRUN --mount=type=ssh --mount=type=ssh,id=gh,target=sock,mode=0666 --mount=type=ssh,required true\n";
    t.build(df).await;
    let mounts: Vec<String> = t
        .worker
        .calls()
        .into_iter()
        .find_map(|c| match c {
            Call::Exec { mounts, .. } => Some(mounts),
            _ => None,
        })
        .unwrap();
    assert_eq!(mounts.len(), 3, "{mounts:?}");
    assert!(
        mounts[0].starts_with(
            "/run/buildkit/ssh_agent.0:{\"ssh\":{\"id\":\"default\",\"required\":false"
        ),
        "{mounts:?}"
    );
    assert!(
        mounts[1].starts_with("/w/sock:{\"ssh\":{\"id\":\"gh\""),
        "{mounts:?}"
    );
    assert!(mounts[1].contains("\"mode\":438"), "{mounts:?}");
    assert!(
        mounts[2].starts_with(
            "/run/buildkit/ssh_agent.2:{\"ssh\":{\"id\":\"default\",\"required\":true"
        ),
        "{mounts:?}"
    );
}

#[tokio::test]
async fn a_stage_change_that_leaves_the_copied_files_alone_keeps_the_copy_and_what_follows() {
    let t = T::new();
    let df = |extra: &str| {
        format!(
            "FROM base AS builder\nRUN echo built > /out{extra}\nFROM base\nCOPY --from=builder /out /out\nRUN echo final > /f\n"
        )
    };
    let first = t.build(&df("")).await;
    assert_eq!(
        t.worker.runs(),
        vec!["echo built > /out", "echo final > /f"]
    );
    // The builder also writes something else: it runs, the copy's files are
    // the same, so the copy and the RUN after it are cached.
    t.clear();
    let second = t.build(&df("; echo other > /other")).await;
    assert_eq!(
        t.worker.runs(),
        vec!["echo built > /out; echo other > /other"]
    );
    assert!(t.worker.file_ops().is_empty(), "{:?}", t.worker.file_ops());
    assert_eq!(second.layers, first.layers);
    // The copied file changes: the copy and the RUN run.
    t.clear();
    t.build(&df("; echo changed > /out")).await;
    assert_eq!(
        t.worker.runs(),
        vec!["echo built > /out; echo changed > /out", "echo final > /f"]
    );
    assert_eq!(t.worker.file_ops().len(), 1);
}
