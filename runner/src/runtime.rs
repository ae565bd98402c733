//! The runner's entry point: [`Runtime`] creates containers from images
//! (`kiln create`/`run`), and stops, kills, removes and prunes them. Starting
//! lives in [`crate::session`], entering in [`crate::exec`].

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::Utc;
use kiln_executor::Sandbox;

use crate::command::resolve_argv;
use crate::container::{Container, ContainerConfig, ImageRef, NetworkMode};
use crate::containers::ContainerStore;
use crate::env::{merge_image_env, read_env_file, user_env};
use crate::error::{MountError, PortError, RunnerError};
use crate::image::ImageSource;
use crate::lifecycle::holder;
use crate::limits::{Limits, parse_cpus, parse_memory_limit, parse_pids_limit};
use crate::mounts::{VolumeSource, image_volumes, parse_tmpfs, parse_volume};
use crate::names::{new_id, short_id, validate_name};
use crate::ports::parse_port_spec;
use crate::signal::parse_signal;
use crate::volumes::VolumeStore;

/// How to start a detached container's supervisor: the kiln binary and the
/// arguments of its hidden supervisor command (the id is appended).
#[derive(Debug, Clone)]
pub struct SupervisorCommand {
    pub program: PathBuf,
    pub args: Vec<OsString>,
}

/// `kiln run` / `kiln create` options, as the user gave them.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub image: String,
    /// Arguments after the image: they replace CMD.
    pub args: Vec<String>,
    pub name: Option<String>,
    pub entrypoint: Option<String>,
    /// `-e KEY=VALUE` / `-e KEY`.
    pub env: Vec<String>,
    pub env_files: Vec<PathBuf>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub hostname: Option<String>,
    pub tty: bool,
    pub interactive: bool,
    pub auto_remove: bool,
    /// `-v` values.
    pub volumes: Vec<String>,
    /// `--tmpfs` values.
    pub tmpfs: Vec<String>,
    /// `-p` values.
    pub publish: Vec<String>,
    pub network: NetworkMode,
    pub memory: Option<String>,
    pub cpus: Option<String>,
    pub pids_limit: Option<i64>,
    pub stop_signal: Option<String>,
    pub stop_timeout: Option<u32>,
    /// `--label K=V`.
    pub labels: Vec<String>,
    /// Pull the image when it is not in the store.
    pub pull_missing: bool,
}

/// What `kiln container prune` removed.
#[derive(Debug, Clone, Default)]
pub struct PruneReport {
    pub removed: Vec<String>,
    pub reclaimed_bytes: u64,
}

/// Containers of one kiln root.
pub struct Runtime {
    root: PathBuf,
    pub(crate) store: ContainerStore,
    pub(crate) volumes: VolumeStore,
    pub(crate) sandbox: Arc<dyn Sandbox>,
    pub(crate) images: Arc<dyn ImageSource>,
    pub(crate) supervisor: Option<SupervisorCommand>,
}

/// The CPUs this machine has (the `--cpus` ceiling).
fn host_cpus() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// The default `stop -t`: docker's 10 seconds.
pub const DEFAULT_STOP_TIMEOUT: u32 = 10;

impl Runtime {
    /// The runtime of the kiln root `root`.
    pub fn new(
        root: &Path,
        sandbox: Arc<dyn Sandbox>,
        images: Arc<dyn ImageSource>,
    ) -> Result<Runtime, RunnerError> {
        Ok(Runtime {
            root: root.to_path_buf(),
            store: ContainerStore::open(root)?,
            volumes: VolumeStore::open(root),
            sandbox,
            images,
            supervisor: None,
        })
    }

