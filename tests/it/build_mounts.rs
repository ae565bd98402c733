//! RUN --mount and RUN --network through `kiln build`, checked inside the
//! built image and in what `kiln save` writes: cache mounts (kept between
//! builds, per id, `sharing=locked` serialising two builds), secrets (from a
//! file or the environment, at /run/secrets/<id> or in a variable, never in
//! a layer, the history or a cache key), bind mounts (context, stage,
//! read-only unless `rw`, writes discarded), tmpfs, and the network modes.

use std::path::Path;

use crate::build_check::*;
use crate::file_server::{FileServer, sha256_hex};
use crate::require_root;
use crate::util::*;

#[test]
fn cache_mounts_persist_between_builds_per_id() {
    require_root!();
    let root = TestRoot::with_busybox();
    let ctx = build_context(&[(
        "Dockerfile",
        "FROM busybox\n\
         ARG N\n\
         RUN --mount=type=cache,target=/cache echo \"default $N\" >> /cache/log && cp /cache/log /seen-default\n\
         RUN --mount=type=cache,id=other,target=/cache echo \"other $N\" >> /cache/log && cp /cache/log /seen-other\n\
         RUN --mount=type=cache,id=/cache,target=/elsewhere cp /elsewhere/log /seen-by-id\n\
         ENV OWNED=/owned-cache\n\
         RUN --mount=type=cache,target=$OWNED,uid=1001,gid=1002,mode=0751 stat -c '%u %g %a' $OWNED > /owned\n",
    )]);
    root.build_ok(ctx.path(), ["--build-arg", "N=1"]);
    root.build_ok(ctx.path(), ["-t", "cached", "--build-arg", "N=2"]);
    assert_eq!(
        sh(
            &root,
            "cached",
            "cat /seen-default; echo; cat /seen-other; echo; cat /seen-by-id /owned; \
             [ -e /cache/log ] && echo in-the-image; true"
        ),
        // The default id is the target; the mount's files never reach the
        // image.
        "default 1\ndefault 2\n\nother 1\nother 2\n\ndefault 1\ndefault 2\n1001 1002 751\n"
    );
}

