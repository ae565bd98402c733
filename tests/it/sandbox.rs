//! The sandbox, black-box through `kiln debug sandbox` on the busybox
//! rootfs: isolation (PID 1, hostname, paths, network), limits (memory
//! OOM, pids), cancellation (timeout, Ctrl-C) leaving nothing behind, the
//! image's users, and parity with Debian's runc on the same spec.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::require_root;
use crate::util::*;

/// A fresh busybox root filesystem directory.
pub(crate) fn rootfs() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("kiln-rootfs-")
        .tempdir()
        .expect("temp dir");
    let status = Command::new("tar")
        .arg("-xf")
        .arg(busybox_rootfs_tar())
        .arg("-C")
        .arg(dir.path())
        .status()
        .expect("run tar");
    assert!(status.success());
    dir
}

fn sandbox(root: &TestRoot, rootfs: &Path, opts: &[&str], cmd: &str) -> std::process::Output {
    let mut args: Vec<String> = vec!["debug".into(), "sandbox".into(), "--rootfs".into()];
    args.push(rootfs.display().to_string());
    args.extend(opts.iter().map(|s| s.to_string()));
    args.extend(["--".into(), "/bin/sh".into(), "-c".into(), cmd.into()]);
    root.run(args)
}

fn unique(tag: &str) -> String {
    format!(
        "{tag}{}{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    )
}

/// Nothing of the sandbox named `name` on `rootfs` is left: no mount under
/// the rootfs, no cgroup, no process running `marker`.
fn assert_nothing_left(rootfs: &Path, name: &str, marker: &str) {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&rootfs.display().to_string()),
        "a mount under {} is left:\n{mounts}",
        rootfs.display()
    );
    let findmnt = Command::new("findmnt").arg("-rn").output().unwrap();
    assert!(!stdout(&findmnt).contains(&rootfs.display().to_string()));
    let suffix = format!("-{name}");
    for entry in walk_cgroups(Path::new("/sys/fs/cgroup")) {
        assert!(!entry.ends_with(&suffix), "cgroup {entry} is left behind");
    }
    for p in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmdline) = std::fs::read(p.path().join("cmdline"))
            && String::from_utf8_lossy(&cmdline).contains(marker)
        {
            panic!(
                "process {} ({marker}) is left behind",
                p.file_name().to_string_lossy()
            );
        }
    }
}

/// The kiln/ cgroup directories of every hierarchy.
fn walk_cgroups(base: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![base.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                let p = e.path();
                if p.parent().is_some_and(|p| p.ends_with("kiln")) {
                    out.push(p.display().to_string());
                }
                // kiln's cgroups are at most a few levels down.
                if p.components().count() < 9 {
                    stack.push(p);
                }
            }
        }
    }
    out
}

#[test]
fn process_is_pid_1_with_own_hostname_and_no_host_paths() {
    require_root!();
    let root = TestRoot::new();
    let fs = rootfs();
    let marker = unique("kiln-host-marker-");
    std::fs::write(Path::new("/tmp").join(&marker), "x").unwrap();
    let out = sandbox(
        &root,
        fs.path(),
        &[],
        &format!(
            "echo pid=$$; echo host=$(hostname); echo procs=$(ls -d /proc/[0-9]* | wc -l); \
             test -e /tmp/{marker} && echo SEES-HOST-TMP; test -e /work && echo SEES-WORK; \
             test -e /usr/lib/x86_64-linux-gnu && echo SEES-HOST-USR; echo done"
        ),
    );
    let _ = std::fs::remove_file(Path::new("/tmp").join(&marker));
    assert_success(&out);
    let text = stdout(&out);
    assert!(text.contains("pid=1\n"), "{text}");
    let host = nix::unistd::gethostname().unwrap();
    assert!(
        !text.contains(&format!("host={}\n", host.to_string_lossy())),
        "{text}"
    );
    assert!(text.contains("host=kiln\n"), "{text}");
    let procs: usize = text
        .lines()
        .find_map(|l| l.strip_prefix("procs="))
        .and_then(|n| n.trim().parse().ok())
        .unwrap();
    assert!(procs < 10, "{text}");
    assert!(!text.contains("SEES-"), "{text}");
    assert!(text.contains("done"));
    // The /etc files kiln bind-mounted were not left in the image.
    assert!(!fs.path().join("etc/hosts").exists());
    assert!(!fs.path().join("etc/resolv.conf").exists());
}

