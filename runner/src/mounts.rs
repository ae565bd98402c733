//! `-v` and `--tmpfs` as docker parses them: `-v /host:/ctr[:ro]` binds a
//! host path (created as a directory when missing), `-v name:/ctr` a named
//! volume kept in the kiln root, `-v /ctr` a fresh anonymous volume;
//! `--tmpfs /ctr[:size=64m,mode=1777]` a tmpfs with docker's
//! `nosuid,nodev,noexec` defaults. An image's `VOLUME` paths that no flag
//! mounts become anonymous volumes ([`image_volumes`]).

use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::MountError;
use crate::names::validate_name;

/// Where a volume's content lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "type", content = "source")]
pub enum VolumeSource {
    /// A host path (absolute, normalised).
    Bind(PathBuf),
    /// A named volume in the kiln root.
    Named(String),
    /// A volume made for this container (its name is assigned at create
    /// time and stored as `Named`; this variant exists only while parsing).
    Anonymous,
}

/// One `-v` flag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeSpec {
    pub source: VolumeSource,
    /// Absolute path inside the container.
    pub target: String,
    pub read_only: bool,
    /// Removed with the container (`--rm`, `rm -v`): anonymous volumes.
    #[serde(default)]
    pub anonymous: bool,
    /// `:nocopy`: an empty volume is not seeded with the image's content.
    #[serde(default)]
    pub no_copy: bool,
}

/// One `--tmpfs` flag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TmpfsSpec {
    pub target: String,
    /// Mount options after docker's defaults (`nosuid,nodev,noexec`).
    pub options: Vec<String>,
}

pub(crate) fn clean_container_path(text: &str, spec: &str) -> Result<String, MountError> {
    if !text.starts_with('/') {
        return Err(MountError::Invalid {
            spec: spec.to_string(),
            reason: format!("the container path {text:?} is not absolute"),
        });
    }
    let mut parts: Vec<&str> = Vec::new();
    for c in Path::new(text).components() {
        match c {
            Component::Normal(p) => parts.push(p.to_str().unwrap_or_default()),
            Component::ParentDir => {
                parts.pop();
            }
            _ => {}
        }
    }
    if parts.is_empty() {
        return Err(MountError::Invalid {
            spec: spec.to_string(),
            reason: "the container path cannot be '/'".to_string(),
        });
    }
    Ok(format!("/{}", parts.join("/")))
}

fn clean_host_path(text: &str) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in Path::new(text).components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

/// Parses one `-v` value.
pub fn parse_volume(spec: &str) -> Result<VolumeSpec, MountError> {
    let fields: Vec<&str> = spec.split(':').collect();
    let (source, target, mode) = match fields.as_slice() {
        [target] => (None, *target, None),
        [source, target] if target.starts_with('/') => (Some(*source), *target, None),
        // `/ctr:ro` — an anonymous volume with a mode.
        [target, mode] => (None, *target, Some(*mode)),
        [source, target, mode] => (Some(*source), *target, Some(*mode)),
        _ => {
            return Err(MountError::Invalid {
                spec: spec.to_string(),
                reason: "expected SOURCE:TARGET[:MODE]".to_string(),
            });
        }
    };
    let mut read_only = false;
    let mut no_copy = false;
    for opt in mode
        .unwrap_or_default()
        .split(',')
        .filter(|o| !o.is_empty())
    {
        match opt {
            "ro" => read_only = true,
            "rw" => read_only = false,
            "nocopy" => no_copy = true,
            // SELinux labels, propagation and consistency: accepted, no effect.
            "z" | "Z" | "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave"
            | "consistent" | "cached" | "delegated" => {}
            other => {
                return Err(MountError::Invalid {
                    spec: spec.to_string(),
                    reason: format!("invalid mode {other:?}"),
                });
            }
        }
    }
    let target = clean_container_path(target, spec)?;
    let (source, anonymous) = match source {
        None => (VolumeSource::Anonymous, true),
        Some(s) if s.starts_with('/') => (VolumeSource::Bind(clean_host_path(s)), false),
        Some(s) => {
            let name = validate_name(s).map_err(|_| MountError::Invalid {
                spec: spec.to_string(),
                reason: format!(
                    "{s:?} is not a valid volume name ([a-zA-Z0-9][a-zA-Z0-9_.-]+); \
                     a host directory must be an absolute path"
                ),
            })?;
            (VolumeSource::Named(name), false)
        }
    };
    Ok(VolumeSpec {
        source,
        target,
        read_only,
        anonymous,
        no_copy,
    })
}

/// The anonymous volumes an image's `VOLUME` declarations add: one per
/// path that none of the user's volumes and tmpfs mounts already covers,
/// sorted by path (so parents are mounted before children).
pub fn image_volumes(
    declared: &[String],
    volumes: &[VolumeSpec],
    tmpfs: &[TmpfsSpec],
) -> Vec<VolumeSpec> {
    let mut out: Vec<VolumeSpec> = Vec::new();
    for path in declared {
        // docker ignores what it cannot use as a mount point
        let Ok(target) = clean_container_path(path, path) else {
            continue;
        };
        let taken = volumes.iter().any(|v| v.target == target)
            || tmpfs.iter().any(|t| t.target == target)
            || out.iter().any(|v| v.target == target);
        if !taken {
            out.push(VolumeSpec {
                source: VolumeSource::Anonymous,
                target,
                read_only: false,
                anonymous: true,
                no_copy: false,
            });
        }
    }
    out.sort_by(|a, b| a.target.cmp(&b.target));
    out
}

