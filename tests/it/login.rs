//! `kiln login` / `kiln logout` against a real registry with htpasswd basic
//! auth: credentials checked, written 0600 to the docker config (or given to
//! a credential helper), wrong passwords refused with a clear error, and the
//! password never printed.

use std::os::unix::fs::PermissionsExt;

use crate::test_registry::{DockerConfigDir, TestRegistry, run_with_stdin};
use crate::util::*;

const USER: &str = "alice";
const PASSWORD: &str = "kiln-s3cret-pw";

fn login(
    root: &TestRoot,
    cfg: &DockerConfigDir,
    registry: &str,
    password: &str,
) -> std::process::Output {
    let mut cmd = root.kiln(["--debug", "login", "-u", USER, "--password-stdin", registry]);
    cmd.env("DOCKER_CONFIG", cfg.path());
    run_with_stdin(cmd, &format!("{password}\n"))
}

fn assert_no_secret(out: &std::process::Output) {
    let all = format!("{}{}", stdout(out), stderr(out));
    assert!(!all.contains(PASSWORD), "the password was printed:\n{all}");
}

#[test]
fn login_checks_writes_0600_and_logout_forgets() {
    let registry = TestRegistry::start_with_htpasswd(USER, PASSWORD);
    let root = TestRoot::new();
    let cfg = DockerConfigDir::new();
    let out = login(&root, &cfg, &registry.addr, PASSWORD);
    assert_success(&out);
    assert!(stdout(&out).contains("Login Succeeded"), "{}", stdout(&out));
    assert_no_secret(&out);
    let mode = std::fs::metadata(cfg.config_json())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cfg.config_json()).unwrap()).unwrap();
    let auth = doc["auths"][&registry.addr]["auth"].as_str().unwrap();
    // base64("alice:kiln-s3cret-pw")
    assert_eq!(auth, "YWxpY2U6a2lsbi1zM2NyZXQtcHc=");

    let mut cmd = root.kiln(["logout", &registry.addr]);
    cmd.env("DOCKER_CONFIG", cfg.path());
    let out = cmd.output().unwrap();
    assert_success(&out);
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cfg.config_json()).unwrap()).unwrap();
    assert!(doc["auths"].get(&registry.addr).is_none(), "{doc}");
}

#[test]
fn wrong_password_is_a_clear_error_and_stores_nothing() {
    let registry = TestRegistry::start_with_htpasswd(USER, PASSWORD);
    let root = TestRoot::new();
    let cfg = DockerConfigDir::new();
    let out = login(&root, &cfg, &registry.addr, "not-the-password");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("login {}", registry.addr))
            && err.contains("wrong user name or password"),
        "{err}"
    );
    assert!(!err.contains("not-the-password"), "{err}");
    assert!(!cfg.config_json().exists());
}

#[test]
fn credential_helper_keeps_the_secret_out_of_the_file() {
    let registry = TestRegistry::start_with_htpasswd(USER, PASSWORD);
    let root = TestRoot::new();
    let cfg = DockerConfigDir::new();
    let path = cfg.install_helper();
    std::fs::write(cfg.config_json(), r#"{"credsStore":"kilntest"}"#).unwrap();
    let mut cmd = root.kiln(["login", "-u", USER, "--password-stdin", &registry.addr]);
    cmd.env("DOCKER_CONFIG", cfg.path()).env("PATH", &path);
    let out = run_with_stdin(cmd, &format!("{PASSWORD}\n"));
    assert_success(&out);
    assert_no_secret(&out);
    let file = std::fs::read_to_string(cfg.config_json()).unwrap();
    assert!(!file.contains("auth\""), "{file}");
    assert!(file.contains("kilntest"), "{file}");
    let kept = cfg.helper_contents();
    assert!(kept.contains(PASSWORD) && kept.contains(USER), "{kept}");

    let mut cmd = root.kiln(["logout", &registry.addr]);
    cmd.env("DOCKER_CONFIG", cfg.path()).env("PATH", &path);
    assert_success(&cmd.output().unwrap());
    assert!(cfg.helper_contents().is_empty());
}

#[test]
fn login_without_a_terminal_needs_password_stdin() {
    let root = TestRoot::new();
    let cfg = DockerConfigDir::new();
    let mut cmd = root.kiln(["login", "-u", USER, "127.0.0.1:1"]);
    cmd.env("DOCKER_CONFIG", cfg.path());
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("--password-stdin"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn debug_and_trace_logs_never_show_the_password() {
    let registry = TestRegistry::start_with_htpasswd(USER, PASSWORD);
    let root = TestRoot::new();
    root.import_busybox(&registry.image("private/bb:1"));
    let cfg = DockerConfigDir::new();
    assert_success(&login(&root, &cfg, &registry.addr, PASSWORD));
    let mut push = root.kiln(["--debug", "push", &registry.image("private/bb:1")]);
    push.env("DOCKER_CONFIG", cfg.path())
        .env("RUST_LOG", "trace");
    let out = push.output().unwrap();
    assert_success(&out);
    assert!(stderr(&out).len() > 1000, "trace logs were written");
    assert_no_secret(&out);
    let all = format!("{}{}", stdout(&out), stderr(&out));
    // base64("alice:kiln-s3cret-pw"), as an Authorization header would carry it
    assert!(
        !all.contains("YWxpY2U6a2lsbi1zM2NyZXQtcHc"),
        "credentials in the logs"
    );
}
