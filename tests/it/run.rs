//! `kiln run` as docker runs a container: CMD/ENTRYPOINT combinations,
//! arguments replacing CMD, exit statuses (the container's, 125/126/127),
//! environment, working directory, user, bind mounts and volumes, names,
//! a terminal driven through a pseudo-terminal, memory limits and OOM.

use std::process::{Command, Stdio};

use crate::require_root;
use crate::util::*;

/// Removes every container of the root when dropped, so a failed test
/// leaves no process or mount behind.
pub struct Containers<'a>(pub &'a TestRoot);

impl Drop for Containers<'_> {
    fn drop(&mut self) {
        let ids = self.0.run(["ps", "-aq", "--no-trunc"]);
        for id in stdout(&ids).lines() {
            let _ = self.0.run(["rm", "-f", id]);
        }
    }
}

fn code(out: &std::process::Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

/// Imports the busybox base as `name` with extra Dockerfile changes.
fn import_with(root: &TestRoot, name: &str, changes: &[&str]) {
    let mut cmd = root.kiln(["import"]);
    for c in changes {
        cmd.arg("--change").arg(c);
    }
    let out = cmd
        .arg(busybox_rootfs_tar())
        .arg(name)
        .output()
        .expect("run kiln import");
    assert_success(&out);
}

#[test]
fn cmd_and_entrypoint_combine_as_docker() {
    require_root!();
    let root = TestRoot::with_busybox();
    let _c = Containers(&root);
    import_with(
        &root,
        "ep",
        &[r#"ENTRYPOINT ["echo", "ep"]"#, r#"CMD ["default"]"#],
    );
    import_with(&root, "shellform", &["CMD echo shell form $HOME"]);
    let run = |args: &[&str]| {
        let mut all = vec!["run", "--rm", "--network", "none"];
        all.extend_from_slice(args);
        root.ok(all)
    };
    assert_eq!(run(&["ep"]), "ep default\n");
    // Arguments replace CMD, not ENTRYPOINT.
    assert_eq!(run(&["ep", "x", "-y"]), "ep x -y\n");
    // --entrypoint replaces ENTRYPOINT and clears CMD.
    assert_eq!(run(&["--entrypoint", "echo", "ep"]), "\n");
    assert_eq!(run(&["--entrypoint", "echo", "ep", "a", "b"]), "a b\n");
    // --entrypoint "" clears it: the arguments are the command.
    assert_eq!(run(&["--entrypoint", "", "ep", "echo", "plain"]), "plain\n");
    // Shell form goes through /bin/sh -c (variables expanded).
    assert_eq!(run(&["shellform"]), "shell form /root\n");
    // Arguments replace the image's CMD.
    let ls = run(&["busybox", "ls", "/"]);
    for dir in ["bin", "etc", "proc", "tmp"] {
        assert!(ls.lines().any(|l| l == dir), "{ls}");
    }
    // Nothing to run at all.
    let out = root.run(["run", "--rm", "--entrypoint", "", "ep"]);
    assert_eq!(code(&out), 125, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no command specified"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn exit_statuses_as_docker() {
    require_root!();
    let root = TestRoot::with_busybox();
    let _c = Containers(&root);
    let out = root.run([
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "exit 42",
    ]);
    assert_eq!(code(&out), 42);
    let out = root.run(["run", "--rm", "busybox", "no-such-command"]);
    assert_eq!(code(&out), 127, "{}", stderr(&out));
    assert!(stderr(&out).contains("no-such-command"), "{}", stderr(&out));
    let out = root.run(["run", "--rm", "busybox", "/etc/passwd"]);
    assert_eq!(code(&out), 126, "{}", stderr(&out));
    // kiln's own errors: 125.
    let out = root.run(["run", "--rm", "--memory", "1k", "busybox", "true"]);
    assert_eq!(code(&out), 125, "{}", stderr(&out));
    // (Never pulled: tests do not reach Docker Hub.)
    let out = root.run(["run", "--rm", "--pull", "never", "no-such-image"]);
    assert_eq!(code(&out), 125, "{}", stderr(&out));
    assert!(stderr(&out).contains("no such image"), "{}", stderr(&out));
    // A detached start that cannot exec fails the same way.
    let out = root.run(["run", "-d", "busybox", "no-such-command"]);
    assert_eq!(code(&out), 127, "{}", stderr(&out));
    // --rm containers are gone whatever happened.
    let ps = root.ok(["ps", "-a", "--format", "json"]);
    assert_eq!(ps.lines().count(), 1, "{ps}");
}

#[test]
fn environment_workdir_and_user() {
    require_root!();
    let root = TestRoot::with_busybox();
    let _c = Containers(&root);
    import_with(
        &root,
        "envimg",
        &[
            "ENV FROM_IMAGE=img OVERRIDDEN=img",
            "WORKDIR /srv",
            "USER app",
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let env_file = dir.path().join("env");
    std::fs::write(&env_file, "# comment\nFROM_FILE=file\nOVERRIDDEN=file\n").unwrap();
    let out = root
        .kiln([
            "run",
            "--rm",
            "--network",
            "none",
            "-e",
            "OVERRIDDEN=flag",
            "-e",
            "FROM_HOST",
        ])
        .arg("--env-file")
        .arg(&env_file)
        .args([
            "envimg",
            "sh",
            "-c",
            "echo $FROM_IMAGE $FROM_FILE $OVERRIDDEN $FROM_HOST; pwd; id -u; echo $HOME",
        ])
        .env("FROM_HOST", "host")
        .output()
        .unwrap();
    assert_success(&out);
    assert_eq!(stdout(&out), "img file flag host\n/srv\n1000\n/home/app\n");
    // -w (created when missing) and -u user:group override the image.
    let out = root.ok([
        "run",
        "--rm",
        "--network",
        "none",
        "-w",
        "/new/dir",
        "-u",
        "nobody:app",
        "envimg",
        "sh",
        "-c",
        "pwd; id -u; id -g",
    ]);
    assert_eq!(out, "/new/dir\n65534\n1000\n");
    // PATH and HOSTNAME as docker sets them; the hostname is the short id.
    let out = root.ok([
        "run",
        "--rm",
        "--name",
        "envtest",
        "busybox",
        "sh",
        "-c",
        "echo $HOSTNAME; hostname",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0].len(), 12, "{out}");
    assert_eq!(lines[0], lines[1]);
    let out = root.run(["run", "--rm", "-u", "ghost", "busybox", "true"]);
    assert_eq!(code(&out), 125);
    assert!(
        stderr(&out).contains("unable to find user ghost"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn bind_mounts_volumes_and_tmpfs() {
    require_root!();
    let root = TestRoot::with_busybox();
    let _c = Containers(&root);
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("in.txt"), "from the host\n").unwrap();
    let bind = format!("{}:/data", host.path().display());
    let out = root.ok([
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &bind,
        "busybox",
        "sh",
        "-c",
        "cat /data/in.txt; echo from the container > /data/out.txt",
    ]);
    assert_eq!(out, "from the host\n");
    assert_eq!(
        std::fs::read_to_string(host.path().join("out.txt")).unwrap(),
        "from the container\n"
    );
    // :ro refuses writes.
    let ro = format!("{bind}:ro");
    let out = root.run([
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &ro,
        "busybox",
        "sh",
        "-c",
        "cat /data/in.txt && touch /data/nope",
    ]);
    assert_ne!(code(&out), 0);
    assert_eq!(stdout(&out), "from the host\n");
    assert!(
        stderr(&out).contains("Read-only file system"),
        "{}",
        stderr(&out)
    );
    assert!(!host.path().join("nope").exists());
    // A named volume outlives its container.
    root.ok([
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "cache:/cache",
        "busybox",
        "sh",
        "-c",
        "echo kept > /cache/f",
    ]);
    let out = root.ok([
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "cache:/c:ro",
        "busybox",
        "cat",
        "/c/f",
    ]);
    assert_eq!(out, "kept\n");
    assert!(
        root.ok(["volume", "ls", "-q"])
            .lines()
            .any(|l| l == "cache")
    );
    root.ok(["volume", "rm", "cache"]);
    // tmpfs.
    let out = root.ok([
        "run",
        "--rm",
        "--network",
        "none",
        "--tmpfs",
        "/scratch:size=1m",
        "busybox",
        "sh",
        "-c",
        "grep /scratch /proc/mounts",
    ]);
    assert!(out.starts_with("tmpfs /scratch tmpfs"), "{out}");
    assert!(out.contains("size=1024k"), "{out}");
}

#[test]
fn names_are_unique_and_ids_resolve_by_prefix() {
    require_root!();
    let root = TestRoot::with_busybox();
    let _c = Containers(&root);
    let id = root.ok(["create", "--name", "one", "busybox", "true"]);
    let id = id.trim();
    assert_eq!(id.len(), 64);
    let out = root.run(["create", "--name", "one", "busybox", "true"]);
    assert_eq!(code(&out), 125);
    assert!(stderr(&out).contains("already in use"), "{}", stderr(&out));
    let out = root.run(["create", "--name", "bad name", "busybox", "true"]);
    assert_eq!(code(&out), 125);
    // A generated name: adjective_noun.
    root.ok(["create", "busybox", "true"]);
    let ps = root.ok(["ps", "-a", "--format", "json"]);
    let names: Vec<String> = ps
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["Names"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(names.contains(&"one".to_string()));
    assert!(
        names.iter().any(|n| n != "one" && n.contains('_')),
        "{names:?}"
    );
    // Created, not running; removed by id prefix.
    assert!(root.ok(["ps"]).lines().count() == 1);
    assert_eq!(root.ok(["rm", &id[..6]]).trim(), &id[..6]);
    let out = root.run(["rm", "one"]);
    assert_eq!(code(&out), 1);
}

#[test]
fn interactive_terminal_through_a_pty() {
    require_root!();
    let root = TestRoot::with_busybox();
    let _c = Containers(&root);
    // util-linux's `script` gives kiln a terminal; the test types into it.
    let kiln = format!(
        "stty cols 91 rows 27; {} --root {} run --rm -it --network none busybox sh",
        kiln_bin().display(),
        root.root_dir().display()
    );
    let mut child = Command::new("script")
        .args(["-qfec", &kiln, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run script (util-linux)");
    let mut input = child.stdin.take().unwrap();
    let typing = std::thread::spawn(move || {
        use std::io::Write;
        for line in ["echo typed-$((6*7))\r", "stty size\r", "tty\r", "exit 7\r"] {
            std::thread::sleep(std::time::Duration::from_millis(700));
            input.write_all(line.as_bytes()).unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    });
    let out = child.wait_with_output().unwrap();
    typing.join().unwrap();
    let text = stdout(&out);
    assert!(text.contains("typed-42"), "{text}");
    // The window size was passed on, and the shell has a real terminal.
    assert!(text.contains("27 91"), "{text}");
    assert!(text.contains("/dev/pts/"), "{text}");
    assert_eq!(code(&out), 7, "{text}");
}

#[test]
fn memory_limit_ends_in_oom() {
    require_root!();
    let root = TestRoot::with_busybox();
    let _c = Containers(&root);
    // dd's 64 MiB buffer cannot fit under 32 MiB.
    let out = root.run([
        "run",
        "--name",
        "hog",
        "--network",
        "none",
        "--memory",
        "32m",
        "busybox",
        "dd",
        "if=/dev/zero",
        "of=/dev/null",
        "bs=64M",
        "count=1",
    ]);
    assert_eq!(code(&out), 137, "{}", stderr(&out));
    let ps = root.ok(["ps", "-a"]);
    assert!(
        ps.contains("Exited (137)") && ps.contains("OOM killed"),
        "{ps}"
    );
    let inspect: serde_json::Value =
        serde_json::from_str(&root.ok(["container", "inspect", "hog"])).unwrap();
    assert_eq!(inspect[0]["State"]["OOMKilled"], true);
    assert_eq!(inspect[0]["HostConfig"]["Memory"], 32 << 20);
    // Under the limit it runs.
    root.ok([
        "run",
        "--rm",
        "--network",
        "none",
        "--memory",
        "32m",
        "--pids-limit",
        "20",
        "--cpus",
        "0.5",
        "busybox",
        "dd",
        "if=/dev/zero",
        "of=/dev/null",
        "bs=8M",
        "count=1",
    ]);
}

#[test]
fn signals_to_kiln_reach_the_container() {
    require_root!();
    let root = TestRoot::with_busybox();
    let _c = Containers(&root);
    let script = "trap 'echo got-term; exit 5' TERM; trap 'echo got-int; exit 6' INT; \
                  echo ready; while :; do sleep 0.1; done";
    for (signal, expected, code_expected) in [
        (nix::sys::signal::Signal::SIGTERM, "got-term", 5),
        (nix::sys::signal::Signal::SIGINT, "got-int", 6),
    ] {
        let mut child = root
            .kiln([
                "run",
                "--rm",
                "--network",
                "none",
                "busybox",
                "sh",
                "-c",
                script,
            ])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = child.stdout.take().unwrap();
        let mut first = [0u8; 6];
        std::io::Read::read_exact(&mut out, &mut first).unwrap();
        assert_eq!(&first, b"ready\n");
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal).unwrap();
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
        let status = child.wait().unwrap();
        assert_eq!(rest, format!("{expected}\n"));
        assert_eq!(status.code(), Some(code_expected));
    }
}
