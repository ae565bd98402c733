//! Build secrets: where their values come from (`--secret id=…,src=…` or
//! `env=…`), and staging one for a step as a private file outside every
//! rootfs — in `/dev/shm` (a tmpfs: never written to disk) when it is
//! usable, else the system temp directory — removed when the step ends.
//! Directories left by a killed kiln (`kiln-secrets-<pid>-*` whose process
//! is gone) are removed the next time a secret is staged.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::{MountError, SecretMount};
use crate::fileop::{Owner, meta};

/// Where a `--secret` value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// `src=PATH` (also `id=x,src=PATH` without a type).
    File(PathBuf),
    /// `env=VAR`.
    Env(String),
}

impl SecretSource {
    /// The secret's bytes.
    pub(crate) fn read(&self, id: &str) -> Result<Vec<u8>, MountError> {
        match self {
            SecretSource::File(p) => std::fs::read(p).map_err(|source| MountError::SecretRead {
                id: id.to_owned(),
                source,
            }),
            SecretSource::Env(var) => std::env::var_os(var)
                .map(|v| {
                    use std::os::unix::ffi::OsStringExt;
                    v.into_vec()
                })
                .ok_or_else(|| MountError::SecretNotFound { id: id.to_owned() }),
        }
    }
}

/// A staged secret file; dropping it removes the file and its directory.
pub(crate) struct StagedSecret {
    dir: PathBuf,
    file: PathBuf,
}

impl StagedSecret {
    pub(crate) fn path(&self) -> &Path {
        &self.file
    }
}

impl Drop for StagedSecret {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const PREFIX: &str = "kiln-secrets-";

fn base_dir() -> PathBuf {
    let shm = Path::new("/dev/shm");
    let usable = std::fs::metadata(shm).map(|m| m.is_dir()).unwrap_or(false)
        && nix::unistd::access(shm, nix::unistd::AccessFlags::W_OK).is_ok();
    if usable {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

/// Removes staging directories of kiln processes that no longer exist.
fn reap_stale(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(PREFIX)) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<i32>().ok()) else {
            continue;
        };
        let alive = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
            || Path::new(&format!("/proc/{pid}")).exists();
        if !alive {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// Writes `value` to a new private file with the mount's mode and owner.
pub(crate) fn stage(value: &[u8], s: &SecretMount) -> Result<StagedSecret, MountError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let base = base_dir();
    reap_stale(&base);
    let dir = base.join(format!(
        "{PREFIX}{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .map_err(MountError::io("create directory", &dir))?;
    let staged = StagedSecret {
        file: dir.join("secret"),
        dir,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&staged.file)
        .map_err(MountError::io("create", &staged.file))?;
    f.write_all(value)
        .map_err(MountError::io("write", &staged.file))?;
    drop(f);
    meta::chown(
        &staged.file,
        Owner {
            uid: s.uid,
            gid: s.gid,
        },
    )?;
    meta::chmod(&staged.file, s.mode)?;
    Ok(staged)
}
