//! Progress events: what the solver (and the worker, through [`OpContext`])
//! reports while it builds. Rendering is the CLI's business.
//!
//! Every event names a vertex by a [`VertexId`] handed out by [`Progress`];
//! a renderer numbers vertices (`#1`, `#2`, …) in the order they first
//! appear. Times are wall-clock, so a JSON renderer can show when each step
//! started and finished.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

/// Identifies one vertex (one step) in progress events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct VertexId(pub u64);

/// Which output stream a log chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogStream {
    Stdout,
    Stderr,
}

/// One progress event.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ProgressEvent {
    /// A vertex started working.
    Started {
        vertex: VertexId,
        name: String,
        #[serde(serialize_with = "ser_time")]
        time: SystemTime,
    },
    /// A vertex's result came from the cache.
    Cached {
        vertex: VertexId,
        name: String,
        #[serde(serialize_with = "ser_time")]
        time: SystemTime,
    },
    /// Output of a running vertex (a chunk, not necessarily whole lines).
    Log {
        vertex: VertexId,
        stream: LogStream,
        #[serde(serialize_with = "ser_lossy")]
        data: Vec<u8>,
        #[serde(serialize_with = "ser_time")]
        time: SystemTime,
    },
    /// A short status line of a running vertex (`writing image sha256:…`).
    Status {
        vertex: VertexId,
        text: String,
        #[serde(serialize_with = "ser_time")]
        time: SystemTime,
    },
    /// A vertex finished successfully.
    Completed {
        vertex: VertexId,
        #[serde(serialize_with = "ser_time")]
        time: SystemTime,
    },
    /// A vertex failed.
    Failed {
        vertex: VertexId,
        error: String,
        #[serde(serialize_with = "ser_time")]
        time: SystemTime,
    },
}

impl ProgressEvent {
    pub fn vertex(&self) -> VertexId {
        match self {
            ProgressEvent::Started { vertex, .. }
            | ProgressEvent::Cached { vertex, .. }
            | ProgressEvent::Log { vertex, .. }
            | ProgressEvent::Status { vertex, .. }
            | ProgressEvent::Completed { vertex, .. }
            | ProgressEvent::Failed { vertex, .. } => *vertex,
        }
    }
}

fn ser_time<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    s.serialize_f64(secs)
}

fn ser_lossy<S: serde::Serializer>(d: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&String::from_utf8_lossy(d))
}

/// Receives progress events. Implementations must be cheap and must not
/// block (forward to a channel).
pub trait ProgressSink: Send + Sync {
    fn emit(&self, event: ProgressEvent);
}

/// A sink that drops everything.
#[derive(Debug, Default)]
pub struct NullSink;

impl ProgressSink for NullSink {
    fn emit(&self, _event: ProgressEvent) {}
}

impl ProgressSink for tokio::sync::mpsc::UnboundedSender<ProgressEvent> {
    fn emit(&self, event: ProgressEvent) {
        let _ = self.send(event);
    }
}

/// The progress handle shared by the solver, the worker and the CLI: a sink
/// and the allocator of vertex ids.
#[derive(Clone)]
pub struct Progress {
    sink: Arc<dyn ProgressSink>,
    next: Arc<AtomicU64>,
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Progress").finish_non_exhaustive()
    }
}

impl Progress {
    pub fn new(sink: Arc<dyn ProgressSink>) -> Progress {
        Progress {
            sink,
            next: Arc::new(AtomicU64::new(1)),
        }
    }

    /// A handle that reports nothing.
    pub fn null() -> Progress {
        Progress::new(Arc::new(NullSink))
    }

    /// A new vertex id.
    pub fn vertex(&self) -> VertexId {
        VertexId(self.next.fetch_add(1, Ordering::Relaxed))
    }

    pub fn emit(&self, event: ProgressEvent) {
        self.sink.emit(event);
    }

    pub fn started(&self, vertex: VertexId, name: &str) {
        self.emit(ProgressEvent::Started {
            vertex,
            name: name.to_string(),
            time: SystemTime::now(),
        });
    }

    pub fn cached(&self, vertex: VertexId, name: &str) {
        self.emit(ProgressEvent::Cached {
            vertex,
            name: name.to_string(),
            time: SystemTime::now(),
        });
    }

    pub fn completed(&self, vertex: VertexId) {
        self.emit(ProgressEvent::Completed {
            vertex,
            time: SystemTime::now(),
        });
    }

    pub fn failed(&self, vertex: VertexId, error: &str) {
        self.emit(ProgressEvent::Failed {
            vertex,
            error: error.to_string(),
            time: SystemTime::now(),
        });
    }

    pub fn status(&self, vertex: VertexId, text: &str) {
        self.emit(ProgressEvent::Status {
            vertex,
            text: text.to_string(),
            time: SystemTime::now(),
        });
    }

    pub fn log(&self, vertex: VertexId, stream: LogStream, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        self.emit(ProgressEvent::Log {
            vertex,
            stream,
            data: data.to_vec(),
            time: SystemTime::now(),
        });
    }
}

/// What a worker call gets besides its request: where its output goes, and
/// whether the build was cancelled.
#[derive(Debug, Clone)]
pub struct OpContext {
    pub progress: Progress,
    pub vertex: VertexId,
    pub cancel: CancellationToken,
}

impl OpContext {
    pub fn new(progress: Progress, vertex: VertexId, cancel: CancellationToken) -> OpContext {
        OpContext {
            progress,
            vertex,
            cancel,
        }
    }

    /// Reports output of this step.
    pub fn log(&self, stream: LogStream, data: &[u8]) {
        self.progress.log(self.vertex, stream, data);
    }

    /// Reports a status line of this step.
    pub fn status(&self, text: &str) {
        self.progress.status(self.vertex, text);
    }

    /// A `std::io::Write` that reports what is written as output of this step.
    pub fn writer(&self, stream: LogStream) -> LogWriter {
        LogWriter {
            ctx: self.clone(),
            stream,
        }
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }
}

/// See [`OpContext::writer`].
#[derive(Debug)]
pub struct LogWriter {
    ctx: OpContext,
    stream: LogStream,
}

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.ctx.log(self.stream, buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Collect(Mutex<Vec<ProgressEvent>>);
    impl ProgressSink for Collect {
        fn emit(&self, event: ProgressEvent) {
            self.0.lock().unwrap().push(event);
        }
    }

    #[test]
    fn vertex_ids_are_unique_and_events_reach_the_sink() {
        let sink = Arc::new(Collect::default());
        let p = Progress::new(sink.clone());
        let a = p.vertex();
        let b = p.clone().vertex();
        assert_ne!(a, b);
        p.started(a, "RUN true");
        let ctx = OpContext::new(p.clone(), a, CancellationToken::new());
        use std::io::Write;
        writeln!(ctx.writer(LogStream::Stdout), "hello").unwrap();
        p.completed(a);
        let events = sink.0.lock().unwrap();
        assert_eq!(events.len(), 3);
        assert!(matches!(&events[1], ProgressEvent::Log { data, .. } if data == b"hello\n"));
        let json = serde_json::to_value(&events[0]).unwrap();
        assert_eq!(json["event"], "started");
        assert_eq!(json["name"], "RUN true");
    }
}
