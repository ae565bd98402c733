//! kiln-executor: running things and capturing what they change.
//!
//! Owns the sandbox (namespaces, mounts, pivot_root, cgroups v1/v2/hybrid
//! behind one trait, capabilities, the process tree), snapshots (overlay
//! stacks of unpacked layers), file operations (COPY/ADD), diffs turned into
//! layer blobs (tar, whiteouts, compression, digests) and context content
//! hashing. Depends on kiln-registry for the store.

pub mod context;
pub mod fileop;

pub use context::{ContextChecksum, FileHashCache, checksum};
pub use fileop::{
    ChownSpec, CopyOptions, CopyRequest, CopyStats, Downloaded, FileOpError, InlineFile,
    Instruction, Owner, PathMatcher, PatternCompiler, Source, SourceTree, TreeKind, copy,
    dest_path, download, make_workdir, parse_checksum, parse_chmod, resolve_owner,
};
