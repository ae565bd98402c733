//! kiln-parser: the Dockerfile front end.
//!
//! Owns, in BuildKit's four steps: parser directives, the pest grammar and the
//! syntax tree with source spans, typed instructions grouped into stages, and
//! word expansion with ARG/ENV scoping (expansion happens late, per stage
//! environment, never in the grammar). Also owns `.dockerignore` matching and
//! the diagnostics every front-end error carries (file, line, column).
//!
//! It depends on nothing else of kiln and does no file I/O: every entry point
//! takes `&str`.
