//! Test helpers: tar archives written byte by byte (so names tar::Builder
//! refuses can be built) and a scene with a target dir beside an
//! `outside` dir that must stay untouched.

use std::fs;
use std::path::{Path, PathBuf};

use super::{UnpackError, UnpackMode, UnpackStats, unpack_stream};

/// Writes tar archives byte by byte, so names tar::Builder refuses
/// (`..`, absolute) can be built.
#[derive(Default)]
pub(crate) struct RawTar {
    out: Vec<u8>,
}

pub(crate) use tar::EntryType as T;

impl RawTar {
    fn header(name: &[u8], kind: T, size: u64, link: &[u8], mode: u32) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_000_000_000);
        {
            let g = h.as_gnu_mut().unwrap();
            g.name[..name.len().min(100)].copy_from_slice(&name[..name.len().min(100)]);
            g.linkname[..link.len().min(100)].copy_from_slice(&link[..link.len().min(100)]);
        }
        h.set_cksum();
        h
    }

    fn push(&mut self, h: &tar::Header, data: &[u8]) {
        self.out.extend_from_slice(h.as_bytes());
        self.out.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.out.extend(std::iter::repeat_n(0u8, pad));
    }

    pub(crate) fn file(mut self, name: &str, data: &[u8]) -> Self {
        self.push(
            &Self::header(name.as_bytes(), T::Regular, data.len() as u64, b"", 0o644),
            data,
        );
        self
    }

    pub(crate) fn file_mode(mut self, name: &str, data: &[u8], mode: u32, uid: u64) -> Self {
        let mut h = Self::header(name.as_bytes(), T::Regular, data.len() as u64, b"", mode);
        h.set_uid(uid);
        h.set_gid(uid);
        h.set_cksum();
        self.push(&h, data);
        self
    }

    pub(crate) fn dir(mut self, name: &str) -> Self {
        self.push(
            &Self::header(name.as_bytes(), T::Directory, 0, b"", 0o755),
            b"",
        );
        self
    }

    pub(crate) fn dir_mode(mut self, name: &str, mode: u32) -> Self {
        self.push(
            &Self::header(name.as_bytes(), T::Directory, 0, b"", mode),
            b"",
        );
        self
    }

    pub(crate) fn symlink(mut self, name: &str, target: &str) -> Self {
        self.push(
            &Self::header(name.as_bytes(), T::Symlink, 0, target.as_bytes(), 0o777),
            b"",
        );
        self
    }

    pub(crate) fn hardlink(mut self, name: &str, target: &str) -> Self {
        self.push(
            &Self::header(name.as_bytes(), T::Link, 0, target.as_bytes(), 0o644),
            b"",
        );
        self
    }

    pub(crate) fn special(mut self, name: &str, kind: T, major: u32, minor: u32) -> Self {
        let mut h = Self::header(name.as_bytes(), kind, 0, b"", 0o666);
        h.set_device_major(major).unwrap();
        h.set_device_minor(minor).unwrap();
        h.set_cksum();
        self.push(&h, b"");
        self
    }

    /// A pax extended header applying to the next entry.
    pub(crate) fn pax(mut self, records: &[(&str, &[u8])]) -> Self {
        let mut data = Vec::new();
        for (k, v) in records {
            let body_len = k.len() + v.len() + 3; // ' ' '=' '\n'
            let mut len = body_len + 1;
            while len.to_string().len() + body_len != len {
                len = len.to_string().len() + body_len;
            }
            data.extend_from_slice(format!("{len} {k}=").as_bytes());
            data.extend_from_slice(v);
            data.push(b'\n');
        }
        self.push(
            &Self::header(b"PaxHeaders/x", T::XHeader, data.len() as u64, b"", 0o644),
            &data,
        );
        self
    }

    /// A GNU long-name header for the next entry.
    pub(crate) fn long_name(mut self, name: &str) -> Self {
        let mut data = name.as_bytes().to_vec();
        data.push(0);
        self.push(
            &Self::header(
                b"././@LongLink",
                T::GNULongName,
                data.len() as u64,
                b"",
                0o644,
            ),
            &data,
        );
        self
    }

    pub(crate) fn finish(mut self) -> Vec<u8> {
        self.out.extend(std::iter::repeat_n(0u8, 1024));
        self.out
    }
}

/// A target dir `root` beside an `outside` dir holding a secret.
pub(crate) struct Scene {
    _t: tempfile::TempDir,
    base: PathBuf,
}

impl Scene {
    pub(crate) fn new() -> Scene {
        let t = tempfile::tempdir().unwrap();
        let base = t.path().to_path_buf();
        fs::create_dir(base.join("root")).unwrap();
        fs::create_dir(base.join("outside")).unwrap();
        fs::write(base.join("outside/secret"), b"secret").unwrap();
        Scene { _t: t, base }
    }

    pub(crate) fn root(&self) -> PathBuf {
        self.base.join("root")
    }

    pub(crate) fn outside(&self) -> String {
        self.base.join("outside").display().to_string()
    }

    pub(crate) fn unpack(&self, tar: &[u8], mode: UnpackMode) -> Result<UnpackStats, UnpackError> {
        unpack_stream(tar, &self.root(), mode, None, "test")
    }

    /// Nothing outside the root changed.
    pub(crate) fn assert_outside_untouched(&self) {
        let names: Vec<_> = fs::read_dir(self.base.join("outside"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("secret")]);
        assert_eq!(
            fs::read(self.base.join("outside/secret")).unwrap(),
            b"secret"
        );
        let top: Vec<_> = fs::read_dir(&self.base)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(top.len(), 2, "{top:?}");
        assert!(!Path::new("/pwned").exists());
    }
}

pub(crate) fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}
