//! Cgroups: memory, pids and cpu limits on cgroup v2, v1 and hybrid hosts
//! behind one [`Cgroup`] trait, the layout detected at run time. On a
//! hybrid host (v1 controllers plus a v2 mount without controllers, like
//! this project's machines) the v1 controllers are used. One file per
//! controller under `v1/` and `v2/`, or here when both versions write the
//! same file (`pids.rs`).
//!
//! A sandbox's cgroup is `kiln/<helper pid>-<id>`: on v1 below the
//! helper's own cgroup of each controller, on v2 below the hierarchy's
//! root. The pid in the name lets a later run remove cgroups left by a
//! helper that was killed with SIGKILL. When a limit cannot be applied the
//! sandbox runs without it and the reason is returned as a warning.

mod fs;
mod pids;
mod v1;
mod v2;

pub(crate) use fs::{CgroupFs, RealFs};

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;

/// The limits kiln applies, extracted from the spec's resources.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Limits {
    /// Bytes.
    pub memory: Option<i64>,
    /// Memory + swap, bytes (the OCI meaning).
    pub swap: Option<i64>,
    pub pids: Option<i64>,
    pub cpu_quota: Option<i64>,
    pub cpu_period: Option<u64>,
    pub cpu_shares: Option<u64>,
    /// A cpuset (not applied: reported as a warning).
    pub cpus: Option<String>,
}

impl Limits {
    pub fn from_resources(r: Option<&LinuxResources>) -> Limits {
        let Some(r) = r else {
            return Limits::default();
        };
        let mem = r.memory().as_ref();
        let cpu = r.cpu().as_ref();
        Limits {
            memory: mem.and_then(|m| m.limit()).filter(|&l| l > 0),
            swap: mem.and_then(|m| m.swap()),
            pids: r.pids().as_ref().map(|p| p.limit()).filter(|&l| l > 0),
            cpu_quota: cpu.and_then(|c| c.quota()).filter(|&q| q > 0),
            cpu_period: cpu.and_then(|c| c.period()),
            cpu_shares: cpu.and_then(|c| c.shares()),
            cpus: cpu.and_then(|c| c.cpus().clone()).filter(|s| !s.is_empty()),
        }
    }

    pub fn is_empty(&self) -> bool {
        *self == Limits::default()
    }

    /// The controllers these limits need, in setup order, each with its
    /// setter from `setters` (one hierarchy version's memory, pids and
    /// cpu), and warnings for what no controller applies.
    fn wanted(&self, setters: [Apply; 3]) -> (Vec<(&'static str, Apply)>, Vec<String>) {
        let [memory, pids, cpu] = setters;
        let needs = [
            ("memory", self.memory.is_some(), memory),
            ("pids", self.pids.is_some(), pids),
            (
                "cpu",
                self.cpu_quota.is_some() || self.cpu_shares.is_some(),
                cpu,
            ),
        ];
        let wanted = needs
            .into_iter()
            .filter(|(_, needed, _)| *needed)
            .map(|(name, _, apply)| (name, apply))
            .collect();
        let mut warnings = Vec::new();
        if self.cpus.is_some() {
            warnings.push("cpuset limits are not supported: running on all cpus".to_string());
        }
        (wanted, warnings)
    }
}

/// Sets one controller's limits in a cgroup directory.
type Apply = fn(&dyn CgroupFs, &Path, &Limits) -> io::Result<()>;

/// The host's cgroup layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Layout {
    /// Unified hierarchy mounted at `mount`.
    V2 {
        mount: PathBuf,
    },
    /// v1 (or hybrid): each controller's mount point and this process's
    /// cgroup in it.
    V1 {
        controllers: BTreeMap<String, (PathBuf, PathBuf)>,
    },
    None,
}

/// Detects the layout from `/proc/self/mountinfo` and `/proc/self/cgroup`.
pub(crate) fn detect(mountinfo: &str, proc_cgroup: &str) -> Layout {
    let mut v1 = BTreeMap::new();
    let mut v2 = None;
    let own: BTreeMap<String, PathBuf> = proc_cgroup
        .lines()
        .filter_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, ctrls, path) = (f.next()?, f.next()?, f.next()?);
            Some((ctrls.to_string(), PathBuf::from(path)))
        })
        .collect();
    for line in mountinfo.lines() {
        // "<id> <parent> <maj:min> <root> <mountpoint> <opts> [optional]... - <fstype> <source> <superopts>"
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let mountpoint = left.split(' ').nth(4).map(PathBuf::from);
        let mut r = right.split(' ');
        let (fstype, _source, superopts) = (r.next(), r.next(), r.next().unwrap_or(""));
        let Some(mountpoint) = mountpoint else {
            continue;
        };
        match fstype {
            Some("cgroup2") => v2 = Some(mountpoint),
            Some("cgroup") => {
                for ctrl in ["memory", "pids", "cpu"] {
                    if superopts.split(',').any(|o| o == ctrl) {
                        let own_path = own
                            .iter()
                            .find(|(k, _)| k.split(',').any(|c| c == ctrl))
                            .map(|(_, p)| p.clone())
                            .unwrap_or_else(|| PathBuf::from("/"));
                        v1.insert(ctrl.to_string(), (mountpoint.clone(), own_path));
                    }
                }
            }
            _ => {}
        }
    }
    if !v1.is_empty() {
        Layout::V1 { controllers: v1 }
    } else if let Some(mount) = v2 {
        Layout::V2 { mount }
    } else {
        Layout::None
    }
}

