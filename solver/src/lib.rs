//! kiln-solver: from typed Dockerfile stages to an image.
//!
//! Owns the build graph lowered from typed stages (one lowering per
//! instruction), cache keys, the cache index, the parallel scheduler, image
//! config and history assembly, and progress events. Every side effect goes
//! through its `Worker` trait, so it is tested with a fake worker; it never
//! sees the executor or the registry.