/// Two builds at once on one root, each holding the same `locked` cache
/// for a while: the second waits for the first, so their writes never
/// interleave.
#[test]
fn a_locked_cache_mount_serialises_builds() {
    require_root!();
    let root = TestRoot::with_busybox();
    let ctx = build_context(&[(
        "Dockerfile",
        "FROM busybox\n\
         ARG N\n\
         RUN --mount=type=cache,id=lk,target=/c,sharing=locked \
         echo start-$N >> /c/log; sleep 0.5; echo end-$N >> /c/log\n",
    )]);
    let spawn = |n: &str| {
        root.kiln(["build", "--progress", "plain", "--build-arg"])
            .arg(format!("N={n}"))
            .arg(ctx.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn("a"), spawn("b"));
    for child in [a, b] {
        assert_success(&child.wait_with_output().unwrap());
    }
    let reader = build_context(&[(
        "Dockerfile",
        "FROM busybox\nRUN --mount=type=cache,id=lk,target=/c,sharing=locked cp /c/log /log\n",
    )]);
    build(&root, reader.path(), "lock-log");
    let log = sh(&root, "lock-log", "cat /log");
    assert!(
        log == "start-a\nend-a\nstart-b\nend-b\n" || log == "start-b\nend-b\nstart-a\nend-a\n",
        "the two holders overlapped: {log}"
    );
}

/// Every blob of the image as `kiln save` writes it, decompressed when
/// gzipped: layers, config (with the history) and manifests.
fn saved_blobs(root: &TestRoot, image: &str) -> Vec<Vec<u8>> {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("image.tar");
    root.ok(["save", "-o", tar.to_str().unwrap(), image]);
    let mut out = Vec::new();
    let mut archive = tar::Archive::new(std::fs::File::open(&tar).unwrap());
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        if data.starts_with(&[0x1f, 0x8b]) {
            let mut plain = Vec::new();
            flate2::read::GzDecoder::new(&data[..])
                .read_to_end(&mut plain)
                .unwrap();
            out.push(plain);
        }
        out.push(data);
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn secrets_are_mounted_but_never_kept() {
    require_root!();
    let root = TestRoot::with_busybox();
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("token");
    std::fs::write(&secret_file, "s3cr3t-from-file").unwrap();
    // The Dockerfile compares hashes: the values themselves appear nowhere
    // but in the secret sources.
    let file_sum = sha256_hex(b"s3cr3t-from-file");
    let env_sum = sha256_hex(b"s3cr3t-from-env");
    let ctx = build_context(&[(
        "Dockerfile",
        &format!(
            "FROM busybox\n\
             RUN --mount=type=secret,id=tok [ \"$(sha256sum < /run/secrets/tok | cut -d' ' -f1)\" = {file_sum} ] && \
             stat -c '%a %u' /run/secrets/tok > /file-ok\n\
             RUN --mount=type=secret,id=envtok,target=/custom/place,mode=0440,uid=1000 \
             [ \"$(sha256sum < /custom/place | cut -d' ' -f1)\" = {env_sum} ] && stat -c '%a %u' /custom/place > /env-ok\n\
             RUN --mount=type=secret,id=tok,env=TOKEN [ \"$(printf %s \"$TOKEN\" | sha256sum | cut -d' ' -f1)\" = {file_sum} ] && echo ok > /as-env-ok\n\
             RUN --mount=type=secret,id=absent [ ! -e /run/secrets/absent ] && echo ok > /absent-ok\n\
             RUN for p in /run/secrets/tok /run/secrets/envtok /custom/place; do [ -e $p ] && echo $p; done > /left; true\n"
        ),
    )]);
    let secret_args = |file: &Path| {
        vec![
            "-t".to_string(),
            "secrets".to_string(),
            "--secret".to_string(),
            format!("id=tok,src={}", file.display()),
            "--secret".to_string(),
            "id=envtok,env=KILN_TEST_SECRET".to_string(),
        ]
    };
    let out = root
        .kiln(["build", "--progress", "plain"])
        .args(secret_args(&secret_file))
        .arg(ctx.path())
        .env("KILN_TEST_SECRET", "s3cr3t-from-env")
        .output()
        .unwrap();
    assert_success(&out);
    assert_eq!(
        sh(
            &root,
            "secrets",
            "cat /file-ok /env-ok /as-env-ok /absent-ok /left"
        ),
        "400 0\n440 1000\nok\nok\n"
    );
    // Not in any layer, config or history entry.
    for secret in [&b"s3cr3t-from-file"[..], b"s3cr3t-from-env"] {
        for blob in saved_blobs(&root, "secrets") {
            assert!(!contains(&blob, secret), "a saved blob holds the secret");
        }
    }
    let history = root.ok(["history", "--no-trunc", "secrets"]);
    assert!(!history.contains("s3cr3t"), "{history}");
    // Not in a cache key: new secret values keep every step cached.
    std::fs::write(&secret_file, "another-value").unwrap();
    let again = root
        .kiln(["build", "--progress", "plain"])
        .args(secret_args(&secret_file))
        .arg(ctx.path())
        .env("KILN_TEST_SECRET", "yet-another")
        .output()
        .unwrap();
    assert_success(&again);
    let (_, ran) = step_outcomes(&stderr(&again));
    assert!(ran.is_empty(), "{ran:?}\n{}", stderr(&again));
    // A required secret that was not given fails the step, naming it.
    let required = build_context(&[(
        "Dockerfile",
        "FROM busybox\nRUN --mount=type=secret,id=needed,required=true true\n",
    )]);
    let err = stderr(&root.build(required.path(), Vec::<&str>::new()));
    assert!(
        err.contains("needed") && err.contains("Dockerfile:2"),
        "{err}"
    );
}

#[test]
fn bind_mounts_read_the_context_and_stages_and_discard_writes() {
    require_root!();
    let root = TestRoot::with_busybox();
    let ctx = build_context(&[
        (".dockerignore", "ignored.txt\n"),
        ("ignored.txt", "i\n"),
        ("data/f", "from context\n"),
        (
            "Dockerfile",
            "FROM busybox AS stage\n\
             RUN mkdir /out && echo 'from stage' > /out/s\n\
             FROM busybox\n\
             RUN --mount=type=bind,source=data,target=/data cat /data/f > /from-ctx\n\
             RUN --mount=type=bind,target=/ctx ls -A /ctx > /ctx-listing\n\
             RUN --mount=type=bind,from=stage,source=/out,target=/o cat /o/s > /from-stage\n\
             RUN --mount=type=bind,target=/ctx sh -c 'if touch /ctx/new 2>/dev/null; then echo writable; else echo read-only; fi' > /ro\n\
             RUN --mount=type=bind,target=/ctx,rw sh -c 'echo changed > /ctx/data/f && touch /ctx/new && cat /ctx/data/f' > /rw\n\
             RUN --mount=type=bind,source=data,target=/data cat /data/f > /after-rw\n\
             RUN --mount=source=.,target=/tmp/all --mount=source=data/f,target=/tmp/f cat /tmp/all/data/f /tmp/f > /both\n",
        ),
    ]);
    build(&root, ctx.path(), "binds");
    assert_eq!(
        sh(
            &root,
            "binds",
            "cat /from-ctx /ctx-listing /from-stage /ro /rw /after-rw /both; ls -A /ctx /data 2>/dev/null; true"
        ),
        "from context\n.dockerignore\nDockerfile\ndata\nfrom stage\nread-only\nchanged\nfrom context\n\
         from context\nfrom context\n"
    );
    // The context on the host is untouched.
    assert_eq!(
        std::fs::read_to_string(ctx.path().join("data/f")).unwrap(),
        "from context\n"
    );
    assert!(!ctx.path().join("new").exists());
    // The steps' cache keys follow what they mount: an ignored file
    // changing keeps everything cached; a mounted file changing re-runs
    // from the first step that mounts it (and not the other stage).
    std::fs::write(ctx.path().join("ignored.txt"), "i2\n").unwrap();
    let again = root.build_ok(ctx.path(), ["-t", "binds"]);
    let (_, ran) = step_outcomes(&again);
    assert!(ran.is_empty(), "{ran:?}\n{again}");
    std::fs::write(ctx.path().join("data/f"), "v2\n").unwrap();
    let changed = root.build_ok(ctx.path(), ["-t", "binds"]);
    let (_, ran) = step_outcomes(&changed);
    assert!(
        ran.iter().any(|r| r.contains("cat /data/f > /from-ctx"))
            && !ran.iter().any(|r| r.contains("mkdir /out")),
        "{ran:?}\n{changed}"
    );
    assert_eq!(sh(&root, "binds", "cat /from-ctx /both"), "v2\nv2\nv2\n");
}

#[test]
fn tmpfs_mounts_are_memory_and_leave_nothing() {
    require_root!();
    let root = TestRoot::with_busybox();
    let ctx = build_context(&[(
        "Dockerfile",
        "FROM busybox\n\
         RUN --mount=type=tmpfs,target=/t sh -c 'echo x > /t/f && grep \" /t \" /proc/mounts | cut -d\" \" -f3' > /tmpfs-type\n\
         RUN --mount=type=tmpfs,target=/t,size=1m sh -c 'dd if=/dev/zero of=/t/big bs=1024 count=2048 2>/dev/null && echo fit || echo full' > /tmpfs-size\n",
    )]);
    build(&root, ctx.path(), "tmpfs");
    assert_eq!(
        sh(
            &root,
            "tmpfs",
            "cat /tmpfs-type /tmpfs-size; ls -A /t 2>/dev/null; true"
        ),
        "tmpfs\nfull\n"
    );
}

/// Interface names in a `/proc/net/dev` listing.
fn interfaces(dev: &str) -> Vec<String> {
    let mut v: Vec<String> = dev
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(|s| s.trim().to_string())
        .collect();
    v.sort();
    v
}

#[test]
fn run_network_none_has_only_loopback_and_default_is_the_hosts() {
    require_root!();
    let root = TestRoot::with_busybox();
    let server = FileServer::start(vec![("/ping", b"pong\n".to_vec())]);
    let url = server.url("/ping");
    let ctx = build_context(&[(
        "Dockerfile",
        &format!(
            "FROM busybox\n\
             RUN --network=none cat /proc/net/dev > /none-dev; \
             wget -q -T 2 -O /none-fetch {url} 2>/dev/null; echo $? > /none-code\n\
             RUN cat /proc/net/dev > /default-dev && wget -q -O /default-fetch {url}\n\
             RUN --network=host cat /proc/net/dev > /host-dev\n"
        ),
    )]);
    build(&root, ctx.path(), "net");
    let read = |p: &str| sh(&root, "net", &format!("cat {p}"));
    assert_eq!(interfaces(&read("/none-dev")), ["lo"]);
    assert_ne!(
        read("/none-code").trim(),
        "0",
        "network=none reached the host"
    );
    let host = interfaces(&std::fs::read_to_string("/proc/net/dev").unwrap());
    assert_eq!(interfaces(&read("/default-dev")), host);
    assert_eq!(interfaces(&read("/host-dev")), host);
    assert_eq!(read("/default-fetch"), "pong\n");
}