/// The host's layout, read from /proc.
pub(crate) fn detect_host() -> Layout {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let cgroup = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    detect(&mountinfo, &cgroup)
}

/// A sandbox's cgroup.
pub(crate) trait Cgroup {
    /// Its directories (one per v1 controller, or one).
    fn dirs(&self) -> Vec<PathBuf>;
    fn add_pid(&self, pid: i32) -> io::Result<()>;
    /// How many processes the OOM killer killed in it.
    fn oom_kills(&self) -> u64;
    /// Kills what is left in it and removes it.
    fn destroy(&self) -> io::Result<()>;
}

/// Creates the cgroup `kiln/<name>` with `limits`. Returns `None` (and
/// warnings saying which limits are not applied) when nothing usable
/// exists; partial support gives a cgroup plus warnings.
pub(crate) fn create(
    fs: &'static dyn CgroupFs,
    layout: &Layout,
    name: &str,
    limits: &Limits,
) -> (Option<Box<dyn Cgroup>>, Vec<String>) {
    match layout {
        Layout::V1 { controllers } => v1::create(fs, controllers, name, limits),
        Layout::V2 { mount } => v2::create(fs, mount, name, limits),
        Layout::None => (
            None,
            vec!["no cgroup hierarchy is mounted: running without resource limits".to_string()],
        ),
    }
}

/// Removes cgroups under `parent` left by helpers that no longer run.
pub(crate) fn remove_stale(fs: &dyn CgroupFs, parent: &Path) {
    for name in fs.subdirs(parent) {
        let Some(pid) = name.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if Path::new("/proc").join(pid.to_string()).exists() {
            continue;
        }
        let _ = kill_and_remove(fs, &parent.join(&name));
    }
}

/// SIGKILLs every process in `dir` and removes it, retrying while the
/// kernel still counts dying processes.
pub(crate) fn kill_and_remove(fs: &dyn CgroupFs, dir: &Path) -> io::Result<()> {
    if !fs.exists(dir) {
        return Ok(());
    }
    let mut last = None;
    for _ in 0..200 {
        if let Ok(procs) = fs.read(&dir.join("cgroup.procs")) {
            for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                // SAFETY: kill with a pid read from the cgroup.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        match fs.rmdir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => last = Some(e),
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    Err(last.unwrap_or_else(|| io::Error::from(io::ErrorKind::ResourceBusy)))
}

/// Reads "key value" lines (memory.events, memory.oom_control) for `key`.
pub(crate) fn flat_key(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID_MOUNTINFO: &str = "\
30 25 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/cpu rw,relatime shared:10 - cgroup cgroup rw,cpu
35 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
38 30 0:34 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 30 0:36 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const HYBRID_CGROUP: &str = "8:pids:/\n4:memory:/process_api/abc\n1:cpu:/\n0::/\n";

    #[test]
    fn detects_hybrid_as_v1_with_own_paths() {
        match detect(HYBRID_MOUNTINFO, HYBRID_CGROUP) {
            Layout::V1 { controllers } => {
                assert_eq!(
                    controllers["memory"],
                    (
                        PathBuf::from("/sys/fs/cgroup/memory"),
                        PathBuf::from("/process_api/abc")
                    )
                );
                assert_eq!(controllers["pids"].1, PathBuf::from("/"));
                assert!(!controllers.contains_key("cpuset"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn detects_pure_v2() {
        let mi = "40 30 0:36 / /sys/fs/cgroup rw,relatime - cgroup2 cgroup2 rw,nsdelegate\n";
        assert_eq!(
            detect(mi, "0::/user.slice\n"),
            Layout::V2 {
                mount: "/sys/fs/cgroup".into()
            }
        );
        assert_eq!(detect("", ""), Layout::None);
    }

    #[test]
    fn flat_keys() {
        assert_eq!(
            flat_key("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n", "oom_kill"),
            Some(3)
        );
        assert_eq!(flat_key("low 0\n", "oom_kill"), None);
    }
}
