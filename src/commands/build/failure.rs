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
    let message = format!("failed to solve: {}", crate::report::one_line(err));
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