/// Parses one `--tmpfs` value.
pub fn parse_tmpfs(spec: &str) -> Result<TmpfsSpec, MountError> {
    let (target, opts) = match spec.split_once(':') {
        Some((t, o)) => (t, o),
        None => (spec, ""),
    };
    let target = clean_container_path(target, spec)?;
    let mut options = vec![
        "nosuid".to_string(),
        "nodev".to_string(),
        "noexec".to_string(),
    ];
    for opt in opts.split(',').filter(|o| !o.is_empty()) {
        let known = matches!(
            opt.split_once('=').map_or(opt, |(k, _)| k),
            "size"
                | "mode"
                | "uid"
                | "gid"
                | "nr_inodes"
                | "nr_blocks"
                | "ro"
                | "rw"
                | "exec"
                | "noexec"
                | "suid"
                | "nosuid"
                | "dev"
                | "nodev"
                | "atime"
                | "noatime"
                | "relatime"
                | "norelatime"
                | "strictatime"
                | "nostrictatime"
                | "diratime"
                | "nodiratime"
                | "sync"
                | "async"
                | "dirsync"
                | "mand"
                | "nomand"
        );
        if !known {
            return Err(MountError::Invalid {
                spec: spec.to_string(),
                reason: format!("unknown tmpfs option {opt:?}"),
            });
        }
        // A later option overrides its opposite default.
        let opposite = match opt {
            "exec" => Some("noexec"),
            "suid" => Some("nosuid"),
            "dev" => Some("nodev"),
            _ => None,
        };
        if let Some(o) = opposite {
            options.retain(|x| x != o);
        }
        if let Some(size) = opt.strip_prefix("size=") {
            let bytes = crate::limits::parse_memory(size).map_err(|_| MountError::Invalid {
                spec: spec.to_string(),
                reason: format!("invalid size {size:?}"),
            })?;
            options.push(format!("size={bytes}"));
        } else {
            options.push(opt.to_string());
        }
    }
    Ok(TmpfsSpec { target, options })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_volumes_fill_in_what_flags_leave() {
        let user = [parse_volume("named:/data").unwrap()];
        let tmpfs = [parse_tmpfs("/run").unwrap()];
        let declared: Vec<String> = ["/var/log/", "/data", "/run", "relative", "/cache", "/cache"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let added = image_volumes(&declared, &user, &tmpfs);
        let targets: Vec<&str> = added.iter().map(|v| v.target.as_str()).collect();
        assert_eq!(targets, ["/cache", "/var/log"]);
        assert!(
            added
                .iter()
                .all(|v| v.anonymous && v.source == VolumeSource::Anonymous && !v.read_only)
        );
    }

    #[test]
    fn binds() {
        let v = parse_volume("/srv/data:/data").unwrap();
        assert_eq!(v.source, VolumeSource::Bind("/srv/data".into()));
        assert_eq!(v.target, "/data");
        assert!(!v.read_only);
        let v = parse_volume("/srv/./x/../data/:/data/:ro").unwrap();
        assert_eq!(v.source, VolumeSource::Bind("/srv/data".into()));
        assert_eq!(v.target, "/data");
        assert!(v.read_only);
        assert!(parse_volume("/a:/b:ro,z").unwrap().read_only);
    }

    #[test]
    fn named_and_anonymous() {
        let v = parse_volume("cache:/var/cache").unwrap();
        assert_eq!(v.source, VolumeSource::Named("cache".into()));
        assert!(!v.anonymous);
        let v = parse_volume("/data").unwrap();
        assert_eq!(v.source, VolumeSource::Anonymous);
        assert!(v.anonymous);
        assert!(parse_volume("/data:ro").unwrap().read_only);
        assert!(parse_volume("cache:/c:ro,nocopy").unwrap().no_copy);
        assert!(!parse_volume("cache:/c:ro").unwrap().no_copy);
    }

    #[test]
    fn rejects() {
        for bad in [
            "",
            "./x:/y",
            "/a:b",
            "/a:/",
            "/a:/b:rx",
            "a:b:c:d",
            "x:/y:ro:z",
        ] {
            assert!(parse_volume(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn tmpfs() {
        let t = parse_tmpfs("/run").unwrap();
        assert_eq!(t.target, "/run");
        assert_eq!(t.options, ["nosuid", "nodev", "noexec"]);
        let t = parse_tmpfs("/run:size=64m,mode=1777,exec").unwrap();
        assert_eq!(
            t.options,
            ["nosuid", "nodev", "size=67108864", "mode=1777", "exec"]
        );
        assert!(parse_tmpfs("run").is_err());
        assert!(parse_tmpfs("/run:bogus").is_err());
        assert!(parse_tmpfs("/run:size=lots").is_err());
    }
}
