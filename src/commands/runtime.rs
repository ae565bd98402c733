//! What the container commands share: opening the kiln-runner [`Runtime`]
//! of the chosen root (the image store, the Linux sandbox, and this binary
//! as the supervisor of detached containers), and runner errors as
//! diagnostics with a hint where one helps.

use std::error::Error;
use std::fmt;
use std::sync::Arc;

use kiln_runner::{RunnerError, Runtime, StoreImages, SupervisorCommand};

use crate::cli::GlobalArgs;

/// The runtime of the root the user chose.
pub fn open(global: &GlobalArgs) -> miette::Result<Runtime> {
    let store = super::store::open(global)?;
    let root = global.root_dir();
    let images = StoreImages::new(store);
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

/// A runner error with an optional hint.
struct Hinted {
    inner: RunnerError,
    help: Option<String>,
}

impl fmt::Debug for Hinted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.inner, f)
    }
}

impl fmt::Display for Hinted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.inner, f)
    }
}

impl Error for Hinted {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.inner.source()
    }
}

impl miette::Diagnostic for Hinted {
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }
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
        RunnerError::Image(kiln_runner::ImageError::NotFound { .. }) => {
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

/// A runner error as a diagnostic.
pub fn diag(e: RunnerError) -> miette::Report {
    let help = hint(&e);
    miette::Report::new(Hinted { inner: e, help })
}
