//! A fake [`Syscall`] that records every call and pretends the file system
//! holds exactly the paths it was told about plus those created through it.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use nix::mount::MsFlags;

use super::{FileKind, Syscall};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Call {
    Mount {
        source: Option<PathBuf>,
        target: PathBuf,
        fstype: Option<String>,
        flags: MsFlags,
        data: Option<String>,
    },
    PivotRoot(PathBuf),
    Mknod(PathBuf, u64, u64),
    Symlink(PathBuf, PathBuf),
    Mkdir(PathBuf),
    CreateFile(PathBuf),
    Hostname(String),
}

#[derive(Debug, Default)]
pub(crate) struct RecordingSyscall {
    pub calls: RefCell<Vec<Call>>,
    pub files: RefCell<BTreeMap<PathBuf, FileKind>>,
}

impl RecordingSyscall {
    pub fn with_paths(paths: &[(&str, FileKind)]) -> Self {
        let s = RecordingSyscall::default();
        for (p, k) in paths {
            s.files.borrow_mut().insert(PathBuf::from(p), *k);
        }
        s
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.borrow().clone()
    }

    pub fn mount_targets(&self) -> Vec<PathBuf> {
        self.calls()
            .into_iter()
            .filter_map(|c| match c {
                Call::Mount { target, .. } => Some(target),
                _ => None,
            })
            .collect()
    }

    fn record(&self, c: Call) {
        self.calls.borrow_mut().push(c);
    }
}

impl Syscall for RecordingSyscall {
    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> io::Result<()> {
        self.record(Call::Mount {
            source: source.map(Path::to_path_buf),
            target: target.to_path_buf(),
            fstype: fstype.map(str::to_string),
            flags,
            data: data.map(str::to_string),
        });
        Ok(())
    }
    fn pivot_root(&self, new_root: &Path) -> io::Result<()> {
        self.record(Call::PivotRoot(new_root.to_path_buf()));
        Ok(())
    }
    fn mknod_char(&self, path: &Path, _mode: u32, major: u64, minor: u64) -> io::Result<()> {
        self.files
            .borrow_mut()
            .insert(path.to_path_buf(), FileKind::Other);
        self.record(Call::Mknod(path.to_path_buf(), major, minor));
        Ok(())
    }
    fn symlink(&self, target: &Path, link: &Path) -> io::Result<()> {
        self.files
            .borrow_mut()
            .insert(link.to_path_buf(), FileKind::Symlink);
        self.record(Call::Symlink(target.to_path_buf(), link.to_path_buf()));
        Ok(())
    }
    fn mkdir(&self, path: &Path, _mode: u32) -> io::Result<()> {
        self.files
            .borrow_mut()
            .insert(path.to_path_buf(), FileKind::Dir);
        self.record(Call::Mkdir(path.to_path_buf()));
        Ok(())
    }
    fn create_file(&self, path: &Path) -> io::Result<()> {
        self.files
            .borrow_mut()
            .insert(path.to_path_buf(), FileKind::File);
        self.record(Call::CreateFile(path.to_path_buf()));
        Ok(())
    }
    fn kind(&self, path: &Path) -> FileKind {
        self.files
            .borrow()
            .get(path)
            .copied()
            .unwrap_or(FileKind::Missing)
    }
    fn mtime(&self, _path: &Path) -> io::Result<(i64, i64)> {
        Ok((1, 2))
    }
    fn sethostname(&self, name: &str) -> io::Result<()> {
        self.record(Call::Hostname(name.to_string()));
        Ok(())
    }
    fn write_file(&self, path: &Path, _data: &[u8]) -> io::Result<()> {
        self.files
            .borrow_mut()
            .insert(path.to_path_buf(), FileKind::File);
        Ok(())
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.files.borrow_mut().remove(path);
        Ok(())
    }
}
