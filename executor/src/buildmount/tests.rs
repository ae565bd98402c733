//! Unit tests of mount preparation: the spec entries produced and what is
//! staged on the host (the sandbox side is tested black-box).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::Duration;

use super::*;
use crate::fileop::select::tests::TestIgnore;

struct Env {
    _t: tempfile::TempDir,
    root: PathBuf,
    scratch: PathBuf,
    ctx: PathBuf,
    secrets: HashMap<String, SecretSource>,
    agents: HashMap<String, PathBuf>,
}

fn env() -> Env {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("root");
    let scratch = t.path().join("scratch");
    let ctx = t.path().join("ctx");
    for d in [&root, &scratch, &ctx] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::create_dir_all(ctx.join("src")).unwrap();
    std::fs::write(ctx.join("src/main.go"), "package main").unwrap();
    std::fs::write(ctx.join("src/secret.env"), "KEY=1").unwrap();
    std::fs::write(t.path().join("token"), "s3cr3t").unwrap();
    let mut secrets = HashMap::new();
    secrets.insert(
        "token".to_owned(),
        SecretSource::File(t.path().join("token")),
    );
    Env {
        root,
        scratch,
        ctx,
        secrets,
        agents: HashMap::new(),
        _t: t,
    }
}

impl Env {
    fn cx(&self) -> MountContext<'_> {
        MountContext {
            kiln_root: &self.root,
            scratch: &self.scratch,
            secrets: &self.secrets,
            ssh_agents: &self.agents,
        }
    }
}

fn cache(id: &str, sharing: Sharing) -> CacheMount {
    CacheMount {
        id: id.into(),
        target: "/root/.cache".into(),
        sharing,
        readonly: false,
        uid: 0,
        gid: 0,
        mode: 0o755,
        from: None,
        source: None,
    }
}

fn source_of(m: &Mount) -> PathBuf {
    m.source().clone().unwrap()
}

#[test]
fn cache_mount_persists_per_id() {
    let e = env();
    let p = prepare(
        &e.cx(),
        "/",
        &[MountSpec::Cache(cache("go", Sharing::Shared))],
    )
    .unwrap();
    let m = &p.mounts[0];
    assert_eq!(m.destination(), Path::new("/root/.cache"));
    assert_eq!(m.typ().as_deref(), Some("bind"));
    assert_eq!(m.options().as_deref().unwrap(), ["rbind", "rw"]);
    let dir = source_of(m);
    assert!(dir.starts_with(e.root.join("mounts/cache")));
    std::fs::write(dir.join("kept"), "x").unwrap();
    drop(p);
    let p = prepare(
        &e.cx(),
        "/",
        &[MountSpec::Cache(cache("go", Sharing::Shared))],
    )
    .unwrap();
    assert!(source_of(&p.mounts[0]).join("kept").exists());
    let other = prepare(
        &e.cx(),
        "/",
        &[MountSpec::Cache(cache("npm", Sharing::Shared))],
    )
    .unwrap();
    assert_ne!(source_of(&other.mounts[0]), source_of(&p.mounts[0]));
    // Two shared users at once get the same directory.
    let again = prepare(
        &e.cx(),
        "/",
        &[MountSpec::Cache(cache("go", Sharing::Shared))],
    )
    .unwrap();
    assert_eq!(source_of(&again.mounts[0]), source_of(&p.mounts[0]));
}

#[test]
fn cache_owner_mode_and_seed_on_creation() {
    let e = env();
    let mut c = cache("seeded", Sharing::Shared);
    c.mode = 0o700;
    c.from = Some(e.ctx.clone());
    c.source = Some("src".into());
    if nix::unistd::geteuid().is_root() {
        c.uid = 1000;
        c.gid = 1000;
    }
    let p = prepare(&e.cx(), "/", &[MountSpec::Cache(c.clone())]).unwrap();
    let dir = source_of(&p.mounts[0]);
    let m = std::fs::metadata(&dir).unwrap();
    assert_eq!(m.mode() & 0o7777, 0o700);
    assert_eq!(m.uid(), c.uid);
    assert_eq!(
        std::fs::read_to_string(dir.join("main.go")).unwrap(),
        "package main"
    );
}

