//! Cgroup file access behind a trait: the real file system, and an
//! in-memory fake that records writes so controller logic is unit-tested
//! without root or a cgroup mount.

use std::io;
use std::path::Path;
#[cfg(test)]
use std::path::PathBuf;

pub(crate) trait CgroupFs {
    fn mkdir_all(&self, path: &Path) -> io::Result<()>;
    fn rmdir(&self, path: &Path) -> io::Result<()>;
    fn write(&self, path: &Path, value: &str) -> io::Result<()>;
    fn read(&self, path: &Path) -> io::Result<String>;
    fn exists(&self, path: &Path) -> bool;
    /// Names of the subdirectories of `path`.
    fn subdirs(&self, path: &Path) -> Vec<String>;
}

#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct RealFs;

impl CgroupFs for RealFs {
    fn mkdir_all(&self, path: &Path) -> io::Result<()> {
        std::fs::create_dir_all(path)
    }
    fn rmdir(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_dir(path)
    }
    fn write(&self, path: &Path, value: &str) -> io::Result<()> {
        // One write(2) per value: cgroup files take a value per write.
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().write(true).open(path)?;
        f.write_all(value.as_bytes())
    }
    fn read(&self, path: &Path) -> io::Result<String> {
        std::fs::read_to_string(path)
    }
    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }
    fn subdirs(&self, path: &Path) -> Vec<String> {
        std::fs::read_dir(path)
            .map(|rd| {
                rd.flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .filter_map(|e| e.file_name().into_string().ok())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// The fake: a map of file contents; directories exist once made; writes
/// are recorded in order.
#[cfg(test)]
#[derive(Debug, Default)]
pub(crate) struct FakeFs {
    pub files: std::cell::RefCell<std::collections::BTreeMap<PathBuf, String>>,
    pub dirs: std::cell::RefCell<std::collections::BTreeSet<PathBuf>>,
    pub writes: std::cell::RefCell<Vec<(PathBuf, String)>>,
}

#[cfg(test)]
impl FakeFs {
    pub fn file(self, path: &str, contents: &str) -> Self {
        self.files
            .borrow_mut()
            .insert(PathBuf::from(path), contents.to_string());
        self
    }
    pub fn writes(&self) -> Vec<(String, String)> {
        self.writes
            .borrow()
            .iter()
            .map(|(p, v)| (p.display().to_string(), v.clone()))
            .collect()
    }
}

#[cfg(test)]
impl CgroupFs for FakeFs {
    fn mkdir_all(&self, path: &Path) -> io::Result<()> {
        self.dirs.borrow_mut().insert(path.to_path_buf());
        Ok(())
    }
    fn rmdir(&self, path: &Path) -> io::Result<()> {
        self.dirs.borrow_mut().remove(path);
        Ok(())
    }
    fn write(&self, path: &Path, value: &str) -> io::Result<()> {
        self.writes
            .borrow_mut()
            .push((path.to_path_buf(), value.to_string()));
        self.files
            .borrow_mut()
            .insert(path.to_path_buf(), value.to_string());
        Ok(())
    }
    fn read(&self, path: &Path) -> io::Result<String> {
        self.files
            .borrow()
            .get(path)
            .cloned()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    }
    fn exists(&self, path: &Path) -> bool {
        self.files.borrow().contains_key(path) || self.dirs.borrow().contains(path)
    }
    fn subdirs(&self, path: &Path) -> Vec<String> {
        self.dirs
            .borrow()
            .iter()
            .filter(|d| d.parent() == Some(path))
            .filter_map(|d| d.file_name().and_then(|n| n.to_str()).map(str::to_string))
            .collect()
    }
}
