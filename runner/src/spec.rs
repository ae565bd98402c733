//! The OCI runtime spec a container runs with: the executor's docker
//! defaults (capabilities, mounts, masked paths, namespaces), then every
//! field `kiln run` decides set explicitly — argv, environment, working
//! directory, terminal, hostname, `no_new_privileges` off (as docker), the
//! user's volumes and tmpfs mounts (parents before children), the network
//! namespace, and the cgroup limits.

use std::path::PathBuf;

use kiln_executor::spec::default_spec;
use oci_spec::runtime::{
    LinuxCpu, LinuxMemory, LinuxNamespace, LinuxNamespaceType, LinuxPids, LinuxResources, Mount,
    Spec,
};

use crate::container::ContainerConfig;
use crate::env::process_env;
use crate::limits::{CPU_PERIOD_US, Limits};

/// Which network namespace the container gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NetworkNamespace {
    /// The host's (`--network host`).
    Host,
    /// One prepared by the runner (bound to a file), joined.
    Join(PathBuf),
}

/// A volume or bind mount with its host source resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BindMount {
    pub source: PathBuf,
    pub target: String,
    pub read_only: bool,
}

fn mount(dest: &str, typ: &str, source: &str, options: Vec<String>) -> Mount {
    let mut m = Mount::default();
    m.set_destination(PathBuf::from(dest));
    m.set_typ(Some(typ.to_string()));
    m.set_source(Some(PathBuf::from(source)));
    m.set_options(Some(options));
    m
}

fn resources(limits: &Limits) -> LinuxResources {
    let mut r = LinuxResources::default();
    r.set_devices(None);
    r.set_block_io(None);
    r.set_hugepage_limits(None);
    r.set_network(None);
    r.set_rdma(None);
    r.set_unified(None);
    r.set_memory(limits.memory.map(|bytes| {
        let mut m = LinuxMemory::default();
        m.set_limit(Some(bytes));
        // Memory plus swap: no swap beyond the limit, so an OOM is an OOM.
        m.set_swap(Some(bytes));
        m.set_reservation(None);
        m.set_kernel(None);
        m.set_kernel_tcp(None);
        m.set_swappiness(None);
        m.set_disable_oom_killer(None);
        m.set_use_hierarchy(None);
        m.set_check_before_update(None);
        m
    }));
    r.set_cpu(limits.cpu_quota_us().map(|quota| {
        let mut c = LinuxCpu::default();
        c.set_quota(Some(quota));
        c.set_period(Some(CPU_PERIOD_US));
        c.set_shares(None);
        c.set_idle(None);
        c.set_burst(None);
        c.set_realtime_period(None);
        c.set_realtime_runtime(None);
        c.set_cpus(None);
        c.set_mems(None);
        c
    }));
    r.set_pids(limits.pids.map(|n| {
        let mut p = LinuxPids::default();
        p.set_limit(n);
        p
    }));
    r
}