#[test]
fn private_cache_gets_its_own_instance_while_busy() {
    let e = env();
    let a = prepare(
        &e.cx(),
        "/",
        &[MountSpec::Cache(cache("p", Sharing::Private))],
    )
    .unwrap();
    let b = prepare(
        &e.cx(),
        "/",
        &[MountSpec::Cache(cache("p", Sharing::Private))],
    )
    .unwrap();
    assert_ne!(source_of(&a.mounts[0]), source_of(&b.mounts[0]));
    let first = source_of(&a.mounts[0]);
    drop(a);
    let c = prepare(
        &e.cx(),
        "/",
        &[MountSpec::Cache(cache("p", Sharing::Private))],
    )
    .unwrap();
    assert_eq!(source_of(&c.mounts[0]), first, "a free instance is reused");
}

#[test]
fn locked_cache_waits_for_its_holder() {
    let e = env();
    let held = prepare(
        &e.cx(),
        "/",
        &[MountSpec::Cache(cache("l", Sharing::Locked))],
    )
    .unwrap();
    let root = e.root.clone();
    let scratch = e.scratch.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let secrets = HashMap::new();
        let agents = HashMap::new();
        let cx = MountContext {
            kiln_root: &root,
            scratch: &scratch,
            secrets: &secrets,
            ssh_agents: &agents,
        };
        let p = prepare(&cx, "/", &[MountSpec::Cache(cache("l", Sharing::Locked))]).unwrap();
        tx.send(()).unwrap();
        drop(p);
    });
    assert!(
        rx.recv_timeout(Duration::from_millis(300)).is_err(),
        "second locked user must wait"
    );
    drop(held);
    rx.recv_timeout(Duration::from_secs(10))
        .expect("granted after release");
    waiter.join().unwrap();
}

fn secret(id: &str) -> SecretMount {
    SecretMount {
        id: id.into(),
        target: None,
        env: None,
        required: false,
        mode: 0o400,
        uid: 0,
        gid: 0,
    }
}

#[test]
fn secret_mounted_read_only_outside_the_rootfs_and_removed_after() {
    let e = env();
    let p = prepare(&e.cx(), "/", &[MountSpec::Secret(secret("token"))]).unwrap();
    let m = &p.mounts[0];
    assert_eq!(m.destination(), Path::new("/run/secrets/token"));
    assert!(m.options().as_ref().unwrap().contains(&"ro".to_owned()));
    let staged = source_of(m);
    assert!(!staged.starts_with(&e.root) && !staged.starts_with(&e.scratch));
    assert_eq!(std::fs::read_to_string(&staged).unwrap(), "s3cr3t");
    assert_eq!(
        std::fs::metadata(&staged).unwrap().permissions().mode() & 0o7777,
        0o400
    );
    assert!(
        !format!("{p:?}").contains("s3cr3t"),
        "Debug never shows values"
    );
    drop(p);
    assert!(!staged.exists());
}

#[test]
fn secret_target_env_and_required() {
    let e = env();
    let mut s = secret("token");
    s.target = Some("creds".into());
    s.mode = 0o444;
    let p = prepare(&e.cx(), "/work", &[MountSpec::Secret(s)]).unwrap();
    assert_eq!(p.mounts[0].destination(), Path::new("/work/creds"));
    let mut s = secret("token");
    s.env = Some("TOKEN".into());
    let p = prepare(&e.cx(), "/", &[MountSpec::Secret(s)]).unwrap();
    assert!(p.mounts.is_empty());
    assert_eq!(p.env, ["TOKEN=s3cr3t"]);
    let p = prepare(&e.cx(), "/", &[MountSpec::Secret(secret("absent"))]).unwrap();
    assert!(p.mounts.is_empty(), "an optional missing secret is skipped");
    let mut s = secret("absent");
    s.required = true;
    let err = prepare(&e.cx(), "/", &[MountSpec::Secret(s)]).unwrap_err();
    assert!(matches!(err, MountError::SecretNotFound { .. }), "{err}");
    assert!(err.to_string().contains("--secret id=absent"));
}

#[test]
fn secret_from_environment_variable() {
    let mut e = env();
    // PATH is always set; no test changes the process environment.
    let expected = std::env::var("PATH").unwrap();
    e.secrets
        .insert("e".into(), SecretSource::Env("PATH".into()));
    let p = prepare(&e.cx(), "/", &[MountSpec::Secret(secret("e"))]).unwrap();
    assert_eq!(
        std::fs::read_to_string(source_of(&p.mounts[0])).unwrap(),
        expected
    );
}

