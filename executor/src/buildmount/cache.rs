//! Cache mounts: directories kept per id under
//! `<kiln root>/mounts/cache/<sha256(id)>/`, one or more instances
//! (`0/`, `1/`, …) each with a lock file (`0.lock`, …). A new instance is
//! built in a temporary directory (owner, mode, seed from `from`) and
//! renamed into place, so a crash never leaves a half-made cache; locks are
//! `flock`s, released by the kernel when a process dies. `kiln prune`
//! empties every instance no build holds ([`prune_cache_mounts`]).

use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use sha2::{Digest as _, Sha256};

use super::{CacheMount, MountError, Sharing};
use crate::fileop::{self, Owner};

/// Holds a cache instance's lock while a step uses it.
pub(crate) struct CacheGuard {
    _lock: Flock<File>,
}

fn open_lock(path: &Path) -> Result<File, MountError> {
    File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(MountError::io("open", path))
}

fn lock(path: &Path, arg: FlockArg) -> Result<Option<Flock<File>>, MountError> {
    let f = open_lock(path)?;
    match Flock::lock(f, arg) {
        Ok(l) => Ok(Some(l)),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
        Err((_, e)) => Err(MountError::io("lock", path)(e.into())),
    }
}

/// The directory of cache `id` in the kiln root.
pub(crate) fn cache_dir(kiln_root: &Path, id: &str) -> PathBuf {
    kiln_root
        .join("mounts/cache")
        .join(hex::encode(Sha256::digest(id.as_bytes())))
}

/// Locks an instance of the cache and makes sure it exists; returns its
/// directory.
pub(crate) fn acquire(
    kiln_root: &Path,
    c: &CacheMount,
) -> Result<(PathBuf, CacheGuard), MountError> {
    let dir = cache_dir(kiln_root, &c.id);
    std::fs::create_dir_all(&dir).map_err(MountError::io("create directory", &dir))?;
    let id_file = dir.join("id");
    if !id_file.exists() {
        let _ = std::fs::write(&id_file, c.id.as_bytes());
    }
    let (n, lock) = match c.sharing {
        Sharing::Shared => (0, lock(&dir.join("0.lock"), FlockArg::LockShared)?),
        Sharing::Locked => (0, lock(&dir.join("0.lock"), FlockArg::LockExclusive)?),
        Sharing::Private => {
            let mut n = 0usize;
            loop {
                if let Some(l) = lock(
                    &dir.join(format!("{n}.lock")),
                    FlockArg::LockExclusiveNonblock,
                )? {
                    break (n, Some(l));
                }
                n += 1;
            }
        }
    };
    let lock = lock.ok_or_else(|| {
        MountError::io("lock", dir.join("0.lock"))(std::io::Error::other("lock not granted"))
    })?;
    let instance = dir.join(n.to_string());
    if !instance.is_dir() {
        create_instance(&dir, &instance, c)?;
    }
    tracing::debug!(id = %c.id, instance = n, sharing = ?c.sharing, "cache mount");
    Ok((instance, CacheGuard { _lock: lock }))
}

/// What [`prune_cache_mounts`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CachePrune {
    pub instances: usize,
    pub bytes: u64,
}

/// Removes every cache-mount instance no build is using (its lock is
/// free): the instance directory goes while its lock is held, the lock file
/// stays, so a build that was waiting for the lock makes the instance
/// again, empty.
pub fn prune_cache_mounts(kiln_root: &Path) -> Result<CachePrune, MountError> {
    let base = kiln_root.join("mounts/cache");
    let mut report = CachePrune::default();
    let caches = match std::fs::read_dir(&base) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(report),
        Err(e) => return Err(MountError::io("read", &base)(e)),
    };
    for cache in caches.flatten() {
        let dir = cache.path();
        let entries = std::fs::read_dir(&dir).map_err(MountError::io("read", &dir))?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(n) = name.strip_suffix(".lock") else {
                continue;
            };
            let instance = dir.join(n);
            if !instance.is_dir() {
                continue;
            }
            let Some(_held) = lock(&entry.path(), FlockArg::LockExclusiveNonblock)? else {
                tracing::debug!(instance = %instance.display(), "cache mount in use: kept");
                continue;
            };
            let bytes = crate::du::dir_size(&instance);
            let aside = dir.join(format!("tmp-prune-{}-{n}", std::process::id()));
            std::fs::rename(&instance, &aside).map_err(MountError::io("rename", &instance))?;
            std::fs::remove_dir_all(&aside).map_err(MountError::io("remove", &aside))?;
            report.instances += 1;
            report.bytes += bytes;
        }
    }
    Ok(report)
}

fn create_instance(dir: &Path, instance: &Path, c: &CacheMount) -> Result<(), MountError> {
    let tmp = dir.join(format!(
        "tmp-{}-{}",
        std::process::id(),
        instance
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    ));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir(&tmp).map_err(MountError::io("create directory", &tmp))?;
    if let Some(from) = &c.from {
        let source = c.source.clone().unwrap_or_else(|| "/".to_owned());
        let sources = [fileop::Source::Path(source)];
        fileop::copy(
            &tmp,
            &fileop::CopyRequest {
                tree: fileop::SourceTree {
                    root: from,
                    kind: fileop::TreeKind::Rootfs,
                    ignore: None,
                },
                sources: &sources,
                dest: "/",
                workdir: "/",
                options: fileop::CopyOptions::copy(),
            },
        )?;
    }
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(c.mode & 0o7777))
        .map_err(MountError::io("chmod", &tmp))?;
    fileop::meta::chown(
        &tmp,
        Owner {
            uid: c.uid,
            gid: c.gid,
        },
    )?;
    match std::fs::rename(&tmp, instance) {
        Ok(()) => Ok(()),
        // Another process made it first (or the directory is not empty):
        // use theirs.
        Err(_) if instance.is_dir() => {
            let _ = std::fs::remove_dir_all(&tmp);
            Ok(())
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            Err(MountError::io("rename", instance)(e))
        }
    }
}

#[cfg(test)]
mod prune_tests {
    use super::*;

    #[test]
    fn prune_empties_free_instances_and_keeps_held_ones() {
        let root = tempfile::tempdir().unwrap();
        let dir = cache_dir(root.path(), "c");
        for n in ["0", "1"] {
            std::fs::create_dir_all(dir.join(n)).unwrap();
            std::fs::write(dir.join(n).join("f"), vec![7u8; 5000]).unwrap();
            std::fs::write(dir.join(format!("{n}.lock")), b"").unwrap();
        }
        let held = lock(&dir.join("1.lock"), FlockArg::LockExclusiveNonblock)
            .unwrap()
            .unwrap();
        let report = prune_cache_mounts(root.path()).unwrap();
        assert_eq!(report.instances, 1);
        assert!(report.bytes >= 5000);
        assert!(!dir.join("0").exists());
        assert!(dir.join("0.lock").exists(), "the lock stays");
        assert!(dir.join("1/f").exists(), "a held instance stays");
        drop(held);
        assert_eq!(prune_cache_mounts(root.path()).unwrap().instances, 1);
        assert_eq!(
            prune_cache_mounts(&root.path().join("none")).unwrap(),
            CachePrune::default()
        );
    }
}
