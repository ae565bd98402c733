//! Preparing the root filesystem inside the sandbox's mount namespace,
//! before `pivot_root`: the root mount itself (overlay stack or bind of a
//! directory), the spec's mounts in order, device nodes and `/dev`
//! symlinks, `/etc/hosts`, `/etc/resolv.conf` and `/etc/hostname`, masked
//! and read-only paths.
//!
//! Mount targets missing from the image are created ("stubs") and reported,
//! so the helper removes them after the run: they must not end up in a
//! layer (BuildKit does the same). Everything goes through [`Syscall`], so
//! the order and flags are unit-tested with the recording fake.

use std::path::{Component, Path, PathBuf};

use nix::mount::MsFlags;
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType, Mount};
use serde::{Deserialize, Serialize};

use super::Rootfs;
use super::setup_error::SetupError;
use crate::syscall::{FileKind, Syscall};

/// A mount target the setup created in the rootfs, and the modification
/// time its parent directory had before (restored when it is removed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Stub {
    /// Relative to the rootfs.
    pub rel: PathBuf,
    pub parent_mtime: (i64, i64),
    /// The parent's modification time right after the stub was made: if
    /// it changed since, the process changed the directory and its time
    /// is left as it is.
    pub parent_mtime_after: (i64, i64),
}

/// Contents of the `/etc` files the sandbox provides.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct EtcContents {
    pub hosts: String,
    pub resolv_conf: String,
    pub hostname: String,
}

/// What to set up.
pub(crate) struct RootfsSetup<'a> {
    /// Where the root is mounted (the overlay mountpoint or the directory).
    pub root: &'a Path,
    pub rootfs: &'a Rootfs,
    pub mounts: &'a [Mount],
    pub devices: &'a [LinuxDevice],
    pub masked_paths: &'a [String],
    pub readonly_paths: &'a [String],
    pub etc: &'a EtcContents,
    /// Whether "cgroup" mounts can be served (a cgroup v2 host).
    pub cgroup2: bool,
}

/// Character devices every sandbox gets (runc's defaults).
const DEFAULT_DEVICES: [(&str, u64, u64); 6] = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

const DEV_SYMLINKS: [(&str, &str); 5] = [
    ("/proc/self/fd", "fd"),
    ("/proc/self/fd/0", "stdin"),
    ("/proc/self/fd/1", "stdout"),
    ("/proc/self/fd/2", "stderr"),
    ("pts/ptmx", "ptmx"),
];

/// Parsed fstab-style options.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct MountOptions {
    pub flags: MsFlags,
    /// Propagation changes ("rprivate", "slave", …), applied separately.
    pub propagation: MsFlags,
    pub bind: bool,
    pub recursive: bool,
    pub data: Vec<String>,
}

pub(crate) fn parse_options(options: &[String]) -> MountOptions {
    let mut o = MountOptions {
        flags: MsFlags::empty(),
        propagation: MsFlags::empty(),
        bind: false,
        recursive: false,
        data: Vec::new(),
    };
    for opt in options {
        let set = |o: &mut MountOptions, f: MsFlags| o.flags.insert(f);
        match opt.as_str() {
            "ro" => set(&mut o, MsFlags::MS_RDONLY),
            "rw" => o.flags.remove(MsFlags::MS_RDONLY),
            "nosuid" => set(&mut o, MsFlags::MS_NOSUID),
            "suid" => o.flags.remove(MsFlags::MS_NOSUID),
            "nodev" => set(&mut o, MsFlags::MS_NODEV),
            "dev" => o.flags.remove(MsFlags::MS_NODEV),
            "noexec" => set(&mut o, MsFlags::MS_NOEXEC),
            "exec" => o.flags.remove(MsFlags::MS_NOEXEC),
            "sync" => set(&mut o, MsFlags::MS_SYNCHRONOUS),
            "async" => o.flags.remove(MsFlags::MS_SYNCHRONOUS),
            "noatime" => set(&mut o, MsFlags::MS_NOATIME),
            "nodiratime" => set(&mut o, MsFlags::MS_NODIRATIME),
            "relatime" => set(&mut o, MsFlags::MS_RELATIME),
            "strictatime" => set(&mut o, MsFlags::MS_STRICTATIME),
            "bind" => o.bind = true,
            "rbind" => {
                o.bind = true;
                o.recursive = true;
            }
            "private" => o.propagation.insert(MsFlags::MS_PRIVATE),
            "rprivate" => o.propagation.insert(MsFlags::MS_PRIVATE | MsFlags::MS_REC),
            "slave" => o.propagation.insert(MsFlags::MS_SLAVE),
            "rslave" => o.propagation.insert(MsFlags::MS_SLAVE | MsFlags::MS_REC),
            "shared" => o.propagation.insert(MsFlags::MS_SHARED),
            "rshared" => o.propagation.insert(MsFlags::MS_SHARED | MsFlags::MS_REC),
            "unbindable" => o.propagation.insert(MsFlags::MS_UNBINDABLE),
            "runbindable" => o
                .propagation
                .insert(MsFlags::MS_UNBINDABLE | MsFlags::MS_REC),
            other => o.data.push(other.to_string()),
        }
    }
    o
}

