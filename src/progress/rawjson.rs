//! `--progress rawjson`: one JSON object per event, one per line, with
//! wall-clock times (seconds since the epoch) so tools can tell when each
//! step started and finished.

use std::io::Write;

use kiln_solver::ProgressEvent;

use super::Render;

pub(crate) struct RawJson<W: Write> {
    out: W,
}

impl<W: Write> RawJson<W> {
    pub(crate) fn new(out: W) -> RawJson<W> {
        RawJson { out }
    }
}

impl<W: Write> Render for RawJson<W> {
    fn event(&mut self, ev: &ProgressEvent) {
        if let Ok(line) = serde_json::to_string(ev) {
            let _ = writeln!(self.out, "{line}");
            let _ = self.out.flush();
        }
    }

    fn finish(&mut self) {
        let _ = self.out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_solver::VertexId;
    use std::time::{Duration, SystemTime};

    #[test]
    fn one_object_per_line() {
        let mut buf = Vec::new();
        let mut r = RawJson::new(&mut buf);
        r.event(&ProgressEvent::Started {
            vertex: VertexId(3),
            name: "[1/2] RUN x".into(),
            time: SystemTime::UNIX_EPOCH + Duration::from_millis(1500),
        });
        r.event(&ProgressEvent::Completed {
            vertex: VertexId(3),
            time: SystemTime::UNIX_EPOCH + Duration::from_secs(2),
        });
        let s = String::from_utf8(buf).unwrap();
        let lines: Vec<serde_json::Value> = s
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[0]["event"], "started");
        assert_eq!(lines[0]["vertex"], 3);
        assert_eq!(lines[0]["time"], 1.5);
        assert_eq!(lines[1]["event"], "completed");
    }
}
