//! Rendering for humans: the tracing subscriber (installed only here) and the
//! one place an error is printed, with its cause chain and, for errors that
//! carry a source span, the offending line and a caret.

use tracing_subscriber::EnvFilter;

/// Installs the log subscriber: `--debug` turns on kiln's debug events,
/// `RUST_LOG` overrides; logs go to stderr so they never mix with output.
pub fn init_tracing(debug: bool) {
    let default = if debug {
        "kiln=debug,kiln_parser=debug,kiln_registry=debug,kiln_executor=debug,kiln_runner=debug,kiln_solver=debug"
    } else {
        "warn"
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// Prints an error once, with miette's renderer (cause chain, code frame when
/// the error has one, help text).
pub fn print_error(err: &miette::Report) {
    eprintln!("{err:?}");
}

/// An error and its causes on one line, `: `-separated; a cause whose text
/// the line already ends with (errors that repeat their source) is not
/// repeated.
pub fn one_line(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        let s = e.to_string();
        if !out.ends_with(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cur = e.source();
    }
    out
}
