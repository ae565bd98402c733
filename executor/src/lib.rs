//! kiln-executor: running things and capturing what they change.
//!
//! Owns the sandbox (namespaces, mounts, pivot_root, cgroups v1/v2/hybrid
//! behind one trait, capabilities, the process tree), snapshots (overlay
//! stacks of unpacked layers), diffs turned into layer blobs (tar,
//! whiteouts, digests) and the user/group resolution docker applies to
//! `USER` and `COPY --chown`. Depends on kiln-registry for the store.
//!
//! - [`sandbox`]: the [`Sandbox`] trait, its request and outcome types, the
//!   real `LinuxSandbox` and the [`FakeSandbox`] for unit tests.
//! - [`spec`]: docker's defaults as an OCI runtime spec.
//! - [`user`]: `USER` resolution against an image's `/etc/passwd`.

mod confined;
mod proc;
pub mod sandbox;
pub mod spec;
pub mod user;

pub use confined::resolve_in_root;
pub use sandbox::{
    Cancel, CancelReason, EtcFiles, ExecRequest, ExitOutcome, FakeResult, FakeSandbox, HELPER_ARG,
    LineSplitter, OutputSink, OutputStream, OverlayRootfs, RecordedRequest, Rootfs, Running,
    Sandbox, SandboxError, SandboxHandle, SandboxRequest, Stdio,
};
pub use user::{ExecUser, UserError, resolve_user, resolve_user_in_rootfs};
