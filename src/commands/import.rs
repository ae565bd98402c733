//! `kiln import FILE|- [NAME]`: a one-layer image from a root filesystem
//! tarball (plain, gzip or zstd), with `--change` applying Dockerfile
//! instructions to its config as `docker import` does.

use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use kiln_registry::{ImportOptions, Reference};
use serde_json::{Map, Value, json};

use super::{CmdResult, store};
use crate::cli::GlobalArgs;

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Apply a Dockerfile instruction to the image config: CMD, ENTRYPOINT,
    /// ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR.
    #[arg(short = 'c', long = "change", value_name = "INSTRUCTION")]
    pub changes: Vec<String>,
    /// A commit message for the history entry.
    #[arg(short = 'm', long = "message")]
    pub message: Option<String>,
    /// The root filesystem tarball (`-` reads standard input).
    pub file: PathBuf,
    /// The name to tag the image with (e.g. `busybox`, `example/base:1`).
    pub name: Option<String>,
}

pub fn run(global: &GlobalArgs, args: ImportArgs) -> CmdResult {
    let reference = match &args.name {
        Some(n) => Some(Reference::parse(n).map_err(store::other)?),
        None => None,
    };
    let config = config_from_changes(&args.changes)?;
    let store = store::open(global)?;
    let source = args.file.display().to_string();
    // the history names the file, not where it was on this machine
    let file_name = args
        .file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| source.clone());
    let opts = ImportOptions {
        reference,
        config,
        created: None,
        source: file_name,
        message: args.message,
    };
    let image = if source == "-" {
        store.import_rootfs(std::io::stdin(), &opts)
    } else {
        let file = File::open(&args.file).map_err(|e| {
            store::other(kiln_registry::ArchiveError::Read {
                what: source.clone(),
                source: e,
            })
        })?;
        store.import_rootfs(BufReader::with_capacity(1 << 20, file), &opts)
    }
    .map_err(store::archive_diag)?;
    store::unpack_ahead(&store, &image);
    println!("{}", image.id());
    Ok(ExitCode::SUCCESS)
}

/// Why a `--change` instruction is not understood.
#[derive(Debug, thiserror::Error)]
#[error("invalid --change {instruction:?}: {reason}")]
pub struct ChangeError {
    instruction: String,
    reason: String,
}

/// Builds the image config from `--change` instructions (none: no config).
pub fn config_from_changes(changes: &[String]) -> miette::Result<Option<oci_spec::image::Config>> {
    if changes.is_empty() {
        return Ok(None);
    }
    let mut cfg = Map::new();
    for change in changes {
        apply_change(&mut cfg, change).map_err(|reason| {
            store::other(ChangeError {
                instruction: change.clone(),
                reason,
            })
        })?;
    }
    let config = serde_json::from_value(Value::Object(cfg)).map_err(store::other)?;
    Ok(Some(config))
}

fn apply_change(cfg: &mut Map<String, Value>, change: &str) -> Result<(), String> {
    let change = change.trim();
    let (word, rest) = change
        .split_once(char::is_whitespace)
        .unwrap_or((change, ""));
    let rest = rest.trim();
    if rest.is_empty() {
        return Err("the instruction needs an argument".into());
    }
    match word.to_ascii_uppercase().as_str() {
        "CMD" => {
            cfg.insert("Cmd".into(), json!(command_form(rest)?));
        }
        "ENTRYPOINT" => {
            cfg.insert("Entrypoint".into(), json!(command_form(rest)?));
        }
        "ENV" => {
            let env = cfg.entry("Env").or_insert_with(|| json!([]));
            let list = env.as_array_mut().ok_or("bad Env")?;
            for (k, v) in pairs(rest)? {
                list.retain(|e| {
                    e.as_str().and_then(|e| e.split_once('=')).map(|(ek, _)| ek) != Some(&k)
                });
                list.push(json!(format!("{k}={v}")));
            }
        }
        "LABEL" => {
            let labels = cfg.entry("Labels").or_insert_with(|| json!({}));
            let map = labels.as_object_mut().ok_or("bad Labels")?;
            for (k, v) in pairs(rest)? {
                map.insert(k, json!(v));
            }
        }
        "EXPOSE" => {
            let ports = cfg.entry("ExposedPorts").or_insert_with(|| json!({}));
            let map = ports.as_object_mut().ok_or("bad ExposedPorts")?;
            for p in rest.split_whitespace() {
                let p = if p.contains('/') {
                    p.to_string()
                } else {
                    format!("{p}/tcp")
                };
                map.insert(p, json!({}));
            }
        }
        "VOLUME" => {
            let vols = cfg.entry("Volumes").or_insert_with(|| json!({}));
            let map = vols.as_object_mut().ok_or("bad Volumes")?;
            let list: Vec<String> = if rest.starts_with('[') {
                serde_json::from_str(rest).map_err(|e| e.to_string())?
            } else {
                rest.split_whitespace().map(str::to_string).collect()
            };
            for v in list {
                map.insert(v, json!({}));
            }
        }
        "WORKDIR" => {
            cfg.insert("WorkingDir".into(), json!(rest));
        }
        "USER" => {
            cfg.insert("User".into(), json!(rest));
        }
        "STOPSIGNAL" => {
            cfg.insert("StopSignal".into(), json!(rest));
        }
        other => return Err(format!("{other} cannot be applied by import")),
    }
    Ok(())
}

