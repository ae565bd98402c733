//! kiln-executor: running things and capturing what they change.
//!
//! Owns the sandbox (namespaces, mounts, pivot_root, cgroups v1/v2/hybrid
//! behind one trait, capabilities, the process tree), snapshots (overlay
//! stacks of unpacked layers), file operations (COPY/ADD), diffs turned
//! into layer blobs (tar, whiteouts, digests), context content hashing,
//! the host side of `RUN --mount`, and the user/group resolution docker
//! applies to `USER` and `COPY --chown`. Depends on kiln-registry for the
//! store.
//!
//! - [`sandbox`]: the [`Sandbox`] trait, its request and outcome types, the
//!   real [`LinuxSandbox`] and the [`FakeSandbox`] for unit tests.
//! - [`spec`]: docker's defaults as an OCI runtime spec.
//! - [`user`]: `USER` resolution against an image's `/etc/passwd`.
//! - [`snapshot`]: overlay stacks of unpacked layers with an upper
//!   directory per step, or plain copies where overlayfs is not usable.
//! - [`layer`]: a step's changes as a layer blob in the store.
//! - [`fileop`]: COPY, ADD, WORKDIR and heredoc files applied onto a rootfs.
//! - [`context`]: content checksums of what a COPY/ADD selects.
//! - [`buildmount`]: the host side of `RUN --mount` (cache, secret, bind,
//!   tmpfs, ssh) as runtime spec mounts.

pub mod buildmount;
mod cgroups;
mod confined;
pub mod context;
mod du;
pub mod fileop;
pub mod layer;
mod mountns;
mod overlay;
mod proc;
pub mod sandbox;
pub mod snapshot;
pub mod spec;
mod syscall;
pub mod user;
mod xattrs;

pub use buildmount::{
    BindMount, CacheMount, MountContext, MountError, MountSpec, PreparedMounts, SecretMount,
    SecretSource, Sharing, SshMount, TmpfsMount,
};
pub use buildmount::{CachePrune, prune_cache_mounts};
pub use confined::resolve_in_root;
pub use context::{ContextChecksum, FileHashCache, checksum};
pub use du::dir_size;
pub use fileop::{
    Chmod, ChownSpec, CopyOptions, CopyRequest, CopyStats, Downloaded, FileOpError, InlineFile,
    Instruction, Owner, PathMatcher, PatternCompiler, Source, SourceTree, SymbolicMode, TreeKind,
    copy, dest_path, download, make_workdir, parse_checksum, parse_chmod, resolve_owner,
};
pub use layer::{
    LAYER_MEDIA_TYPE, LayerError, LayerInfo, LayerOptions, write_layer, write_layer_from_copy,
};
pub use mountns::in_private_mount_namespace;
pub use sandbox::{
    Cancel, CancelReason, EtcFiles, ExecRequest, ExitOutcome, FakeResult, FakeSandbox, HELPER_ARG,
    LineSplitter, OutputSink, OutputStream, OverlayRootfs, RecordedRequest, Rootfs, Running,
    Sandbox, SandboxError, SandboxHandle, SandboxRequest, Stdio,
};
pub use sandbox::{LinuxSandbox, helper_main, loopback_up};
pub use snapshot::{
    ActiveSnapshot, SNAPSHOTTER_ENV, SnapshotError, SnapshotMode, Snapshotter, copy_merged_dir,
};
pub use user::{ExecUser, UserError, resolve_user, resolve_user_in_rootfs};
