//! kiln-executor: running things and capturing what they change.
//!
//! Owns the sandbox (namespaces, mounts, pivot_root, cgroups v1/v2/hybrid
//! behind one trait, capabilities, the process tree), snapshots (overlay
//! stacks of unpacked layers), file operations (COPY/ADD), diffs turned into
//! layer blobs (tar, whiteouts, compression, digests) and context content
//! hashing. Depends on kiln-registry for the store.
