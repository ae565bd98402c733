//! The state of a stage while its instructions are lowered: the expansion
//! scope, the image config being built, its pending history, the vertex
//! holding the current filesystem, and the step counters BuildKit shows in
//! progress names (`[stage 2/5]`).

use kiln_parser::{Scope, Span};
use oci_spec::image::{History, Platform};
use petgraph::graph::NodeIndex;

use crate::error::{LowerError, LowerErrorKind};
use crate::graph::Location;
use crate::image::ImageConfig;

/// A history entry whose `empty_layer` is known only after the build.
#[derive(Debug, Clone)]
pub(crate) enum PendingHistory {
    /// An entry of the base image, as it was.
    Base(History),
    /// An entry this build adds.
    Step {
        created_by: String,
        /// The vertex whose result decides whether the entry has a layer;
        /// `None` for config-only instructions.
        layer: Option<NodeIndex>,
    },
}

#[derive(Debug, Clone)]
pub(crate) struct StageState {
    /// Position of the stage in the Dockerfile.
    pub index: usize,
    /// The name shown in progress (`build`, `stage-1`; empty when the
    /// Dockerfile has a single stage).
    pub display_name: String,
    pub scope: Scope,
    pub image: ImageConfig,
    pub history: Vec<PendingHistory>,
    /// The vertex whose result is the stage's filesystem; `None`: empty.
    pub vertex: Option<NodeIndex>,
    pub platform: Platform,
    /// Steps numbered so far / in total (FROM, RUN, COPY, ADD, WORKDIR and
    /// ONBUILD triggers count).
    pub cmd_index: usize,
    pub cmd_total: usize,
    /// ARGs declared in the stage (and its base stages), in order: RUN's
    /// history lists their values (`|2 A=1 B=2 /bin/sh -c …`).
    pub declared_args: Vec<String>,
    /// Whether CMD was set in this stage (ENTRYPOINT then keeps it).
    pub cmd_set: bool,
    /// Whether the instruction being lowered is an ONBUILD trigger.
    pub in_onbuild: bool,
    /// The stage's FROM line.
    pub from_span: Span,
}

/// A Dockerfile span as a graph location.
pub(crate) fn location(span: Span) -> Location {
    Location {
        offset: span.offset,
        len: span.len,
        line: span.line,
        col: span.col,
    }
}

impl StageState {
    /// The next progress name: `[name i/n] TEXT` (BuildKit's prefix).
    pub(crate) fn step_name(&mut self, text: &str) -> String {
        if self.cmd_total == 0 {
            return text.to_string();
        }
        self.cmd_index += 1;
        let width = 1 + (self.cmd_total as f64).log10().floor() as usize;
        let mut out = String::from("[");
        if !self.display_name.is_empty() {
            out.push_str(&self.display_name);
            out.push(' ');
        }
        out.push_str(&format!(
            "{:>width$}/{}] ",
            self.cmd_index,
            self.cmd_total,
            width = width
        ));
        if self.in_onbuild {
            out.push_str("ONBUILD ");
        }
        out.push_str(text);
        out
    }

    /// Adds a config-only history entry.
    pub(crate) fn history_empty(&mut self, created_by: String) {
        self.history.push(PendingHistory::Step {
            created_by,
            layer: None,
        });
    }

    /// Adds a history entry for a step that may add a layer.
    pub(crate) fn history_layer(&mut self, created_by: String, vertex: NodeIndex) {
        self.history.push(PendingHistory::Step {
            created_by,
            layer: Some(vertex),
        });
    }

    /// Expands one word in the stage's scope.
    pub(crate) fn expand(&self, word: &str, span: Span) -> Result<String, LowerError> {
        self.scope
            .expand(word)
            .map(|e| e.value)
            .map_err(|e| expand_error(e, span))
    }

    /// The working directory for RUN and relative COPY destinations.
    pub(crate) fn workdir(&self) -> String {
        let wd = self.image.working_dir();
        if wd.is_empty() { "/".to_string() } else { wd }
    }
}

/// A word-expansion error at `span`.
pub(crate) fn expand_error(err: kiln_parser::ExpandError, span: Span) -> LowerError {
    LowerError::new(LowerErrorKind::Expand(Box::new(err)), Some(location(span)))
}

/// An error about the instruction at `span`.
pub(crate) fn invalid(what: impl Into<String>, span: Span) -> LowerError {
    LowerError::new(
        LowerErrorKind::Invalid { what: what.into() },
        Some(location(span)),
    )
}

/// `keyword` uppercased at the start of `text` (BuildKit's `uppercaseCmd`).
pub(crate) fn uppercase_keyword(text: &str) -> String {
    match text.split_once(' ') {
        Some((k, rest)) => format!("{} {rest}", k.to_ascii_uppercase()),
        None => text.to_ascii_uppercase(),
    }
}

/// Lexically cleans an absolute path (Go's `path.Clean`).
pub(crate) fn clean_path(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

/// `dest` resolved against `workdir`, keeping a trailing `/` (which means
/// "a directory"); `.` and an empty path are the directory itself.
pub(crate) fn resolve_dest(workdir: &str, dest: &str) -> String {
    let dest = if dest.is_empty() || dest == "." {
        "./"
    } else {
        dest
    };
    let trailing = dest.ends_with('/') || dest.ends_with("/.");
    let joined = if dest.starts_with('/') {
        clean_path(dest)
    } else {
        clean_path(&format!("{workdir}/{dest}"))
    };
    if trailing && joined != "/" {
        format!("{joined}/")
    } else {
        joined
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(clean_path("/a/./b/../c//d/"), "/a/c/d");
        assert_eq!(clean_path("/.."), "/");
        assert_eq!(resolve_dest("/app", "x"), "/app/x");
        assert_eq!(resolve_dest("/app", "x/"), "/app/x/");
        assert_eq!(resolve_dest("/app", "."), "/app/");
        assert_eq!(resolve_dest("/app", "/abs"), "/abs");
        assert_eq!(resolve_dest("/", "./"), "/");
        assert_eq!(resolve_dest("/a", "../b/"), "/b/");
    }

    #[test]
    fn keywords() {
        assert_eq!(uppercase_keyword("run echo hi"), "RUN echo hi");
        assert_eq!(uppercase_keyword("workdir"), "WORKDIR");
    }
}
