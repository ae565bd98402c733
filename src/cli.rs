//! The command-line surface: global options and the command enum. Each
//! command's own arguments live beside its implementation in `commands/`.

use std::path::PathBuf;

use clap::{Args, Parser};

use crate::commands::Command;

/// kiln: a daemonless container image builder and runner.
#[derive(Debug, Parser)]
#[command(name = "kiln", version, about, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command accepts.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// kiln's state directory (images, build cache, containers).
    /// Default: /var/lib/kiln for root, $XDG_DATA_HOME/kiln otherwise.
    #[arg(long, global = true, env = "KILN_ROOT", value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Log what kiln does (also RUST_LOG=kiln=debug).
    #[arg(long, global = true)]
    pub debug: bool,
    /// A registry to reach over plain HTTP (localhost and 127.0.0.0/8
    /// always are): HOST, HOST:PORT or an IP network; repeatable.
    #[arg(
        long = "insecure-registry",
        global = true,
        value_name = "HOST[:PORT]",
        env = "KILN_INSECURE_REGISTRIES",
        value_delimiter = ','
    )]
    pub insecure_registries: Vec<String>,
}

impl GlobalArgs {
    /// The state directory: `--root`, else `KILN_ROOT`, else the default for
    /// the current user.
    pub fn root_dir(&self) -> PathBuf {
        if let Some(root) = &self.root {
            return root.clone();
        }
        if nix_is_root() {
            return PathBuf::from("/var/lib/kiln");
        }
        let data = std::env::var_os("XDG_DATA_HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
            .unwrap_or_else(|| PathBuf::from("/tmp"));
        data.join("kiln")
    }
}

impl GlobalArgs {
    /// How to reach registries: `--insecure-registry` and
    /// `KILN_INSECURE_REGISTRIES` (clap reads both into one list).
    pub fn remote_config(&self) -> kiln_registry::remote::RemoteConfig {
        let mut config = kiln_registry::remote::RemoteConfig::default();
        config.add_insecure(self.insecure_registries.iter().map(String::as_str));
        config
    }
}

fn nix_is_root() -> bool {
    nix::unistd::geteuid().is_root()
}
