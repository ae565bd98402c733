//! `--progress plain`: BuildKit's line format for CI logs.
//!
//! ```text
//! #3 [2/3] RUN make
//! #3 0.412 cc -o app main.c
//! #3 DONE 1.2s
//!
//! #4 [3/3] COPY app /usr/bin/
//! #4 CACHED
//! ```
//! Vertices are numbered in the order they first appear; a blank line
//! separates the lines of different vertices; output lines carry the seconds
//! since their step started.

use std::collections::HashMap;
use std::io::Write;
use std::time::SystemTime;

use kiln_solver::{ProgressEvent, VertexId};

use super::{Lines, Render};

pub(crate) struct Plain<W: Write> {
    out: W,
    numbers: HashMap<VertexId, (usize, SystemTime, String)>,
    next: usize,
    last: Option<VertexId>,
    lines: Lines,
}

impl<W: Write> Plain<W> {
    pub(crate) fn new(out: W) -> Plain<W> {
        Plain {
            out,
            numbers: HashMap::new(),
            next: 1,
            last: None,
            lines: Lines::default(),
        }
    }

    /// The vertex's number; prints its header when it is new or when other
    /// vertices printed since.
    fn switch(&mut self, v: VertexId, name: Option<&str>, time: SystemTime) -> usize {
        let known = self.numbers.contains_key(&v);
        if !known {
            let n = self.next;
            self.next += 1;
            self.numbers
                .insert(v, (n, time, name.unwrap_or_default().to_string()));
        }
        let (n, _, vname) = self.numbers[&v].clone();
        if self.last != Some(v) {
            if self.last.is_some() {
                let _ = writeln!(self.out);
            }
            self.last = Some(v);
            if !vname.is_empty() {
                let _ = writeln!(self.out, "#{n} {vname}");
            }
        }
        n
    }

    fn elapsed(&self, v: VertexId, now: SystemTime) -> f64 {
        self.numbers
            .get(&v)
            .and_then(|(_, start, _)| now.duration_since(*start).ok())
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0)
    }

    fn flush_partial(&mut self, v: VertexId, n: usize, now: SystemTime) {
        if let Some(rest) = self.lines.flush(v) {
            let t = self.elapsed(v, now);
            let _ = writeln!(self.out, "#{n} {t:.3} {rest}");
        }
    }
}

impl<W: Write> Render for Plain<W> {
    fn event(&mut self, ev: &ProgressEvent) {
        match ev {
            ProgressEvent::Started { vertex, name, time } => {
                // A vertex is started once; re-announce it only if it was
                // seen as something else before.
                self.numbers.remove(vertex);
                self.switch(*vertex, Some(name), *time);
            }
            ProgressEvent::Cached { vertex, name, time } => {
                let n = self.switch(*vertex, Some(name), *time);
                let _ = writeln!(self.out, "#{n} CACHED");
            }
            ProgressEvent::Log {
                vertex, data, time, ..
            } => {
                let lines = self.lines.push(*vertex, data);
                if lines.is_empty() {
                    return;
                }
                let n = self.switch(*vertex, None, *time);
                let t = self.elapsed(*vertex, *time);
                for line in lines {
                    let _ = writeln!(self.out, "#{n} {t:.3} {line}");
                }
            }
            ProgressEvent::Status { vertex, text, time } => {
                let n = self.switch(*vertex, None, *time);
                let _ = writeln!(self.out, "#{n} {text}");
            }
            ProgressEvent::Completed { vertex, time } => {
                let n = self.switch(*vertex, None, *time);
                self.flush_partial(*vertex, n, *time);
                let t = self.elapsed(*vertex, *time);
                let _ = writeln!(self.out, "#{n} DONE {t:.1}s");
            }
            ProgressEvent::Failed {
                vertex,
                error,
                time,
            } => {
                let n = self.switch(*vertex, None, *time);
                self.flush_partial(*vertex, n, *time);
                if error == "cancelled" {
                    let _ = writeln!(self.out, "#{n} CANCELED");
                } else {
                    let _ = writeln!(self.out, "#{n} ERROR: {error}");
                }
            }
        }
        let _ = self.out.flush();
    }

    fn finish(&mut self) {
        if self.last.is_some() {
            let _ = writeln!(self.out);
        }
        let _ = self.out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_solver::LogStream;
    use std::time::Duration;

    #[test]
    fn buildkit_plain_format() {
        let mut buf = Vec::new();
        {
            let mut p = Plain::new(&mut buf);
            let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(100);
            let a = VertexId(7);
            let b = VertexId(9);
            p.event(&ProgressEvent::Cached {
                vertex: b,
                name: "[1/2] FROM base".into(),
                time: t0,
            });
            p.event(&ProgressEvent::Started {
                vertex: a,
                name: "[2/2] RUN make".into(),
                time: t0,
            });
            p.event(&ProgressEvent::Log {
                vertex: a,
                stream: LogStream::Stdout,
                data: b"one\ntw".to_vec(),
                time: t0 + Duration::from_millis(250),
            });
            p.event(&ProgressEvent::Log {
                vertex: a,
                stream: LogStream::Stdout,
                data: b"o\n".to_vec(),
                time: t0 + Duration::from_millis(500),
            });
            p.event(&ProgressEvent::Completed {
                vertex: a,
                time: t0 + Duration::from_millis(1340),
            });
            p.finish();
        }
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "#1 [1/2] FROM base\n#1 CACHED\n\n#2 [2/2] RUN make\n#2 0.250 one\n#2 0.500 two\n#2 DONE 1.3s\n\n"
        );
    }

    #[test]
    fn failures_and_cancellations() {
        let mut buf = Vec::new();
        {
            let mut p = Plain::new(&mut buf);
            let t0 = SystemTime::UNIX_EPOCH;
            for (v, name) in [(VertexId(1), "RUN a"), (VertexId(2), "RUN b")] {
                p.event(&ProgressEvent::Started {
                    vertex: v,
                    name: name.into(),
                    time: t0,
                });
            }
            p.event(&ProgressEvent::Log {
                vertex: VertexId(1),
                stream: LogStream::Stderr,
                data: b"no newline".to_vec(),
                time: t0,
            });
            p.event(&ProgressEvent::Failed {
                vertex: VertexId(1),
                error: "exit code: 2".into(),
                time: t0,
            });
            p.event(&ProgressEvent::Failed {
                vertex: VertexId(2),
                error: "cancelled".into(),
                time: t0,
            });
        }
        let s = String::from_utf8(buf).unwrap();
        assert!(
            s.contains("#1 RUN a\n#1 0.000 no newline\n#1 ERROR: exit code: 2\n"),
            "{s}"
        );
        assert!(s.contains("#2 RUN b\n#2 CANCELED\n"), "{s}");
    }
}