#[test]
fn bind_read_only_rw_overlay_and_dockerignore() {
    let e = env();
    let ro = BindMount {
        from: &e.ctx,
        ignore: None,
        source: "src".into(),
        target: "/src".into(),
        rw: false,
    };
    let p = prepare(&e.cx(), "/", &[MountSpec::Bind(ro.clone())]).unwrap();
    assert_eq!(source_of(&p.mounts[0]), e.ctx.join("src"));
    assert_eq!(p.mounts[0].options().as_deref().unwrap(), ["rbind", "ro"]);
    let rw = BindMount {
        rw: true,
        ..ro.clone()
    };
    let p = prepare(&e.cx(), "/", &[MountSpec::Bind(rw)]).unwrap();
    assert_eq!(p.mounts[0].typ().as_deref(), Some("overlay"));
    let opts = p.mounts[0].options().clone().unwrap();
    assert_eq!(opts[0], format!("lowerdir={}", e.ctx.join("src").display()));
    assert!(opts[1].starts_with(&format!("upperdir={}", e.scratch.display())));
    let ig = TestIgnore(vec!["src/secret.env".into()]);
    let filtered = BindMount {
        ignore: Some(&ig),
        ..ro.clone()
    };
    let p = prepare(&e.cx(), "/", &[MountSpec::Bind(filtered)]).unwrap();
    let src = source_of(&p.mounts[0]);
    assert!(src.starts_with(&e.scratch));
    assert!(src.join("main.go").exists());
    assert!(!src.join("secret.env").exists());
    let nothing_hidden = TestIgnore(vec!["other".into()]);
    let direct = BindMount {
        ignore: Some(&nothing_hidden),
        ..ro.clone()
    };
    let p = prepare(&e.cx(), "/", &[MountSpec::Bind(direct)]).unwrap();
    assert_eq!(source_of(&p.mounts[0]), e.ctx.join("src"));
    let missing = BindMount {
        source: "nope".into(),
        ..ro
    };
    assert!(matches!(
        prepare(&e.cx(), "/", &[MountSpec::Bind(missing)]),
        Err(MountError::BindSourceNotFound { .. })
    ));
}

#[test]
fn tmpfs_with_size() {
    let e = env();
    let p = prepare(
        &e.cx(),
        "/app",
        &[MountSpec::Tmpfs(TmpfsMount {
            target: "tmp".into(),
            size: Some(1 << 20),
        })],
    )
    .unwrap();
    let m = &p.mounts[0];
    assert_eq!(m.destination(), Path::new("/app/tmp"));
    assert_eq!(m.typ().as_deref(), Some("tmpfs"));
    assert!(
        m.options()
            .as_ref()
            .unwrap()
            .contains(&"size=1048576".to_owned())
    );
}

fn ssh(required: bool) -> SshMount {
    SshMount {
        id: "default".into(),
        target: None,
        required,
        mode: 0o600,
        uid: 0,
        gid: 0,
    }
}

#[test]
fn ssh_forwards_to_the_agent() {
    let mut e = env();
    let agent = e._t.path().join("agent.sock");
    let listener = UnixListener::bind(&agent).unwrap();
    std::thread::spawn(move || {
        for c in listener.incoming() {
            let mut c = c.unwrap();
            let mut buf = [0u8; 5];
            c.read_exact(&mut buf).unwrap();
            c.write_all(&buf.map(|b| b.to_ascii_uppercase())).unwrap();
        }
    });
    e.agents.insert("default".into(), agent);
    let p = prepare(&e.cx(), "/", &[MountSpec::Ssh(ssh(true))]).unwrap();
    assert_eq!(
        p.mounts[0].destination(),
        Path::new("/run/buildkit/ssh_agent.0")
    );
    assert_eq!(p.env, ["SSH_AUTH_SOCK=/run/buildkit/ssh_agent.0"]);
    let sock = source_of(&p.mounts[0]);
    assert_eq!(
        std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let mut c = UnixStream::connect(&sock).unwrap();
    c.write_all(b"hello").unwrap();
    let mut out = [0u8; 5];
    c.read_exact(&mut out).unwrap();
    assert_eq!(&out, b"HELLO");
    drop(c);
    drop(p);
    assert!(!sock.exists());
}

#[test]
fn ssh_without_agent() {
    let e = env();
    let err = prepare(&e.cx(), "/", &[MountSpec::Ssh(ssh(true))]).unwrap_err();
    assert!(matches!(err, MountError::SshAgentMissing { .. }), "{err}");
    assert!(
        prepare(&e.cx(), "/", &[MountSpec::Ssh(ssh(false))])
            .unwrap()
            .mounts
            .is_empty()
    );
}
