//! cgroup v2: one directory `<mount>/kiln/<name>`, controllers enabled in
//! the `subtree_control` of the root and of `kiln/`.

mod cpu;
mod memory;

use std::io;
use std::path::{Path, PathBuf};

use super::{Cgroup, CgroupFs, Limits, flat_key, kill_and_remove, pids, remove_stale};

pub(super) fn create(
    fs: &'static dyn CgroupFs,
    mount: &Path,
    name: &str,
    limits: &Limits,
) -> (Option<Box<dyn Cgroup>>, Vec<String>) {
    let (wanted, mut warnings) = limits.wanted([memory::apply, pids::apply, cpu::apply]);
    let available = fs
        .read(&mount.join("cgroup.controllers"))
        .unwrap_or_default();
    let parent = mount.join("kiln");
    if let Err(e) = fs.mkdir_all(&parent) {
        return (
            None,
            vec![format!(
                "cannot create {}: {e}: running without resource limits",
                parent.display()
            )],
        );
    }
    remove_stale(fs, &parent);
    let mut usable = Vec::new();
    for (ctrl, apply) in wanted {
        if !available.split_whitespace().any(|c| c == ctrl) {
            warnings.push(format!(
                "{ctrl} limit not applied: the cgroup v2 {ctrl} controller is not available"
            ));
            continue;
        }
        let enable = format!("+{ctrl}");
        let enabled = [mount, parent.as_path()].iter().all(|dir| {
            fs.write(&dir.join("cgroup.subtree_control"), &enable)
                .is_ok()
        });
        if !enabled {
            warnings.push(format!(
                "{ctrl} limit not applied: cannot enable the cgroup v2 {ctrl} controller"
            ));
            continue;
        }
        usable.push((ctrl, apply));
    }
    let dir = parent.join(name);
    if let Err(e) = fs.mkdir_all(&dir) {
        warnings.push(format!(
            "cannot create {}: {e}: running without resource limits",
            dir.display()
        ));
        return (None, warnings);
    }
    for (ctrl, apply) in usable {
        if let Err(e) = apply(fs, &dir, limits) {
            warnings.push(format!("{ctrl} limit not applied: {e}"));
        }
    }
    (Some(Box::new(V2Cgroup { fs, dir })), warnings)
}

struct V2Cgroup {
    fs: &'static dyn CgroupFs,
    dir: PathBuf,
}

impl Cgroup for V2Cgroup {
    fn dirs(&self) -> Vec<PathBuf> {
        vec![self.dir.clone()]
    }

    fn add_pid(&self, pid: i32) -> io::Result<()> {
        self.fs
            .write(&self.dir.join("cgroup.procs"), &pid.to_string())
    }

    fn oom_kills(&self) -> u64 {
        self.fs
            .read(&self.dir.join("memory.events"))
            .ok()
            .and_then(|t| flat_key(&t, "oom_kill"))
            .unwrap_or(0)
    }

    fn destroy(&self) -> io::Result<()> {
        // cgroup.kill (5.14+) kills everything at once; fall back to
        // killing the listed processes.
        let _ = self.fs.write(&self.dir.join("cgroup.kill"), "1");
        kill_and_remove(self.fs, &self.dir)
    }
}

#[cfg(test)]
mod tests {
    use super::super::fs::FakeFs;
    use super::*;

    #[test]
    fn enables_controllers_and_writes_v2_files() {
        let fs: &'static FakeFs = Box::leak(Box::new(
            FakeFs::default().file("/cg/cgroup.controllers", "cpuset cpu io memory pids"),
        ));
        let limits = Limits {
            memory: Some(1 << 20),
            pids: Some(10),
            cpu_quota: Some(50_000),
            cpu_period: Some(100_000),
            ..Limits::default()
        };
        let (cg, warnings) = create(fs, Path::new("/cg"), "7-a", &limits);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(cg.unwrap().dirs(), vec![PathBuf::from("/cg/kiln/7-a")]);
        let w = fs.writes();
        assert!(w.contains(&("/cg/cgroup.subtree_control".into(), "+memory".into())));
        assert!(w.contains(&("/cg/kiln/cgroup.subtree_control".into(), "+pids".into())));
        assert!(w.contains(&("/cg/kiln/7-a/memory.max".into(), "1048576".into())));
        assert!(w.contains(&("/cg/kiln/7-a/memory.swap.max".into(), "0".into())));
        assert!(w.contains(&("/cg/kiln/7-a/pids.max".into(), "10".into())));
        assert!(w.contains(&("/cg/kiln/7-a/cpu.max".into(), "50000 100000".into())));
    }

    #[test]
    fn empty_v2_mount_gives_warnings_not_errors() {
        let fs: &'static FakeFs = Box::leak(Box::new(
            FakeFs::default().file("/u/cgroup.controllers", ""),
        ));
        let limits = Limits {
            memory: Some(1 << 20),
            ..Limits::default()
        };
        let (_cg, warnings) = create(fs, Path::new("/u"), "7-a", &limits);
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("memory limit not applied"));
    }
}
