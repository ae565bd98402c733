//! Pull and push progress as status lines of the step that does them
//! (`pulling sha256:… 2.1MB done`), the way BuildKit reports layer
//! transfers in its plain output.

use kiln_registry::remote::{BlobOutcome, TransferEvent, TransferProgress};
use kiln_solver::OpContext;

/// Turns transfer events into status lines of one step.
pub struct StatusReporter {
    ctx: OpContext,
}

impl StatusReporter {
    pub fn new(ctx: OpContext) -> StatusReporter {
        StatusReporter { ctx }
    }
}

fn short(d: &oci_spec::image::Digest) -> String {
    format!(
        "{}:{}",
        d.algorithm(),
        &d.digest()[..12.min(d.digest().len())]
    )
}

impl TransferProgress for StatusReporter {
    fn event(&self, event: TransferEvent) {
        let line = match event {
            TransferEvent::Resolved { reference, digest } => {
                format!("resolve {reference}@{digest} done")
            }
            TransferEvent::Compressing { diff_id } => format!("compressing {}", short(&diff_id)),
            TransferEvent::BlobFinished { digest, outcome } => {
                let what = match outcome {
                    BlobOutcome::Downloaded => "downloaded",
                    BlobOutcome::AlreadyPresent => "already present",
                    BlobOutcome::Uploaded => "pushed",
                    BlobOutcome::AlreadyExists => "already exists",
                    BlobOutcome::Mounted { .. } => "mounted",
                };
                format!("{} {what}", short(&digest))
            }
            TransferEvent::BlobStarted { .. } | TransferEvent::BlobProgress { .. } => return,
        };
        self.ctx.status(&line);
    }
}
