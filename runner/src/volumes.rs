//! Named volumes: `<root>/volumes/<name>/_data`, created on first use by
//! `-v name:/path` (or made up for `-v /path` and an image's `VOLUME
//! /path`: anonymous volumes), kept until `kiln volume rm` (anonymous ones
//! go with their container when it is removed with `--rm` or `rm -v`). As
//! docker, a volume that is empty when a container mounts it is first
//! filled with the image's content at the mount point.

use std::path::{Path, PathBuf};

use kiln_executor::copy_merged_dir;

use crate::error::{MountError, RunnerError, StateError};
use crate::names::validate_name;

/// The `volumes/` directory of a kiln root.
#[derive(Debug, Clone)]
pub struct VolumeStore {
    dir: PathBuf,
}

impl VolumeStore {
    pub fn open(root: &Path) -> VolumeStore {
        VolumeStore {
            dir: root.join("volumes"),
        }
    }

    /// Where a volume's content lives (whether or not it exists).
    pub fn data_dir(&self, name: &str) -> PathBuf {
        self.dir.join(name).join("_data")
    }

    /// The volume's content directory, created when missing.
    pub fn ensure(&self, name: &str) -> Result<PathBuf, RunnerError> {
        validate_name(name)?;
        let data = self.data_dir(name);
        std::fs::create_dir_all(&data).map_err(|source| MountError::Source {
            path: data.clone(),
            source,
        })?;
        Ok(data)
    }

    /// The volume's content directory for a container whose image layers
    /// are `lowers` (topmost first) and which mounts it at `target`:
    /// created when missing, and seeded with the image's content at
    /// `target` when empty.
    pub fn prepare(
        &self,
        name: &str,
        lowers: &[PathBuf],
        target: &str,
    ) -> Result<PathBuf, RunnerError> {
        let data = self.ensure(name)?;
        let empty = std::fs::read_dir(&data).is_ok_and(|mut d| d.next().is_none());
        if empty && !lowers.is_empty() {
            let seeded = copy_merged_dir(lowers, Path::new(target), &data).map_err(|source| {
                MountError::Seed {
                    name: name.to_string(),
                    target: target.to_string(),
                    source: Box::new(source),
                }
            })?;
            tracing::debug!(volume = %name, %target, seeded, "volume prepared");
        }
        Ok(data)
    }

    /// Names of every volume, sorted.
    pub fn list(&self) -> Result<Vec<String>, RunnerError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(StateError::Io {
                    path: self.dir.clone(),
                    source,
                }
                .into());
            }
        };
        let mut names: Vec<String> = entries
            .flatten()
            .filter(|e| e.path().join("_data").is_dir())
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .collect();
        names.sort();
        Ok(names)
    }

    /// Deletes a volume and its content.
    pub fn remove(&self, name: &str) -> Result<(), RunnerError> {
        validate_name(name)?;
        let dir = self.dir.join(name);
        if !dir.join("_data").is_dir() {
            return Err(MountError::NoSuchVolume {
                name: name.to_string(),
            }
            .into());
        }
        // Rename aside first: the volume vanishes at once.
        let aside = self.dir.join(format!(".rm-{name}-{}", std::process::id()));
        std::fs::rename(&dir, &aside).map_err(|source| StateError::Io {
            path: dir.clone(),
            source,
        })?;
        std::fs::remove_dir_all(&aside).map_err(|source| StateError::Io {
            path: aside,
            source,
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_list_remove() {
        let root = tempfile::tempdir().unwrap();
        let v = VolumeStore::open(root.path());
        assert!(v.list().unwrap().is_empty());
        let data = v.ensure("cache").unwrap();
        std::fs::write(data.join("f"), "x").unwrap();
        assert_eq!(v.ensure("cache").unwrap(), data);
        assert_eq!(std::fs::read_to_string(data.join("f")).unwrap(), "x");
        v.ensure("b2").unwrap();
        assert_eq!(v.list().unwrap(), ["b2", "cache"]);
        v.remove("cache").unwrap();
        assert_eq!(v.list().unwrap(), ["b2"]);
        assert!(v.remove("cache").is_err());
        assert!(v.ensure("../x").is_err());
    }

    #[test]
    fn an_empty_volume_is_seeded_from_the_image() {
        let t = tempfile::tempdir().unwrap();
        let (top, bottom) = (t.path().join("top"), t.path().join("bottom"));
        std::fs::create_dir_all(bottom.join("data/sub")).unwrap();
        std::fs::create_dir_all(top.join("data")).unwrap();
        std::fs::write(bottom.join("data/sub/old"), "below").unwrap();
        std::fs::write(top.join("data/new"), "above").unwrap();
        let lowers = [top, bottom];
        let v = VolumeStore::open(&t.path().join("root"));
        let data = v.prepare("anon", &lowers, "/data").unwrap();
        assert_eq!(std::fs::read_to_string(data.join("new")).unwrap(), "above");
        assert_eq!(
            std::fs::read_to_string(data.join("sub/old")).unwrap(),
            "below"
        );
        // not empty any more: left as the container made it
        std::fs::remove_file(data.join("new")).unwrap();
        v.prepare("anon", &lowers, "/data").unwrap();
        assert!(!data.join("new").exists());
        // nothing in the image there: an empty volume
        let other = v.prepare("other", &lowers, "/nowhere").unwrap();
        assert_eq!(std::fs::read_dir(other).unwrap().count(), 0);
    }
}
