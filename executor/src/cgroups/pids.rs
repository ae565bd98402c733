//! pids controller, the same file in v1 and v2: `pids.max`.

use std::io;
use std::path::Path;

use super::{CgroupFs, Limits};

pub(crate) fn apply(fs: &dyn CgroupFs, dir: &Path, l: &Limits) -> io::Result<()> {
    match l.pids {
        Some(n) => fs.write(&dir.join("pids.max"), &n.to_string()),
        None => Ok(()),
    }
}
