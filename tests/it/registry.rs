//! Pull and push against a real registry (Debian's docker-registry), checked
//! with skopeo: pushed images are readable by others and byte-identical when
//! copied, pulls into a fresh root give the same image, re-pushes upload
//! nothing, mounts cross repositories, and faults (500s, dropped
//! connections, corrupted blobs, refused uploads) are survived or reported.

use std::process::Command;

use base64::Engine as _;

use crate::fault_proxy::{FaultProxy, Faults};
use crate::test_registry::{DockerConfigDir, TestRegistry, run_with_stdin};
use crate::util::*;

/// `TAG: digest: sha256:… size: N` → the digest.
fn pushed_digest(out: &str) -> String {
    let line = out
        .lines()
        .find(|l| l.contains(": digest: "))
        .unwrap_or_else(|| panic!("no digest line in {out:?}"));
    line.split(": digest: ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// A root with busybox imported and tagged as `name`.
fn root_with(name: &str) -> TestRoot {
    let root = TestRoot::new();
    root.import_busybox(name);
    root
}

fn image_id(root: &TestRoot, name: &str) -> String {
    let out: serde_json::Value = serde_json::from_str(&root.ok(["inspect", name])).unwrap();
    out[0]["Id"]
        .as_str()
        .expect("inspect shows an Id")
        .to_string()
}

fn skopeo(args: &[&str]) -> String {
    let out = Command::new("skopeo")
        .args(args)
        .output()
        .expect("run skopeo");
    assert_success(&out);
    stdout(&out)
}

#[test]
fn push_is_readable_by_skopeo_and_pulls_into_a_fresh_root() {
    let reg = TestRegistry::start();
    let name = reg.image("kiln/busybox:v1");
    let root = root_with(&name);
    let out = root.ok(["push", &name]);
    let digest = pushed_digest(&out);
    assert!(digest.starts_with("sha256:"), "{out}");

    let inspect: serde_json::Value = serde_json::from_str(&skopeo(&[
        "inspect",
        "--tls-verify=false",
        &format!("docker://{name}"),
    ]))
    .unwrap();
    assert_eq!(inspect["Digest"], digest.as_str());
    let raw: serde_json::Value = serde_json::from_str(&skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{name}"),
    ]))
    .unwrap();
    for layer in raw["layers"].as_array().unwrap() {
        assert!(
            layer["mediaType"].as_str().unwrap().ends_with("tar+gzip"),
            "layers are pushed compressed: {raw}"
        );
    }

    let oci = tempfile::tempdir().unwrap();
    let dest = format!("oci:{}:v1", oci.path().join("layout").display());
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{name}"),
        &dest,
    ]);
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(oci.path().join("layout/index.json")).unwrap())
            .unwrap();
    assert_eq!(index["manifests"][0]["digest"], digest.as_str());

    let fresh = TestRoot::new();
    let out = fresh.ok(["pull", &name]);
    assert!(out.contains(&name), "{out}");
    assert_eq!(image_id(&fresh, &name), image_id(&root, &name));
    // Pulling again downloads nothing; pushing the pulled image back gives
    // the same manifest.
    let out = fresh.run(["pull", &name]);
    assert_success(&out);
    assert!(stderr(&out).contains("up to date"), "{}", stderr(&out));
    assert_eq!(pushed_digest(&fresh.ok(["push", &name])), digest);
}

