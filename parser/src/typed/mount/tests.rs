//! Unit tests of `--mount` parsing.

use super::*;
use crate::expand::{BuildArgs, PlatformArgs};

fn mount(raw: &str) -> Result<Mount, MountError> {
    let spec = MountSpec::new(raw, Span::default())?;
    let scope = Scope::global('\\', BuildArgs::new(), &PlatformArgs::host());
    spec.resolve(&scope).map(|e| e.value)
}

#[test]
fn every_type_with_its_options() {
    assert_eq!(
        mount("type=bind,from=builder,source=/out,target=/in,rw").unwrap(),
        Mount::Bind(BindMount {
            target: "/in".into(),
            source: Some("/out".into()),
            from: Some("builder".into()),
            readwrite: true,
        })
    );
    let Mount::Cache(c) =
        mount("type=cache,target=/root/.cache,id=pip,sharing=locked,mode=0700,uid=1,gid=2")
            .unwrap()
    else {
        panic!("not a cache mount");
    };
    assert_eq!(
        (c.id.as_str(), c.sharing, c.mode, c.uid, c.gid),
        ("pip", CacheSharing::Locked, Some(0o700), Some(1), Some(2))
    );
    let Mount::Cache(c) = mount("type=cache,target=/x").unwrap() else {
        panic!("not a cache mount");
    };
    assert_eq!(
        (c.id.as_str(), c.sharing, c.readonly),
        ("/x", CacheSharing::Shared, false)
    );
    assert_eq!(
        mount("type=tmpfs,target=/scratch,size=64m").unwrap(),
        Mount::Tmpfs(TmpfsMount {
            target: "/scratch".into(),
            size: Some(64 << 20)
        })
    );
    let Mount::Secret(s) = mount("type=secret,id=token,required=true").unwrap() else {
        panic!("not a secret mount");
    };
    assert_eq!(
        (s.id.as_str(), s.target.as_deref(), s.required),
        ("token", Some("/run/secrets/token"), true)
    );
    let Mount::Secret(s) = mount("type=secret,target=/etc/key").unwrap() else {
        panic!("not a secret mount");
    };
    assert_eq!(s.id, "key");
    let Mount::Secret(s) = mount("type=secret,id=t,env=TOKEN").unwrap() else {
        panic!("not a secret mount");
    };
    assert_eq!((s.target, s.env.as_deref()), (None, Some("TOKEN")));
    let Mount::Ssh(s) = mount("type=ssh").unwrap() else {
        panic!("not an ssh mount");
    };
    assert_eq!((s.id.as_str(), s.target), ("default", None));
}

#[test]
fn bad_mounts() {
    assert!(matches!(
        mount("type=nfs,target=/x"),
        Err(MountError::UnknownType { .. })
    ));
    assert!(matches!(
        mount("type=bind,target=/x,size=1"),
        Err(MountError::UnexpectedKey { .. })
    ));
    assert!(matches!(
        mount("type=cache,target=/x,bogus=1"),
        Err(MountError::UnexpectedKey { .. })
    ));
    assert!(matches!(
        mount("type=cache,target=/x,mode=9"),
        Err(MountError::BadValue { .. })
    ));
    assert!(matches!(
        mount("type=cache,target=/x,sharing=all"),
        Err(MountError::BadValue { .. })
    ));
    assert!(matches!(
        mount("type=bind"),
        Err(MountError::MissingTarget { .. })
    ));
    assert!(matches!(
        mount("type=secret"),
        Err(MountError::SecretWithoutId)
    ));
    assert!(matches!(
        mount("type=secret,id=a,source=b"),
        Err(MountError::SecretSourceAndId)
    ));
    assert!(matches!(
        mount("type=tmpfs,target"),
        Err(MountError::NotKeyValue { .. })
    ));
    assert!(matches!(
        mount("target=/x,from=$STAGE"),
        Err(MountError::FromWithVariable { .. })
    ));
    assert!(matches!(
        mount("target=a\"b"),
        Err(MountError::Syntax { .. })
    ));
}

#[test]
fn csv_fields_and_expansion() {
    assert_eq!(
        split_fields("a=1,\"b=2,3\",\"c=\"\"q\"\"\"").unwrap(),
        vec!["a=1", "b=2,3", "c=\"q\""]
    );
    let spec = MountSpec::new("type=cache,target=$DIR,id=${ID:-x}", Span::default()).unwrap();
    let mut args = BuildArgs::new();
    args.insert("DIR".into(), "/c".into());
    let mut scope = Scope::global('\\', args, &PlatformArgs::host());
    scope
        .declare_args(&[crate::typed::ArgDecl {
            name: "DIR".into(),
            default: None,
            span: Span::default(),
        }])
        .unwrap();
    let resolved = spec.resolve(&scope).unwrap();
    let Mount::Cache(c) = resolved.value else {
        panic!("not a cache mount");
    };
    assert_eq!((c.target.as_str(), c.id.as_str()), ("/c", "x"));
    assert!(resolved.used_args.contains("DIR"));
}

#[test]
fn sizes() {
    assert_eq!(parse_size("1024"), Some(1024));
    assert_eq!(parse_size("1k"), Some(1024));
    assert_eq!(parse_size("2GiB"), Some(2 << 30));
    assert_eq!(parse_size("1.5m"), Some(3 << 19));
    assert_eq!(parse_size("x"), None);
}
