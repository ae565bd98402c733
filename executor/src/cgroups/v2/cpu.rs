//! v2 cpu controller: `cpu.max` ("quota period") and `cpu.weight` (from
//! v1-style shares, with the conversion runc uses).

use std::io;
use std::path::Path;

use super::super::{CgroupFs, Limits};

/// runc's mapping of shares [2, 262144] onto weight [1, 10000].
pub(super) fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 100;
    }
    1 + ((shares.clamp(2, 262_144) - 2) * 9999) / 262_142
}

pub(super) fn apply(fs: &dyn CgroupFs, dir: &Path, l: &Limits) -> io::Result<()> {
    if let Some(shares) = l.cpu_shares {
        fs.write(
            &dir.join("cpu.weight"),
            &shares_to_weight(shares).to_string(),
        )?;
    }
    if let Some(quota) = l.cpu_quota {
        let period = l.cpu_period.unwrap_or(100_000);
        fs.write(&dir.join("cpu.max"), &format!("{quota} {period}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn weight_mapping() {
        assert_eq!(super::shares_to_weight(1024), 39);
        assert_eq!(super::shares_to_weight(2), 1);
        assert_eq!(super::shares_to_weight(262_144), 10_000);
    }
}
