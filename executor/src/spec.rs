//! Docker's defaults as an OCI runtime [`Spec`]: what `docker run` and a
//! BuildKit RUN step give a process unless told otherwise — capabilities,
//! mounts, masked and read-only `/proc` paths, namespaces, `PATH`. oci-spec's
//! own `Default` is opinionated (three capabilities, hostname "youki"), so
//! every field is set here explicitly.

use std::path::PathBuf;

use oci_spec::runtime::{
    Capability, Linux, LinuxCapabilities, LinuxNamespace, LinuxNamespaceType, Mount,
    PosixRlimitBuilder, PosixRlimitType, Process, Root, Spec, User,
};

/// `PATH` when the image sets none (docker's and BuildKit's default).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The hostname a sandbox gets unless the caller sets one.
pub const DEFAULT_HOSTNAME: &str = "kiln";

/// Docker's default capability set (moby `oci/caps/defaults.go`).
pub const DEFAULT_CAPABILITIES: [Capability; 14] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

/// Paths docker hides from containers (`/dev/null` over files, an empty
/// read-only tmpfs over directories).
pub const MASKED_PATHS: [&str; 11] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths docker makes read-only.
pub const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The open-files limit asked for (BuildKit's and dockerd's 1048576); the
/// sandbox clamps every rlimit to the current hard limit.
pub const DEFAULT_NOFILE: u64 = 1_048_576;

fn mount(dest: &str, typ: &str, source: &str, options: &[&str]) -> Mount {
    let mut m = Mount::default();
    m.set_destination(PathBuf::from(dest));
    m.set_typ(Some(typ.to_string()));
    m.set_source(Some(PathBuf::from(source)));
    m.set_options(Some(options.iter().map(|s| s.to_string()).collect()));
    m
}

/// Docker's default mounts, in mount order.
pub fn default_mounts() -> Vec<Mount> {
    vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        ),
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        ),
    ]
}

/// Namespaces of an isolated sandbox: mount, PID, UTS, IPC, network (own,
/// with only `lo`) and cgroup.
pub fn default_namespaces() -> Vec<LinuxNamespace> {
    [
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Network,
        LinuxNamespaceType::Cgroup,
    ]
    .into_iter()
    .map(|typ| {
        let mut ns = LinuxNamespace::default();
        ns.set_typ(typ);
        ns
    })
    .collect()
}

/// Docker's default capabilities in the bounding, effective and permitted
/// sets (inheritable and ambient empty, as docker since 20.10.14).
pub fn default_capabilities() -> LinuxCapabilities {
    let set: oci_spec::runtime::Capabilities = DEFAULT_CAPABILITIES.into_iter().collect();
    let mut caps = LinuxCapabilities::default();
    caps.set_bounding(Some(set.clone()));
    caps.set_effective(Some(set.clone()));
    caps.set_permitted(Some(set));
    caps.set_inheritable(Some(Default::default()));
    caps.set_ambient(Some(Default::default()));
    caps
}

/// A process as docker starts one: root, `/`, `PATH` only, docker's
/// capabilities, `no_new_privileges`, and a large open-files limit
/// (clamped to the host's hard limit when applied).
pub fn default_process(args: &[String]) -> Process {
    let mut p = Process::default();
    p.set_terminal(Some(false));
    p.set_user(User::default());
    p.set_args(Some(args.to_vec()));
    p.set_env(Some(vec![format!("PATH={DEFAULT_PATH}")]));
    p.set_cwd(PathBuf::from("/"));
    p.set_capabilities(Some(default_capabilities()));
    // The builder cannot fail: every field has a value.
    let nofile = PosixRlimitBuilder::default()
        .typ(PosixRlimitType::RlimitNofile)
        .soft(DEFAULT_NOFILE)
        .hard(DEFAULT_NOFILE)
        .build()
        .ok();
    p.set_rlimits(nofile.map(|n| vec![n]));
    p.set_no_new_privileges(Some(true));
    p.set_oom_score_adj(None);
    p
}

/// A complete spec with docker's defaults running `args`: every namespace,
/// the default mounts, masked and read-only paths, hostname
/// [`DEFAULT_HOSTNAME`], no resource limits.
///
/// # Examples
///
/// ```
/// let mut spec = kiln_executor::spec::default_spec(&["/bin/true".to_string()]);
/// spec.set_hostname(Some("builder".into()));
/// assert_eq!(spec.process().as_ref().unwrap().cwd().to_str(), Some("/"));
/// ```
pub fn default_spec(args: &[String]) -> Spec {
    let mut root = Root::default();
    root.set_path(PathBuf::from("rootfs"));
    root.set_readonly(Some(false));
    let mut linux = Linux::default();
    linux.set_namespaces(Some(default_namespaces()));
    linux.set_masked_paths(Some(MASKED_PATHS.iter().map(|s| s.to_string()).collect()));
    linux.set_readonly_paths(Some(READONLY_PATHS.iter().map(|s| s.to_string()).collect()));
    linux.set_resources(None);
    linux.set_devices(None);
    linux.set_seccomp(None);
    linux.set_uid_mappings(None);
    linux.set_gid_mappings(None);
    linux.set_cgroups_path(None);
    linux.set_sysctl(None);
    linux.set_rootfs_propagation(None);
    let mut spec = Spec::default();
    spec.set_version("1.0.2".to_string());
    spec.set_root(Some(root));
    spec.set_mounts(Some(default_mounts()));
    spec.set_process(Some(default_process(args)));
    spec.set_hostname(Some(DEFAULT_HOSTNAME.to_string()));
    spec.set_domainname(None);
    spec.set_hooks(None);
    spec.set_annotations(None);
    spec.set_linux(Some(linux));
    spec
}

/// Makes the spec share the host's network namespace (`--network host`).
pub fn set_host_network(spec: &mut Spec) {
    if let Some(ns) = spec
        .linux_mut()
        .as_mut()
        .and_then(|l| l.namespaces_mut().as_mut())
    {
        ns.retain(|n| n.typ() != LinuxNamespaceType::Network);
    }
}

/// Whether the spec asks for its own network namespace (`none`).
pub fn has_own_network(spec: &Spec) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| ns.iter().any(|n| n.typ() == LinuxNamespaceType::Network))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_spec_is_docker_like_and_serialises() {
        let spec = default_spec(&["sh".into()]);
        let json = serde_json::to_value(&spec).unwrap();
        let caps = &json["process"]["capabilities"]["bounding"];
        assert_eq!(caps.as_array().unwrap().len(), 14);
        assert!(caps.as_array().unwrap().iter().any(|c| c == "CAP_CHOWN"));
        assert_eq!(json["process"]["noNewPrivileges"], true);
        assert_eq!(json["hostname"], "kiln");
        assert_eq!(json["linux"]["namespaces"].as_array().unwrap().len(), 6);
        let back: Spec = serde_json::from_value(json).unwrap();
        assert_eq!(back, spec);
        assert!(has_own_network(&spec));
    }

    #[test]
    fn host_network_drops_the_namespace() {
        let mut spec = default_spec(&["sh".into()]);
        set_host_network(&mut spec);
        assert!(!has_own_network(&spec));
        assert_eq!(
            spec.linux()
                .as_ref()
                .unwrap()
                .namespaces()
                .as_ref()
                .unwrap()
                .len(),
            5
        );
    }
}
