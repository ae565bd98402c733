//! Detached containers and their lifecycle: `run -d`, `logs`, `stop`
//! within the grace period, `kill`, `ps -a` exit codes, published ports
//! answered by busybox httpd, `exec` in the same filesystem and PID
//! namespace, `start` again, `container prune`, a killed supervisor, and
//! nothing (mounts, cgroups, processes) left after `rm`.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use crate::require_root;
use crate::run::Containers;
use crate::util::*;

fn code(out: &std::process::Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

/// The state file of a container (the test looks behind the CLI).
fn state(root: &TestRoot, id: &str) -> serde_json::Value {
    let path = root
        .root_dir()
        .join("containers")
        .join(id)
        .join("state.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn ps_json(root: &TestRoot, name: &str) -> serde_json::Value {
    root.ok(["ps", "-a", "--format", "json"])
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["Names"] == name)
        .unwrap_or_else(|| panic!("no container {name}"))
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn alive(pid: i64) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn detached_logs_stop_kill_and_exit_codes() {
    require_root!();
    let root = TestRoot::with_busybox();
    let _c = Containers(&root);
    let script =
        "trap 'echo stopping; exit 3' TERM; echo hello; echo oops >&2; while :; do sleep 0.1; done";
    let id = root.ok(["run", "-d", "--name", "svc", "busybox", "sh", "-c", script]);
    let id = id.trim();
    assert_eq!(id.len(), 64);
    wait_for("the first log lines", || {
        root.ok(["logs", "svc"]).contains("hello")
    });
    let out = root.run(["logs", "svc"]);
    assert_eq!(stdout(&out), "hello\n");
    assert_eq!(stderr(&out), "oops\n");
    let ps = root.ok(["ps"]);
    assert!(ps.contains("Up ") && ps.contains("svc"), "{ps}");
    // stop: SIGTERM is trapped, the container exits well within -t.
    let t = Instant::now();
    assert_eq!(root.ok(["stop", "-t", "8", "svc"]).trim(), "svc");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    let v = ps_json(&root, "svc");
    assert_eq!(v["State"], "exited");
    assert_eq!(v["ExitCode"], 3);
    assert!(
        v["Status"].as_str().unwrap().starts_with("Exited (3)"),
        "{v}"
    );
    assert_eq!(root.ok(["logs", "--tail", "1", "svc"]), "stopping\n");
    // Not running: not in `ps`, stop again is a no-op.
    assert!(!root.ok(["ps"]).contains("svc"));
    root.ok(["stop", "svc"]);

    // A process that ignores SIGTERM (PID 1 without a handler) is killed
    // after the grace period.
    root.ok([
        "run", "-d", "--name", "stubborn", "busybox", "sleep", "1000",
    ]);
    let t = Instant::now();
    root.ok(["stop", "-t", "1", "stubborn"]);
    assert!(t.elapsed() >= Duration::from_millis(900) && t.elapsed() < Duration::from_secs(6));
    assert_eq!(ps_json(&root, "stubborn")["ExitCode"], 137);

    // kill is immediate.
    root.ok(["start", "stubborn"]);
    assert_eq!(ps_json(&root, "stubborn")["State"], "running");
    let t = Instant::now();
    root.ok(["kill", "stubborn"]);
    assert!(t.elapsed() < Duration::from_secs(3));
    let v = ps_json(&root, "stubborn");
    assert_eq!(
        (v["State"].as_str(), v["ExitCode"].as_i64()),
        (Some("exited"), Some(137))
    );
    let out = root.run(["kill", "stubborn"]);
    assert_eq!(code(&out), 1, "killing a stopped container is an error");
    // kill -s sends that signal.
    root.ok([
        "run",
        "-d",
        "--name",
        "usr1",
        "busybox",
        "sh",
        "-c",
        "trap 'exit 10' USR1; while :; do sleep 0.1; done",
    ]);
    root.ok(["kill", "-s", "USR1", "usr1"]);
    wait_for("usr1 to exit", || {
        ps_json(&root, "usr1")["State"] == "exited"
    });
    assert_eq!(ps_json(&root, "usr1")["ExitCode"], 10);

    // logs -f follows until the container stops.
    root.ok([
        "run",
        "-d",
        "--name",
        "counter",
        "busybox",
        "sh",
        "-c",
        "for i in 1 2 3; do echo $i; sleep 0.2; done",
    ]);
    let out = root.ok(["logs", "-f", "counter"]);
    assert_eq!(out, "1\n2\n3\n");

    // prune removes stopped containers, not running ones.
    root.ok(["run", "-d", "--name", "keeper", "busybox", "sleep", "1000"]);
    let out = root.ok(["container", "prune", "-f"]);
    assert!(
        out.contains("Deleted Containers:") && out.contains(id),
        "{out}"
    );
    let left = root.ok(["ps", "-a", "--format", "json"]);
    assert_eq!(left.lines().count(), 1, "{left}");
    assert!(left.contains("keeper"));
    let out = root.run(["rm", "keeper"]);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("rm -f"), "{}", stderr(&out));
    root.ok(["rm", "-f", "keeper"]);
}

fn http_get(port: u16) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn published_port_reaches_httpd_and_exec_shares_the_container() {
    require_root!();
    let root = TestRoot::with_busybox();
    let _c = Containers(&root);
    let script = "mkdir -p /www && echo served-by-busybox > /www/index.html && exec httpd -f -p 8080 -h /www";
    root.ok([
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        "127.0.0.1::8080",
        "-p",
        "8081",
        "busybox",
        "sh",
        "-c",
        script,
    ]);
    let ports = ps_json(&root, "web")["Ports"].as_str().unwrap().to_string();
    // "127.0.0.1:PORT->8080/tcp, 0.0.0.0:PORT2->8081/tcp, ..."
    let port: u16 = ports
        .split(", ")
        .find(|p| p.ends_with("->8080/tcp"))
        .and_then(|p| p.split(':').nth(1))
        .and_then(|p| p.split("->").next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{ports}"));
    assert!(ports.contains("->8081/tcp"), "{ports}");
    let mut answer = String::new();
    wait_for("httpd to answer", || {
        answer = std::panic::catch_unwind(|| http_get(port)).unwrap_or_default();
        answer.contains("served-by-busybox")
    });
    assert!(
        answer.starts_with("HTTP/1.") && answer.contains(" 200 OK"),
        "{answer}"
    );

    // exec: same filesystem, same PID namespace (httpd is PID 1 there).
    let out = root.ok(["exec", "web", "cat", "/www/index.html"]);
    assert_eq!(out, "served-by-busybox\n");
    let out = root.ok(["exec", "web", "ps", "-o", "pid,args"]);
    assert!(
        out.lines()
            .any(|l| l.trim_start().starts_with("1 ") && l.contains("httpd")),
        "{out}"
    );
    root.ok(["exec", "web", "sh", "-c", "echo from-exec > /www/exec.txt"]);
    assert_eq!(
        root.ok(["exec", "web", "cat", "/www/exec.txt"]),
        "from-exec\n"
    );
    let out = root.ok([
        "exec",
        "-e",
        "X=1",
        "-w",
        "/www",
        "-u",
        "app",
        "web",
        "sh",
        "-c",
        "echo $X $(pwd) $(id -u)",
    ]);
    assert_eq!(out, "1 /www 1000\n");
    let out = root.run(["exec", "web", "sh", "-c", "exit 9"]);
    assert_eq!(code(&out), 9);
    let out = root.run(["exec", "web", "no-such-command"]);
    assert_eq!(code(&out), 127);

    // A second container cannot take the same host port.
    let spec = format!("127.0.0.1:{port}:8080");
    let out = root.run(["run", "-d", "-p", &spec, "busybox", "sleep", "100"]);
    assert_eq!(code(&out), 125);
    assert!(
        stderr(&out).contains("already allocated"),
        "{}",
        stderr(&out)
    );

    root.ok(["stop", "-t", "1", "web"]);
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    let out = root.run(["exec", "web", "true"]);
    assert_ne!(code(&out), 0);
    // Started again: same writable layer, port published again.
    root.ok(["start", "web"]);
    assert_eq!(
        root.ok(["exec", "web", "cat", "/www/exec.txt"]),
        "from-exec\n"
    );
}

#[test]
fn nothing_is_left_after_rm() {
    require_root!();
    let root = TestRoot::with_busybox();
    let _c = Containers(&root);
    let id = root.ok([
        "run",
        "-d",
        "--memory",
        "64m",
        "--pids-limit",
        "50",
        "-p",
        "127.0.0.1::80",
        "busybox",
        "sh",
        "-c",
        "sleep 1000 & sleep 1000",
    ]);
    let id = id.trim().to_string();
    let st = state(&root, &id);
    let cgroups: Vec<String> = st["sandbox"]["cgroup_dirs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_string())
        .collect();
    assert!(!cgroups.is_empty(), "{st}");
    for d in &cgroups {
        assert!(std::path::Path::new(d).is_dir(), "{d}");
    }
    let pids = [
        st["sandbox"]["init_pid"].as_i64().unwrap(),
        st["sandbox"]["helper_pid"].as_i64().unwrap(),
        st["supervisor"]["pid"].as_i64().unwrap(),
    ];
    assert!(pids.iter().all(|&p| alive(p)));
    let dir = root.root_dir().join("containers").join(&id);
    let findmnt = || {
        String::from_utf8_lossy(
            &std::process::Command::new("findmnt")
                .args(["-rn", "-o", "TARGET"])
                .output()
                .unwrap()
                .stdout,
        )
        .into_owned()
    };
    assert!(
        findmnt().contains(dir.to_str().unwrap()),
        "the netns is bound under the container dir"
    );

    root.ok(["rm", "-f", &id]);
    assert!(!dir.exists());
    let mounts = findmnt();
    assert!(
        !mounts.contains(root.root_dir().to_str().unwrap()),
        "{mounts}"
    );
    for d in &cgroups {
        assert!(!std::path::Path::new(d).exists(), "cgroup {d} left");
    }
    wait_for("the processes to go", || pids.iter().all(|&p| !alive(p)));
    assert!(root.ok(["ps", "-aq"]).is_empty());
}

#[test]
fn state_survives_a_killed_supervisor() {
    require_root!();
    let root = TestRoot::with_busybox();
    let _c = Containers(&root);
    let id = root.ok(["run", "-d", "--name", "orphan", "busybox", "sleep", "1000"]);
    let st = state(&root, id.trim());
    let supervisor = st["supervisor"]["pid"].as_i64().unwrap();
    let init = st["sandbox"]["init_pid"].as_i64().unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(supervisor as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    // The sandbox helper kills the container when its supervisor is gone;
    // the next reader records the exit.
    wait_for("the container to stop", || !alive(init));
    wait_for("ps to show it exited", || {
        ps_json(&root, "orphan")["State"] == "exited"
    });
    let inspect: serde_json::Value =
        serde_json::from_str(&root.ok(["container", "inspect", "orphan"])).unwrap();
    assert!(
        inspect[0]["State"]["Error"]
            .as_str()
            .unwrap()
            .contains("supervisor"),
        "{inspect}"
    );
    // It can start again and be removed normally.
    root.ok(["start", "orphan"]);
    assert_eq!(ps_json(&root, "orphan")["State"], "running");
    root.ok(["rm", "-f", "orphan"]);
}

#[test]
fn detached_terminal_rm_and_exec_detach() {
    require_root!();
    let root = TestRoot::with_busybox();
    let _c = Containers(&root);
    // -dt: the pseudo-terminal's output is logged.
    root.ok([
        "run",
        "-dt",
        "--name",
        "tty",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "tty; echo on-a-tty",
    ]);
    wait_for("tty to exit", || ps_json(&root, "tty")["State"] == "exited");
    let logs = root.ok(["logs", "tty"]);
    assert!(
        logs.starts_with("/dev/pts/") && logs.contains("on-a-tty\r\n"),
        "{logs:?}"
    );
    // -d --rm: the supervisor removes it when it ends.
    root.ok([
        "run",
        "-d",
        "--rm",
        "--name",
        "brief",
        "--network",
        "none",
        "busybox",
        "sleep",
        "0.2",
    ]);
    wait_for("brief to be removed", || {
        !root
            .ok(["ps", "-a", "--format", "json"])
            .contains("\"brief\"")
    });
    // exec -d returns at once; its work shows up later.
    root.ok([
        "run",
        "-d",
        "--name",
        "host",
        "--network",
        "none",
        "busybox",
        "sleep",
        "1000",
    ]);
    let t = Instant::now();
    root.ok([
        "exec",
        "-d",
        "host",
        "sh",
        "-c",
        "sleep 0.3; echo late > /tmp/late",
    ]);
    assert!(t.elapsed() < Duration::from_millis(1500));
    wait_for("the detached exec", || {
        root.run(["exec", "host", "cat", "/tmp/late"])
            .status
            .success()
    });
    root.ok(["rm", "-f", "host"]);
}
