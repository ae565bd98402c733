//! v2 memory controller: `memory.max`, `memory.swap.max` (0 unless the spec
//! allows swap, so a limit means what it says).

use std::io;
use std::path::Path;

use super::super::{CgroupFs, Limits};

pub(super) fn apply(fs: &dyn CgroupFs, dir: &Path, l: &Limits) -> io::Result<()> {
    let Some(limit) = l.memory else {
        return Ok(());
    };
    fs.write(&dir.join("memory.max"), &limit.to_string())?;
    let swap = match l.swap {
        Some(s) if s < 0 => "max".to_string(),
        Some(s) => (s - limit).max(0).to_string(),
        None => "0".to_string(),
    };
    let swap_file = dir.join("memory.swap.max");
    // Hosts without swap accounting have no such file.
    let _ = fs.write(&swap_file, &swap);
    Ok(())
}
