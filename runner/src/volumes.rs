//! Named volumes: `<root>/volumes/<name>/_data`, created on first use by
//! `-v name:/path` (or made up for `-v /path`, an anonymous volume), kept
//! until `kiln volume rm` (anonymous ones go with their container when it
//! is removed with `--rm` or `rm -v`).

use std::path::{Path, PathBuf};

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
}
