//! Users and groups as docker resolves `USER` and `--user`: names or
//! numbers, `user`, `user:group`, looked up in the image's own `/etc/passwd`
//! and `/etc/group` (never the host's). Also what `COPY --chown` needs.
//!
//! The rules (runc's `GetExecUser`, which docker and BuildKit use):
//! - a user name must exist in `/etc/passwd`; a number need not (gid 0,
//!   home `/`);
//! - without `:group`, the gid is the user's primary group and the
//!   supplementary groups are those listing the user as a member;
//! - with `:group` (name: must exist; number: need not) that group is the
//!   gid and there are no supplementary groups.

use std::io;
use std::path::{Path, PathBuf};

/// A resolved user: what the process runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    /// The home directory (`HOME` unless the environment sets one).
    pub home: String,
}

/// Why a user could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("unable to find user {name}: no matching entries in passwd file")]
    NoSuchUser { name: String },
    #[error("unable to find group {name}: no matching entries in group file")]
    NoSuchGroup { name: String },
    #[error("invalid user specification {spec:?}")]
    Invalid { spec: String },
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
    home: &'a str,
}

struct GroupEntry<'a> {
    name: &'a str,
    gid: u32,
    members: Vec<&'a str>,
}

fn passwd_entries(text: &str) -> impl Iterator<Item = PasswdEntry<'_>> {
    text.lines().filter_map(|line| {
        let line = line.trim_end();
        if line.is_empty() || line.starts_with('#') {
            return None;
        }
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 4 {
            return None;
        }
        Some(PasswdEntry {
            name: f[0],
            uid: f[2].parse().ok()?,
            gid: f[3].parse().ok()?,
            home: f.get(5).copied().unwrap_or(""),
        })
    })
}

fn group_entries(text: &str) -> impl Iterator<Item = GroupEntry<'_>> {
    text.lines().filter_map(|line| {
        let line = line.trim_end();
        if line.is_empty() || line.starts_with('#') {
            return None;
        }
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 3 {
            return None;
        }
        Some(GroupEntry {
            name: f[0],
            gid: f[2].parse().ok()?,
            members: f
                .get(3)
                .map(|m| m.split(',').filter(|s| !s.is_empty()).collect())
                .unwrap_or_default(),
        })
    })
}

fn parse_id(s: &str) -> Option<u32> {
    // Ids above 2^31-1 are refused, as runc does.
    s.parse::<u32>().ok().filter(|&n| n <= i32::MAX as u32)
}

/// Resolves a docker user spec against the contents of `/etc/passwd` and
/// `/etc/group` (`None`: the file does not exist). An empty spec means
/// root.
///
/// # Examples
///
/// ```
/// use kiln_executor::user::resolve_user;
/// let passwd = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n";
/// let group = "root:x:0:\napp:x:1000:\nwheel:x:10:app\n";
/// let u = resolve_user("app", Some(passwd), Some(group)).unwrap();
/// assert_eq!((u.uid, u.gid, u.additional_gids, u.home.as_str()), (1000, 1000, vec![10], "/home/app"));
/// let u = resolve_user("1234:wheel", Some(passwd), Some(group)).unwrap();
/// assert_eq!((u.uid, u.gid, u.home.as_str()), (1234, 10, "/"));
/// ```
pub fn resolve_user(
    spec: &str,
    passwd: Option<&str>,
    group: Option<&str>,
) -> Result<ExecUser, UserError> {
    let invalid = || UserError::Invalid {
        spec: spec.to_string(),
    };
    let (user_arg, group_arg) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    if group_arg.is_some_and(|g| g.is_empty() || g.contains(':')) {
        return Err(invalid());
    }
    let user_arg = if user_arg.is_empty() { "0" } else { user_arg };
    let numeric_user = user_arg.bytes().all(|b| b.is_ascii_digit());
    let found = passwd.and_then(|text| {
        passwd_entries(text)
            .find(|e| e.name == user_arg || (numeric_user && parse_id(user_arg) == Some(e.uid)))
    });
    let (name, mut user) = match found {
        Some(e) => (
            Some(e.name.to_string()),
            ExecUser {
                uid: e.uid,
                gid: e.gid,
                additional_gids: Vec::new(),
                home: if e.home.is_empty() {
                    "/".into()
                } else {
                    e.home.into()
                },
            },
        ),
        None if numeric_user => (
            None,
            ExecUser {
                uid: parse_id(user_arg).ok_or_else(invalid)?,
                gid: 0,
                additional_gids: Vec::new(),
                home: "/".into(),
            },
        ),
        None => {
            return Err(UserError::NoSuchUser {
                name: user_arg.to_string(),
            });
        }
    };
    match group_arg {
        Some(g) => {
            let numeric = g.bytes().all(|b| b.is_ascii_digit());
            let found = group.and_then(|text| {
                group_entries(text).find(|e| e.name == g || (numeric && parse_id(g) == Some(e.gid)))
            });
            user.gid = match found {
                Some(e) => e.gid,
                None if numeric => parse_id(g).ok_or_else(invalid)?,
                None => {
                    return Err(UserError::NoSuchGroup {
                        name: g.to_string(),
                    });
                }
            };
        }
        None => {
            if let (Some(name), Some(text)) = (name.as_deref(), group) {
                user.additional_gids = group_entries(text)
                    .filter(|e| e.members.contains(&name))
                    .map(|e| e.gid)
                    .collect();
            }
        }
    }
    Ok(user)
}

