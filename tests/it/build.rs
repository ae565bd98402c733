//! `kiln build`: the build flow, the cache, parallel stages, concurrent
//! builds and failures, against the real binary and the offline busybox
//! base.

use std::path::Path;

use crate::require_root;
use crate::util::*;

/// The files of an image's root filesystem, exported with `-o type=local`.
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

/// `#N CACHED` lines and the step names they belong to.
fn cached_steps(progress: &str) -> Vec<String> {
    let lines: Vec<&str> = progress.lines().collect();
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if let Some(n) = l.strip_suffix(" CACHED")
            && let Some(name) = lines[..i]
                .iter()
                .rev()
                .find_map(|p| p.strip_prefix(&format!("{n} ")))
        {
            out.push(name.to_string());
        }
    }
    out
}

/// Steps that ran (`#N DONE` of a `[i/n]` step).
fn ran_steps(progress: &str) -> Vec<String> {
    let lines: Vec<&str> = progress.lines().collect();
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if let Some((n, _)) = l.split_once(" DONE ")
            && let Some(name) = lines[..i].iter().find_map(|p| {
                p.strip_prefix(&format!("{n} "))
                    .filter(|s| s.starts_with('[') && !s.starts_with("[internal]"))
            })
        {
            out.push(name.to_string());
        }
    }
    out
}

#[test]
fn run_steps_build_an_image_and_rebuild_from_cache() {
    require_root!();
    let root = TestRoot::with_busybox();
    let ctx = build_context(&[(
        "Dockerfile",
        "FROM busybox\nRUN echo hello > /hello\nRUN echo world >> /hello\nCMD [\"cat\", \"/hello\"]\n",
    )]);
    let first = root.build_ok(ctx.path(), ["-t", "example/hello"]);
    assert!(first.contains("[2/3] RUN echo hello > /hello"), "{first}");
    assert_eq!(ran_steps(&first).len(), 2, "{first}");
    let id = root.ok([
        "build",
        "-q",
        "-t",
        "example/hello",
        ctx.path().to_str().unwrap(),
    ]);
    let id = id.trim();
    assert!(id.starts_with("sha256:"), "{id}");
    let inspect: serde_json::Value =
        serde_json::from_str(&root.ok(["inspect", "example/hello"])).unwrap();
    assert_eq!(inspect[0]["Id"], id);
    assert_eq!(
        inspect[0]["Config"]["Cmd"],
        serde_json::json!(["cat", "/hello"])
    );

    // Everything cached, same image.
    let again = root.build_ok(ctx.path(), ["-t", "example/hello"]);
    assert!(ran_steps(&again).is_empty(), "{again}");
    let cached = cached_steps(&again);
    assert!(
        cached.iter().any(|s| s == "[2/3] RUN echo hello > /hello"),
        "{again}"
    );
    assert!(
        cached.iter().any(|s| s == "[3/3] RUN echo world >> /hello"),
        "{again}"
    );
    let out = export(&root, ctx.path(), &[]);
    assert_eq!(read(&out, "/hello"), "hello\nworld\n");

    // --no-cache runs every step again.
    let fresh = root.build_ok(ctx.path(), ["--no-cache"]);
    assert_eq!(ran_steps(&fresh).len(), 2, "{fresh}");
}

#[test]
fn a_build_arg_change_reruns_only_the_steps_that_see_it() {
    require_root!();
    let root = TestRoot::with_busybox();
    let ctx = build_context(&[(
        "Dockerfile",
        "FROM busybox\nRUN echo before > /before\nARG V=1\nRUN echo $V > /v\n",
    )]);
    root.build_ok(ctx.path(), ["--build-arg", "V=1"]);
    let second = root.build_ok(ctx.path(), ["--build-arg", "V=2"]);
    assert_eq!(
        ran_steps(&second),
        vec!["[3/3] RUN echo $V > /v"],
        "{second}"
    );
    assert!(
        cached_steps(&second).contains(&"[2/3] RUN echo before > /before".to_string()),
        "{second}"
    );
    let out = export(&root, ctx.path(), &["--build-arg", "V=2"]);
    assert_eq!(read(&out, "/v"), "2\n");
}

