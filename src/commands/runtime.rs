//! What the container commands share: opening the kiln-runner [`Runtime`]
//! of the chosen root (the image store, the Linux sandbox, and this binary
//! as the supervisor of detached containers), and runner errors as
//! diagnostics with a hint where one helps.

use std::error::Error;
use std::process::ExitCode;
use std::sync::Arc;

use kiln_runner::{ImageError, RunnerError, Runtime, StoreImages, SupervisorCommand};

use super::transfer_progress::{ProgressMode, TransferRenderer};

use crate::cli::GlobalArgs;

/// The runtime of the root the user chose.
pub fn open(global: &GlobalArgs) -> miette::Result<Runtime> {
    let store = super::store::open(global)?;
    let root = global.root_dir();
    let pull_store = store.clone();
    let remote = global.remote_config();
    let images = StoreImages::new(store).with_pull(move |name| pull(&pull_store, &remote, name));
    let program = std::env::current_exe().map_err(super::store::other)?;
    let mut args: Vec<std::ffi::OsString> = vec!["--root".into(), root.clone().into()];
    if global.debug {
        args.push("--debug".into());
    }
    args.extend(["container".into(), "supervise".into()]);
    let runtime = Runtime::new(
        &root,
        Arc::new(kiln_executor::LinuxSandbox::new()),
        Arc::new(images),
    )
    .map_err(diag)?
    .with_supervisor(SupervisorCommand { program, args });
    Ok(runtime)
}

/// Pulls a missing image as `docker run` does: says so, shows progress on
/// stderr, then the image is in the store.
fn pull(
    store: &kiln_registry::Store,
    config: &kiln_registry::remote::RemoteConfig,
    name: &str,
) -> Result<(), ImageError> {
    let fail = |e: Box<dyn Error + Send + Sync>| ImageError::Store {
        reference: name.to_string(),
        source: e,
    };
    let reference: kiln_registry::Reference = name.parse().map_err(|e| fail(Box::new(e)))?;
    eprintln!("Unable to find image '{}' locally", reference.familiar());
    let renderer = TransferRenderer::new(ProgressMode::Auto);
    let options = kiln_registry::remote::PullOptions::default();
    let pulled = super::block_on(kiln_registry::remote::pull(
        store, config, &reference, &options, &renderer,
    ))
    .map_err(|e| fail(e.to_string().into()))?;
    renderer.finish();
    let pulled = pulled.map_err(|e| fail(Box::new(e)))?;
    renderer.line(&format!("Digest: {}", pulled.target.digest()));
    renderer.line(&format!(
        "Status: Downloaded newer image for {}",
        reference.familiar()
    ));
    Ok(())
}

fn hint(e: &RunnerError) -> Option<String> {
    Some(match e {
        RunnerError::NoSuchContainer { .. } => "`kiln ps -a` lists the containers".to_string(),
        RunnerError::Ambiguous { .. } => "give more digits of the id, or the name".to_string(),
        RunnerError::NameInUse { name, .. } => {
            format!("`kiln rm {name}` removes the other container")
        }
        RunnerError::RemoveRunning { .. } => {
            "`kiln stop` it first, or use `kiln rm -f`".to_string()
        }
        RunnerError::Image(ImageError::NotFound { .. }) => {
            "`kiln images` lists the images in this store; `kiln build` or `kiln pull` makes one"
                .to_string()
        }
        RunnerError::Start {
            source: kiln_executor::SandboxError::Exec { .. },
            ..
        } => "check the command: it must exist in the image and be executable".to_string(),
        _ => return None,
    })
}

/// Runs `op` on each of `names` as docker's commands on several containers
/// (or volumes) do: the name printed when it succeeds, the error when it
/// fails, then the next one; exit status 1 when any failed.
pub fn each<T>(names: &[String], mut op: impl FnMut(&str) -> Result<T, RunnerError>) -> ExitCode {
    let mut failed = false;
    for name in names {
        match op(name) {
            Ok(_) => println!("{name}"),
            Err(e) => {
                crate::report::print_error(&diag(e));
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// A runner error as a diagnostic.
pub fn diag(e: RunnerError) -> miette::Report {
    let help = hint(&e);
    crate::diagnostic::with_hint(e, help)
}
