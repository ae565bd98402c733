//! `kiln build --cache-to` / `--cache-from` against a real registry: the
//! cache one root exports lets a fresh root (a CI runner) skip every step
//! and write the very same image; a changed file re-runs from its COPY on;
//! a missing or unreachable cache is a warning, an export failure an error
//! unless `ignore-error=true`.

use std::path::Path;

use crate::require_root;
use crate::test_registry::TestRegistry;
use crate::util::*;

const DOCKERFILE: &str = "FROM busybox AS builder\n\
RUN echo $((6*7))-builder-ran && echo built > /built\n\
FROM busybox\n\
COPY app.txt /app.txt\n\
COPY --from=builder /built /built\n\
RUN echo $((6*8))-final-ran && cat /app.txt /built > /out\n\
CMD [\"cat\", \"/out\"]\n";

/// Whether a RUN step ran (its output, not its command, shows the sums).
fn ran(out: &str) -> bool {
    out.contains("42-builder-ran") || out.contains("48-final-ran")
}

/// The image id and manifest digest a build wrote (`--metadata-file`).
fn build_with(root: &TestRoot, ctx: &Path, args: &[&str]) -> (String, String, String) {
    let meta = root.path().join("meta.json");
    let mut all = vec!["--metadata-file", meta.to_str().unwrap()];
    all.extend_from_slice(args);
    let err = root.build_ok(ctx, &all);
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta).unwrap()).unwrap();
    (
        m["containerimage.config.digest"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        m["containerimage.digest"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        err,
    )
}

#[test]
fn a_fresh_root_reuses_the_exported_cache_and_makes_the_same_image() {
    require_root!();
    let reg = TestRegistry::start();
    let cache_ref = reg.image("kiln/app:buildcache");
    let ctx = build_context(&[("Dockerfile", DOCKERFILE), ("app.txt", "v1\n")]);

    let a = TestRoot::with_busybox();
    let to = format!("type=registry,ref={cache_ref},mode=max");
    let (id_a, manifest_a, out_a) = build_with(&a, ctx.path(), &["--cache-to", &to]);
    assert!(out_a.contains("42-builder-ran"), "{out_a}");
    assert!(out_a.contains("48-final-ran"), "{out_a}");
    assert!(out_a.contains("exporting cache to"), "{out_a}");
    assert!(id_a.starts_with("sha256:"), "{id_a}");

    // A CI runner: a fresh root with only the base image, and a fresh
    // checkout of the context elsewhere (other paths, inodes and mtimes).
    let ctx = build_context(&[("Dockerfile", DOCKERFILE), ("app.txt", "v1\n")]);
    let b = TestRoot::with_busybox();
    // As CI does, it imports and exports the same ref: records it only
    // found in the imported cache (the builder stage, never fetched here)
    // must survive the round trip.
    let (id_b, manifest_b, out_b) = build_with(
        &b,
        ctx.path(),
        &["--cache-from", &cache_ref, "--cache-to", &to],
    );
    assert!(!ran(&out_b), "no step may run:\n{out_b}");
    let records = |out: &str| {
        out.lines()
            .find_map(|l| {
                l.split(" (")
                    .nth(1)?
                    .split(" records")
                    .next()?
                    .parse::<u32>()
                    .ok()
            })
            .unwrap_or_else(|| panic!("no export line in {out}"))
    };
    assert_eq!(records(&out_b), records(&out_a), "{out_b}");
    let cached = out_b.lines().filter(|l| l.ends_with(" CACHED")).count();
    assert!(cached >= 4, "every step is CACHED:\n{out_b}");
    assert_eq!(id_b, id_a, "the same image config");
    assert_eq!(manifest_b, manifest_a, "the same manifest");
    // The image is whole: it saves (every blob is local).
    let tar = b.path().join("out.tar");
    b.ok(["save", "-o", tar.to_str().unwrap(), &id_b]);
    // The imported records are local now: no --cache-from needed.
    let (id_b2, _, out_b2) = build_with(&b, ctx.path(), &[]);
    assert!(!ran(&out_b2), "{out_b2}");
    assert_eq!(id_b2, id_a);

    // A changed file re-runs from its COPY on; the builder stage stays
    // cached (its record came back from B's export).
    std::fs::write(ctx.path().join("app.txt"), "v2\n").unwrap();
    let c = TestRoot::with_busybox();
    let (id_c, _, out_c) = build_with(&c, ctx.path(), &["--cache-from", &cache_ref]);
    assert!(!out_c.contains("42-builder-ran"), "{out_c}");
    assert!(out_c.contains("48-final-ran"), "{out_c}");
    assert_ne!(id_c, id_a);
}

#[test]
fn min_mode_leaves_out_stages_the_image_only_reads() {
    require_root!();
    let reg = TestRegistry::start();
    let cache_ref = reg.image("kiln/app:min");
    let ctx = build_context(&[("Dockerfile", DOCKERFILE), ("app.txt", "v1\n")]);
    let a = TestRoot::with_busybox();
    a.build_ok(ctx.path(), ["--cache-to", &cache_ref]);
    // Same context: the image's own steps hit, nothing runs.
    let b = TestRoot::with_busybox();
    let out = b.build_ok(ctx.path(), ["--cache-from", &cache_ref]);
    assert!(!ran(&out), "{out}");
    // Changed file: the final RUN runs, and so does the builder (min mode
    // did not export it).
    std::fs::write(ctx.path().join("app.txt"), "v2\n").unwrap();
    let c = TestRoot::with_busybox();
    let out = c.build_ok(
        ctx.path(),
        ["--cache-from", &format!("type=registry,ref={cache_ref}")],
    );
    assert!(out.contains("42-builder-ran"), "{out}");
    assert!(out.contains("48-final-ran"), "{out}");
}

#[test]
fn missing_or_unreachable_caches_are_warnings_and_failed_exports_errors() {
    require_root!();
    let reg = TestRegistry::start();
    let ctx = build_context(&[("Dockerfile", "FROM busybox\nRUN echo hi > /hi\n")]);
    let root = TestRoot::with_busybox();
    let missing = reg.image("kiln/none:cache");
    let out = root.build(
        ctx.path(),
        [
            "--cache-from",
            &missing,
            "--cache-from",
            "127.0.0.1:1/kiln/x:y",
        ],
    );
    assert_success(&out);
    let err = stderr(&out);
    assert!(
        err.contains(&format!("WARNING: cache import from {missing} failed")),
        "{err}"
    );
    assert!(err.contains("127.0.0.1:1/kiln/x:y failed"), "{err}");

    let out = root.build(ctx.path(), ["--cache-to", "127.0.0.1:1/kiln/x:y"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let out = root.build(
        ctx.path(),
        [
            "--cache-to",
            "type=registry,ref=127.0.0.1:1/kiln/x:y,ignore-error=true",
        ],
    );
    assert_success(&out);
    assert!(
        stderr(&out).contains("WARNING: cache export"),
        "{}",
        stderr(&out)
    );
    // Not a registry cache type kiln knows: a usage error before anything runs.
    let out = root.build(ctx.path(), ["--cache-to", "type=gha"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("type=gha is not supported"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_cache_behind_basic_auth_uses_the_docker_config() {
    use base64::Engine as _;
    require_root!();
    let reg = TestRegistry::start_with_htpasswd("ci", "cache-pw");
    let cfg = crate::test_registry::DockerConfigDir::new();
    let auth = base64::engine::general_purpose::STANDARD.encode("ci:cache-pw");
    std::fs::write(
        cfg.config_json(),
        format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, reg.addr),
    )
    .unwrap();
    let cache_ref = reg.image("kiln/private:cache");
    let ctx = build_context(&[(
        "Dockerfile",
        "FROM busybox\nRUN echo $((2*21))-auth-ran && echo x > /x\n",
    )]);
    let build = |root: &TestRoot, flag: &str, with_auth: bool| {
        let mut cmd = root.kiln(["build", "--progress", "plain", flag, &cache_ref]);
        cmd.arg(ctx.path());
        let empty = crate::test_registry::DockerConfigDir::new();
        cmd.env(
            "DOCKER_CONFIG",
            if with_auth { cfg.path() } else { empty.path() },
        );
        let out = cmd.output().unwrap();
        assert_success(&out);
        stderr(&out)
    };
    let a = TestRoot::with_busybox();
    let out = build(&a, "--cache-to", true);
    assert!(out.contains("42-auth-ran"), "{out}");
    let b = TestRoot::with_busybox();
    let out = build(&b, "--cache-from", true);
    assert!(
        !out.contains("42-auth-ran"),
        "cached with credentials: {out}"
    );
    // Without credentials the cache cannot be read: a warning, and the step runs.
    let c = TestRoot::with_busybox();
    let out = build(&c, "--cache-from", false);
    assert!(out.contains("42-auth-ran"), "{out}");
    assert!(out.contains("WARNING: cache import from"), "{out}");
}