#[test]
fn network_none_has_only_lo_and_host_shares() {
    require_root!();
    let root = TestRoot::new();
    let fs = rootfs();
    let count = "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort | tr '\\n' ,";
    let out = sandbox(&root, fs.path(), &[], count);
    assert_success(&out);
    assert_eq!(stdout(&out), "lo,");
    let out = sandbox(
        &root,
        fs.path(),
        &["--network", "none"],
        "cat /sys/class/net/lo/operstate; ping -c1 -W1 127.0.0.1 >/dev/null && echo lo-up",
    );
    assert!(
        stdout(&out).contains("lo-up"),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let host_ifaces = std::fs::read_to_string("/proc/net/dev")
        .unwrap()
        .lines()
        .count()
        - 2;
    let out = sandbox(&root, fs.path(), &["--network", "host"], count);
    assert_success(&out);
    assert_eq!(stdout(&out).matches(',').count(), host_ifaces);
}

#[test]
fn user_and_groups_come_from_the_image() {
    require_root!();
    let root = TestRoot::new();
    let fs = rootfs();
    let out = sandbox(&root, fs.path(), &["-u", "app"], "id; echo HOME=$HOME; pwd");
    assert_success(&out);
    let text = stdout(&out);
    assert!(text.starts_with("uid=1000(app) gid=1000(app)"), "{text}");
    assert!(text.contains("HOME=/home/app"), "{text}");
    let out = sandbox(
        &root,
        fs.path(),
        &["-u", "4242:nogroup", "-w", "/tmp"],
        "id -u; id -g; pwd; cat /proc/self/status | grep CapEff",
    );
    assert_success(&out);
    assert_eq!(
        stdout(&out),
        "4242\n65534\n/tmp\nCapEff:\t0000000000000000\n"
    );
    let out = sandbox(&root, fs.path(), &["-u", "ghost"], "true");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("unable to find user ghost"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn memory_limit_kill_is_reported_as_oom() {
    require_root!();
    let root = TestRoot::new();
    let fs = rootfs();
    let name = unique("oom");
    let out = sandbox(
        &root,
        fs.path(),
        &["--memory", "24m", "--name", &name],
        "echo before; head -c 200000000 /dev/zero | tail > /dev/null",
    );
    assert_eq!(out.status.code(), Some(137), "{}", stderr(&out));
    assert!(stderr(&out).contains("out of memory"), "{}", stderr(&out));
    assert_eq!(stdout(&out), "before\n");
    assert_nothing_left(fs.path(), &name, "no-marker-needed-here");
}

#[test]
fn pids_limit_stops_a_fork_bomb() {
    require_root!();
    let root = TestRoot::new();
    let fs = rootfs();
    let name = unique("bomb");
    let start = Instant::now();
    // A real fork bomb; PID 1 (the shell) reports how far it got and exits,
    // which kills whatever the bomb still has running.
    let out = sandbox(
        &root,
        fs.path(),
        &["--pids-limit", "24", "--name", &name, "--timeout", "20"],
        "bomb() { bomb | bomb & }; bomb; sleep 1; echo procs=$(ls -d /proc/[0-9]* | wc -l)",
    );
    assert!(
        start.elapsed() < Duration::from_secs(15),
        "the bomb was not contained"
    );
    let text = stdout(&out) + &stderr(&out);
    assert!(
        text.contains("can't fork") || text.contains("Resource temporarily unavailable"),
        "{text}"
    );
    if let Some(n) = text.lines().find_map(|l| l.strip_prefix("procs=")) {
        assert!(n.trim().parse::<usize>().unwrap() <= 24, "{text}");
    }
    assert_nothing_left(fs.path(), &name, "bomb()");
}

#[test]
fn timeout_and_ctrl_c_kill_the_tree_and_leave_nothing() {
    require_root!();
    let root = TestRoot::new();
    let fs = rootfs();
    // Timeout.
    let name = unique("timeout");
    let marker = format!("{}", 100_000 + std::process::id() % 50_000);
    let start = Instant::now();
    let out = sandbox(
        &root,
        fs.path(),
        &["--timeout", "0.5", "--memory", "64m", "--name", &name],
        &format!("sleep {marker} & sleep {marker}"),
    );
    assert_eq!(out.status.code(), Some(124), "{}", stderr(&out));
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_nothing_left(fs.path(), &name, &format!("sleep {marker}"));
    // Ctrl-C (SIGINT to kiln).
    let name = unique("sigint");
    let mut child = root
        .kiln(["debug", "sandbox", "--rootfs"])
        .arg(fs.path())
        .args(["--memory", "64m", "--name", &name, "--", "/bin/sh", "-c"])
        .arg(format!("sleep {marker} & echo started; sleep {marker}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut first = [0u8; 8];
    std::io::Read::read_exact(&mut out, &mut first).unwrap();
    assert_eq!(&first, b"started\n");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert_nothing_left(fs.path(), &name, &format!("sleep {marker}"));
}

#[test]
fn missing_program_is_a_clear_error() {
    require_root!();
    let root = TestRoot::new();
    let fs = rootfs();
    let out = root.run([
        "debug",
        "sandbox",
        "--rootfs",
        &fs.path().display().to_string(),
        "--",
        "no-such-program",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no-such-program"), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("executable file not found"),
        "{}",
        stderr(&out)
    );
}

/// What a process sees, printed in a stable order.
const PROBE: &str = "id; echo cwd=$(pwd); env | grep -v '^HOSTNAME=' | sort; \
    awk '{print $5, $9}' /proc/self/mountinfo | sort; cat /proc/self/status | grep -E '^(Cap|NoNewPrivs)'; \
    ls /dev | sort | tr '\\n' ' '";

#[test]
fn same_spec_same_view_as_runc() {
    require_root!();
    if Command::new("runc").arg("--version").output().is_err() {
        eprintln!("skipped: runc is not installed (scripts/setup-host.sh)");
        return;
    }
    let root = TestRoot::new();
    let fs = rootfs();
    let mut spec = kiln_executor::spec::default_spec(&[
        "/bin/sh".to_string(),
        "-c".to_string(),
        PROBE.to_string(),
    ]);
    {
        let p = spec.process_mut().as_mut().unwrap();
        p.set_cwd(PathBuf::from("/home/app"));
        let mut user = oci_spec::runtime::User::default();
        user.set_uid(1000);
        user.set_gid(1000);
        user.set_additional_gids(Some(vec![65534]));
        p.set_user(user);
        p.env_mut().as_mut().unwrap().push("FOO=bar baz".into());
        p.env_mut().as_mut().unwrap().push("HOME=/home/app".into());
        // runc cannot clamp rlimits to the hard limit as kiln does.
        let nofile = oci_spec::runtime::PosixRlimitBuilder::default()
            .typ(oci_spec::runtime::PosixRlimitType::RlimitNofile)
            .soft(1024u64)
            .hard(1024u64)
            .build()
            .unwrap();
        p.set_rlimits(Some(vec![nofile]));
    }
    spec.set_hostname(Some("parity".into()));
    spec.root_mut()
        .as_mut()
        .unwrap()
        .set_path(fs.path().to_path_buf());
    let bundle = tempfile::tempdir().unwrap();
    let config = bundle.path().join("config.json");
    std::fs::write(&config, serde_json::to_vec_pretty(&spec).unwrap()).unwrap();
    let runc = Command::new("runc")
        .args(["--root"])
        .arg(bundle.path().join("state"))
        .args(["run", "--bundle"])
        .arg(bundle.path())
        .arg(unique("kiln-parity-"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_success(&runc);
    let kiln = root.run([
        "debug",
        "sandbox",
        "--rootfs",
        &fs.path().display().to_string(),
        "--spec",
        &config.display().to_string(),
    ]);
    assert_success(&kiln);
    // kiln (like docker) adds /etc/hosts, /etc/resolv.conf and /etc/hostname
    // to every sandbox; runc only mounts what the spec lists.
    let kiln_view: String = stdout(&kiln)
        .lines()
        .filter(|l| !l.starts_with("/etc/"))
        .map(|l| format!("{l}\n"))
        .collect();
    let runc_view: String = stdout(&runc).lines().map(|l| format!("{l}\n")).collect();
    assert_eq!(kiln_view, runc_view, "kiln (left) and runc (right) differ");
}

#[test]
fn stdin_reaches_the_process_and_no_other_descriptor_does() {
    require_root!();
    let root = TestRoot::new();
    let fs = rootfs();
    // The helper gets its control socket as stdin and the real stdin with
    // its order: the process must read kiln's stdin and see only 0-2 (ls
    // opens fd 3 itself to list the directory).
    let mut child = root
        .kiln(["debug", "sandbox", "--rootfs"])
        .arg(fs.path())
        .args(["--", "/bin/sh", "-c", "cat; ls /proc/self/fd"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut input = child.stdin.take().unwrap();
        input.write_all(b"typed\n").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert_success(&out);
    assert_eq!(stdout(&out), "typed\n0\n1\n2\n3\n", "{}", stderr(&out));
}
