//! v2 pids controller: `pids.max`.

use std::io;
use std::path::Path;

use super::super::{CgroupFs, Limits};

pub(super) fn needed(l: &Limits) -> bool {
    l.pids.is_some()
}

pub(super) fn apply(fs: &dyn CgroupFs, dir: &Path, l: &Limits) -> io::Result<()> {
    match l.pids {
        Some(n) => fs.write(&dir.join("pids.max"), &n.to_string()),
        None => Ok(()),
    }
}
