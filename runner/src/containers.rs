//! Containers at rest: `<root>/containers/<id>/` holds `config.json`
//! (written once), `state.json` (rewritten atomically on every transition),
//! a `lock` file (flock) that serialises transitions, the log file and the
//! files bind-mounted into the container. A container directory appears by
//! renaming a complete temp directory and disappears by renaming it aside
//! before deleting it, so a reader never sees half of one.
//!
//! State read back is reconciled with the live processes: a container
//! recorded as running whose process and supervisor are both gone (both
//! were SIGKILLed, the machine rebooted) is reported — and recorded — as
//! exited with an unknown status.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use kiln_executor::ExitOutcome;

use crate::container::{Container, ContainerConfig, ContainerState, Status};
use crate::error::{RunnerError, StateError};
use crate::names::{generate_name, is_full_id};
use crate::process::{HostProcesses, ProcessTable};
use crate::reconcile::reconcile;

pub(crate) const CONFIG_FILE: &str = "config.json";
pub(crate) const STATE_FILE: &str = "state.json";
pub(crate) const LOCK_FILE: &str = "lock";
pub(crate) const LOG_FILE: &str = "container.log";
/// Where the sandbox helper writes the outcome when the process ends.
pub(crate) const EXIT_FILE: &str = "exit.json";

