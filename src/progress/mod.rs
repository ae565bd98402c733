//! Progress rendering for `kiln build`: the solver's events drawn as
//! BuildKit draws them — an indicatif display on a terminal, `#N` lines for
//! CI (`plain`), one JSON object per event (`rawjson`), or nothing.
//!
//! A renderer runs on its own thread and reads events from a channel, so
//! the build never waits on the terminal. It keeps the output of every step
//! still running, so when a step fails its whole output can be shown again
//! under the error (the TTY display only shows the last lines while it runs).

mod plain;
mod rawjson;
mod tty;

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Arc;
use std::thread::JoinHandle;

use kiln_solver::{Progress, ProgressEvent, VertexId};
use tokio::sync::mpsc;

/// How progress is shown (`--progress`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProgressMode {
    /// `tty` on a terminal, else `plain`.
    Auto,
    Tty,
    Plain,
    Rawjson,
    Quiet,
}

impl ProgressMode {
    /// `auto` made concrete for stderr.
    pub fn resolve(self) -> ProgressMode {
        match self {
            ProgressMode::Auto if std::io::stderr().is_terminal() => ProgressMode::Tty,
            ProgressMode::Auto => ProgressMode::Plain,
            other => other,
        }
    }
}

/// The most output kept per running step for the failure report.
const MAX_KEPT_OUTPUT: usize = 32 << 20;

/// What a renderer hands back when the build is over.
#[derive(Debug, Default)]
pub struct RenderReport {
    /// The whole output of every step that failed.
    pub failed_output: HashMap<VertexId, Vec<u8>>,
}

/// Output of steps still running (or failed), per vertex, bounded.
#[derive(Debug, Default)]
pub(crate) struct OutputKeeper {
    logs: HashMap<VertexId, (Vec<u8>, usize)>,
}

impl OutputKeeper {
    pub(crate) fn push(&mut self, v: VertexId, data: &[u8]) {
        let (buf, dropped) = self.logs.entry(v).or_default();
        buf.extend_from_slice(data);
        if buf.len() > MAX_KEPT_OUTPUT {
            let cut = buf.len() - MAX_KEPT_OUTPUT;
            buf.drain(..cut);
            *dropped += cut;
        }
    }

    pub(crate) fn forget(&mut self, v: VertexId) {
        self.logs.remove(&v);
    }

    pub(crate) fn take(&mut self, v: VertexId) -> Option<Vec<u8>> {
        self.logs.remove(&v).map(|(buf, dropped)| {
            if dropped == 0 {
                buf
            } else {
                let mut out =
                    format!("[{dropped} bytes of earlier output not kept]\n").into_bytes();
                out.extend_from_slice(&buf);
                out
            }
        })
    }
}

/// A renderer: receives events, draws them.
pub(crate) trait Render {
    fn event(&mut self, ev: &ProgressEvent);
    /// The build is over: finish drawing.
    fn finish(&mut self);
}

/// A running renderer and the progress handle feeding it.
pub struct Renderer {
    pub progress: Progress,
    tx: Option<mpsc::UnboundedSender<ProgressEvent>>,
    thread: Option<JoinHandle<RenderReport>>,
}

impl Renderer {
    /// Starts a renderer in `mode` (already resolved) on its own thread.
    pub fn start(mode: ProgressMode) -> Renderer {
        let (tx, mut rx) = mpsc::unbounded_channel::<ProgressEvent>();
        let progress = Progress::new(Arc::new(tx.clone()));
        let thread = std::thread::Builder::new()
            .name("kiln-progress".into())
            .spawn(move || {
                let mut render: Box<dyn Render> = match mode {
                    ProgressMode::Tty => Box::new(tty::Tty::new()),
                    ProgressMode::Plain | ProgressMode::Auto => {
                        Box::new(plain::Plain::new(std::io::stderr()))
                    }
                    ProgressMode::Rawjson => Box::new(rawjson::RawJson::new(std::io::stderr())),
                    ProgressMode::Quiet => Box::new(Quiet),
                };
                let mut keeper = OutputKeeper::default();
                let mut report = RenderReport::default();
                while let Some(ev) = rx.blocking_recv() {
                    match &ev {
                        ProgressEvent::Log { vertex, data, .. } => keeper.push(*vertex, data),
                        ProgressEvent::Completed { vertex, .. }
                        | ProgressEvent::Cached { vertex, .. } => keeper.forget(*vertex),
                        ProgressEvent::Failed { vertex, .. } => {
                            if let Some(out) = keeper.take(*vertex) {
                                report.failed_output.insert(*vertex, out);
                            }
                        }
                        _ => {}
                    }
                    render.event(&ev);
                }
                render.finish();
                report
            })
            .expect("spawn the progress thread");
        Renderer {
            progress,
            tx: Some(tx),
            thread: Some(thread),
        }
    }

    /// Stops the renderer (after every event sent so far is drawn).
    pub fn finish(mut self) -> RenderReport {
        self.stop()
    }

    fn stop(&mut self) -> RenderReport {
        // The channel closes when every sender is gone: ours, and the
        // progress handle's (the caller drops the solver's clones first).
        self.tx.take();
        self.progress = Progress::null();
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for Renderer {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.stop();
        }
    }
}

struct Quiet;

impl Render for Quiet {
    fn event(&mut self, _ev: &ProgressEvent) {}
    fn finish(&mut self) {}
}

/// Splits chunks of output into lines, per vertex.
#[derive(Debug, Default)]
pub(crate) struct Lines {
    partial: HashMap<VertexId, Vec<u8>>,
}

impl Lines {
    /// The complete lines in `data` (after what was pending), without their
    /// newline.
    pub(crate) fn push(&mut self, v: VertexId, data: &[u8]) -> Vec<String> {
        let buf = self.partial.entry(v).or_default();
        buf.extend_from_slice(data);
        let mut out = Vec::new();
        while let Some(i) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=i).collect();
            let mut s = String::from_utf8_lossy(&line[..line.len() - 1]).into_owned();
            if s.ends_with('\r') {
                s.pop();
            }
            out.push(s);
        }
        out
    }

    /// What is left of `v`'s output without a final newline.
    pub(crate) fn flush(&mut self, v: VertexId) -> Option<String> {
        self.partial
            .remove(&v)
            .filter(|b| !b.is_empty())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_across_chunks() {
        let mut l = Lines::default();
        let v = VertexId(1);
        assert!(l.push(v, b"hel").is_empty());
        assert_eq!(l.push(v, b"lo\nwor"), vec!["hello"]);
        assert_eq!(l.push(v, b"ld\r\n\nx"), vec!["world", ""]);
        assert_eq!(l.flush(v).as_deref(), Some("x"));
        assert_eq!(l.flush(v), None);
    }

    #[test]
    fn kept_output_is_bounded_and_says_so() {
        let mut k = OutputKeeper::default();
        let v = VertexId(1);
        k.push(v, &vec![b'a'; MAX_KEPT_OUTPUT]);
        k.push(v, b"tail");
        let out = k.take(v).unwrap();
        assert!(out.starts_with(b"[4 bytes of earlier output not kept]\n"));
        assert!(out.ends_with(b"tail"));
        assert!(k.take(v).is_none());
    }
}
