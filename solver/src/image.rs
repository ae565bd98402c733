//! Image configs as docker and BuildKit write them.
//!
//! [`ImageConfig`] is oci-spec's `ImageConfiguration` plus the fields docker
//! adds to its `config` object and OCI does not define (`Healthcheck`,
//! `OnBuild`, `Shell`, `ArgsEscaped`). Base configs are parsed from their
//! exact bytes so those fields survive; output is canonical JSON (object keys
//! sorted, no whitespace), so equal configs always have equal digests.

use std::str::FromStr;

use oci_spec::image::{
    Arch, Config, History, HistoryBuilder, ImageConfiguration, Os, Platform, RootFs,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The default `PATH` BuildKit puts in an image that has none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The history comment BuildKit writes on every entry it adds.
pub const HISTORY_COMMENT: &str = "buildkit.dockerfile.v0";

/// Errors reading an image config.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid image config")]
    Invalid(#[source] serde_json::Error),
}

/// docker's `HealthcheckConfig` (durations in nanoseconds, zero = unset).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Healthcheck {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub test: Vec<String>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub interval: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub timeout: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub start_period: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub start_interval: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retries: i64,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

/// An image config: OCI's fields plus docker's extras.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageConfig {
    pub oci: ImageConfiguration,
    pub healthcheck: Option<Healthcheck>,
    pub on_build: Vec<String>,
    pub shell: Vec<String>,
    pub args_escaped: bool,
}

impl ImageConfig {
    /// The config of `FROM scratch` for `platform`, as BuildKit makes it:
    /// `WorkingDir` `/` and a default `PATH`.
    pub fn scratch(platform: &Platform) -> ImageConfig {
        let mut oci = ImageConfiguration::default();
        oci.set_architecture(platform.architecture().clone());
        oci.set_os(platform.os().clone());
        oci.set_variant(platform.variant().clone());
        oci.set_rootfs(RootFs::default());
        oci.set_history(None);
        let mut config = Config::default();
        config.set_working_dir(Some("/".to_string()));
        config.set_env(Some(vec![format!("PATH={DEFAULT_PATH}")]));
        oci.set_config(Some(config));
        ImageConfig {
            oci,
            healthcheck: None,
            on_build: Vec::new(),
            shell: Vec::new(),
            args_escaped: false,
        }
    }

    /// Parses a config from its exact bytes.
    pub fn parse(bytes: &[u8]) -> Result<ImageConfig, ConfigError> {
        let value: Value = serde_json::from_slice(bytes).map_err(ConfigError::Invalid)?;
        let oci: ImageConfiguration =
            serde_json::from_value(value.clone()).map_err(ConfigError::Invalid)?;
        let cfg = value.get("config").and_then(Value::as_object);
        let field = |name: &str| cfg.and_then(|c| c.get(name)).filter(|v| !v.is_null());
        let healthcheck = field("Healthcheck")
            .map(|v| serde_json::from_value::<Healthcheck>(v.clone()))
            .transpose()
            .map_err(ConfigError::Invalid)?;
        let strings = |name: &str| -> Result<Vec<String>, ConfigError> {
            field(name)
                .map(|v| serde_json::from_value::<Vec<String>>(v.clone()))
                .transpose()
                .map(Option::unwrap_or_default)
                .map_err(ConfigError::Invalid)
        };
        Ok(ImageConfig {
            oci,
            healthcheck,
            on_build: strings("OnBuild")?,
            shell: strings("Shell")?,
            args_escaped: field("ArgsEscaped")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        })
    }

    /// The canonical JSON bytes of this config.
    pub fn to_json(&self) -> Vec<u8> {
        let mut value = serde_json::to_value(&self.oci).expect("image configs serialise");
        let obj = value.as_object_mut().expect("an image config is an object");
        let cfg = obj
            .entry("config")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(cfg) = cfg.as_object_mut() {
            if let Some(h) = &self.healthcheck {
                cfg.insert(
                    "Healthcheck".into(),
                    serde_json::to_value(h).expect("healthchecks serialise"),
                );
            }
            if !self.on_build.is_empty() {
                cfg.insert("OnBuild".into(), Value::from(self.on_build.clone()));
            }
            if !self.shell.is_empty() {
                cfg.insert("Shell".into(), Value::from(self.shell.clone()));
            }
            if self.args_escaped {
                cfg.insert("ArgsEscaped".into(), Value::Bool(true));
            }
        }
        serde_json::to_vec(&canonical(value)).expect("JSON values serialise")
    }