#[test]
fn repush_uploads_nothing_and_other_repos_mount() {
    let reg = TestRegistry::start();
    let proxy = FaultProxy::start(&reg.addr, Faults::default());
    let a = proxy.image("team/a:1");
    let root = root_with(&a);
    root.ok(["push", &a]);
    let uploads = proxy.count("PUT", "/blobs/uploads/");
    assert!(
        uploads >= 2,
        "config and layer uploaded: {:?}",
        proxy.requests()
    );

    let before = proxy.requests().len();
    root.ok(["push", &a]);
    let again: Vec<_> = proxy.requests()[before..].to_vec();
    assert!(
        !again.iter().any(|r| r.path.contains("/blobs/uploads/")),
        "a re-push uploads nothing: {again:?}"
    );
    assert!(again.iter().any(|r| r.method == "HEAD"), "{again:?}");

    let b = proxy.image("team/b:1");
    root.ok(["tag", &a, &b]);
    let before = proxy.requests().len();
    let out = root.run(["push", &b]);
    assert_success(&out);
    let pushed: Vec<_> = proxy.requests()[before..].to_vec();
    assert!(
        pushed
            .iter()
            .any(|r| r.method == "POST" && r.path.contains("mount=") && r.status == 201),
        "blobs are mounted from team/a: {pushed:?}"
    );
    assert!(
        !pushed
            .iter()
            .any(|r| r.method == "PUT" && r.path.contains("/blobs/uploads/")),
        "nothing is uploaded: {pushed:?}"
    );
    assert!(
        stderr(&out).contains("Mounted from team/a"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn push_and_pull_survive_500s_and_dropped_connections() {
    let reg = TestRegistry::start();
    let proxy = FaultProxy::start(
        &reg.addr,
        Faults {
            fail_first: true,
            ..Faults::default()
        },
    );
    let name = proxy.image("faulty/busybox:1");
    let root = root_with(&name);
    let digest = pushed_digest(&root.ok(["push", &name]));
    let fresh = TestRoot::new();
    fresh.ok(["pull", &name]);
    assert_eq!(image_id(&fresh, &name), image_id(&root, &name));
    let faults: Vec<_> = proxy.requests().into_iter().filter(|r| r.fault).collect();
    for kind in [
        "GET /v2/",
        "HEAD",
        "POST",
        "PUT",
        "GET /v2/faulty/busybox/blobs/",
    ] {
        assert!(
            faults
                .iter()
                .any(|r| format!("{} {}", r.method, r.path).starts_with(kind)),
            "a fault was injected into {kind}: {faults:?}"
        );
    }
    assert!(faults.iter().any(|r| r.status == 0) && faults.iter().any(|r| r.status == 500));
    // What went through the faulty proxy is intact in the registry.
    let direct = format!("docker://{}/faulty/busybox:1", reg.addr);
    let inspect: serde_json::Value =
        serde_json::from_str(&skopeo(&["inspect", "--tls-verify=false", &direct])).unwrap();
    assert_eq!(inspect["Digest"], digest.as_str());
}

#[test]
fn corrupted_blob_fails_the_pull_and_stores_nothing() {
    let reg = TestRegistry::start();
    let name = reg.image("kiln/busybox:1");
    root_with(&name).ok(["push", &name]);
    let proxy = FaultProxy::start(
        &reg.addr,
        Faults {
            corrupt_blobs: true,
            ..Faults::default()
        },
    );
    let fresh = TestRoot::new();
    let out = fresh.run(["pull", &proxy.image("kiln/busybox:1")]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("pull {}/kiln/busybox", proxy.addr))
            && err.contains("digest mismatch"),
        "{err}"
    );
    let blobs = fresh.root_dir().join("blobs/sha256");
    let stored: Vec<_> = std::fs::read_dir(&blobs)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(stored.is_empty(), "nothing stored: {stored:?}");
    let tmp: Vec<_> = std::fs::read_dir(fresh.root_dir().join("tmp"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(tmp.is_empty(), "no temp files left: {tmp:?}");
    assert!(fresh.ok(["images", "-q"]).trim().is_empty());
}

#[test]
fn refused_upload_names_registry_repository_and_request() {
    let reg = TestRegistry::start();
    let proxy = FaultProxy::start(
        &reg.addr,
        Faults {
            reject_uploads: Some(413),
            ..Faults::default()
        },
    );
    let name = proxy.image("a/b:1");
    let root = root_with(&name);
    let out = root.run(["push", &name]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "push {}/a/b: blob upload rejected: 413 Payload Too Large",
            proxy.addr
        )),
        "{err}"
    );
    assert!(err.contains("PUT /v2/a/b/blobs/uploads/"), "{err}");
}

#[test]
fn basic_auth_registry_needs_login_then_push_and_pull_work() {
    let reg = TestRegistry::start_with_htpasswd("ci", "pa55word");
    let cfg = DockerConfigDir::new();
    let name = reg.image("private/busybox:1");
    let root = root_with(&name);
    let mut push = root.kiln(["push", &name]);
    push.env("DOCKER_CONFIG", cfg.path());
    let out = push.output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("kiln login"), "{}", stderr(&out));

    let mut login = root.kiln(["login", "-u", "ci", "--password-stdin", &reg.addr]);
    login.env("DOCKER_CONFIG", cfg.path());
    assert_success(&run_with_stdin(login, "pa55word\n"));
    let mut push = root.kiln(["push", &name]);
    push.env("DOCKER_CONFIG", cfg.path());
    assert_success(&push.output().unwrap());

    let fresh = TestRoot::new();
    let mut pull = fresh.kiln(["pull", &name]);
    pull.env("DOCKER_CONFIG", cfg.path());
    assert_success(&pull.output().unwrap());
    assert_eq!(image_id(&fresh, &name), image_id(&root, &name));
}

#[test]
fn unreachable_registry_is_retried_then_named() {
    let port = crate::test_registry::free_port();
    let name = format!("127.0.0.1:{port}/x/y:1");
    let root = TestRoot::new();
    let out = root.run(["pull", &name]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "pull 127.0.0.1:{port}/x/y: GET /v2/ failed after 5 attempts"
        )),
        "{err}"
    );
}