/// Builds the spec of one start of `config`.
pub(crate) fn container_spec(
    config: &ContainerConfig,
    network: &NetworkNamespace,
    binds: &[BindMount],
) -> Spec {
    let mut spec = default_spec(&config.argv);
    spec.set_hostname(Some(config.hostname.clone()));

    if let Some(process) = spec.process_mut() {
        process.set_env(Some(process_env(&config.env, &config.hostname, config.tty)));
        let cwd = if config.working_dir.is_empty() {
            "/"
        } else {
            &config.working_dir
        };
        process.set_cwd(PathBuf::from(cwd));
        process.set_terminal(Some(config.tty));
        process.set_console_size(None);
        // Docker leaves setuid binaries working.
        process.set_no_new_privileges(Some(false));
    }

    // User mounts after the defaults, parents before children (docker
    // sorts by the number of path components).
    enum Extra<'a> {
        Bind(&'a BindMount),
        Tmpfs(&'a crate::mounts::TmpfsSpec),
    }
    let mut extra: Vec<(String, Extra)> = binds
        .iter()
        .map(|b| (b.target.clone(), Extra::Bind(b)))
        .chain(
            config
                .tmpfs
                .iter()
                .map(|t| (t.target.clone(), Extra::Tmpfs(t))),
        )
        .collect();
    extra.sort_by_key(|(target, _)| target.matches('/').count());
    let mut mounts = spec.mounts().clone().unwrap_or_default();
    // A user mount over a default one replaces it (`--tmpfs /dev/shm`).
    mounts.retain(|m| {
        !extra
            .iter()
            .any(|(t, _)| m.destination().to_str() == Some(t.as_str()))
    });
    for (target, what) in &extra {
        mounts.push(match what {
            Extra::Bind(b) => mount(
                target,
                "bind",
                &b.source.to_string_lossy(),
                vec![
                    "rbind".to_string(),
                    if b.read_only { "ro" } else { "rw" }.to_string(),
                    "rprivate".to_string(),
                ],
            ),
            Extra::Tmpfs(t) => mount(target, "tmpfs", "tmpfs", t.options.clone()),
        });
    }
    spec.set_mounts(Some(mounts));

    if let Some(linux) = spec.linux_mut() {
        let mut namespaces: Vec<LinuxNamespace> = linux
            .namespaces()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .filter(|n| n.typ() != LinuxNamespaceType::Network)
            .collect();
        match network {
            NetworkNamespace::Host => {}
            NetworkNamespace::Join(path) => {
                let mut ns = LinuxNamespace::default();
                ns.set_typ(LinuxNamespaceType::Network);
                ns.set_path(Some(path.clone()));
                namespaces.push(ns);
            }
        }
        linux.set_namespaces(Some(namespaces));
        let limits = &config.limits;
        if limits.memory.is_some() || limits.milli_cpus.is_some() || limits.pids.is_some() {
            linux.set_resources(Some(resources(limits)));
        } else {
            linux.set_resources(None);
        }
    }
    spec
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::containers::tests::sample_config;
    use crate::mounts::TmpfsSpec;

    fn cfg() -> ContainerConfig {
        let mut c = sample_config(&format!("ab{}", "c".repeat(62)));
        c.argv = vec!["httpd".into(), "-f".into()];
        c.env = vec!["A=1".into()];
        c.working_dir = "/www".into();
        c.hostname = "abcccccccccc".into();
        c
    }

    #[test]
    fn process_fields_are_ours() {
        let spec = container_spec(&cfg(), &NetworkNamespace::Join("/n".into()), &[]);
        let p = spec.process().as_ref().unwrap();
        assert_eq!(p.args().as_ref().unwrap(), &["httpd", "-f"]);
        assert_eq!(p.cwd().to_str(), Some("/www"));
        assert_eq!(p.terminal(), Some(false));
        assert_eq!(p.no_new_privileges(), Some(false));
        let env = p.env().as_ref().unwrap();
        assert!(env[0].starts_with("PATH="));
        assert_eq!(env[1], "HOSTNAME=abcccccccccc");
        assert!(env.contains(&"A=1".to_string()));
        assert_eq!(spec.hostname().as_deref(), Some("abcccccccccc"));
        // Docker's 14 capabilities, not oci-spec's 3.
        let caps = p.capabilities().as_ref().unwrap();
        assert_eq!(caps.bounding().as_ref().unwrap().len(), 14);
    }

    #[test]
    fn network_namespace_choices() {
        let count = |spec: &Spec| {
            spec.linux()
                .as_ref()
                .unwrap()
                .namespaces()
                .as_ref()
                .unwrap()
                .iter()
                .filter(|n| n.typ() == LinuxNamespaceType::Network)
                .map(|n| n.path().clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            count(&container_spec(&cfg(), &NetworkNamespace::Host, &[])),
            vec![]
        );
        assert_eq!(
            count(&container_spec(
                &cfg(),
                &NetworkNamespace::Join("/x/netns".into()),
                &[]
            )),
            vec![Some(PathBuf::from("/x/netns"))]
        );
    }

    #[test]
    fn user_mounts_follow_defaults_parents_first() {
        let mut c = cfg();
        c.tmpfs = vec![TmpfsSpec {
            target: "/data/tmp".into(),
            options: vec!["nosuid".into()],
        }];
        let binds = vec![BindMount {
            source: "/srv/data".into(),
            target: "/data".into(),
            read_only: true,
        }];
        let spec = container_spec(&c, &NetworkNamespace::Join("/n".into()), &binds);
        let mounts = spec.mounts().as_ref().unwrap();
        let dests: Vec<&str> = mounts
            .iter()
            .map(|m| m.destination().to_str().unwrap())
            .collect();
        assert_eq!(dests[0], "/proc");
        let data = dests.iter().position(|d| *d == "/data").unwrap();
        let tmp = dests.iter().position(|d| *d == "/data/tmp").unwrap();
        assert!(data < tmp);
        let bind = &mounts[data];
        assert_eq!(bind.typ().as_deref(), Some("bind"));
        assert!(bind.options().as_ref().unwrap().contains(&"ro".to_string()));
    }

    #[test]
    fn limits_become_resources() {
        let spec = container_spec(&cfg(), &NetworkNamespace::Join("/n".into()), &[]);
        assert!(spec.linux().as_ref().unwrap().resources().is_none());
        let mut c = cfg();
        c.limits = Limits {
            memory: Some(32 << 20),
            milli_cpus: Some(500),
            pids: Some(10),
        };
        let spec = container_spec(&c, &NetworkNamespace::Join("/n".into()), &[]);
        let r = spec.linux().as_ref().unwrap().resources().clone().unwrap();
        let m = r.memory().unwrap();
        assert_eq!((m.limit(), m.swap()), (Some(32 << 20), Some(32 << 20)));
        let cpu = r.cpu().clone().unwrap();
        assert_eq!((cpu.quota(), cpu.period()), (Some(50_000), Some(100_000)));
        assert_eq!(r.pids().unwrap().limit(), 10);
    }
}
