//! Progress of `kiln pull` / `kiln push` for humans: one indicatif bar per
//! blob when stderr is a terminal, one plain line per finished blob
//! otherwise (CI logs), nothing with `--quiet`.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{HumanBytes, MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use kiln_registry::remote::{BlobOutcome, BlobRole, TransferEvent, TransferProgress};
use oci_spec::image::Digest;

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    /// Bars on a terminal, else plain lines.
    Auto,
    Tty,
    Plain,
    Quiet,
}

impl ProgressMode {
    fn resolve(self) -> ProgressMode {
        match self {
            ProgressMode::Auto if std::io::stderr().is_terminal() => ProgressMode::Tty,
            ProgressMode::Auto => ProgressMode::Plain,
            other => other,
        }
    }
}

/// Renders [`TransferEvent`]s on stderr.
pub struct TransferRenderer {
    mode: ProgressMode,
    multi: MultiProgress,
    bars: Mutex<HashMap<Digest, (ProgressBar, u64, BlobRole)>>,
}

fn short(d: &Digest) -> String {
    d.digest().chars().take(12).collect()
}

fn outcome_text(outcome: &BlobOutcome) -> String {
    match outcome {
        BlobOutcome::Downloaded => "Pull complete".into(),
        BlobOutcome::AlreadyPresent => "Already exists".into(),
        BlobOutcome::Uploaded => "Pushed".into(),
        BlobOutcome::AlreadyExists => "Layer already exists".into(),
        BlobOutcome::Mounted { from } => format!("Mounted from {from}"),
    }
}

impl TransferRenderer {
    pub fn new(mode: ProgressMode) -> TransferRenderer {
        let mode = mode.resolve();
        let multi = MultiProgress::with_draw_target(if mode == ProgressMode::Tty {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        });
        TransferRenderer {
            mode,
            multi,
            bars: Mutex::new(HashMap::new()),
        }
    }

    /// A line above the bars (or a plain line).
    pub fn line(&self, text: &str) {
        match self.mode {
            ProgressMode::Tty => {
                let _ = self.multi.println(text);
            }
            ProgressMode::Plain => eprintln!("{text}"),
            _ => {}
        }
    }

    /// Clears the bars (call when done).
    pub fn finish(&self) {
        let _ = self.multi.clear();
    }
}

impl TransferProgress for TransferRenderer {
    fn event(&self, event: TransferEvent) {
        if self.mode == ProgressMode::Quiet {
            return;
        }
        let mut bars = self.bars.lock().unwrap_or_else(|e| e.into_inner());
        match event {
            TransferEvent::Resolved { .. } => {}
            TransferEvent::Compressing { diff_id } => {
                self.line(&format!("{}: Compressing", short(&diff_id)));
            }
            TransferEvent::BlobStarted { digest, size, role } => {
                let bar = if self.mode == ProgressMode::Tty {
                    let bar = self.multi.add(ProgressBar::new(size));
                    bar.set_style(
                        ProgressStyle::with_template(
                            "{prefix}: {msg:<14} [{bar:30}] {bytes}/{total_bytes}",
                        )
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> "),
                    );
                    bar.set_prefix(short(&digest));
                    bar.set_message("Waiting");
                    bar.enable_steady_tick(Duration::from_millis(200));
                    bar
                } else {
                    ProgressBar::hidden()
                };
                bars.insert(digest, (bar, size, role));
            }
            TransferEvent::BlobProgress { digest, done } => {
                if let Some((bar, _, _)) = bars.get(&digest) {
                    bar.set_message("Transferring");
                    bar.set_position(done);
                }
            }
            TransferEvent::BlobFinished { digest, outcome } => {
                let text = outcome_text(&outcome);
                if let Some((bar, size, role)) = bars.get(&digest) {
                    match self.mode {
                        ProgressMode::Tty => {
                            bar.set_position(*size);
                            bar.finish_with_message(text);
                        }
                        _ => {
                            let what = match role {
                                BlobRole::Config => ", config",
                                BlobRole::Layer => "",
                            };
                            eprintln!("{}: {text} ({}{what})", short(&digest), HumanBytes(*size));
                        }
                    }
                }
            }
        }
    }
}