    /// Changes the runtime part of the config (created when missing).
    pub fn update_config<R>(&mut self, f: impl FnOnce(&mut Config) -> R) -> R {
        let mut cfg = self.oci.config().clone().unwrap_or_default();
        let r = f(&mut cfg);
        self.oci.set_config(Some(cfg));
        r
    }

    pub fn config(&self) -> Option<&Config> {
        self.oci.config().as_ref()
    }

    /// `Env` as (key, value) pairs, in order.
    pub fn env(&self) -> Vec<(String, String)> {
        self.config()
            .and_then(|c| c.env().as_ref())
            .map(|env| {
                env.iter()
                    .map(|e| match e.split_once('=') {
                        Some((k, v)) => (k.to_string(), v.to_string()),
                        None => (e.clone(), String::new()),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Sets `key=value` in `Env`, replacing an existing entry in place.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.update_config(|cfg| {
            let mut env = cfg.env().clone().unwrap_or_default();
            let entry = format!("{key}={value}");
            match env
                .iter()
                .position(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == key)
            {
                Some(i) => env[i] = entry,
                None => env.push(entry),
            }
            cfg.set_env(Some(env));
        });
    }

    pub fn working_dir(&self) -> String {
        self.config()
            .and_then(|c| c.working_dir().clone())
            .unwrap_or_default()
    }

    pub fn user(&self) -> String {
        self.config()
            .and_then(|c| c.user().clone())
            .unwrap_or_default()
    }

    /// The image's history entries.
    pub fn history(&self) -> Vec<History> {
        self.oci.history().clone().unwrap_or_default()
    }

    /// The platform this config is for.
    pub fn platform(&self) -> Platform {
        let mut p = Platform::default();
        p.set_architecture(self.oci.architecture().clone());
        p.set_os(self.oci.os().clone());
        p.set_variant(self.oci.variant().clone());
        p
    }
}

/// Sorts every object's keys, recursively (whatever serde_json's map type).
fn canonical(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            let mut out = Map::new();
            for (k, v) in entries {
                out.insert(k, canonical(v));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.into_iter().map(canonical).collect()),
        other => other,
    }
}

/// A history entry.
pub fn history_entry(created_by: &str, created: &str, empty_layer: bool) -> History {
    let mut b = HistoryBuilder::default()
        .created_by(created_by.to_string())
        .comment(HISTORY_COMMENT.to_string());
    if !created.is_empty() {
        b = b.created(created.to_string());
    }
    if empty_layer {
        b = b.empty_layer(true);
    }
    b.build().expect("every history field is optional")
}

/// The host's platform (`linux/amd64`, `linux/arm64/v8`…).
pub fn host_platform() -> Platform {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    };
    let mut p = Platform::default();
    p.set_os(Os::Linux);
    p.set_architecture(Arch::from(arch));
    p
}

/// Parses `os/arch[/variant]`.
pub fn parse_platform(s: &str) -> Option<Platform> {
    let mut parts = s.split('/');
    let os = parts.next().filter(|p| !p.is_empty())?;
    let arch = parts.next().filter(|p| !p.is_empty())?;
    let variant = parts.next().map(str::to_string);
    if parts.next().is_some() {
        return None;
    }
    let mut p = Platform::default();
    p.set_os(Os::from(os));
    p.set_architecture(Arch::from(arch));
    p.set_variant(variant);
    Some(p)
}

/// Parses a platform as BuildKit does (`amd64`, `linux/arm64/v8`,
/// `linux/x86_64`), normalised (`arm64` without `v8`, `x86_64` → `amd64`).
pub fn parse_platform_lenient(s: &str) -> Option<Platform> {
    let p: kiln_parser::Platform = s.parse().ok()?;
    let mut out = Platform::default();
    out.set_os(Os::from(p.os.as_str()));
    out.set_architecture(Arch::from(p.architecture.as_str()));
    out.set_variant(p.variant);
    Some(out)
}

/// `os/arch[/variant]`.
pub fn format_platform(p: &Platform) -> String {
    let mut s = format!("{}/{}", p.os(), p.architecture());
    if let Some(v) = p.variant() {
        s.push('/');
        s.push_str(v);
    }
    s
}

/// Whether two platforms are the same os/arch (variants compared when both
/// are given).
pub fn same_platform(a: &Platform, b: &Platform) -> bool {
    a.os() == b.os()
        && a.architecture() == b.architecture()
        && match (a.variant(), b.variant()) {
            (Some(x), Some(y)) => x == y,
            _ => true,
        }
}

impl FromStr for Healthcheck {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        serde_json::from_str(s).map_err(ConfigError::Invalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"{"architecture":"amd64","os":"linux","created":"2024-01-01T00:00:00Z",
        "config":{"Env":["PATH=/usr/bin:/bin","A=1"],"Cmd":["sh"],"OnBuild":["RUN echo hi"],
        "Shell":["/bin/bash","-c"],"Healthcheck":{"Test":["CMD","true"],"Interval":30000000000},
        "Labels":{"b":"2","a":"1"},"ExposedPorts":{"80/tcp":{},"443/tcp":{}}},
        "rootfs":{"type":"layers","diff_ids":["sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"]},
        "history":[{"created":"2024-01-01T00:00:00Z","created_by":"x"}]}"#;

    #[test]
    fn docker_fields_survive_a_round_trip() {
        let c = ImageConfig::parse(BASE.as_bytes()).unwrap();
        assert_eq!(c.on_build, vec!["RUN echo hi"]);
        assert_eq!(c.shell, vec!["/bin/bash", "-c"]);
        assert_eq!(c.healthcheck.as_ref().unwrap().interval, 30_000_000_000);
        let again = ImageConfig::parse(&c.to_json()).unwrap();
        assert_eq!(again.to_json(), c.to_json());
        assert_eq!(again.on_build, c.on_build);
    }

    #[test]
    fn output_is_canonical() {
        let c = ImageConfig::parse(BASE.as_bytes()).unwrap();
        let a = c.to_json();
        for _ in 0..20 {
            // HashMap-backed fields (labels, ports) must not change the bytes.
            let c2 = ImageConfig::parse(BASE.as_bytes()).unwrap();
            assert_eq!(c2.to_json(), a);
        }
        let s = String::from_utf8(a).unwrap();
        assert!(
            s.contains(r#""ExposedPorts":{"443/tcp":{},"80/tcp":{}}"#),
            "{s}"
        );
        assert!(s.contains(r#""Labels":{"a":"1","b":"2"}"#), "{s}");
        assert!(!s.contains('\n') && !s.contains(": "), "{s}");
    }

    #[test]
    fn env_is_replaced_in_place() {
        let mut c = ImageConfig::parse(BASE.as_bytes()).unwrap();
        c.set_env("PATH", "/x");
        c.set_env("B", "2");
        assert_eq!(
            c.config().unwrap().env().clone().unwrap(),
            vec!["PATH=/x", "A=1", "B=2"]
        );
    }

    #[test]
    fn scratch_is_buildkits() {
        let c = ImageConfig::scratch(&host_platform());
        assert_eq!(c.working_dir(), "/");
        assert_eq!(
            c.env(),
            vec![("PATH".to_string(), DEFAULT_PATH.to_string())]
        );
    }

    #[test]
    fn platforms_parse_and_format() {
        let p = parse_platform("linux/arm64/v8").unwrap();
        assert_eq!(format_platform(&p), "linux/arm64/v8");
        assert!(parse_platform("linux").is_none());
        assert!(
            same_platform(&parse_platform("linux/amd64").unwrap(), &host_platform())
                == (std::env::consts::ARCH == "x86_64")
        );
    }
}
