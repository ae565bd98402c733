//! Helpers shared by the parser's integration tests (and the fuzz target,
//! which includes `exercise.rs` by path).

pub mod exercise;