#[test]
fn bearer_token_registry_login_push_pull_and_refused_tokens() {
    let reg = TestRegistry::start();
    let proxy = FaultProxy::start(
        &reg.addr,
        Faults {
            bearer: Some(("robot".into(), "t0ken-pw".into())),
            ..Faults::default()
        },
    );
    let name = proxy.image("secure/busybox:1");
    let root = root_with(&name);
    let cfg = DockerConfigDir::new();

    // No credentials: the registry's 401 is reported with a hint.
    let mut push = root.kiln(["push", &name]);
    push.env("DOCKER_CONFIG", cfg.path());
    let out = push.output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("kiln login"), "{}", stderr(&out));

    // Login goes through the challenge and the token endpoint.
    let mut login = root.kiln(["login", "-u", "robot", "--password-stdin", &proxy.addr]);
    login.env("DOCKER_CONFIG", cfg.path());
    let out = run_with_stdin(login, "wrong\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("wrong user name or password"),
        "{}",
        stderr(&out)
    );
    let mut login = root.kiln(["login", "-u", "robot", "--password-stdin", &proxy.addr]);
    login.env("DOCKER_CONFIG", cfg.path());
    assert_success(&run_with_stdin(login, "t0ken-pw\n"));
    assert!(proxy.count("GET", "/token") >= 1);

    let mut push = root.kiln(["push", &name]);
    push.env("DOCKER_CONFIG", cfg.path());
    assert_success(&push.output().unwrap());
    let fresh = TestRoot::new();
    let mut pull = fresh.kiln(["pull", &name]);
    pull.env("DOCKER_CONFIG", cfg.path());
    assert_success(&pull.output().unwrap());
    assert_eq!(image_id(&fresh, &name), image_id(&root, &name));

    // Stored credentials the token service refuses: reported as such, not
    // turned into anonymous requests.
    let auth = base64::engine::general_purpose::STANDARD.encode("robot:stale");
    std::fs::write(
        cfg.config_json(),
        format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, proxy.addr),
    )
    .unwrap();
    let other = TestRoot::new();
    let mut pull = other.kiln(["pull", &name]);
    pull.env("DOCKER_CONFIG", cfg.path());
    let out = pull.output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("refused a token") && err.contains("incorrect username or password"),
        "{err}"
    );
}

#[test]
fn pulled_image_saves_to_an_archive_umoci_unpacks() {
    let reg = TestRegistry::start();
    let name = reg.image("kiln/busybox:v1");
    root_with(&name).ok(["push", &name]);
    let fresh = TestRoot::new();
    fresh.ok(["pull", &name]);
    let tar = fresh.path().join("saved.tar");
    fresh.ok([
        std::ffi::OsStr::new("save"),
        "-o".as_ref(),
        tar.as_os_str(),
        name.as_ref(),
    ]);
    let layout = fresh.path().join("layout");
    std::fs::create_dir_all(&layout).unwrap();
    let out = Command::new("tar")
        .arg("xf")
        .arg(&tar)
        .arg("-C")
        .arg(&layout)
        .output()
        .unwrap();
    assert_success(&out);
    let bundle = fresh.path().join("bundle");
    let mut umoci = Command::new("umoci");
    umoci.arg("unpack");
    if !is_root() {
        umoci.arg("--rootless");
    }
    let out = umoci
        .arg("--image")
        .arg(format!("{}:v1", layout.display()))
        .arg(&bundle)
        .output()
        .expect("run umoci");
    assert_success(&out);
    assert!(bundle.join("config.json").is_file());
    assert!(bundle.join("rootfs/bin/busybox").is_file());
}
