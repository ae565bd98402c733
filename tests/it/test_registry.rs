//! A real registry for the tests: Debian's `docker-registry` (the CNCF
//! distribution server) on a free loopback port with a temporary storage
//! directory, optionally with htpasswd basic auth (bcrypt, from
//! apache2-utils' `htpasswd -B`). Stopped and removed when dropped.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running registry; killed (by its pid) and its storage removed on drop.
pub struct TestRegistry {
    child: Child,
    dir: tempfile::TempDir,
    /// `127.0.0.1:PORT`
    pub addr: String,
}

/// A free loopback port (bound then released; the registry binds it next).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a loopback port")
        .port()
}

impl TestRegistry {
    /// An open registry (no authentication).
    pub fn start() -> TestRegistry {
        TestRegistry::launch(None)
    }

    /// A registry that wants `user`/`password` (htpasswd, bcrypt).
    pub fn start_with_htpasswd(user: &str, password: &str) -> TestRegistry {
        TestRegistry::launch(Some((user, password)))
    }

    fn launch(auth: Option<(&str, &str)>) -> TestRegistry {
        let dir = tempfile::Builder::new()
            .prefix("kiln-registry-")
            .tempdir()
            .expect("temp dir");
        let auth_section = match auth {
            Some((user, password)) => {
                let htpasswd = dir.path().join("htpasswd");
                let out = Command::new("htpasswd")
                    .args(["-Bbn", user, password])
                    .output()
                    .expect("run htpasswd (apache2-utils)");
                assert!(out.status.success(), "htpasswd failed");
                std::fs::write(&htpasswd, &out.stdout).unwrap();
                format!(
                    "auth:\n  htpasswd:\n    realm: kiln-test\n    path: {}\n",
                    htpasswd.display()
                )
            }
            None => String::new(),
        };
        let mut last_err = String::new();
        // The port may be taken between probing and binding: try a few.
        for _ in 0..5 {
            let addr = format!("127.0.0.1:{}", free_port());
            let config = format!(
                "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n{auth_section}",
                dir.path().join("data").display()
            );
            let config_path = dir.path().join("config.yml");
            std::fs::write(&config_path, config).unwrap();
            let log_path = dir.path().join("registry.log");
            let log = std::fs::File::create(&log_path).unwrap();
            let mut child = Command::new("docker-registry")
                .arg("serve")
                .arg(&config_path)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("start docker-registry (Debian package docker-registry)");
            match wait_ready(&mut child, &addr) {
                Ok(()) => return TestRegistry { child, dir, addr },
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                    last_err = format!("{e}\n{log}");
                }
            }
        }
        panic!("docker-registry did not start: {last_err}");
    }

    /// The registry's log (its access log lists every request).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// Where it keeps blobs and repositories.
    pub fn storage(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// `127.0.0.1:PORT/REPO:TAG`
    pub fn image(&self, repo_and_tag: &str) -> String {
        format!("{}/{repo_and_tag}", self.addr)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// Waits until something at `addr` answers HTTP (or the child dies).
fn wait_ready(child: &mut Child, addr: &str) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("docker-registry exited: {status}"));
        }
        if let Ok(mut s) = TcpStream::connect(addr) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let req = format!("GET /v2/ HTTP/1.0\r\nHost: {addr}\r\n\r\n");
            if s.write_all(req.as_bytes()).is_ok() {
                let mut buf = [0u8; 12];
                if s.read_exact(&mut buf).is_ok() && buf.starts_with(b"HTTP/1.") {
                    return Ok(());
                }
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err("docker-registry did not answer within 15 s".into())
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a prepared kiln command with `input` on its standard input.
pub fn run_with_stdin(mut cmd: Command, input: &str) -> std::process::Output {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("run kiln");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().expect("wait for kiln")
}

/// A docker config directory (for `DOCKER_CONFIG`) in its own temp dir.
pub struct DockerConfigDir {
    pub dir: tempfile::TempDir,
}

impl DockerConfigDir {
    pub fn new() -> DockerConfigDir {
        DockerConfigDir {
            dir: tempfile::Builder::new()
                .prefix("kiln-docker-config-")
                .tempdir()
                .unwrap(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn config_json(&self) -> PathBuf {
        self.dir.path().join("config.json")
    }

    /// Installs a `docker-credential-kilntest` helper script in `bin/`
    /// (keeping credentials as files under `helper-store/`) and returns the
    /// PATH to run kiln with.
    pub fn install_helper(&self) -> String {
        let bin = self.dir.path().join("bin");
        let store = self.dir.path().join("helper-store");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::create_dir_all(&store).unwrap();
        let script = format!(
            r#"#!/bin/sh
store='{}'
case "$1" in
get) read -r server; key=$(printf %s "$server" | tr -c 'A-Za-z0-9' _)
     if [ -f "$store/$key" ]; then cat "$store/$key"; else echo "credentials not found in native keychain"; exit 1; fi ;;
store) doc=$(cat); server=$(printf %s "$doc" | sed 's/.*"ServerURL":"\([^"]*\)".*/\1/')
     key=$(printf %s "$server" | tr -c 'A-Za-z0-9' _); printf %s "$doc" > "$store/$key" ;;
erase) read -r server; key=$(printf %s "$server" | tr -c 'A-Za-z0-9' _)
     if [ -f "$store/$key" ]; then rm "$store/$key"; else echo "credentials not found in native keychain"; exit 1; fi ;;
*) exit 2 ;;
esac
"#,
            store.display()
        );
        let helper = bin.join("docker-credential-kilntest");
        std::fs::write(&helper, script).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        )
    }

    /// What the helper keeps (all its entries, concatenated).
    pub fn helper_contents(&self) -> String {
        let mut all = String::new();
        if let Ok(entries) = std::fs::read_dir(self.dir.path().join("helper-store")) {
            for e in entries.flatten() {
                all.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
            }
        }
        all
    }
}