#[test]
fn a_failing_run_shows_its_output_line_and_exit_code() {
    require_root!();
    let root = TestRoot::with_busybox();
    let ctx = build_context(&[(
        "Dockerfile",
        "FROM busybox\nRUN echo fine\nRUN echo to-stdout; echo to-stderr >&2; exit 3\nRUN echo never\n",
    )]);
    let out = root.build(ctx.path(), ["--progress", "tty"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    // The whole output of the step, after the progress display.
    let report = err.split("------").nth(1).unwrap_or_default();
    assert!(report.contains("[3/4] RUN echo to-stdout"), "{err}");
    assert!(
        report.contains("to-stdout") && report.contains("to-stderr"),
        "{err}"
    );
    // The line, in a code frame, and the exit code.
    assert!(err.contains("Dockerfile:3:1"), "{err}");
    assert!(
        err.contains("RUN echo to-stdout; echo to-stderr >&2; exit 3"),
        "{err}"
    );
    assert!(err.contains("exit code: 3"), "{err}");
    assert!(!report.contains("never"), "{err}");
}

#[test]
fn an_unused_failing_stage_does_not_break_the_build() {
    require_root!();
    let root = TestRoot::with_busybox();
    let ctx = build_context(&[(
        "Dockerfile",
        "FROM busybox AS broken\nRUN exit 1\nFROM busybox\nRUN echo ok > /ok\n",
    )]);
    let progress = root.build_ok(ctx.path(), Vec::<&str>::new());
    assert!(!progress.contains("exit 1"), "{progress}");
    // Asking for the broken stage does fail.
    let out = root.build(ctx.path(), ["--target", "broken"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
}

#[test]
fn two_builds_of_one_context_at_once_both_succeed() {
    require_root!();
    let root = TestRoot::with_busybox();
    let ctx = build_context(&[(
        "Dockerfile",
        "FROM busybox\nRUN echo a > /a\nRUN sleep 0.3; echo b > /b\nCMD [\"cat\", \"/b\"]\n",
    )]);
    let spawn = |tag: &str| {
        root.kiln(["build", "--progress", "plain", "-t", tag])
            .arg(ctx.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let a = spawn("one");
    let b = spawn("two");
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        assert_success(&out);
    }
    let images = root.ok(["images"]);
    assert!(images.contains("one") && images.contains("two"), "{images}");
    // A third build finds everything cached.
    let again = root.build_ok(ctx.path(), ["-t", "three"]);
    assert!(ran_steps(&again).is_empty(), "{again}");
}

#[test]
fn dockerfile_from_stdin_and_iid_and_metadata_files() {
    require_root!();
    let root = TestRoot::with_busybox();
    let dir = tempfile::tempdir().unwrap();
    let iid = dir.path().join("iid");
    let meta = dir.path().join("meta.json");
    let mut child = root
        .kiln(["build", "--progress", "plain", "-t", "from-stdin"])
        .arg("--iidfile")
        .arg(&iid)
        .arg("--metadata-file")
        .arg(&meta)
        .arg("-")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"FROM busybox\nRUN echo x > /x\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_success(&out);
    let id = std::fs::read_to_string(&iid).unwrap();
    let inspect: serde_json::Value =
        serde_json::from_str(&root.ok(["inspect", "from-stdin"])).unwrap();
    assert_eq!(inspect[0]["Id"], id.as_str());
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta).unwrap()).unwrap();
    assert_eq!(m["containerimage.config.digest"], id.as_str());
    assert!(
        m["containerimage.digest"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    assert_eq!(m["image.name"], "docker.io/library/from-stdin:latest");
}

#[test]
fn usage_errors_exit_1_before_building() {
    let root = TestRoot::new();
    let ctx = build_context(&[("Dockerfile", "FROM busybox\n")]);
    for args in [
        vec!["--output", "type=bogus,dest=x"],
        vec!["--secret", "src=/nothing"],
        vec!["--network", "bridge"],
        vec!["--push"],
        vec!["--build-arg", "=x"],
    ] {
        let out = root.build(ctx.path(), &args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
    }
    // A Dockerfile error points at its line.
    let bad = build_context(&[("Dockerfile", "FROM busybox\nRUNN true\n")]);
    let out = root.build(bad.path(), Vec::<&str>::new());
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("Dockerfile:2:1"), "{}", stderr(&out));
}

/// The seed's image: FROM + COPY + RUN + CMD. Checked with independent
/// tools: exported as an OCI archive, unpacked by umoci, run by runc.
#[test]
fn the_seed_image_runs_under_runc() {
    require_root!();
    let root = TestRoot::with_busybox();
    let ctx = build_context(&[
        ("echo.sh", "#!/bin/sh\necho \"hello from echo: $*\"\n"),
        (
            "Dockerfile",
            "FROM busybox\nCOPY echo.sh /usr/local/bin/echo.sh\nRUN chmod +x /usr/local/bin/echo.sh\nEXPOSE 8080\nCMD [\"/usr/local/bin/echo.sh\", \"world\"]\n",
        ),
    ]);
    let work = tempfile::tempdir().unwrap();
    let tar = work.path().join("echo.tar");
    let dest = format!("type=oci,dest={}", tar.display());
    root.build_ok(ctx.path(), ["-t", "example/echo", "-o", &dest]);
    let layout = work.path().join("layout");
    std::fs::create_dir_all(&layout).unwrap();
    let ok = |cmd: &mut std::process::Command| {
        let out = cmd.output().expect("run tool");
        assert_success(&out);
        stdout(&out)
    };
    ok(std::process::Command::new("tar")
        .arg("-xf")
        .arg(&tar)
        .arg("-C")
        .arg(&layout));
    let bundle = work.path().join("bundle");
    ok(std::process::Command::new("umoci")
        .arg("unpack")
        .arg("--image")
        .arg(format!("{}:latest", layout.display()))
        .arg(&bundle));
    // umoci asks for a terminal; the test has none.
    let config = bundle.join("config.json");
    let mut spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&config).unwrap()).unwrap();
    spec["process"]["terminal"] = serde_json::Value::Bool(false);
    std::fs::write(&config, serde_json::to_vec(&spec).unwrap()).unwrap();
    let id = format!("kiln-seed-{}", std::process::id());
    let out = ok(std::process::Command::new("runc")
        .arg("run")
        .arg("--bundle")
        .arg(&bundle)
        .arg(&id)
        .stdin(std::process::Stdio::null()));
    assert_eq!(out.trim(), "hello from echo: world");
}

#[test]
fn the_cache_follows_content_not_mtimes() {
    require_root!();
    let root = TestRoot::with_busybox();
    let ctx = build_context(&[
        ("a.txt", "A\n"),
        ("src/b.txt", "B\n"),
        ("unused.txt", "U\n"),
        (
            "Dockerfile",
            "FROM busybox\nRUN echo first > /first\nCOPY a.txt /a.txt\nRUN cat /a.txt > /copy-of-a\nCOPY src/ /src/\nRUN ls /src > /listing\n",
        ),
    ]);
    root.build_ok(ctx.path(), Vec::<&str>::new());
    // touch (and a file nothing copies): everything stays cached
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(60);
    for f in ["a.txt", "src/b.txt"] {
        std::fs::File::options()
            .write(true)
            .open(ctx.path().join(f))
            .unwrap()
            .set_modified(later)
            .unwrap();
    }
    std::fs::write(ctx.path().join("unused.txt"), "changed\n").unwrap();
    let touched = root.build_ok(ctx.path(), Vec::<&str>::new());
    assert!(ran_steps(&touched).is_empty(), "{touched}");
    // content: from that COPY on, and nothing before it
    std::fs::write(ctx.path().join("src/b.txt"), "B2\n").unwrap();
    let changed = root.build_ok(ctx.path(), Vec::<&str>::new());
    assert_eq!(
        ran_steps(&changed),
        vec!["[5/6] COPY src/ /src/", "[6/6] RUN ls /src > /listing"],
        "{changed}"
    );
    std::fs::write(ctx.path().join("a.txt"), "A2\n").unwrap();
    let changed = root.build_ok(ctx.path(), Vec::<&str>::new());
    assert_eq!(
        ran_steps(&changed),
        vec![
            "[3/6] COPY a.txt /a.txt",
            "[4/6] RUN cat /a.txt > /copy-of-a",
            "[5/6] COPY src/ /src/",
            "[6/6] RUN ls /src > /listing"
        ],
        "{changed}"
    );
}

#[test]
fn independent_stages_run_at_the_same_time() {
    require_root!();
    let root = TestRoot::with_busybox();
    let ctx = build_context(&[(
        "Dockerfile",
        "FROM busybox AS a\nRUN sleep 1; echo a > /a\nFROM busybox AS b\nRUN sleep 1; echo b > /b\nFROM busybox\nCOPY --from=a /a /a\nCOPY --from=b /b /b\n",
    )]);
    let out = root.build(ctx.path(), ["--progress", "rawjson", "--jobs", "2"]);
    assert_success(&out);
    let events: Vec<serde_json::Value> = stderr(&out)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let span = |needle: &str| {
        let v = events
            .iter()
            .find(|e| e["event"] == "started" && e["name"].as_str().unwrap_or("").contains(needle))
            .unwrap_or_else(|| panic!("{needle} did not start: {events:?}"));
        let id = v["vertex"].clone();
        let start = v["time"].as_f64().unwrap();
        let end = events
            .iter()
            .find(|e| e["event"] == "completed" && e["vertex"] == id)
            .unwrap()["time"]
            .as_f64()
            .unwrap();
        (start, end)
    };
    let a = span("echo a > /a");
    let b = span("echo b > /b");
    assert!(
        a.0 < b.1 && b.0 < a.1,
        "stages did not overlap: a {a:?}, b {b:?}"
    );
}

/// FROM an image the root does not have pulls it; `--push` pushes the
/// result, which skopeo reads and a fresh root builds FROM.
#[test]
fn from_pulls_and_push_publishes() {
    require_root!();
    let reg = crate::test_registry::TestRegistry::start();
    let base = reg.image("base/busybox:1");
    let publisher = TestRoot::with_busybox();
    publisher.ok(["tag", "busybox", &base]);
    publisher.ok(["push", &base]);

    let root = TestRoot::new();
    let app = reg.image("app/echo:1");
    let ctx = build_context(&[(
        "Dockerfile",
        &format!("FROM {base}\nRUN echo pulled > /pulled\nCMD [\"cat\", \"/pulled\"]\n"),
    )]);
    let progress = root.build_ok(ctx.path(), ["-t", &app, "--push"]);
    assert!(progress.contains(&format!("pushing {app}")), "{progress}");
    assert!(root.ok(["images"]).contains("base/busybox"));
    let out = std::process::Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--config"])
        .arg(format!("docker://{app}"))
        .output()
        .unwrap();
    assert_success(&out);
    let config: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        config["config"]["Cmd"],
        serde_json::json!(["cat", "/pulled"])
    );

    // Another root builds FROM what was pushed.
    let other = TestRoot::new();
    let ctx2 = build_context(&[(
        "Dockerfile",
        &format!("FROM {app}\nRUN cat /pulled > /again\n"),
    )]);
    other.build_ok(ctx2.path(), Vec::<&str>::new());
    // A missing image is a clear error naming it.
    let missing = build_context(&[(
        "Dockerfile",
        &format!("FROM {}\n", reg.image("no/such:image")),
    )]);
    let out = other.build(missing.path(), Vec::<&str>::new());
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no/such"), "{}", stderr(&out));
}

/// Ctrl-C stops the running step, cleans up and exits 130.
#[test]
fn ctrl_c_stops_the_build_and_leaves_nothing() {
    require_root!();
    let root = TestRoot::with_busybox();
    let marker = format!("sleep 37.{}", std::process::id() % 1000);
    let ctx = build_context(&[(
        "Dockerfile",
        &format!("FROM busybox\nRUN echo started; {marker}\n"),
    )]);
    let child = root
        .kiln(["build", "--progress", "plain"])
        .arg(ctx.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the step runs.
    let running = |m: &str| {
        std::process::Command::new("pgrep")
            .args(["-f", m])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !running(&marker) {
        assert!(
            std::time::Instant::now() < deadline,
            "the step never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let started = std::time::Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    assert!(!running(&marker), "the step's process survived");
    let active = root.root_dir().join("snapshots/active");
    let left: Vec<_> = std::fs::read_dir(&active)
        .map(|d| d.flatten().collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "snapshots left: {left:?}");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(root.root_dir().to_str().unwrap()),
        "mounts left under the root"
    );
}

/// `kiln prune` keeps cached layers until it clears the build cache itself;
/// then a rebuild runs its steps again.
#[test]
fn prune_clears_the_build_cache() {
    require_root!();
    let root = TestRoot::with_busybox();
    let ctx = build_context(&[("Dockerfile", "FROM busybox\nRUN echo x > /x\n")]);
    root.build_ok(ctx.path(), Vec::<&str>::new());
    let roots = std::fs::read_to_string(root.root_dir().join("meta/roots/build-cache.json"))
        .expect("the build registered its layers as GC roots");
    assert!(roots.contains("sha256:"), "{roots}");
    let out = root.ok(["prune"]);
    assert!(out.contains("cache records"), "{out}");
    let again = root.build_ok(ctx.path(), Vec::<&str>::new());
    assert_eq!(ran_steps(&again), vec!["[2/2] RUN echo x > /x"], "{again}");
}
