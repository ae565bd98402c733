//! kiln-runner: containers for `kiln run`.
//!
//! Owns image → root filesystem → runtime spec → the executor's sandbox, the
//! container state machine, the supervisor of detached containers, logs,
//! stop/kill, exec, port publishing and volumes.
