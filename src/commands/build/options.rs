//! `kiln build` options checked before anything runs (no I/O): `--secret`,
//! `-o/--output`, `--build-arg`, `--label`, `--platform`, `--network`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use kiln_solver::NetworkMode;

/// A `--secret` source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    File(PathBuf),
    Env(String),
}

/// `--secret id=ID[,src=PATH|,env=VAR]` (docker also accepts `source=`,
/// `type=file|env`; with neither `src` nor `env`, the environment variable
/// named like the id when it exists, else the file named like it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretSpec {
    pub id: String,
    pub source: SecretSource,
}

/// Errors in build options.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OptionError {
    #[error("invalid --secret {0:?}: {1}")]
    Secret(String, &'static str),
    #[error("invalid --output {0:?}: {1}")]
    Output(String, &'static str),
    #[error("invalid --{flag} {value:?}: expected KEY=VALUE")]
    KeyValue { flag: &'static str, value: String },
    #[error("invalid --network {0:?}: expected default, none or host")]
    Network(String),
    #[error("invalid --platform {0:?}: expected os/arch[/variant]")]
    Platform(String),
}

pub fn parse_secret(s: &str) -> Result<SecretSpec, OptionError> {
    let mut id = None;
    let mut src = None;
    let mut env = None;
    let mut typ = None;
    for field in s.split(',') {
        let (k, v) = field
            .split_once('=')
            .ok_or(OptionError::Secret(s.into(), "fields are key=value"))?;
        match k.trim().to_ascii_lowercase().as_str() {
            "id" => id = Some(v.to_string()),
            "src" | "source" => src = Some(v.to_string()),
            "env" => env = Some(v.to_string()),
            "type" => typ = Some(v.to_string()),
            _ => return Err(OptionError::Secret(s.into(), "unknown field")),
        }
    }
    let id = id
        .filter(|i| !i.is_empty())
        .ok_or(OptionError::Secret(s.into(), "id= is required"))?;
    let source = match (src, env, typ.as_deref()) {
        (Some(_), Some(_), _) => {
            return Err(OptionError::Secret(s.into(), "give src= or env=, not both"));
        }
        (Some(p), None, None | Some("file")) => SecretSource::File(PathBuf::from(p)),
        (Some(v), None, Some("env")) => SecretSource::Env(v),
        (None, Some(v), None | Some("env")) => SecretSource::Env(v),
        (None, None, Some("file")) => SecretSource::File(PathBuf::from(&id)),
        (None, None, Some("env")) => SecretSource::Env(id.clone()),
        (None, None, None) => {
            if std::env::var_os(&id).is_some() {
                SecretSource::Env(id.clone())
            } else {
                SecretSource::File(PathBuf::from(&id))
            }
        }
        _ => return Err(OptionError::Secret(s.into(), "type= must be file or env")),
    };
    Ok(SecretSpec { id, source })
}

/// `-o type=oci|docker|local,dest=PATH` (also `-o PATH` = local).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputSpec {
    /// An OCI image layout tarball (`-` for stdout).
    Oci(PathBuf),
    /// A `docker load` tarball (`-` for stdout).
    Docker(PathBuf),
    /// The root filesystem as a directory.
    Local(PathBuf),
}

pub fn parse_output(s: &str) -> Result<OutputSpec, OptionError> {
    if !s.contains('=') {
        return Ok(OutputSpec::Local(PathBuf::from(s)));
    }
    let mut typ = None;
    let mut dest = None;
    for field in s.split(',') {
        let (k, v) = field
            .split_once('=')
            .ok_or(OptionError::Output(s.into(), "fields are key=value"))?;
        match k {
            "type" => typ = Some(v.to_string()),
            "dest" => dest = Some(PathBuf::from(v)),
            // name= is accepted for compatibility; tags come from -t.
            "name" => {}
            _ => return Err(OptionError::Output(s.into(), "unknown field")),
        }
    }
    let dest = dest.ok_or(OptionError::Output(s.into(), "dest= is required"))?;
    match typ.as_deref() {
        Some("oci") => Ok(OutputSpec::Oci(dest)),
        Some("docker") | Some("tar") => Ok(OutputSpec::Docker(dest)),
        Some("local") => Ok(OutputSpec::Local(dest)),
        _ => Err(OptionError::Output(
            s.into(),
            "type= must be oci, docker or local",
        )),
    }
}

/// `--build-arg` values: `K=V`, or `K` alone to take `K` from kiln's own
/// environment (docker's behaviour; skipped when unset).
pub fn parse_build_args(values: &[String]) -> Result<BTreeMap<String, String>, OptionError> {
    let mut out = BTreeMap::new();
    for v in values {
        match v.split_once('=') {
            Some((k, val)) if !k.is_empty() => {
                out.insert(k.to_string(), val.to_string());
            }
            Some(_) => {
                return Err(OptionError::KeyValue {
                    flag: "build-arg",
                    value: v.clone(),
                });
            }
            None => {
                if let Ok(val) = std::env::var(v) {
                    out.insert(v.clone(), val);
                }
            }
        }
    }
    Ok(out)
}

/// `--label K=V` values.
pub fn parse_labels(values: &[String]) -> Result<BTreeMap<String, String>, OptionError> {
    let mut out = BTreeMap::new();
    for v in values {
        match v.split_once('=') {
            Some((k, val)) if !k.is_empty() => {
                out.insert(k.to_string(), val.to_string());
            }
            _ => {
                return Err(OptionError::KeyValue {
                    flag: "label",
                    value: v.clone(),
                });
            }
        }
    }
    Ok(out)
}

pub fn parse_network(s: &str) -> Result<NetworkMode, OptionError> {
    NetworkMode::parse(s).ok_or_else(|| OptionError::Network(s.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets() {
        assert_eq!(
            parse_secret("id=tok,src=/tmp/t").unwrap(),
            SecretSpec {
                id: "tok".into(),
                source: SecretSource::File("/tmp/t".into())
            }
        );
        assert_eq!(
            parse_secret("id=tok,env=TOKEN").unwrap().source,
            SecretSource::Env("TOKEN".into())
        );
        assert_eq!(
            parse_secret("type=env,id=HOME").unwrap().source,
            SecretSource::Env("HOME".into())
        );
        assert!(parse_secret("src=/x").is_err());
        assert!(parse_secret("id=a,src=/x,env=Y").is_err());
        assert!(parse_secret("id=a,bogus=1").is_err());
    }

    #[test]
    fn outputs() {
        assert_eq!(
            parse_output("type=oci,dest=out.tar").unwrap(),
            OutputSpec::Oci("out.tar".into())
        );
        assert_eq!(
            parse_output("type=docker,dest=-").unwrap(),
            OutputSpec::Docker("-".into())
        );
        assert_eq!(
            parse_output("type=local,dest=dir").unwrap(),
            OutputSpec::Local("dir".into())
        );
        assert_eq!(
            parse_output("dir").unwrap(),
            OutputSpec::Local("dir".into())
        );
        assert!(parse_output("type=registry,dest=x").is_err());
        assert!(parse_output("type=oci").is_err());
    }

    #[test]
    fn key_values() {
        let a = parse_build_args(&["A=1".into(), "B=".into(), "C=x=y".into()]).unwrap();
        assert_eq!(a["A"], "1");
        assert_eq!(a["B"], "");
        assert_eq!(a["C"], "x=y");
        assert!(parse_build_args(&["=1".into()]).is_err());
        assert!(parse_labels(&["novalue".into()]).is_err());
        assert_eq!(parse_network("none").unwrap(), NetworkMode::None);
        assert!(parse_network("bridge").is_err());
    }
}
