//! `--network default`: outbound IPv4 through pasta (docker's default
//! bridge is IPv4-only too), checked by reaching a server on the host's
//! loopback through the gateway address pasta maps to it. pasta runs while
//! the sandbox is set up: a slow pasta still configures the network before
//! the process starts, and a failing one leaves nothing behind.

use std::io::Read;
use std::net::TcpListener;
use std::time::Duration;

use crate::require_root;
use crate::util::*;

fn real_pasta() -> Option<&'static str> {
    ["/usr/bin/pasta", "/usr/sbin/pasta", "/bin/pasta"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
}

/// A directory with a `pasta` script (found first on `PATH`).
fn fake_pasta(script: &str) -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pasta");
    std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

fn path_with(dir: &std::path::Path) -> std::ffi::OsString {
    let mut dirs = vec![dir.to_path_buf()];
    dirs.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(dirs).unwrap()
}

/// The pastas running with a pid file under `root`.
fn pastas_under(root: &std::path::Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains("pasta") && cmdline.contains(&*root.to_string_lossy()) {
            found.push(cmdline);
        }
    }
    found
}

#[test]
fn slow_pasta_still_configures_the_network_before_the_process_starts() {
    require_root!();
    let Some(pasta) = real_pasta() else {
        eprintln!("skipped: pasta (package passt) is not installed");
        return;
    };
    let root = TestRoot::with_busybox();
    let bin = fake_pasta(&format!("sleep 0.5; exec {pasta} \"$@\""));
    let out = root
        .kiln([
            "run",
            "--rm",
            "busybox",
            "sh",
            "-c",
            "ip -4 route | grep -c '^default'",
        ])
        .env("PATH", path_with(bin.path()))
        .output()
        .unwrap();
    assert_success(&out);
    assert_eq!(stdout(&out).trim(), "1", "{}", stderr(&out));
    assert!(pastas_under(root.path()).is_empty());
}

#[test]
fn failing_pasta_leaves_lo_only_and_nothing_behind() {
    require_root!();
    let root = TestRoot::with_busybox();
    let bin = fake_pasta("sleep 0.2; echo no tap for you >&2; exit 1");
    let out = root
        .kiln(["run", "--rm", "busybox", "sh", "-c", "ip -4 route | wc -l"])
        .env("PATH", path_with(bin.path()))
        .output()
        .unwrap();
    assert_success(&out);
    assert_eq!(stdout(&out).trim(), "0", "{}", stderr(&out));
    assert!(stderr(&out).contains("no tap for you"), "{}", stderr(&out));
    // and a sandbox that fails while pasta still runs
    let bin = fake_pasta(&format!(
        "sleep 0.3; exec {} \"$@\"",
        real_pasta().unwrap_or("false")
    ));
    let out = root
        .kiln(["run", "--rm", "-v", "/etc/hostname:/bin", "busybox", "true"])
        .env("PATH", path_with(bin.path()))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125), "{}", stderr(&out));
    assert!(pastas_under(root.path()).is_empty());
    assert_eq!(root.ok(["ps", "-aq"]).trim(), "");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&*root.path().to_string_lossy()));
}

#[test]
fn default_network_reaches_the_host() {
    require_root!();
    if real_pasta().is_none() {
        eprintln!("skipped: pasta (package passt) is not installed");
        return;
    }
    let root = TestRoot::with_busybox();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut got = String::new();
        s.read_to_string(&mut got).unwrap();
        got
    });
    let script = format!(
        "gw=$(ip route | awk '/^default/ {{print $3}}'); echo \"gw=$gw\" >&2; \
         echo hello-from-the-container | nc -w 5 \"$gw\" {port}; \
         ip -6 addr show scope global | grep -c inet6 || true"
    );
    let out = root.run(["run", "--rm", "busybox", "sh", "-c", &script]);
    assert_success(&out);
    assert_eq!(
        server.join().unwrap(),
        "hello-from-the-container\n",
        "{}",
        stderr(&out)
    );
    // no global IPv6 address: IPv4 only, as docker's default network
    assert_eq!(stdout(&out).trim(), "0", "{}", stderr(&out));
}
