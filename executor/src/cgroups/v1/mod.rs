//! cgroup v1 (and the v1 side of hybrid hosts): one directory per
//! controller, `<mount>/<own cgroup>/kiln/<name>`.

mod cpu;
mod memory;

use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;

use super::{Cgroup, CgroupFs, Limits, kill_and_remove, pids, remove_stale};

pub(super) fn create(
    fs: &'static dyn CgroupFs,
    controllers: &BTreeMap<String, (PathBuf, PathBuf)>,
    name: &str,
    limits: &Limits,
) -> (Option<Box<dyn Cgroup>>, Vec<String>) {
    let (wanted, mut warnings) = limits.wanted([memory::apply, pids::apply, cpu::apply]);
    let mut dirs = Vec::new();
    for (ctrl, apply) in wanted {
        let Some((mount, own)) = controllers.get(ctrl) else {
            warnings.push(format!(
                "{ctrl} limit not applied: the cgroup v1 {ctrl} controller is not mounted"
            ));
            continue;
        };
        let parent = mount
            .join(own.strip_prefix("/").unwrap_or(own))
            .join("kiln");
        remove_stale(fs, &parent);
        let dir = parent.join(name);
        if let Err(e) = fs.mkdir_all(&dir) {
            warnings.push(format!(
                "{ctrl} limit not applied: cannot create {}: {e}",
                dir.display()
            ));
            continue;
        }
        if let Err(e) = apply(fs, &dir, limits) {
            warnings.push(format!("{ctrl} limit not applied: {e}"));
            let _ = fs.rmdir(&dir);
            continue;
        }
        dirs.push((ctrl.to_string(), dir));
    }
    if dirs.is_empty() {
        return (None, warnings);
    }
    (Some(Box::new(V1Cgroup { fs, dirs })), warnings)
}

struct V1Cgroup {
    fs: &'static dyn CgroupFs,
    dirs: Vec<(String, PathBuf)>,
}

impl Cgroup for V1Cgroup {
    fn dirs(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|(_, d)| d.clone()).collect()
    }

    fn add_pid(&self, pid: i32) -> io::Result<()> {
        for (_, dir) in &self.dirs {
            self.fs.write(&dir.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    fn oom_kills(&self) -> u64 {
        self.dirs
            .iter()
            .find(|(c, _)| c == "memory")
            .map(|(_, d)| memory::oom_kills(self.fs, d))
            .unwrap_or(0)
    }

    fn destroy(&self) -> io::Result<()> {
        let mut result = Ok(());
        for (_, dir) in &self.dirs {
            if let Err(e) = kill_and_remove(self.fs, dir) {
                result = Err(e);
            }
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::super::fs::FakeFs;
    use super::*;

    #[test]
    fn hybrid_host_limits_land_in_v1_files() {
        let fs: &'static FakeFs = Box::leak(Box::new(
            FakeFs::default().file("/cg/memory/own/kiln/1-x/memory.memsw.limit_in_bytes", "max"),
        ));
        let mut controllers = BTreeMap::new();
        controllers.insert("memory".to_string(), ("/cg/memory".into(), "/own".into()));
        controllers.insert("pids".to_string(), ("/cg/pids".into(), "/".into()));
        let limits = Limits {
            memory: Some(64 << 20),
            pids: Some(20),
            cpu_quota: Some(50_000),
            ..Limits::default()
        };
        let (cg, warnings) = create(fs, &controllers, "1-x", &limits);
        let cg = cg.unwrap();
        assert_eq!(
            fs.writes(),
            vec![
                (
                    "/cg/memory/own/kiln/1-x/memory.limit_in_bytes".into(),
                    "67108864".into()
                ),
                (
                    "/cg/memory/own/kiln/1-x/memory.memsw.limit_in_bytes".into(),
                    "67108864".into()
                ),
                ("/cg/pids/kiln/1-x/pids.max".into(), "20".into()),
            ]
        );
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("cpu limit not applied"));
        cg.add_pid(42).unwrap();
        assert_eq!(
            fs.read(std::path::Path::new("/cg/pids/kiln/1-x/cgroup.procs"))
                .unwrap(),
            "42"
        );
        assert_eq!(cg.dirs().len(), 2);
    }
}
