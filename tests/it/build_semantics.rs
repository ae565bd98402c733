//! Dockerfile semantics that belong to the solver, end to end: ARG/ENV
//! scoping through stages, USER/WORKDIR/SHELL effects on later steps,
//! ONBUILD triggers, the image config and history as docker writes them,
//! `--target`, and outputs.

use std::path::Path;

use serde_json::{Value, json};

use crate::require_root;
use crate::util::*;

fn export(root: &TestRoot, ctx: &Path, args: &[&str]) -> tempfile::TempDir {
    let out = tempfile::tempdir().unwrap();
    let dest = format!("type=local,dest={}", out.path().display());
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["-o", &dest]);
    root.build_ok(ctx, &all);
    out
}

fn read(dir: &tempfile::TempDir, path: &str) -> String {
    std::fs::read_to_string(dir.path().join(path.trim_start_matches('/')))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn inspect(root: &TestRoot, name: &str) -> Value {
    let v: Value = serde_json::from_str(&root.ok(["inspect", name])).unwrap();
    v[0].clone()
}

#[test]
fn arg_and_env_scoping_through_stages() {
    require_root!();
    let root = TestRoot::with_busybox();
    let ctx = build_context(&[(
        "Dockerfile",
        r#"ARG BASE=busybox
ARG GLOBAL=global-value
FROM $BASE AS first
RUN echo "[$GLOBAL]" > /global-unseen
ARG GLOBAL
RUN echo "[$GLOBAL]" > /global-seen
ENV WHO=env-$GLOBAL
ARG WHO=arg
RUN echo "$WHO" > /who
ARG FROM_CLI
RUN echo "$FROM_CLI" > /cli
FROM first
RUN echo "$WHO $GLOBAL" > /inherited
"#,
    )]);
    let out = export(
        &root,
        ctx.path(),
        &["--build-arg", "FROM_CLI=cli", "-t", "scoped"],
    );
    assert_eq!(read(&out, "/global-unseen"), "[]\n");
    assert_eq!(read(&out, "/global-seen"), "[global-value]\n");
    // ENV wins over an ARG of the same name.
    assert_eq!(read(&out, "/who"), "env-global-value\n");
    assert_eq!(read(&out, "/cli"), "cli\n");
    // FROM a stage continues its scope.
    assert_eq!(read(&out, "/inherited"), "env-global-value global-value\n");
    // ARGs reach RUN but not the image; ENV does.
    let env = inspect(&root, "scoped")["Config"]["Env"].clone();
    assert!(
        env.as_array()
            .unwrap()
            .contains(&json!("WHO=env-global-value")),
        "{env}"
    );
    assert!(!env.to_string().contains("FROM_CLI"), "{env}");
}

#[test]
fn user_workdir_and_shell_shape_later_steps() {
    require_root!();
    let root = TestRoot::with_busybox();
    let ctx = build_context(&[(
        "Dockerfile",
        r#"FROM busybox
USER app
WORKDIR /work
RUN id -u > uid && pwd > pwd
WORKDIR sub
RUN pwd > /work/sub-pwd
USER root
SHELL ["/bin/sh", "-c", "echo shell-was-used > /shell; eval \"$1\"", "sh"]
RUN echo ran > /ran
CMD echo hi
"#,
    )]);
    let out = export(&root, ctx.path(), &["-t", "shaped"]);
    assert_eq!(read(&out, "/work/uid"), "1000\n");
    assert_eq!(read(&out, "/work/pwd"), "/work\n");
    assert_eq!(read(&out, "/work/sub-pwd"), "/work/sub\n");
    assert_eq!(read(&out, "/shell"), "shell-was-used\n");
    assert_eq!(read(&out, "/ran"), "ran\n");
    // WORKDIR created the directory owned by the USER of that moment.
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(out.path().join("work")).unwrap();
    assert_eq!(meta.uid(), 1000);
    let c = inspect(&root, "shaped");
    assert_eq!(c["Config"]["WorkingDir"], "/work/sub");
    assert_eq!(c["Config"]["User"], "root");
    assert_eq!(
        c["Config"]["Cmd"],
        json!([
            "/bin/sh",
            "-c",
            "echo shell-was-used > /shell; eval \"$1\"",
            "sh",
            "echo hi"
        ])
    );
}

#[test]
fn onbuild_triggers_run_in_builds_from_the_image() {
    require_root!();
    let root = TestRoot::with_busybox();
    let base = build_context(&[(
        "Dockerfile",
        "FROM busybox\nONBUILD RUN echo triggered > /triggered\nRUN echo base > /base\n",
    )]);
    root.build_ok(base.path(), ["-t", "with-trigger"]);
    let c = inspect(&root, "with-trigger");
    assert_eq!(
        c["Config"]["OnBuild"],
        json!(["RUN echo triggered > /triggered"])
    );
    let child = build_context(&[(
        "Dockerfile",
        "FROM with-trigger\nRUN cat /triggered > /seen\n",
    )]);
    let progress = root.build_ok(child.path(), ["-t", "child"]);
    assert!(
        progress.contains("ONBUILD RUN echo triggered > /triggered"),
        "{progress}"
    );
    let out = export(&root, child.path(), &[]);
    assert_eq!(read(&out, "/seen"), "triggered\n");
    // Triggers do not carry over to the child's own config.
    assert!(inspect(&root, "child")["Config"]["OnBuild"].is_null());
}

#[test]
fn config_and_history_are_dockers() {
    require_root!();
    let root = TestRoot::with_busybox();
    let ctx = build_context(&[(
        "Dockerfile",
        r#"FROM busybox
LABEL org.example.name="kiln test" version=1
ENV A=1 B="two words"
ARG V=3
RUN echo $V > /v
RUN true
EXPOSE 8080 53/udp
VOLUME /data
STOPSIGNAL SIGINT
HEALTHCHECK --interval=30s CMD wget -q -O- http://localhost:8080/ || exit 1
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["echo hi"]
"#,
    )]);
    root.build_ok(ctx.path(), ["-t", "configured", "--label", "from.cli=yes"]);
    let c = inspect(&root, "configured");
    let cfg = &c["Config"];
    assert_eq!(cfg["Labels"]["org.example.name"], "kiln test");
    assert_eq!(cfg["Labels"]["version"], "1");
    assert_eq!(cfg["Labels"]["from.cli"], "yes");
    let env: Vec<String> = serde_json::from_value(cfg["Env"].clone()).unwrap();
    assert!(env.contains(&"A=1".to_string()) && env.contains(&"B=two words".to_string()));
    assert_eq!(cfg["ExposedPorts"], json!({"53/udp": {}, "8080/tcp": {}}));
    assert_eq!(cfg["Volumes"], json!({"/data": {}}));
    assert_eq!(cfg["StopSignal"], "SIGINT");
    assert_eq!(cfg["Entrypoint"], json!(["/bin/sh", "-c"]));
    assert_eq!(cfg["Cmd"], json!(["echo hi"]));
    assert_eq!(
        cfg["Healthcheck"]["Test"],
        json!(["CMD-SHELL", "wget -q -O- http://localhost:8080/ || exit 1"])
    );
    // History: one entry per instruction, BuildKit's created_by, empty
    // layers marked (RUN true changed nothing).
    let out = root.ok(["history", "--no-trunc", "--format", "json", "configured"]);
    let hist: Vec<Value> = out
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let by: Vec<String> = hist
        .iter()
        .map(|h| h["CreatedBy"].as_str().unwrap_or_default().to_string())
        .collect();
    for expected in [
        "LABEL org.example.name=kiln test version=1",
        "ENV A=1 B=two words",
        "ARG V=3",
        "RUN |1 V=3 /bin/sh -c echo $V > /v # buildkit",
        "RUN |1 V=3 /bin/sh -c true # buildkit",
        "EXPOSE [8080/tcp 53/udp]",
        "VOLUME [/data]",
        "STOPSIGNAL SIGINT",
        "ENTRYPOINT [\"/bin/sh\" \"-c\"]",
        "CMD [\"echo hi\"]",
    ] {
        assert!(
            by.iter().any(|b| b == expected),
            "{expected:?} not in {by:#?}"
        );
    }
    // The image has the base layer plus the one RUN that changed something.
    assert_eq!(c["RootFS"]["Layers"].as_array().unwrap().len(), 2);
}

#[test]
fn target_builds_only_the_stage_it_names() {
    require_root!();
    let root = TestRoot::with_busybox();
    let ctx = build_context(&[(
        "Dockerfile",
        "FROM busybox AS one\nRUN echo one > /one\nFROM busybox AS two\nRUN echo two > /two\nFROM two\nRUN echo three > /three\n",
    )]);
    let progress = root.build_ok(ctx.path(), ["--target", "two", "-t", "t"]);
    assert!(progress.contains("RUN echo two"), "{progress}");
    assert!(!progress.contains("RUN echo one"), "{progress}");
    assert!(!progress.contains("RUN echo three"), "{progress}");
    let out = root.build(ctx.path(), ["--target", "four"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("target stage \"four\" could not be found"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn local_output_is_the_root_filesystem() {
    require_root!();
    let root = TestRoot::with_busybox();
    let ctx = build_context(&[(
        "Dockerfile",
        "FROM busybox\nRUN mkdir -p /out/sub && echo data > /out/sub/file && rm /bin/vi\n",
    )]);
    let out = export(&root, ctx.path(), &[]);
    assert_eq!(read(&out, "/out/sub/file"), "data\n");
    assert!(out.path().join("bin/busybox").is_file());
    // What a later layer deleted is not there.
    assert!(!out.path().join("bin/vi").exists());
}

#[test]
fn later_steps_see_earlier_deletions() {
    require_root!();
    let root = TestRoot::with_busybox();
    let ctx = build_context(&[(
        "Dockerfile",
        "FROM busybox\nRUN rm /bin/vi && mkdir -p /d/sub && echo f > /d/sub/f\nRUN test ! -e /bin/vi && rm -r /d && mkdir /d && echo g > /d/g\nRUN test ! -e /bin/vi && test ! -e /d/sub && cat /d/g > /seen\n",
    )]);
    let out = export(&root, ctx.path(), &[]);
    assert_eq!(read(&out, "/seen"), "g\n");
    assert!(!out.path().join("d/sub").exists());
    // A rebuild of the last step alone (the others cached) sees the same.
    let out2 = export(&root, ctx.path(), &["--no-cache"]);
    assert_eq!(read(&out2, "/seen"), "g\n");
}

#[test]
fn run_mounts_and_network_reach_the_step_and_stay_out_of_the_image() {
    require_root!();
    let root = TestRoot::with_busybox();
    let ctx = build_context(&[
        ("data/in.txt", "from-context\n"),
        (
            "Dockerfile",
            r#"FROM busybox
RUN --mount=type=secret,id=tok wc -c < /run/secrets/tok > /secret-len
RUN --mount=type=secret,id=tok,env=TOKEN echo ${#TOKEN} > /env-len
RUN --mount=type=cache,target=/cache echo run >> /cache/runs && wc -l < /cache/runs > /cache-count
RUN --mount=type=bind,source=data,target=/data cat /data/in.txt > /bound
RUN --mount=type=tmpfs,target=/scratch echo x > /scratch/x && test -f /scratch/x
RUN --network=none sh -c 'grep -c : /proc/net/dev' > /ifaces-none
"#,
        ),
    ]);
    let secret = ctx.path().join("secret.txt");
    std::fs::write(&secret, "s3cret-xyzzy").unwrap();
    let spec = format!("id=tok,src={}", secret.display());
    let out = export(&root, ctx.path(), &["--secret", &spec, "-t", "mounted"]);
    assert_eq!(read(&out, "/secret-len").trim(), "12");
    assert_eq!(read(&out, "/env-len").trim(), "12");
    assert_eq!(read(&out, "/cache-count").trim(), "1");
    assert_eq!(read(&out, "/bound"), "from-context\n");
    // Only `lo` without a network.
    assert_eq!(read(&out, "/ifaces-none").trim(), "1");
    // Nothing of the mounts is in the image.
    assert!(!out.path().join("run/secrets/tok").exists());
    assert!(!out.path().join("cache").join("runs").exists());
    assert!(!out.path().join("scratch/x").exists());
    // The history never shows the secret.
    let hist = root.ok(["history", "--no-trunc", "mounted"]);
    assert!(!hist.contains("xyzzy"), "{hist}");
    let inspect = root.ok(["inspect", "mounted"]);
    assert!(!inspect.contains("xyzzy"), "{inspect}");

    // Another secret value, same cache: nothing runs again; the cache
    // mount persists between builds when its step does run.
    std::fs::write(&secret, "other-value!").unwrap();
    let again = root.build_ok(ctx.path(), ["--secret", &spec]);
    let cached = again.matches(" CACHED").count();
    assert_eq!(cached, 7, "{again}");
    let out = export(&root, ctx.path(), &["--secret", &spec, "--no-cache"]);
    assert_eq!(read(&out, "/cache-count").trim(), "2");
    // A missing required secret fails the step with a clear message.
    let req = build_context(&[(
        "Dockerfile",
        "FROM busybox\nRUN --mount=type=secret,id=nope,required=true true\n",
    )]);
    let failed = root.build(req.path(), Vec::<&str>::new());
    assert_eq!(failed.status.code(), Some(1));
    assert!(
        stderr(&failed).contains("nope not found"),
        "{}",
        stderr(&failed)
    );
}

#[test]
fn platform_sets_the_image_platform_and_refuses_foreign_runs() {
    require_root!();
    let root = TestRoot::with_busybox();
    let other = if std::env::consts::ARCH == "x86_64" {
        "linux/arm64"
    } else {
        "linux/amd64"
    };
    let ctx = build_context(&[
        ("f", "data\n"),
        ("Dockerfile", "FROM scratch\nCOPY f /f\nCMD [\"/f\"]\n"),
    ]);
    root.build_ok(ctx.path(), ["--platform", other, "-t", "foreign"]);
    let c = inspect(&root, "foreign");
    assert_eq!(c["Architecture"], other.trim_start_matches("linux/"));
    assert_eq!(c["Os"], "linux");
    // A RUN step would need an emulator: a clear error instead.
    let run = build_context(&[
        ("f", "data\n"),
        ("Dockerfile", "FROM scratch\nCOPY f /f\nRUN /f\n"),
    ]);
    let out = root.build(run.path(), ["--platform", other]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("cross-platform RUN"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("Dockerfile:3"), "{}", stderr(&out));
}
