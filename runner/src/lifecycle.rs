//! Stopping, killing, removing and pruning containers (and removing
//! volumes no container uses).

use std::time::{Duration, Instant};

use kiln_executor::dir_size;

use crate::container::{Container, Status};
use crate::error::{MountError, RunnerError};
use crate::mounts::VolumeSource;
use crate::runtime::{DEFAULT_STOP_TIMEOUT, PruneReport, Runtime};

impl Runtime {
    /// Stops a running container: its stop signal, then SIGKILL after
    /// `timeout` seconds (default: the container's, else 10). A container
    /// that is not running is left as it is.
    pub fn stop(&self, reference: &str, timeout: Option<u32>) -> Result<Container, RunnerError> {
        let c = self.store.lookup(reference)?;
        if c.state.status != Status::Running {
            return Ok(c);
        }
        let grace = Duration::from_secs(u64::from(
            timeout
                .or(c.config.stop_timeout)
                .unwrap_or(DEFAULT_STOP_TIMEOUT),
        ));
        self.signal(&c, c.config.stop_signal)?;
        if !self.wait_stopped(c.id(), grace) {
            tracing::info!(id = %c.id(), "the stop signal was not enough: killing");
            self.signal(&c, libc::SIGKILL)?;
            self.wait_stopped(c.id(), Duration::from_secs(10));
        }
        self.store.get(c.id())
    }

    /// Sends a signal to a running container's main process; with SIGKILL,
    /// waits until it has stopped.
    pub fn kill(&self, reference: &str, signal: i32) -> Result<Container, RunnerError> {
        let c = self.store.lookup(reference)?;
        c.require(Status::can_kill, "kill", "running")?;
        self.signal(&c, signal)?;
        if signal == libc::SIGKILL {
            self.wait_stopped(c.id(), Duration::from_secs(10));
        }
        self.store.get(c.id())
    }

    fn signal(&self, c: &Container, signal: i32) -> Result<(), RunnerError> {
        let Some(handle) = &c.state.sandbox else {
            return Ok(());
        };
        match handle.signal(signal) {
            Ok(()) => Ok(()),
            Err(kiln_executor::SandboxError::Signal { source, .. })
                if source.raw_os_error() == Some(libc::ESRCH) =>
            {
                Ok(())
            }
            Err(kiln_executor::SandboxError::Signal { source, .. }) => Err(RunnerError::Kill {
                id: c.name().to_string(),
                signal: crate::signal::signal_name(signal),
                source,
            }),
            Err(e) => Err(RunnerError::Sandbox(e)),
        }
    }

    /// Waits until the container is no longer active (its supervisor has
    /// recorded the exit, or is gone); false on timeout.
    pub(crate) fn wait_stopped(&self, id: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            match self.store.get(id) {
                Ok(c) if c.state.status.is_active() => {}
                _ => return true,
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Removes a container: refused while it runs unless `force` (then it
    /// is killed first); `volumes` also removes its anonymous volumes.
    pub fn remove(
        &self,
        reference: &str,
        force: bool,
        volumes: bool,
    ) -> Result<String, RunnerError> {
        let c = self.store.lookup(reference)?;
        if c.state.status.is_active() {
            if !force {
                return Err(RunnerError::RemoveRunning {
                    id: c.name().to_string(),
                });
            }
            self.signal(&c, libc::SIGKILL)?;
            if !self.wait_stopped(c.id(), Duration::from_secs(10)) {
                return Err(RunnerError::RemoveRunning {
                    id: c.name().to_string(),
                });
            }
        }
        self.remove_stopped(c.id(), volumes)?;
        Ok(c.id().to_string())
    }

    /// Removes a container known to be stopped (the supervisor's `--rm`).
    pub(crate) fn remove_stopped(&self, id: &str, volumes: bool) -> Result<(), RunnerError> {
        let c = {
            let _lock = self.store.lock(id)?;
            let c = self.store.get(id)?;
            c.require(|s| s.can_remove(false), "rm", "stopped")?;
            self.store.remove_dir(id)?;
            c
        };
        tracing::debug!(%id, "container directory removed");
        if let Err(e) = self.images.release(&holder(id)) {
            tracing::warn!(%id, error = %e, "cannot release the container's image");
        }
        if volumes || c.config.auto_remove {
            for v in c.config.volumes.iter().filter(|v| v.anonymous) {
                if let VolumeSource::Named(name) = &v.source
                    && let Err(e) = self.volumes.remove(name)
                {
                    tracing::warn!(volume = %name, error = %e, "cannot remove an anonymous volume");
                }
            }
        }
        Ok(())
    }

    /// Removes every stopped container.
    pub fn prune(&self) -> Result<PruneReport, RunnerError> {
        let mut report = PruneReport::default();
        for c in self.store.list()? {
            if c.state.status.is_active() {
                continue;
            }
            let size = dir_size(&c.dir);
            match self.remove_stopped(c.id(), false) {
                Ok(()) => {
                    report.removed.push(c.id().to_string());
                    report.reclaimed_bytes += size;
                }
                Err(RunnerError::NoSuchContainer { .. }) | Err(RunnerError::WrongState { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(report)
    }

    /// Removes a named volume unless a container uses it.
    pub fn remove_volume(&self, name: &str) -> Result<(), RunnerError> {
        for c in self.store.list()? {
            if c.config
                .volumes
                .iter()
                .any(|v| v.source == VolumeSource::Named(name.to_string()))
            {
                return Err(MountError::VolumeInUse {
                    name: name.to_string(),
                    container: c.name().to_string(),
                }
                .into());
            }
        }
        self.volumes.remove(name)
    }
}

/// The store hold of a container.
pub(crate) fn holder(id: &str) -> String {
    format!("container:{id}")
}