/// Resolves a user spec against the `/etc/passwd` and `/etc/group` of the
/// root filesystem at `root`, following symlinks inside it only (an
/// image's `/etc/passwd -> /host/...` never reads the host's files).
pub fn resolve_user_in_rootfs(root: &Path, spec: &str) -> Result<ExecUser, UserError> {
    let read = |rel: &str| -> Result<Option<String>, UserError> {
        let path = crate::confined::resolve_in_root(root, Path::new(rel)).map_err(|source| {
            UserError::Read {
                path: root.join(rel),
                source,
            }
        })?;
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(UserError::Read { path, source }),
        }
    };
    let passwd = read("etc/passwd")?;
    let group = read("etc/group")?;
    resolve_user(spec, passwd.as_deref(), group.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n# comment\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\napp:x:1000:1000:app:/home/app:/bin/sh\nbroken\n";
    const GROUP: &str = "root:x:0:\nwheel:x:10:root,app\napp:x:1000:\nstaff:x:50:app\n";

    fn r(spec: &str) -> Result<ExecUser, UserError> {
        resolve_user(spec, Some(PASSWD), Some(GROUP))
    }

    #[test]
    fn names_and_numbers() {
        let root = r("").unwrap();
        assert_eq!((root.uid, root.gid, root.home.as_str()), (0, 0, "/root"));
        assert_eq!(root.additional_gids, vec![10]);
        let app = r("app").unwrap();
        assert_eq!((app.uid, app.gid), (1000, 1000));
        assert_eq!(app.additional_gids, vec![10, 50]);
        assert_eq!(r("1000").unwrap(), app);
        let unknown = r("4242").unwrap();
        assert_eq!(
            (unknown.uid, unknown.gid, unknown.home.as_str()),
            (4242, 0, "/")
        );
        assert!(unknown.additional_gids.is_empty());
    }

    #[test]
    fn explicit_groups() {
        let u = r("app:staff").unwrap();
        assert_eq!((u.uid, u.gid), (1000, 50));
        assert!(u.additional_gids.is_empty());
        let u = r("nobody:77").unwrap();
        assert_eq!((u.uid, u.gid), (65534, 77));
        let u = r("0:10").unwrap();
        assert_eq!((u.uid, u.gid), (0, 10));
    }

    #[test]
    fn errors() {
        assert!(matches!(r("ghost"), Err(UserError::NoSuchUser { .. })));
        assert!(matches!(
            r("app:ghosts"),
            Err(UserError::NoSuchGroup { .. })
        ));
        assert!(matches!(r("app:"), Err(UserError::Invalid { .. })));
        assert!(matches!(r("99999999999"), Err(UserError::Invalid { .. })));
        assert_eq!(
            r("ghost").unwrap_err().to_string(),
            "unable to find user ghost: no matching entries in passwd file"
        );
    }

    #[test]
    fn missing_files() {
        let u = resolve_user("5", None, None).unwrap();
        assert_eq!((u.uid, u.gid), (5, 0));
        assert!(resolve_user("app", None, None).is_err());
    }

    #[test]
    fn reads_the_rootfs_and_stays_inside_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        std::fs::write(dir.path().join("etc/passwd.real"), PASSWD).unwrap();
        // An absolute symlink is resolved inside the rootfs.
        std::os::unix::fs::symlink("/etc/passwd.real", dir.path().join("etc/passwd")).unwrap();
        std::fs::write(dir.path().join("etc/group.real"), GROUP).unwrap();
        std::os::unix::fs::symlink("../../../../etc/group.real", dir.path().join("etc/group"))
            .unwrap();
        let u = resolve_user_in_rootfs(dir.path(), "app").unwrap();
        assert_eq!(u.uid, 1000);
        // "../../.." cannot climb out of the rootfs: the group file inside it is read.
        assert_eq!(u.additional_gids, vec![10, 50]);
    }
}
