//! `RUN --mount=type=ssh` with `kiln build --ssh default[=SOCKET]`, against a
//! real `ssh-agent` holding a fresh key: the step lists the key with the
//! host's `ssh-add` (run through its own loader from a bind mount, since
//! the busybox base has none), `SSH_AUTH_SOCK` names the relay socket, the
//! socket leaves no trace in the image, and its host path is not part of
//! the cache key. A required agent that was not given is a clear error.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::require_root;
use crate::util::*;

/// An `ssh-agent -D` on a socket in a temp dir, holding one key; killed
/// (by its pid) on drop.
struct Agent {
    child: Child,
    dir: tempfile::TempDir,
}

impl Agent {
    fn start() -> Agent {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("agent.sock");
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&sock)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run ssh-agent (openssh-client)");
        let agent = Agent { child, dir };
        for _ in 0..100 {
            if sock.exists() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let key = agent.dir.path().join("id_ed25519");
        let out = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "kiln-test-key", "-f"])
            .arg(&key)
            .output()
            .unwrap();
        assert_success(&out);
        let out = Command::new("ssh-add")
            .arg(&key)
            .env("SSH_AUTH_SOCK", &sock)
            .output()
            .unwrap();
        assert_success(&out);
        agent
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("agent.sock")
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Copies the host's `ssh-add`, its libraries and its loader into `dir`.
fn host_ssh_add(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let ssh_add = PathBuf::from("/usr/bin/ssh-add");
    std::fs::copy(&ssh_add, dir.join("ssh-add")).unwrap();
    let out = Command::new("ldd").arg(&ssh_add).output().unwrap();
    assert_success(&out);
    for line in stdout(&out).lines() {
        let path = match line.split("=>").nth(1) {
            Some(rest) => rest.split_whitespace().next(),
            None => line
                .split_whitespace()
                .next()
                .filter(|p| p.starts_with('/')),
        };
        if let Some(p) = path.filter(|p| p.starts_with('/')) {
            let name = Path::new(p).file_name().unwrap();
            std::fs::copy(p, dir.join(name)).unwrap();
        }
    }
}

fn loader(dir: &Path) -> String {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.starts_with("ld-linux"))
        .expect("ssh-add has a loader")
}

#[test]
fn run_mount_ssh_reaches_the_agent_and_leaves_no_trace() {
    require_root!();
    let agent = Agent::start();
    let ctx = build_context(&[]);
    host_ssh_add(&ctx.path().join("tools"));
    let ld = loader(&ctx.path().join("tools"));
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!(
            "FROM busybox\n\
RUN --mount=type=ssh --mount=type=bind,source=tools,target=/t \
echo \"sock=$SSH_AUTH_SOCK\" && /t/{ld} --library-path /t /t/ssh-add -l && echo $((3*3))-ssh-step-ran > /done\n"
        ),
    )
    .unwrap();
    let root = TestRoot::with_busybox();
    let sock = agent.socket();
    let out_dir = root.path().join("rootfs");
    // `--ssh default` takes the agent from SSH_AUTH_SOCK.
    let out = root
        .kiln(["build", "--progress", "plain", "--ssh", "default", "-o"])
        .arg(format!("type=local,dest={}", out_dir.display()))
        .arg(ctx.path())
        .env("SSH_AUTH_SOCK", &sock)
        .output()
        .unwrap();
    assert_success(&out);
    let err = stderr(&out);
    assert!(err.contains("sock=/run/buildkit/ssh_agent.0"), "{err}");
    assert!(
        err.contains("kiln-test-key (ED25519)"),
        "the key is listed: {err}"
    );
    assert!(out_dir.join("done").exists());
    assert!(
        !out_dir.join("run/buildkit").exists(),
        "the socket is not in the image"
    );
    // The same agent under another path: the step stays cached.
    let alias = agent.dir.path().join("alias.sock");
    std::os::unix::fs::symlink(agent.socket(), &alias).unwrap();
    let err = root.build_ok(
        ctx.path(),
        ["--ssh", &format!("default={}", alias.display())],
    );
    assert!(
        !err.contains("kiln-test-key"),
        "cached, not run again: {err}"
    );
    assert!(err.contains("CACHED"), "{err}");
}

#[test]
fn a_missing_agent_is_a_clear_error() {
    require_root!();
    let root = TestRoot::with_busybox();
    let ctx = build_context(&[(
        "Dockerfile",
        "FROM busybox\nRUN --mount=type=ssh,required=true true\n",
    )]);
    // Required but not given.
    let out = root
        .kiln(["build", "--progress", "plain"])
        .arg(ctx.path())
        .env_remove("SSH_AUTH_SOCK")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let flat = err
        .split_whitespace()
        .filter(|w| *w != "|")
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        flat.contains("ssh agent \"default\" requested by RUN --mount=type=ssh but none was given: pass --ssh default"),
        "{err}"
    );
    assert!(err.contains("Dockerfile:2:1"), "{err}");
    // --ssh default without SSH_AUTH_SOCK, and a key file instead of a socket.
    let out = root
        .kiln(["build", "--ssh", "default"])
        .arg(ctx.path())
        .env_remove("SSH_AUTH_SOCK")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("SSH_AUTH_SOCK is not set"),
        "{}",
        stderr(&out)
    );
    let key = ctx.path().join("Dockerfile");
    let out = root
        .kiln(["build", "--ssh"])
        .arg(format!("default={}", key.display()))
        .arg(ctx.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("not an agent socket"),
        "{}",
        stderr(&out)
    );
}