/// The rootfs-relative form of an absolute container path ("/a/../b" → "b").
fn relative(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(s) => out.push(s),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

struct Setup<'a, 's> {
    sys: &'s dyn Syscall,
    cfg: &'a RootfsSetup<'a>,
    /// Targets mounted so far (relative), to know what is inside the image.
    mounted: Vec<PathBuf>,
    stubs: Vec<Stub>,
}

impl Setup<'_, '_> {
    fn host(&self, rel: &Path) -> PathBuf {
        self.cfg.root.join(rel)
    }

    /// Host path of a container path, symlinks resolved inside the root
    /// (for paths that exist on the real file system).
    fn resolve(&self, dest: &Path) -> Result<PathBuf, SetupError> {
        let resolved = crate::confined::resolve_in_root(self.cfg.root, dest)
            .map_err(SetupError::at("resolve mount target", dest))?;
        let rel = resolved
            .strip_prefix(self.cfg.root)
            .map(Path::to_path_buf)
            .unwrap_or_else(|_| relative(dest));
        Ok(rel)
    }

    fn in_image(&self, rel: &Path) -> bool {
        !self.mounted.iter().any(|m| rel.starts_with(m) && rel != m)
    }

    /// Creates `rel` (a directory, or a file when `file`) and its missing
    /// parents; records what it created inside the image as stubs.
    fn ensure(&mut self, rel: &Path, file: bool) -> Result<(), SetupError> {
        let mut cur = PathBuf::new();
        let parts: Vec<_> = rel.components().collect();
        for (i, part) in parts.iter().enumerate() {
            let parent = cur.clone();
            cur.push(part);
            let host = self.host(&cur);
            let last = i + 1 == parts.len();
            match self.sys.kind(&host) {
                FileKind::Missing => {
                    let parent_mtime = self.sys.mtime(&self.host(&parent)).unwrap_or((0, 0));
                    if last && file {
                        self.sys
                            .create_file(&host)
                            .map_err(SetupError::at("create mount target", &host))?;
                    } else {
                        self.sys
                            .mkdir(&host, 0o755)
                            .map_err(SetupError::at("create mount target", &host))?;
                    }
                    if self.in_image(&cur) {
                        let parent_mtime_after =
                            self.sys.mtime(&self.host(&parent)).unwrap_or((0, 0));
                        self.stubs.push(Stub {
                            rel: cur.clone(),
                            parent_mtime,
                            parent_mtime_after,
                        });
                    }
                }
                FileKind::Dir | FileKind::File | FileKind::Other | FileKind::Symlink => {}
            }
        }
        Ok(())
    }

    fn mount_root(&mut self) -> Result<(), SetupError> {
        let root = self.cfg.root;
        match self.cfg.rootfs {
            Rootfs::Dir(dir) => self
                .sys
                .mount(
                    Some(dir),
                    root,
                    None,
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    None,
                )
                .map_err(SetupError::at("bind-mount the rootfs", dir)),
            Rootfs::Overlay(o) => {
                let lowers: Vec<String> =
                    o.lowers.iter().map(|p| p.display().to_string()).collect();
                if lowers.is_empty() {
                    return Err(SetupError::invalid("an overlay rootfs needs a lower layer"));
                }
                let data = format!(
                    "lowerdir={},upperdir={},workdir={}",
                    lowers.join(":"),
                    o.upper.display(),
                    o.work.display()
                );
                // Keep the upper directory a plain diff: no metacopy-only
                // files, no redirect xattrs for renamed directories.
                let strict = format!("{data},redirect_dir=off,metacopy=off");
                // `volatile` (Linux 5.10+) for build steps: the end of the
                // sandbox's mount namespace does not sync the whole upper
                // filesystem; kiln makes what it keeps durable itself (layer
                // blobs are fsynced, snapshots from uppers are trusted for
                // one boot). An earlier volatile mount of the same upper
                // (the step's file operation) left a marker that refuses
                // any new mount: it goes first.
                let fast = format!("{strict},volatile");
                let first = if o.volatile {
                    let _ = std::fs::remove_dir_all(o.work.join("work/incompat"));
                    self.sys.mount(
                        Some(Path::new("overlay")),
                        root,
                        Some("overlay"),
                        MsFlags::empty(),
                        Some(&fast),
                    )
                } else {
                    Err(std::io::Error::from_raw_os_error(libc::EINVAL))
                };
                let r = first.or_else(|e| match e.raw_os_error() {
                    Some(libc::EINVAL) => self.sys.mount(
                        Some(Path::new("overlay")),
                        root,
                        Some("overlay"),
                        MsFlags::empty(),
                        Some(&strict),
                    ),
                    _ => Err(e),
                });
                match r {
                    Err(e) if e.raw_os_error() == Some(libc::EINVAL) => self
                        .sys
                        .mount(
                            Some(Path::new("overlay")),
                            root,
                            Some("overlay"),
                            MsFlags::empty(),
                            Some(&data),
                        )
                        .map_err(SetupError::at("mount the overlay rootfs", root)),
                    other => other.map_err(SetupError::at("mount the overlay rootfs", root)),
                }
            }
        }
    }

    fn mount_one(&mut self, m: &Mount) -> Result<(), SetupError> {
        let dest = m.destination();
        if !dest.is_absolute() {
            return Err(SetupError::invalid(&format!(
                "mount destination {} is not absolute",
                dest.display()
            )));
        }
        let typ = m.typ().clone().unwrap_or_default();
        let opts = parse_options(m.options().as_deref().unwrap_or(&[]));
        let bind = opts.bind || typ == "bind";
        let source = m.source().clone().unwrap_or_default();
        if typ == "cgroup" && !self.cfg.cgroup2 {
            // cgroup v1 hierarchies are not mounted into sandboxes.
            return Ok(());
        }
        let rel = self.resolve(dest)?;
        let source_is_file = bind && !source.is_dir();
        self.ensure(&rel, source_is_file)?;
        let target = self.host(&rel);
        let data = opts.data.join(",");
        let data = (!data.is_empty()).then_some(data.as_str());
        if bind {
            let mut flags = MsFlags::MS_BIND;
            if opts.recursive {
                flags |= MsFlags::MS_REC;
            }
            self.sys
                .mount(Some(&source), &target, None, flags, None)
                .map_err(SetupError::at("bind mount", &target))?;
            let extra = opts.flags
                & (MsFlags::MS_RDONLY
                    | MsFlags::MS_NOSUID
                    | MsFlags::MS_NODEV
                    | MsFlags::MS_NOEXEC);
            if !extra.is_empty() {
                self.sys
                    .mount(
                        None,
                        &target,
                        None,
                        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | extra,
                        None,
                    )
                    .map_err(SetupError::at("remount bind mount", &target))?;
            }
        } else {
            let fstype = if typ == "cgroup" {
                "cgroup2"
            } else {
                typ.as_str()
            };
            self.sys
                .mount(Some(&source), &target, Some(fstype), opts.flags, data)
                .map_err(SetupError::at("mount", &target))?;
        }
        if !opts.propagation.is_empty() {
            self.sys
                .mount(None, &target, None, opts.propagation, None)
                .map_err(SetupError::at("set mount propagation", &target))?;
        }
        self.mounted.push(rel);
        Ok(())
    }

    fn devices(&mut self) -> Result<(), SetupError> {
        let dev = PathBuf::from("dev");
        if self.sys.kind(&self.host(&dev)) != FileKind::Dir {
            self.ensure(&dev, false)?;
        }
        for (name, major, minor) in DEFAULT_DEVICES {
            let path = self.host(&dev.join(name));
            if self.sys.kind(&path) == FileKind::Missing {
                self.sys
                    .mknod_char(&path, 0o666, major, minor)
                    .map_err(SetupError::at("create device", &path))?;
            }
        }
        for d in self.cfg.devices {
            if !matches!(d.typ(), LinuxDeviceType::C | LinuxDeviceType::U) {
                continue;
            }
            let rel = relative(d.path());
            if let Some(parent) = rel.parent() {
                self.ensure(parent, false)?;
            }
            let path = self.host(&rel);
            if self.sys.kind(&path) == FileKind::Missing {
                self.sys
                    .mknod_char(
                        &path,
                        d.file_mode().unwrap_or(0o666),
                        d.major() as u64,
                        d.minor() as u64,
                    )
                    .map_err(SetupError::at("create device", &path))?;
            }
        }
        for (target, name) in DEV_SYMLINKS {
            let link = self.host(&dev.join(name));
            if self.sys.kind(&link) == FileKind::Missing {
                self.sys
                    .symlink(Path::new(target), &link)
                    .map_err(SetupError::at("create symlink", &link))?;
            }
        }
        Ok(())
    }

    /// Bind-mounts the `/etc` files. Their contents are written to the
    /// sandbox's own `/dev` tmpfs, bind-mounted, and unlinked there (the
    /// mounts keep them), so nothing is written into the image.
    fn etc_files(&mut self) -> Result<(), SetupError> {
        let dev = PathBuf::from("dev");
        if !self.mounted.contains(&dev) {
            // No private /dev to stage them in: the image's own files stay.
            return Ok(());
        }
        let files = [
            ("hosts", &self.cfg.etc.hosts),
            ("resolv.conf", &self.cfg.etc.resolv_conf),
            ("hostname", &self.cfg.etc.hostname),
        ];
        for (name, contents) in files {
            let dest = Path::new("/etc").join(name);
            let rel = self.resolve(&dest)?;
            self.ensure(&rel, true)?;
            let target = self.host(&rel);
            if self.sys.kind(&target) != FileKind::File {
                // Not a file (a directory, a device): leave it alone.
                continue;
            }
            let staged = self.host(&dev.join(format!(".kiln-{name}")));
            self.sys
                .write_file(&staged, contents.as_bytes())
                .map_err(SetupError::at("write", &staged))?;
            self.sys
                .mount(Some(&staged), &target, None, MsFlags::MS_BIND, None)
                .map_err(SetupError::at("bind mount", &target))?;
            self.sys
                .remove_file(&staged)
                .map_err(SetupError::at("remove", &staged))?;
        }
        Ok(())
    }

    fn masked_and_readonly(&mut self) -> Result<(), SetupError> {
        let null = self.host(Path::new("dev/null"));
        for p in self.cfg.masked_paths {
            let rel = relative(Path::new(p));
            let target = self.host(&rel);
            match self.sys.kind(&target) {
                FileKind::Missing | FileKind::Symlink => {}
                FileKind::Dir => self
                    .sys
                    .mount(
                        Some(Path::new("tmpfs")),
                        &target,
                        Some("tmpfs"),
                        MsFlags::MS_RDONLY,
                        None,
                    )
                    .map_err(SetupError::at("mask", &target))?,
                _ => self
                    .sys
                    .mount(Some(&null), &target, None, MsFlags::MS_BIND, None)
                    .map_err(SetupError::at("mask", &target))?,
            }
        }
        for p in self.cfg.readonly_paths {
            let rel = relative(Path::new(p));
            let target = self.host(&rel);
            if matches!(
                self.sys.kind(&target),
                FileKind::Missing | FileKind::Symlink
            ) {
                continue;
            }
            self.sys
                .mount(
                    Some(&target),
                    &target,
                    None,
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    None,
                )
                .map_err(SetupError::at("make read-only", &target))?;
            self.sys
                .mount(
                    None,
                    &target,
                    None,
                    MsFlags::MS_BIND
                        | MsFlags::MS_REMOUNT
                        | MsFlags::MS_RDONLY
                        | MsFlags::MS_NOSUID
                        | MsFlags::MS_NODEV
                        | MsFlags::MS_NOEXEC,
                    None,
                )
                .map_err(SetupError::at("make read-only", &target))?;
        }
        Ok(())
    }
}

/// The outcome of a successful setup.
pub(crate) struct Prepared {
    pub stubs: Vec<Stub>,
}

/// Mounts and populates the rootfs at `cfg.root`; the caller then pivots
/// into it. On error the stubs created so far come with the error, so they
/// are removed too (the mounts vanish with the mount namespace).
pub(crate) fn prepare(
    sys: &dyn Syscall,
    cfg: &RootfsSetup<'_>,
) -> Result<Prepared, (SetupError, Vec<Stub>)> {
    let mut s = Setup {
        sys,
        cfg,
        mounted: Vec::new(),
        stubs: Vec::new(),
    };
    let result = (|| {
        s.mount_root()?;
        for m in cfg.mounts {
            s.mount_one(m)?;
        }
        s.devices()?;
        s.etc_files()?;
        s.masked_and_readonly()
    })();
    match result {
        Ok(()) => Ok(Prepared { stubs: s.stubs }),
        Err(e) => Err((e, s.stubs)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{MASKED_PATHS, READONLY_PATHS, default_mounts};
    use crate::syscall::{Call, RecordingSyscall};

    fn run(sys: &RecordingSyscall, rootfs: &Rootfs) -> Prepared {
        let mounts = default_mounts();
        let masked: Vec<String> = MASKED_PATHS.iter().map(|s| s.to_string()).collect();
        let ro: Vec<String> = READONLY_PATHS.iter().map(|s| s.to_string()).collect();
        let etc = EtcContents::default();
        let cfg = RootfsSetup {
            root: Path::new("/nonexistent-kiln-root"),
            rootfs,
            mounts: &mounts,
            devices: &[],
            masked_paths: &masked,
            readonly_paths: &ro,
            etc: &etc,
            cgroup2: false,
        };
        prepare(sys, &cfg).map_err(|(e, _)| e).unwrap()
    }

    #[test]
    fn mounts_in_spec_order_then_devices_etc_and_masks() {
        let r = "/nonexistent-kiln-root";
        let sys = RecordingSyscall::with_paths(&[
            ("/nonexistent-kiln-root/proc", FileKind::Dir),
            ("/nonexistent-kiln-root/etc", FileKind::Dir),
            ("/nonexistent-kiln-root/proc/kcore", FileKind::File),
            ("/nonexistent-kiln-root/proc/sys", FileKind::Dir),
            ("/nonexistent-kiln-root/proc/acpi", FileKind::Dir),
        ]);
        let prepared = run(&sys, &Rootfs::Dir("/img".into()));
        let targets: Vec<String> = sys
            .mount_targets()
            .iter()
            .map(|p| p.strip_prefix(r).unwrap().display().to_string())
            .collect();
        assert_eq!(
            &targets[..7],
            ["", "proc", "dev", "dev/pts", "sys", "dev/mqueue", "dev/shm"]
        );
        assert_eq!(
            &targets[7..],
            [
                "etc/hosts",
                "etc/resolv.conf",
                "etc/hostname",
                "proc/acpi",
                "proc/kcore",
                "proc/sys",
                "proc/sys"
            ]
        );
        // Stubs: only what was created inside the image, not inside /dev's tmpfs.
        let stubs: Vec<_> = prepared
            .stubs
            .iter()
            .map(|s| s.rel.display().to_string())
            .collect();
        assert_eq!(
            stubs,
            ["dev", "sys", "etc/hosts", "etc/resolv.conf", "etc/hostname"]
        );
        let calls = sys.calls();
        assert!(calls.contains(&Call::Mknod(format!("{r}/dev/null").into(), 1, 3)));
        assert!(calls.contains(&Call::Symlink(
            "pts/ptmx".into(),
            format!("{r}/dev/ptmx").into()
        )));
        // The sysfs mount is read-only.
        assert!(
            calls
                .iter()
                .any(|c| matches!(c, Call::Mount { fstype: Some(t), flags, .. }
            if t == "sysfs" && flags.contains(MsFlags::MS_RDONLY)))
        );
    }

    #[test]
    fn overlay_root_options() {
        let sys = RecordingSyscall::default();
        run(
            &sys,
            &Rootfs::Overlay(super::super::OverlayRootfs {
                lowers: vec!["/l/top".into(), "/l/base".into()],
                upper: "/s/upper".into(),
                work: "/s/work".into(),
                mountpoint: "/nonexistent-kiln-root".into(),
                volatile: true,
            }),
        );
        match &sys.calls()[0] {
            Call::Mount { fstype, data, .. } => {
                assert_eq!(fstype.as_deref(), Some("overlay"));
                assert_eq!(
                    data.as_deref(),
                    Some(
                        "lowerdir=/l/top:/l/base,upperdir=/s/upper,workdir=/s/work,redirect_dir=off,metacopy=off,volatile"
                    )
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn options_parse() {
        let o = parse_options(&[
            "rbind".into(),
            "ro".into(),
            "mode=755".into(),
            "rprivate".into(),
        ]);
        assert!(o.bind && o.recursive);
        assert!(o.flags.contains(MsFlags::MS_RDONLY));
        assert_eq!(o.data, ["mode=755"]);
        assert!(
            o.propagation
                .contains(MsFlags::MS_PRIVATE | MsFlags::MS_REC)
        );
    }
}
