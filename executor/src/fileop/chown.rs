//! `--chown=user[:group]` (and the USER a WORKDIR is created for), resolved
//! as BuildKit resolves a file operation's owner: numbers are taken as they
//! are (a lone numeric user gives the same number as group), names are
//! looked up in the destination image's own `/etc/passwd` and `/etc/group`
//! (a lone user name gives that user's primary group).

use std::path::Path;

use super::{FileOpError, Owner};

/// A parsed `--chown` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChownSpec {
    pub user: String,
    pub group: Option<String>,
}

impl ChownSpec {
    /// Parses `user`, `user:group`, `uid:gid` (either side a name or a
    /// number; the user part may not be empty).
    pub fn parse(value: &str) -> Result<ChownSpec, FileOpError> {
        let invalid = || FileOpError::InvalidChown {
            value: value.to_owned(),
        };
        let (user, group) = match value.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (value, None),
        };
        if user.is_empty() || group.is_some_and(|g| g.is_empty() || g.contains(':')) {
            return Err(invalid());
        }
        Ok(ChownSpec {
            user: user.to_owned(),
            group: group.map(str::to_owned),
        })
    }
}

/// A numeric id; `root` is 0 without looking at the image, as BuildKit
/// does (so `--chown=root` works in an image without /etc/passwd).
fn numeric(s: &str) -> Option<u32> {
    if s == "root" {
        return Some(0);
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

/// Resolves a `--chown` spec against the image whose root filesystem is
/// `rootfs` (the destination's base: for `COPY --link` still the stage's
/// rootfs, not the empty link directory).
pub fn resolve_owner(rootfs: &Path, spec: &ChownSpec) -> Result<Owner, FileOpError> {
    let uid_num = numeric(&spec.user);
    let gid_num = spec.group.as_deref().map(numeric);
    match (uid_num, gid_num) {
        (Some(uid), None) => return Ok(Owner { uid, gid: uid }),
        (Some(uid), Some(Some(gid))) => return Ok(Owner { uid, gid }),
        _ => {}
    }
    lookup_names(rootfs, spec)
}

/// Name lookups go through the sandbox's user resolution
/// ([`crate::user::resolve_user_in_rootfs`]), the one reader of passwd and
/// group files in kiln; it confines `/etc/passwd` symlinks to the rootfs.
fn lookup_names(rootfs: &Path, spec: &ChownSpec) -> Result<Owner, FileOpError> {
    use crate::user::UserError;
    let id_or_name = |s: &str| numeric(s).map_or_else(|| s.to_owned(), |n| n.to_string());
    let text = match &spec.group {
        Some(g) => format!("{}:{}", id_or_name(&spec.user), id_or_name(g)),
        None => spec.user.clone(),
    };
    match crate::user::resolve_user_in_rootfs(rootfs, &text) {
        Ok(u) => Ok(Owner {
            uid: u.uid,
            gid: u.gid,
        }),
        Err(UserError::NoSuchUser { name }) => Err(FileOpError::UnknownUser { name }),
        Err(UserError::NoSuchGroup { name }) => Err(FileOpError::UnknownGroup { name }),
        Err(UserError::Invalid { .. }) => Err(FileOpError::InvalidChown { value: text }),
        Err(UserError::Read { path, source }) => Err(FileOpError::Io {
            op: "read",
            path,
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_forms() {
        assert_eq!(
            ChownSpec::parse("app").unwrap(),
            ChownSpec {
                user: "app".into(),
                group: None
            }
        );
        assert_eq!(ChownSpec::parse("1:2").unwrap().group.as_deref(), Some("2"));
        for bad in ["", ":g", "u:", "a:b:c"] {
            assert!(ChownSpec::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_come_from_the_image() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir(t.path().join("etc")).unwrap();
        std::fs::write(
            t.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            t.path().join("etc/group"),
            "root:x:0:\nstaff:x:50:\napp:x:1001:\n",
        )
        .unwrap();
        let r = |s: &str| resolve_owner(t.path(), &ChownSpec::parse(s).unwrap());
        assert_eq!(
            r("app").unwrap(),
            Owner {
                uid: 1000,
                gid: 1001
            }
        );
        assert_eq!(r("app:staff").unwrap(), Owner { uid: 1000, gid: 50 });
        assert_eq!(r("7:staff").unwrap(), Owner { uid: 7, gid: 50 });
        assert_eq!(r("app:9").unwrap(), Owner { uid: 1000, gid: 9 });
        assert_eq!(r("app:root").unwrap(), Owner { uid: 1000, gid: 0 });
        assert!(matches!(r("nobody"), Err(FileOpError::UnknownUser { .. })));
        assert!(matches!(
            r("app:nogroup"),
            Err(FileOpError::UnknownGroup { .. })
        ));
    }

    #[test]
    fn numbers_need_no_passwd() {
        let t = tempfile::tempdir().unwrap();
        let r = |s: &str| resolve_owner(t.path(), &ChownSpec::parse(s).unwrap()).unwrap();
        assert_eq!(
            r("1000"),
            Owner {
                uid: 1000,
                gid: 1000
            }
        );
        assert_eq!(r("10:20"), Owner { uid: 10, gid: 20 });
        // `root` is 0 without a passwd file, as in BuildKit.
        assert_eq!(r("root"), Owner::ROOT);
        assert_eq!(r("root:root"), Owner::ROOT);
        assert_eq!(r("5:root"), Owner { uid: 5, gid: 0 });
    }
}
