//! Disk usage of containers and volumes, as `kiln system df` shows it:
//! how many there are, how many are in use, the bytes they take, and the
//! bytes removing the unused ones would free.

use std::collections::BTreeSet;

use kiln_executor::dir_size;

use crate::error::RunnerError;
use crate::mounts::VolumeSource;
use crate::runtime::Runtime;

/// One line of `kiln system df`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub total: usize,
    pub active: usize,
    /// Bytes of regular files.
    pub size: u64,
    /// Bytes of the ones not in use.
    pub reclaimable: u64,
}

impl Usage {
    /// Counts one item of `size` bytes.
    pub fn add(&mut self, size: u64, active: bool) {
        self.total += 1;
        self.size += size;
        if active {
            self.active += 1;
        } else {
            self.reclaimable += size;
        }
    }
}

/// Containers (their directories: writable layer and logs; running ones
/// are active) and volumes (used by any container: active).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiskUsage {
    pub containers: Usage,
    pub volumes: Usage,
}

impl Runtime {
    /// What the containers and volumes of this root take.
    pub fn disk_usage(&self) -> Result<DiskUsage, RunnerError> {
        let mut usage = DiskUsage::default();
        let mut used = BTreeSet::new();
        for c in self.store.list()? {
            usage
                .containers
                .add(dir_size(&c.dir), c.state.status.is_active());
            for v in &c.config.volumes {
                if let VolumeSource::Named(name) = &v.source {
                    used.insert(name.clone());
                }
            }
        }
        for name in self.volumes.list()? {
            let size = dir_size(&self.volumes.data_dir(&name));
            usage.volumes.add(size, used.contains(&name));
        }
        Ok(usage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_active_and_reclaimable() {
        let mut u = Usage::default();
        u.add(10, true);
        u.add(5, false);
        u.add(0, false);
        assert_eq!(
            u,
            Usage {
                total: 3,
                active: 1,
                size: 15,
                reclaimable: 5
            }
        );
    }
}