fn read_outcome(dir: &Path) -> Option<ExitOutcome> {
    let bytes = std::fs::read(dir.join(EXIT_FILE)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// An exclusive lock on one container (or on the whole directory while a
/// name is being claimed), released when dropped.
pub struct ContainerLock {
    _lock: Flock<File>,
}

/// The `containers/` directory of a kiln root.
#[derive(Debug, Clone)]
pub struct ContainerStore {
    dir: PathBuf,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StateError + '_ {
    move |source| StateError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Marks a container whose files need not survive a power loss (`--rm`:
/// it is removed when it ends): its state is still replaced atomically
/// (temp + rename, safe against SIGKILL), without the fsyncs that would
/// cost more than the container's whole run.
pub(crate) const EPHEMERAL_FILE: &str = "ephemeral";

/// Writes `bytes` to `path` atomically: temp file beside it, fsync (when
/// `durable`), rename, fsync of the directory (when `durable`).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8], durable: bool) -> Result<(), StateError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        if durable {
            f.sync_all()?;
        }
        std::fs::rename(&tmp, path)?;
        if durable {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(io_err(path))
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, StateError> {
    let bytes = std::fs::read(path).map_err(io_err(path))?;
    serde_json::from_slice(&bytes).map_err(|source| StateError::Corrupt {
        path: path.to_path_buf(),
        source,
    })
}

fn durable(dir: &Path) -> bool {
    !dir.join(EPHEMERAL_FILE).exists()
}

/// Reads a state file. One that is damaged (a machine that lost power
/// while an ephemeral container ran) reads as exited with an unknown
/// status, so the container can still be removed.
fn read_state_file(path: &Path) -> Result<ContainerState, StateError> {
    match read_json::<ContainerState>(path) {
        Err(StateError::Corrupt { path, source }) => {
            tracing::warn!(path = %path.display(), error = %source, "damaged container state");
            let mut s = ContainerState::created();
            s.status = Status::Exited;
            s.error = Some(format!("the state file was damaged: {source}"));
            Ok(s)
        }
        other => other,
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> Vec<u8> {
    // Our own types always serialise.
    serde_json::to_vec_pretty(value).unwrap_or_default()
}

impl ContainerStore {
    /// Opens (creating) `<root>/containers` and reclaims what a crash left:
    /// half-created directories and half-removed ones.
    pub fn open(root: &Path) -> Result<ContainerStore, RunnerError> {
        let dir = root.join("containers");
        std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let store = ContainerStore { dir };
        store.reclaim();
        Ok(store)
    }

    /// The `containers/` directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// A container's directory.
    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    fn reclaim(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let stale = if let Some(rest) = name.strip_prefix(".tmp-") {
                // .tmp-<pid>-<id>: stale once its creator is gone.
                rest.split('-')
                    .next()
                    .and_then(|p| p.parse::<i32>().ok())
                    .is_some_and(|pid| HostProcesses.start_time(pid).is_none())
            } else {
                name.starts_with(".rm-")
            };
            if stale {
                let path = entry.path();
                crate::cleanup::unmount_all_under(&path);
                let _ = std::fs::remove_dir_all(&path);
            }
        }
    }

    fn lock_file(path: &Path) -> Result<ContainerLock, StateError> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(io_err(path))?;
        let lock =
            Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, errno)| StateError::Io {
                path: path.to_path_buf(),
                source: errno.into(),
            })?;
        Ok(ContainerLock { _lock: lock })
    }

    /// Locks one container against concurrent transitions.
    pub fn lock(&self, id: &str) -> Result<ContainerLock, RunnerError> {
        Ok(Self::lock_file(&self.container_dir(id).join(LOCK_FILE))?)
    }

    fn lock_names(&self) -> Result<ContainerLock, RunnerError> {
        Ok(Self::lock_file(&self.dir.join(".names.lock"))?)
    }

    /// Ids of every container, in no particular order.
    fn ids(&self) -> Result<Vec<String>, RunnerError> {
        let entries = std::fs::read_dir(&self.dir).map_err(io_err(&self.dir))?;
        Ok(entries
            .flatten()
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .filter(|n| is_full_id(n))
            .collect())
    }

    /// Creates a container: claims its name (`None`: a generated one)
    /// under a lock, then publishes its directory in one rename.
    /// `prepare` may add files to the directory before it appears.
    pub fn create(
        &self,
        mut config: ContainerConfig,
        requested_name: Option<&str>,
        prepare: impl FnOnce(&Path, &ContainerConfig) -> Result<(), RunnerError>,
    ) -> Result<Container, RunnerError> {
        let _names = self.lock_names()?;
        let existing = self.list_configs()?;
        match requested_name {
            Some(name) => {
                if let Some(other) = existing.iter().find(|c| c.name == name) {
                    return Err(RunnerError::NameInUse {
                        name: name.to_string(),
                        id: other.id.clone(),
                    });
                }
                config.name = name.to_string();
            }
            None => {
                config.name = generate_name(|n| existing.iter().any(|c| c.name == n))?;
            }
        }
        let tmp = self
            .dir
            .join(format!(".tmp-{}-{}", std::process::id(), config.id));
        let final_dir = self.container_dir(&config.id);
        let state = ContainerState::created();
        let durable = !config.auto_remove;
        let result = (|| -> Result<(), RunnerError> {
            std::fs::create_dir(&tmp).map_err(io_err(&tmp))?;
            if !durable {
                File::create(tmp.join(EPHEMERAL_FILE)).map_err(io_err(&tmp))?;
            }
            write_atomic(&tmp.join(CONFIG_FILE), &to_json(&config), durable)?;
            write_atomic(&tmp.join(STATE_FILE), &to_json(&state), durable)?;
            File::create(tmp.join(LOCK_FILE)).map_err(io_err(&tmp))?;
            prepare(&tmp, &config)?;
            std::fs::rename(&tmp, &final_dir).map_err(io_err(&final_dir))?;
            if durable {
                File::open(&self.dir)
                    .and_then(|d| d.sync_all())
                    .map_err(io_err(&self.dir))?;
            }
            Ok(())
        })();
        if let Err(e) = result {
            crate::cleanup::unmount_all_under(&tmp);
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
        Ok(Container {
            config,
            state,
            dir: final_dir,
        })
    }

    fn list_configs(&self) -> Result<Vec<ContainerConfig>, RunnerError> {
        let mut out = Vec::new();
        for id in self.ids()? {
            match read_json::<ContainerConfig>(&self.container_dir(&id).join(CONFIG_FILE)) {
                Ok(c) => out.push(c),
                // Removed meanwhile, or damaged beyond use: not a container.
                Err(e) => tracing::debug!(%id, error = %e, "skipping an unreadable container"),
            }
        }
        Ok(out)
    }

    /// Loads a container by full id, reconciling (and recording) its state.
    pub fn get(&self, id: &str) -> Result<Container, RunnerError> {
        self.get_with(id, &HostProcesses)
    }

    pub(crate) fn get_with(
        &self,
        id: &str,
        procs: &dyn ProcessTable,
    ) -> Result<Container, RunnerError> {
        let dir = self.container_dir(id);
        let config_path = dir.join(CONFIG_FILE);
        if !config_path.exists() {
            return Err(RunnerError::NoSuchContainer {
                reference: id.to_string(),
            });
        }
        let config: ContainerConfig = read_json(&config_path)?;
        let mut state: ContainerState = read_state_file(&dir.join(STATE_FILE))?;
        if reconcile(&state, procs, None).is_some() {
            // Re-check under the lock: the supervisor may be writing.
            let _lock = self.lock(id)?;
            state = read_state_file(&dir.join(STATE_FILE))?;
            if let Some(fixed) = reconcile(&state, procs, read_outcome(&dir)) {
                tracing::info!(%id, from = %state.status, to = %fixed.status, "reconciled a container whose supervisor is gone");
                if !fixed.status.is_active() {
                    crate::cleanup::release_leftovers(&dir);
                }
                write_atomic(&dir.join(STATE_FILE), &to_json(&fixed), durable(&dir))?;
                state = fixed;
            }
        }
        Ok(Container { config, state, dir })
    }

    /// Every container, newest first.
    pub fn list(&self) -> Result<Vec<Container>, RunnerError> {
        let mut out = Vec::new();
        for id in self.ids()? {
            match self.get(&id) {
                Ok(c) => out.push(c),
                Err(RunnerError::NoSuchContainer { .. }) => {}
                Err(e) => tracing::warn!(%id, error = %e, "skipping an unreadable container"),
            }
        }
        out.sort_by_key(|c| std::cmp::Reverse(c.config.created));
        Ok(out)
    }

    /// Finds a container as docker does: full id, then exact name, then a
    /// unique id prefix.
    pub fn lookup(&self, reference: &str) -> Result<Container, RunnerError> {
        let reference = reference.strip_prefix('/').unwrap_or(reference);
        if is_full_id(reference) && self.container_dir(reference).exists() {
            return self.get(reference);
        }
        let configs = self.list_configs()?;
        if let Some(c) = configs.iter().find(|c| c.name == reference) {
            return self.get(&c.id);
        }
        let matches: Vec<&ContainerConfig> = if reference.is_empty() {
            Vec::new()
        } else {
            configs
                .iter()
                .filter(|c| c.id.starts_with(reference))
                .collect()
        };
        match matches.as_slice() {
            [one] => self.get(&one.id),
            [] => Err(RunnerError::NoSuchContainer {
                reference: reference.to_string(),
            }),
            many => Err(RunnerError::Ambiguous {
                reference: reference.to_string(),
                count: many.len(),
            }),
        }
    }

    /// Reads, changes and rewrites a container's state under its lock.
    pub fn update_state(
        &self,
        id: &str,
        change: impl FnOnce(&mut ContainerState),
    ) -> Result<ContainerState, RunnerError> {
        let _lock = self.lock(id)?;
        self.update_state_locked(id, change)
    }

    /// As [`update_state`](Self::update_state), for a caller that holds the
    /// container's lock already.
    pub fn update_state_locked(
        &self,
        id: &str,
        change: impl FnOnce(&mut ContainerState),
    ) -> Result<ContainerState, RunnerError> {
        let dir = self.container_dir(id);
        let path = dir.join(STATE_FILE);
        let mut state: ContainerState = read_state_file(&path)?;
        change(&mut state);
        write_atomic(&path, &to_json(&state), durable(&dir))?;
        Ok(state)
    }

    /// Reads a container's state as recorded, without reconciling.
    pub fn read_state(&self, id: &str) -> Result<ContainerState, RunnerError> {
        Ok(read_state_file(&self.container_dir(id).join(STATE_FILE))?)
    }

    /// Removes a container's directory: renamed aside first (it vanishes
    /// atomically), then unmounted and deleted. The caller holds no lock
    /// on it and has made sure nothing runs.
    pub fn remove_dir(&self, id: &str) -> Result<(), RunnerError> {
        let dir = self.container_dir(id);
        let aside = self.dir.join(format!(".rm-{id}"));
        std::fs::rename(&dir, &aside).map_err(io_err(&dir))?;
        crate::cleanup::unmount_all_under(&aside);
        std::fs::remove_dir_all(&aside).map_err(io_err(&aside))?;
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::container::{ImageRef, NetworkMode};
    use crate::limits::Limits;
    use crate::process::fake::FakeProcesses;
    use crate::reconcile::tests::running;

    pub(crate) fn sample_config(id: &str) -> ContainerConfig {
        ContainerConfig {
            id: id.to_string(),
            name: String::new(),
            created: chrono::Utc::now(),
            image: ImageRef {
                name: "busybox".into(),
                id: "sha256:00".into(),
                target: "sha256:01".into(),
                layer_dirs: vec![],
            },
            argv: vec!["true".into()],
            env: vec![],
            working_dir: String::new(),
            user: String::new(),
            hostname: id[..12].to_string(),
            tty: false,
            open_stdin: false,
            auto_remove: false,
            volumes: vec![],
            tmpfs: vec![],
            ports: vec![],
            network: NetworkMode::None,
            limits: Limits::default(),
            stop_signal: libc::SIGTERM,
            stop_timeout: None,
            labels: Default::default(),
        }
    }

    fn id(n: u8) -> String {
        format!("{:x}{}", n % 16, "a".repeat(63))
    }

    #[test]
    fn create_names_lookup_and_remove() {
        let root = tempfile::tempdir().unwrap();
        let store = ContainerStore::open(root.path()).unwrap();
        let a = store
            .create(sample_config(&id(1)), Some("web"), |_, _| Ok(()))
            .unwrap();
        assert_eq!(a.name(), "web");
        let err = store
            .create(sample_config(&id(2)), Some("web"), |_, _| Ok(()))
            .unwrap_err();
        assert!(matches!(err, RunnerError::NameInUse { .. }), "{err}");
        let b = store
            .create(sample_config(&id(2)), None, |_, _| Ok(()))
            .unwrap();
        assert!(b.name().contains('_'));

        assert_eq!(store.lookup("web").unwrap().id(), a.id());
        assert_eq!(store.lookup(&id(2)).unwrap().id(), b.id());
        assert_eq!(store.lookup("1a").unwrap().id(), a.id());
        assert!(matches!(
            store.lookup("aaaa"),
            Err(RunnerError::NoSuchContainer { .. })
        ));
        assert_eq!(store.list().unwrap().len(), 2);

        // Two ids sharing a prefix make that prefix ambiguous.
        let c = store
            .create(
                sample_config(&format!("1b{}", "c".repeat(62))),
                None,
                |_, _| Ok(()),
            )
            .unwrap();
        assert!(matches!(
            store.lookup("1"),
            Err(RunnerError::Ambiguous { count: 2, .. })
        ));
        // A name wins over a prefix.
        assert_eq!(store.lookup("web").unwrap().id(), a.id());

        store.remove_dir(c.id()).unwrap();
        store.remove_dir(a.id()).unwrap();
        assert!(matches!(
            store.lookup("web"),
            Err(RunnerError::NoSuchContainer { .. })
        ));
        let names: Vec<String> = std::fs::read_dir(store.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with(".names"))
            .collect();
        assert_eq!(names, vec![b.id().to_string()]);
    }

    #[test]
    fn failed_prepare_leaves_nothing() {
        let root = tempfile::tempdir().unwrap();
        let store = ContainerStore::open(root.path()).unwrap();
        let err = store.create(sample_config(&id(3)), Some("x1"), |_, _| {
            Err(RunnerError::NoSuchContainer {
                reference: "boom".into(),
            })
        });
        assert!(err.is_err());
        assert!(store.list().unwrap().is_empty());
        assert!(std::fs::read_dir(store.path()).unwrap().all(|e| {
            e.unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with(".names")
        }));
        // The name is free again.
        store
            .create(sample_config(&id(3)), Some("x1"), |_, _| Ok(()))
            .unwrap();
    }

    #[test]
    fn stale_leftovers_are_reclaimed_on_open() {
        let root = tempfile::tempdir().unwrap();
        let store = ContainerStore::open(root.path()).unwrap();
        // A half-created dir of a dead process, a half-removed one, and a
        // live process's creation in progress.
        std::fs::create_dir(store.path().join(".tmp-999999999-x")).unwrap();
        std::fs::create_dir(store.path().join(".rm-y")).unwrap();
        let mine = format!(".tmp-{}-z", std::process::id());
        std::fs::create_dir(store.path().join(&mine)).unwrap();
        let store = ContainerStore::open(root.path()).unwrap();
        assert!(!store.path().join(".tmp-999999999-x").exists());
        assert!(!store.path().join(".rm-y").exists());
        assert!(store.path().join(&mine).exists());
    }

    #[test]
    fn reconciled_state_is_recorded() {
        let root = tempfile::tempdir().unwrap();
        let store = ContainerStore::open(root.path()).unwrap();
        let c = store
            .create(sample_config(&id(5)), Some("gone"), |_, _| Ok(()))
            .unwrap();
        store
            .update_state(c.id(), |s| *s = running(Some((20, 2)), Some((10, 1))))
            .unwrap();
        let got = store.get_with(c.id(), &FakeProcesses::default()).unwrap();
        assert_eq!(got.state.status, Status::Exited);
        assert_eq!(store.read_state(c.id()).unwrap().status, Status::Exited);
    }

    #[test]
    fn a_damaged_state_reads_as_exited() {
        let root = tempfile::tempdir().unwrap();
        let store = ContainerStore::open(root.path()).unwrap();
        let c = store
            .create(sample_config(&id(7)), Some("dmg"), |_, _| Ok(()))
            .unwrap();
        std::fs::write(c.dir.join(STATE_FILE), b"").unwrap();
        let got = store.get(c.id()).unwrap();
        assert_eq!(got.state.status, Status::Exited);
        store.remove_dir(c.id()).unwrap();
    }

    #[test]
    fn atomic_writes_leave_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state.json");
        write_atomic(&p, b"one", true).unwrap();
        write_atomic(&p, b"two", false).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