/// Exec form (`["a","b"]`) or shell form (`a b` → `/bin/sh -c "a b"`).
fn command_form(rest: &str) -> Result<Vec<String>, String> {
    if rest.starts_with('[')
        && let Ok(v) = serde_json::from_str::<Vec<String>>(rest)
    {
        return Ok(v);
    }
    Ok(vec!["/bin/sh".into(), "-c".into(), rest.into()])
}

/// `K=V K2="v 2"` pairs, or the legacy `K V` form.
fn pairs(rest: &str) -> Result<Vec<(String, String)>, String> {
    if !rest.split_whitespace().next().unwrap_or("").contains('=') {
        let (k, v) = rest
            .split_once(char::is_whitespace)
            .ok_or("expected KEY=VALUE")?;
        return Ok(vec![(k.to_string(), v.trim().to_string())]);
    }
    let mut out = Vec::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        if chars.next() != Some('=') || key.is_empty() {
            return Err("expected KEY=VALUE".into());
        }
        let mut value = String::new();
        let mut quote: Option<char> = None;
        while let Some(&c) = chars.peek() {
            match quote {
                None if c.is_whitespace() => break,
                None if c == '"' || c == '\'' => quote = Some(c),
                None if c == '\\' => {
                    chars.next();
                    if let Some(n) = chars.peek() {
                        value.push(*n);
                    }
                }
                Some(q) if c == q => quote = None,
                Some('"') if c == '\\' => {
                    chars.next();
                    if let Some(n) = chars.peek() {
                        value.push(*n);
                    }
                }
                _ => value.push(c),
            }
            chars.next();
        }
        if quote.is_some() {
            return Err("unterminated quote".into());
        }
        out.push((key, value));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_build_a_config() {
        let c = config_from_changes(&[
            r#"CMD ["sh"]"#.into(),
            "ENV PATH=/usr/bin:/bin A=\"x y\"".into(),
            "ENV A=z".into(),
            "EXPOSE 80 53/udp".into(),
            "WORKDIR /srv".into(),
            "LABEL a=b".into(),
            "entrypoint echo hi".into(),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(c.cmd().as_ref().unwrap(), &vec!["sh".to_string()]);
        assert_eq!(
            c.env().as_ref().unwrap(),
            &vec!["PATH=/usr/bin:/bin".to_string(), "A=z".into()]
        );
        assert_eq!(c.entrypoint().as_ref().unwrap()[2], "echo hi");
        assert_eq!(c.working_dir().as_deref(), Some("/srv"));
        let mut ports = c.exposed_ports().clone().unwrap();
        ports.sort();
        assert_eq!(ports, vec!["53/udp".to_string(), "80/tcp".into()]);
        assert!(config_from_changes(&["RUN x".into()]).is_err());
        assert!(config_from_changes(&["ENV".into()]).is_err());
        assert!(config_from_changes(&[]).unwrap().is_none());
    }
}
