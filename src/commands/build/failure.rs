//! What a failed build prints: the failed step's whole output between
//! `------` lines (as BuildKit does), then the error with the Dockerfile
//! line in a code frame.

use kiln_solver::{Location, SolveError};

use crate::progress::RenderReport;

/// Prints the failure report of `err` to stderr.
pub fn report(file: &str, src: &str, err: &SolveError, rendered: &RenderReport) {
    if let SolveError::Step(step) = err
        && !step.is_cancelled()
    {
        let output = step
            .vertex
            .and_then(|v| rendered.failed_output.get(&v))
            .map(|o| String::from_utf8_lossy(o).into_owned())
            .unwrap_or_default();
        let mut text = format!("------\n > {}:\n", step.step);
        for line in output.lines() {
            text.push_str(line);
            text.push('\n');
        }
        text.push_str("------");
        eprintln!("{text}");
    }
    let message = format!("failed to solve: {}", chain(err));
    let report = match err.location() {
        Some(loc) => crate::diagnostic::at_span(file, src, span(loc), &message, None),
        None => miette::miette!("{message}"),
    };
    crate::report::print_error(&report);
}

fn span(loc: Location) -> kiln_parser::Span {
    kiln_parser::Span {
        offset: loc.offset,
        len: loc.len,
        line: loc.line,
        col: loc.col,
    }
}

/// The error and its causes, `: `-separated (the code frame carries no
/// cause chain of its own).
fn chain(err: &dyn std::error::Error) -> String {
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
