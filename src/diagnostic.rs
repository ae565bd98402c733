//! Front-end errors as miette diagnostics: `FILE:LINE:COL: message`, the
//! offending line with a caret under the span, and a hint when there is one.
//! `kiln debug parse` and `kiln build` render Dockerfile errors through here;
//! anything else with a [`Span`] into a text (an expansion error the solver
//! reports at an instruction) can use [`at_span`]. Other crates' errors get
//! a hint under them with [`with_hint`].

use std::error::Error;
use std::fmt;
use std::io::IsTerminal;

use kiln_parser::Span;
use miette::{
    GraphicalTheme, LabeledSpan, MietteDiagnostic, MietteHandlerOpts, NamedSource, Report,
    ThemeCharacters, ThemeStyles,
};

/// Installs miette's report handler with a caret (`^^^`) under the span,
/// unicode frames and colours on a terminal, plain ASCII otherwise.
pub fn install_hook() {
    let _ = miette::set_hook(Box::new(|_| {
        let tty = std::io::stderr().is_terminal();
        let mut characters = if tty {
            ThemeCharacters::unicode()
        } else {
            ThemeCharacters::ascii()
        };
        characters.underline = '^';
        characters.underbar = '^';
        let styles = if tty && std::env::var_os("NO_COLOR").is_none() {
            ThemeStyles::ansi()
        } else {
            ThemeStyles::none()
        };
        Box::new(
            MietteHandlerOpts::new()
                .graphical_theme(GraphicalTheme { characters, styles })
                .build(),
        )
    }));
}

/// A diagnostic for `message` at `span` of `src`, a file shown as `file`.
/// The caret covers the span's first line only (an instruction's span may
/// run over several lines).
pub fn at_span(file: &str, src: &str, span: Span, message: &str, help: Option<String>) -> Report {
    let start = span.offset.min(src.len());
    let rest = src.get(start..span.end().min(src.len())).unwrap_or("");
    let len = rest.find('\n').unwrap_or(rest.len());
    let mut diag = MietteDiagnostic::new(format!("{file}:{span}: {message}"))
        .with_code("kiln::dockerfile")
        .with_label(LabeledSpan::new_with_span(
            Some("here".to_string()),
            (start, len),
        ));
    if let Some(help) = help {
        diag = diag.with_help(help);
    }
    Report::new(diag).with_source_code(NamedSource::new(file, src.to_string()))
}

/// The diagnostic of a Dockerfile error.
pub fn dockerfile_error(file: &str, src: &str, err: &kiln_parser::Error) -> Report {
    at_span(file, src, err.span, &err.to_string(), err.help())
}

/// An error with an optional hint; shows the error's own message and cause
/// chain. The store's, the runner's and the registry's errors go through
/// [`with_hint`].
struct Hinted {
    inner: Box<dyn Error + Send + Sync + 'static>,
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

/// `e` as a diagnostic with `help` under it.
pub fn with_hint<E: Error + Send + Sync + 'static>(e: E, help: Option<String>) -> miette::Report {
    miette::Report::new(Hinted {
        inner: Box::new(e),
        help,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_has_position_and_frame() {
        let src = "FROM busybox\nFORM x\n";
        let err = kiln_parser::Dockerfile::parse(src).unwrap_err();
        let report = dockerfile_error("Dockerfile", src, &err);
        let mut out = String::new();
        miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::ascii())
            .render_report(&mut out, report.as_ref())
            .unwrap();
        assert!(
            out.contains("Dockerfile:2:1: unknown instruction: FORM"),
            "{out}"
        );
        assert!(out.contains("FORM x"), "{out}");
        assert!(out.contains('^'), "{out}");
        assert!(out.contains("did you mean FROM?"), "{out}");
    }
}
