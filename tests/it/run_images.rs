//! `kiln run` with images from elsewhere: the README's walk-through
//! (examples/echo built by kiln, served on a published port), and an image
//! pulled from a registry because it was missing.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use crate::require_root;
use crate::run::Containers;
use crate::test_registry::TestRegistry;
use crate::util::*;

fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes())
        .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

#[test]
fn the_echo_example_builds_runs_and_answers() {
    require_root!();
    let root = TestRoot::with_busybox();
    let _c = Containers(&root);
    root.build_ok(&workspace().join("examples/echo"), ["-t", "example/echo"]);
    root.ok([
        "run",
        "-d",
        "--name",
        "echo",
        "-p",
        "127.0.0.1::8080",
        "example/echo",
    ]);
    let inspect: serde_json::Value =
        serde_json::from_str(&root.ok(["container", "inspect", "echo"])).unwrap();
    let port: u16 = inspect[0]["NetworkSettings"]["Ports"]["8080/tcp"][0]["HostPort"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let answer = loop {
        match http_get(port, "/?from=test") {
            Some(a) if a.contains("echo server") => break a,
            _ if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            other => panic!("no answer: {other:?}"),
        }
    };
    assert!(answer.contains("method:  GET"), "{answer}");
    assert!(answer.contains("path:    /?from=test"), "{answer}");
    // The image's USER: httpd runs as nobody.
    let ps = root.ok(["exec", "echo", "ps", "-o", "user,args"]);
    assert!(
        ps.lines()
            .any(|l| l.starts_with("nobody") && l.contains("httpd")),
        "{ps}"
    );
    // serve.sh, PID 1, stops httpd on SIGTERM and exits 0: `stop` ends it
    // without the grace period's SIGKILL (which would leave 137).
    root.ok(["stop", "-t", "30", "echo"]);
    let inspect: serde_json::Value =
        serde_json::from_str(&root.ok(["container", "inspect", "echo"])).unwrap();
    assert_eq!(inspect[0]["State"]["ExitCode"], 0, "{inspect}");
    root.ok(["rm", "echo"]);
    assert!(http_get(port, "/").is_none());
}

#[test]
fn run_pulls_a_missing_image() {
    require_root!();
    let reg = TestRegistry::start();
    let name = reg.image("kiln/busybox:run");
    let source = TestRoot::with_busybox();
    source.ok(["tag", "busybox", &name]);
    source.ok(["push", &name]);

    let root = TestRoot::new();
    let _c = Containers(&root);
    let out = root.run([
        "run",
        "--rm",
        "--network",
        "none",
        &name,
        "echo",
        "pulled and ran",
    ]);
    assert_success(&out);
    assert_eq!(stdout(&out), "pulled and ran\n");
    assert!(
        stderr(&out).contains("Unable to find image"),
        "{}",
        stderr(&out)
    );
    // Present now: no second pull.
    let out = root.run(["run", "--rm", "--network", "none", &name, "true"]);
    assert_success(&out);
    assert!(
        !stderr(&out).contains("Unable to find image"),
        "{}",
        stderr(&out)
    );
    // --pull never does not reach for the registry.
    let out = root.run([
        "run",
        "--rm",
        "--pull",
        "never",
        &reg.image("kiln/other:x"),
        "true",
    ]);
    assert_eq!(out.status.code(), Some(125));
    assert!(stderr(&out).contains("no such image"), "{}", stderr(&out));
}