    /// Sets how detached containers get their supervisor process.
    pub fn with_supervisor(mut self, command: SupervisorCommand) -> Runtime {
        self.supervisor = Some(command);
        self
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The container records.
    pub fn containers(&self) -> &ContainerStore {
        &self.store
    }

    /// The named volumes.
    pub fn volumes(&self) -> &VolumeStore {
        &self.volumes
    }

    /// Creates a container (not started): resolves the image (pulling it
    /// if allowed), combines its config with the options as docker does,
    /// claims the name and records the container, holding its image.
    pub fn create(&self, opts: &CreateOptions) -> Result<Container, RunnerError> {
        // Everything that needs no I/O first, so a typo fails fast.
        let name = opts.name.as_deref().map(validate_name).transpose()?;
        let mut ports = Vec::new();
        for p in &opts.publish {
            ports.extend(parse_port_spec(p)?);
        }
        if !ports.is_empty() && opts.network == NetworkMode::None {
            return Err(PortError::Invalid {
                spec: opts.publish.join(" "),
                reason: "ports cannot be published with --network none".to_string(),
            }
            .into());
        }
        if opts.network == NetworkMode::Host {
            // Docker discards them (with a warning the CLI prints).
            ports.clear();
        }
        let mut volumes = opts
            .volumes
            .iter()
            .map(|v| parse_volume(v))
            .collect::<Result<Vec<_>, _>>()?;
        let tmpfs = opts
            .tmpfs
            .iter()
            .map(|t| parse_tmpfs(t))
            .collect::<Result<Vec<_>, _>>()?;
        let limits = Limits {
            memory: opts.memory.as_deref().map(parse_memory_limit).transpose()?,
            milli_cpus: opts
                .cpus
                .as_deref()
                .map(|c| parse_cpus(c, host_cpus()))
                .transpose()?,
            pids: match opts.pids_limit {
                Some(n) => parse_pids_limit(n)?,
                None => None,
            },
        };
        let user_stop_signal = opts.stop_signal.as_deref().map(parse_signal).transpose()?;
        let mut labels = BTreeMap::new();
        for l in &opts.labels {
            let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
            labels.insert(k.to_string(), v.to_string());
        }
        for (i, a) in volumes.iter().enumerate() {
            if volumes[..i].iter().any(|b| b.target == a.target)
                || tmpfs.iter().any(|t| t.target == a.target)
            {
                return Err(MountError::Invalid {
                    spec: a.target.clone(),
                    reason: "duplicate mount point".to_string(),
                }
                .into());
            }
        }

        let lookup = |k: &str| std::env::var(k).ok();
        let files = opts
            .env_files
            .iter()
            .map(|f| read_env_file(f, &lookup))
            .collect::<Result<Vec<_>, _>>()?;
        let user_env = user_env(&files, &opts.env, &lookup)?;

        let image = self.images.resolve(&opts.image, opts.pull_missing)?;
        tracing::debug!(image = %image.id, layers = image.layer_dirs.len(), "image resolved");
        let cfg = image.config.config().clone().unwrap_or_default();
        let argv = resolve_argv(
            cfg.entrypoint().as_deref(),
            cfg.cmd().as_deref(),
            opts.entrypoint.as_deref(),
            &opts.args,
        )?;
        let env = merge_image_env(&user_env, cfg.env().as_deref().unwrap_or_default());
        let stop_signal = match user_stop_signal {
            Some(s) => s,
            None => match cfg.stop_signal().as_deref().filter(|s| !s.is_empty()) {
                Some(s) => parse_signal(s)?,
                None => libc::SIGTERM,
            },
        };
        let declared = image_volumes(
            cfg.volumes().as_deref().unwrap_or_default(),
            &volumes,
            &tmpfs,
        );
        volumes.extend(declared);
        let id = new_id()?;
        for v in &mut volumes {
            if v.source == VolumeSource::Anonymous {
                v.source = VolumeSource::Named(new_id()?);
            }
        }
        let mut all_labels: BTreeMap<String, String> = cfg
            .labels()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        all_labels.extend(labels);
        let config = ContainerConfig {
            id: id.clone(),
            name: String::new(),
            created: Utc::now(),
            image: ImageRef {
                name: opts.image.clone(),
                id: image.id.clone(),
                target: image.target.clone(),
                layer_dirs: image.layer_dirs.clone(),
            },
            argv,
            env,
            working_dir: opts
                .workdir
                .clone()
                .or_else(|| cfg.working_dir().clone())
                .unwrap_or_default(),
            user: opts
                .user
                .clone()
                .or_else(|| cfg.user().clone())
                .unwrap_or_default(),
            hostname: opts
                .hostname
                .clone()
                .unwrap_or_else(|| short_id(&id).to_string()),
            tty: opts.tty,
            open_stdin: opts.interactive,
            auto_remove: opts.auto_remove,
            volumes,
            tmpfs,
            ports,
            network: opts.network,
            limits,
            stop_signal,
            stop_timeout: opts.stop_timeout,
            labels: all_labels,
        };
        if !config.working_dir.is_empty() && !config.working_dir.starts_with('/') {
            return Err(MountError::Invalid {
                spec: config.working_dir.clone(),
                reason: "the working directory must be an absolute path".to_string(),
            }
            .into());
        }
        let container = self.store.create(config, name.as_deref(), |dir, _| {
            for sub in ["upper", "work", "rootfs", "empty"] {
                let d = dir.join(sub);
                std::fs::create_dir(&d)
                    .map_err(|source| crate::error::StateError::Io { path: d, source })?;
            }
            Ok(())
        })?;
        tracing::debug!(id = %container.id(), name = %container.name(), "container recorded");
        if let Err(e) = self
            .images
            .hold(&holder(container.id()), &container.config.image.target)
        {
            let _ = self.store.remove_dir(container.id());
            return Err(e.into());
        }
        tracing::debug!(id = %container.id(), "image held");
        Ok(container)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::Status;
    use crate::image::ResolvedImage;
    use crate::image::fake::FakeImages;
    use kiln_executor::{FakeResult, FakeSandbox};

    fn image(config: serde_json::Value) -> ResolvedImage {
        let doc = serde_json::json!({
            "architecture": "amd64",
            "os": "linux",
            "config": config,
            "rootfs": {"type": "layers", "diff_ids": []},
        });
        ResolvedImage {
            name: "app".into(),
            id: "sha256:aa".into(),
            target: "sha256:bb".into(),
            config: serde_json::from_value(doc).unwrap(),
            layer_dirs: vec![],
        }
    }

    fn runtime(
        root: &Path,
        sandbox: FakeSandbox,
        config: serde_json::Value,
    ) -> (Runtime, Arc<FakeImages>) {
        let images = Arc::new(FakeImages::with(image(config)));
        let rt = Runtime::new(root, Arc::new(sandbox), images.clone()).unwrap();
        (rt, images)
    }

    fn opts(args: &[&str]) -> CreateOptions {
        CreateOptions {
            image: "app".into(),
            args: args.iter().map(|s| s.to_string()).collect(),
            network: NetworkMode::Host,
            ..CreateOptions::default()
        }
    }

    #[test]
    fn create_combines_image_config_and_options() {
        let root = tempfile::tempdir().unwrap();
        let (rt, images) = runtime(
            root.path(),
            FakeSandbox::succeeding(),
            serde_json::json!({
                "Entrypoint": ["echo"], "Cmd": ["default"], "Env": ["PATH=/img", "A=image"],
                "WorkingDir": "/srv", "User": "app", "StopSignal": "SIGQUIT",
                "Labels": {"from": "image"},
            }),
        );
        let mut o = opts(&["x", "y"]);
        o.env = vec!["A=flag".into(), "B=2".into()];
        o.labels = vec!["k=v".into()];
        let c = rt.create(&o).unwrap();
        assert_eq!(c.config.argv, ["echo", "x", "y"]);
        assert_eq!(c.config.env, ["A=flag", "B=2", "PATH=/img"]);
        assert_eq!(c.config.working_dir, "/srv");
        assert_eq!(c.config.user, "app");
        assert_eq!(c.config.stop_signal, libc::SIGQUIT);
        assert_eq!(c.config.hostname, c.short_id());
        assert_eq!(
            c.config.labels.get("from").map(String::as_str),
            Some("image")
        );
        assert_eq!(c.config.labels.get("k").map(String::as_str), Some("v"));
        assert_eq!(c.state.status, Status::Created);
        assert_eq!(
            images.holds.lock().unwrap().clone(),
            vec![(holder(c.id()), "sha256:bb".to_string())]
        );

        let mut o = opts(&[]);
        o.entrypoint = Some("/bin/true".into());
        o.workdir = Some("/w".into());
        o.user = Some("0:0".into());
        let c = rt.create(&o).unwrap();
        assert_eq!(c.config.argv, ["/bin/true"]);
        assert_eq!(
            (c.config.working_dir.as_str(), c.config.user.as_str()),
            ("/w", "0:0")
        );
    }

    #[test]
    fn bad_options_fail_before_anything_is_created() {
        let root = tempfile::tempdir().unwrap();
        let (rt, _) = runtime(
            root.path(),
            FakeSandbox::succeeding(),
            serde_json::json!({"Cmd": ["sh"]}),
        );
        for bad in [
            CreateOptions {
                publish: vec!["x:y".into()],
                ..opts(&[])
            },
            CreateOptions {
                memory: Some("1k".into()),
                ..opts(&[])
            },
            CreateOptions {
                name: Some("-bad".into()),
                ..opts(&[])
            },
            CreateOptions {
                volumes: vec!["rel/x:/y".into()],
                ..opts(&[])
            },
            CreateOptions {
                stop_signal: Some("SIGNOPE".into()),
                ..opts(&[])
            },
            CreateOptions {
                workdir: Some("relative".into()),
                ..opts(&[])
            },
            CreateOptions {
                publish: vec!["80".into()],
                network: NetworkMode::None,
                ..opts(&[])
            },
            CreateOptions {
                image: "missing".into(),
                ..opts(&[])
            },
        ] {
            assert!(rt.create(&bad).is_err(), "{bad:?}");
        }
        assert!(rt.containers().list().unwrap().is_empty());
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_detached_run_is_logged_recorded_and_removed() {
        let root = tempfile::tempdir().unwrap();
        let sandbox = FakeSandbox::new(|_| FakeResult {
            stdout: b"out 1\nout 2\n".to_vec(),
            stderr: b"oops\n".to_vec(),
            outcome: kiln_executor::ExitOutcome::Exited { code: 42 },
        });
        let (rt, images) = runtime(
            root.path(),
            sandbox.clone(),
            serde_json::json!({"Cmd": ["sh"]}),
        );
        let mut o = opts(&[]);
        o.user = Some("app".into());
        let c = rt.create(&o).unwrap();
        let started = rt.begin(c.id(), crate::session::Wiring::Logged).unwrap();
        assert_eq!(
            rt.containers().get(c.id()).unwrap().state.status,
            Status::Running
        );
        assert!(matches!(
            rt.begin(c.id(), crate::session::Wiring::Logged),
            Err(RunnerError::WrongState { .. })
        ));
        let code = rt
            .supervise(
                c.id(),
                started,
                crate::session::Wiring::Logged,
                crate::session::install_signals(crate::session::Wiring::Logged).unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(code, 42);
        let done = rt.containers().get(c.id()).unwrap();
        assert_eq!(done.state.status, Status::Exited);
        assert_eq!(done.state.exit_code, Some(42));
        assert_eq!(done.state.start_count, 1);
        let mut out = Vec::new();
        let mut err = Vec::new();
        crate::logs::print_logs(
            &done.dir.join("container.log"),
            &crate::logs::LogOptions::default(),
            &mut || false,
            &mut out,
            &mut err,
        )
        .unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "out 1\nout 2\n");
        assert_eq!(String::from_utf8(err).unwrap(), "oops\n");
        let req = &sandbox.requests()[0];
        assert_eq!(req.user.as_deref(), Some("app"));
        assert_eq!(req.args(), ["sh"]);
        // Exited: it can start again, and be removed (releasing its image).
        assert!(done.state.status.can_start());
        rt.remove(c.id(), false, false).unwrap();
        assert!(images.holds.lock().unwrap().is_empty());
        assert!(!done.dir.exists());
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn auto_remove_after_the_run() {
        let root = tempfile::tempdir().unwrap();
        let (rt, _) = runtime(
            root.path(),
            FakeSandbox::succeeding(),
            serde_json::json!({"Cmd": ["sh"]}),
        );
        let mut o = opts(&["true"]);
        o.auto_remove = true;
        o.volumes = vec!["/anon".into()];
        let c = rt.create(&o).unwrap();
        let started = rt.begin(c.id(), crate::session::Wiring::Logged).unwrap();
        assert_eq!(rt.volumes().list().unwrap().len(), 1);
        let code = rt
            .supervise(
                c.id(),
                started,
                crate::session::Wiring::Logged,
                crate::session::install_signals(crate::session::Wiring::Logged).unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(code, 0);
        assert!(rt.containers().list().unwrap().is_empty());
        // Its anonymous volume went with it.
        assert!(rt.volumes().list().unwrap().is_empty());
    }

    #[test]
    fn running_containers_are_not_removed_without_force() {
        let root = tempfile::tempdir().unwrap();
        let (rt, _) = runtime(
            root.path(),
            FakeSandbox::succeeding(),
            serde_json::json!({"Cmd": ["sh"]}),
        );
        let c = rt.create(&opts(&[])).unwrap();
        let me = crate::container::ProcRef::current();
        rt.containers()
            .update_state(c.id(), |s| {
                s.status = Status::Running;
                s.supervisor = me;
            })
            .unwrap();
        assert!(matches!(
            rt.remove(c.id(), false, false),
            Err(RunnerError::RemoveRunning { .. })
        ));
        let report = rt.prune().unwrap();
        assert!(report.removed.is_empty());
    }
}
