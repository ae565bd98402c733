//! v1 cpu controller: CFS quota and period, shares.

use std::io;
use std::path::Path;

use super::super::{CgroupFs, Limits};

pub(super) fn apply(fs: &dyn CgroupFs, dir: &Path, l: &Limits) -> io::Result<()> {
    if let Some(shares) = l.cpu_shares {
        fs.write(&dir.join("cpu.shares"), &shares.to_string())?;
    }
    if let Some(period) = l.cpu_period {
        fs.write(&dir.join("cpu.cfs_period_us"), &period.to_string())?;
    }
    if let Some(quota) = l.cpu_quota {
        fs.write(&dir.join("cpu.cfs_quota_us"), &quota.to_string())?;
    }
    Ok(())
}
