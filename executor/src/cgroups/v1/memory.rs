//! v1 memory controller: `memory.limit_in_bytes`, `memory.memsw.limit_in_bytes`
//! (no swap unless the spec allows it), OOM kills from `memory.oom_control`.

use std::io;
use std::path::Path;

use super::super::{CgroupFs, Limits, flat_key};

pub(super) fn apply(fs: &dyn CgroupFs, dir: &Path, l: &Limits) -> io::Result<()> {
    let Some(limit) = l.memory else {
        return Ok(());
    };
    fs.write(&dir.join("memory.limit_in_bytes"), &limit.to_string())?;
    let memsw = dir.join("memory.memsw.limit_in_bytes");
    if fs.exists(&memsw) {
        let total = match l.swap {
            Some(s) if s < 0 => "-1".to_string(),
            Some(s) => s.max(limit).to_string(),
            None => limit.to_string(),
        };
        fs.write(&memsw, &total)?;
    }
    Ok(())
}

pub(super) fn oom_kills(fs: &dyn CgroupFs, dir: &Path) -> u64 {
    fs.read(&dir.join("memory.oom_control"))
        .ok()
        .and_then(|t| flat_key(&t, "oom_kill"))
        .unwrap_or(0)
}
