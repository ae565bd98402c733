//! `kiln inspect NAME...`: a JSON array with, for each name, what `docker
//! inspect` shows: the image of that name (shaped like `docker image
//! inspect`'s: Id, RepoTags, RepoDigests, Created, Config, Architecture,
//! Os, Size, RootFS, …) or, when no image has it, the container (shaped
//! like `docker container inspect`'s). `--type` restricts the lookup to one
//! kind.

use std::process::ExitCode;

use clap::{Args, ValueEnum};
use kiln_registry::{Image, Store, StoreError};
use kiln_runner::{RunnerError, Runtime};
use serde_json::{Value, json};

use super::{CmdResult, runtime, store};
use crate::cli::GlobalArgs;

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Images or containers: names, ids or id prefixes (an image first,
    /// as docker looks them up).
    #[arg(required = true)]
    pub names: Vec<String>,
    /// Only look for this kind of object.
    #[arg(long = "type", value_enum)]
    pub kind: Option<Kind>,
}

/// What `--type` selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    Image,
    Container,
}

/// Neither an image nor a container has the name (docker's words).
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("no such object: {name}")]
struct NoSuchObject {
    name: String,
}

pub fn run(global: &GlobalArgs, args: InspectArgs) -> CmdResult {
    let store = store::open(global)?;
    // Opened only when a name is not an image.
    let mut containers: Option<Runtime> = None;
    let mut out = Vec::new();
    let mut failed = false;
    for name in &args.names {
        let image = match args.kind {
            Some(Kind::Container) => Err(StoreError::ImageNotFound { name: name.clone() }),
            _ => store.find_image(name),
        };
        let found = match image {
            Ok(image) => image_json(&store, &image)
                .map(Inspected::Image)
                .map_err(store::diag),
            Err(StoreError::ImageNotFound { .. }) if args.kind != Some(Kind::Image) => {
                let rt = match &mut containers {
                    Some(rt) => rt,
                    None => containers.insert(runtime::open(global)?),
                };
                match rt.containers().lookup(name) {
                    Ok(c) => Ok(Inspected::Container(in_docker_order(
                        kiln_runner::view::inspect_json(&c),
                    ))),
                    Err(RunnerError::NoSuchContainer { .. }) => {
                        Err(NoSuchObject { name: name.clone() }.into())
                    }
                    Err(e) => Err(runtime::diag(e)),
                }
            }
            Err(e) => Err(store::diag(e)),
        };
        match found {
            Ok(v) => out.push(v),
            Err(e) => {
                crate::report::print_error(&e);
                failed = true;
            }
        }
    }
    let text = serde_json::to_string_pretty(&out).map_err(store::other)?;
    println!("{text}");
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// One element of the output.
#[derive(serde::Serialize)]
#[serde(untagged)]
enum Inspected {
    Image(Ordered),
    Container(Ordered),
}

/// `docker container inspect`'s key order, at the top and in `State`.
const CONTAINER_KEYS: &[&str] = &[
    "Id",
    "Created",
    "Path",
    "Args",
    "State",
    "Image",
    "LogPath",
    "Name",
    "RestartCount",
    "HostConfig",
    "Mounts",
    "Config",
    "NetworkSettings",
];
const STATE_KEYS: &[&str] = &[
    "Status",
    "Running",
    "Paused",
    "Restarting",
    "OOMKilled",
    "Dead",
    "Pid",
    "ExitCode",
    "Error",
    "StartedAt",
    "FinishedAt",
];

/// A container's inspect document with its keys in docker's order (keys
/// docker does not have come last).
fn in_docker_order(v: Value) -> Ordered {
    fn ordered(v: Value, keys: &[&str]) -> Ordered {
        let Value::Object(mut map) = v else {
            return Ordered::default();
        };
        let mut out = Ordered::default();
        for k in keys {
            if let Some(v) = map.remove(*k) {
                if *k == "State" {
                    out.push_object(k, ordered(v, STATE_KEYS));
                } else {
                    out.push(k, v);
                }
            }
        }
        for (k, v) in map {
            out.push(&k, v);
        }
        out
    }
    ordered(v, CONTAINER_KEYS)
}

/// The docker-shaped inspect object of one image.
pub fn image_json(store: &Store, image: &Image) -> Result<Ordered, kiln_registry::StoreError> {
    let raw = store.json(image.id())?;
    let target = image.target.digest().to_string();
    let summary = store
        .images()?
        .into_iter()
        .find(|s| s.target.digest().to_string() == target);
    let tags = summary.as_ref().map(|s| s.tags.clone()).unwrap_or_default();
    let repo_tags: Vec<String> = tags.iter().map(|t| t.familiar()).collect();
    let mut repo_digests: Vec<String> = tags
        .iter()
        .map(|t| format!("{}@{}", t.familiar_name(), target))
        .collect();
    repo_digests.dedup();
    let config = raw.get("config").cloned().unwrap_or(json!({}));
    let get = |k: &str| config.get(k).cloned().unwrap_or(Value::Null);
    let string = |k: &str| config.get(k).cloned().unwrap_or(json!(""));
    let mut cfg = Ordered::default();
    for (k, v) in [
        ("Hostname", json!("")),
        ("Domainname", json!("")),
        ("User", string("User")),
        ("AttachStdin", json!(false)),
        ("AttachStdout", json!(false)),
        ("AttachStderr", json!(false)),
        ("ExposedPorts", get("ExposedPorts")),
        ("Tty", json!(false)),
        ("OpenStdin", json!(false)),
        ("StdinOnce", json!(false)),
        ("Env", get("Env")),
        ("Cmd", get("Cmd")),
        ("Healthcheck", get("Healthcheck")),
        ("ArgsEscaped", get("ArgsEscaped")),
        ("Image", json!("")),
        ("Volumes", get("Volumes")),
        ("WorkingDir", string("WorkingDir")),
        ("Entrypoint", get("Entrypoint")),
        ("OnBuild", get("OnBuild")),
        ("Labels", get("Labels")),
        ("StopSignal", get("StopSignal")),
        ("Shell", get("Shell")),
    ] {
        // docker leaves out unset optional fields
        let optional = matches!(
            k,
            "ExposedPorts" | "Healthcheck" | "ArgsEscaped" | "StopSignal" | "Shell"
        );
        if !(optional && v.is_null()) {
            cfg.push(k, v);
        }
    }
    let layers: Vec<String> = image.layers.iter().map(|l| l.diff_id.to_string()).collect();
    let mut out = Ordered::default();
    out.push("Id", json!(image.id().to_string()));
    out.push("RepoTags", json!(repo_tags));
    out.push("RepoDigests", json!(repo_digests));
    out.push("Parent", json!(""));
    out.push("Comment", raw.get("comment").cloned().unwrap_or(json!("")));
    out.push(
        "Created",
        json!(image.config.created().clone().unwrap_or_default()),
    );
    out.push(
        "DockerVersion",
        raw.get("docker_version").cloned().unwrap_or(json!("")),
    );
    out.push(
        "Author",
        json!(image.config.author().clone().unwrap_or_default()),
    );
    out.push_object("Config", cfg);
    out.push(
        "Architecture",
        json!(image.config.architecture().to_string()),
    );
    if let Some(v) = image.config.variant() {
        out.push("Variant", json!(v));
    }
    out.push("Os", json!(image.config.os().to_string()));
    out.push("Size", json!(image.size()));
    out.push("RootFS", json!({"Type": "layers", "Layers": layers}));
    out.push(
        "Metadata",
        json!({"LastTagTime": summary.map(|s| s.added).unwrap_or_default()}),
    );
    out.push(
        "Descriptor",
        json!({
            "mediaType": image.target.media_type().to_string(),
            "digest": target,
            "size": image.target.size(),
        }),
    );
    Ok(out)
}

/// A JSON object that keeps its keys in insertion order (docker's field
/// order), whatever serde_json's map type is.
#[derive(Default)]
pub struct Ordered(Vec<(String, Node)>);

/// A value inside an [`Ordered`] object.
pub enum Node {
    Value(Value),
    Object(Ordered),
}

impl Ordered {
    pub fn push(&mut self, k: &str, v: Value) {
        self.0.push((k.to_string(), Node::Value(v)));
    }

    pub fn push_object(&mut self, k: &str, v: Ordered) {
        self.0.push((k.to_string(), Node::Object(v)));
    }
}

impl serde::Serialize for Ordered {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            match v {
                Node::Value(v) => map.serialize_entry(k, v)?,
                Node::Object(o) => map.serialize_entry(k, o)?,
            }
        }
        map.end()
    }
}
