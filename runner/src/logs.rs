//! Container logs in docker's json-file format: one JSON object per line,
//! `{"log":"hello\n","stream":"stdout","time":"…"}`, appended by the
//! supervisor of a detached container; `kiln logs` reads them back (the
//! last N with `--tail`, found by scanning backwards, and following new
//! ones with `-f` until the container stops), stdout records to stdout and
//! stderr records to stderr.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

/// A line longer than this is recorded in pieces (docker's 16 KiB).
pub const MAX_RECORD: usize = 16 * 1024;

/// Which stream a record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogStream {
    Stdout,
    Stderr,
}

/// One record of the log file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogRecord {
    /// The bytes, with their newline when the line had one.
    pub log: String,
    pub stream: LogStream,
    pub time: DateTime<Utc>,
}

/// Appends records to a container's log file; shared by the copiers of
/// stdout and stderr.
#[derive(Clone)]
pub struct LogWriter {
    file: Arc<Mutex<File>>,
}

impl LogWriter {
    /// Opens (creating) the log file for appending.
    pub fn open(path: &Path) -> io::Result<LogWriter> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(LogWriter {
            file: Arc::new(Mutex::new(file)),
        })
    }

    /// Writes one record (one `write` call, so readers never see half).
    pub fn write(&self, stream: LogStream, bytes: &[u8]) -> io::Result<()> {
        let record = LogRecord {
            log: String::from_utf8_lossy(bytes).into_owned(),
            stream,
            time: Utc::now(),
        };
        let mut line = serde_json::to_vec(&record).map_err(io::Error::other)?;
        line.push(b'\n');
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        file.write_all(&line)
    }

    /// Copies `source` into records until it ends (EOF, or EIO from a
    /// terminal whose other side closed): one record per line, long lines
    /// cut at [`MAX_RECORD`], a last line without newline as it is.
    pub fn copy_from(&self, stream: LogStream, mut source: impl Read) -> io::Result<()> {
        let mut pending: Vec<u8> = Vec::new();
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let n = match source.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // A pty master reads EIO once the last slave fd closed.
                Err(e) if e.raw_os_error() == Some(libc::EIO) => break,
                Err(e) => return Err(e),
            };
            pending.extend_from_slice(&buf[..n]);
            let mut start = 0;
            while let Some(pos) = pending[start..].iter().position(|&b| b == b'\n') {
                let end = start + pos + 1;
                for piece in pending[start..end].chunks(MAX_RECORD) {
                    self.write(stream, piece)?;
                }
                start = end;
            }
            pending.drain(..start);
            while pending.len() >= MAX_RECORD {
                self.write(stream, &pending[..MAX_RECORD])?;
                pending.drain(..MAX_RECORD);
            }
        }
        if !pending.is_empty() {
            self.write(stream, &pending)?;
        }
        Ok(())
    }
}

/// What `kiln logs` prints.
#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    /// Only the last N records.
    pub tail: Option<usize>,
    /// Keep printing new records until the container stops.
    pub follow: bool,
    /// Prefix each line with its time.
    pub timestamps: bool,
}

/// The offset where the last `n` lines of `file` begin, found by reading
/// backwards in blocks (bounded memory whatever the file's size).
pub(crate) fn tail_offset(file: &mut File, n: usize) -> io::Result<u64> {
    let len = file.seek(SeekFrom::End(0))?;
    if n == 0 {
        return Ok(len);
    }
    let mut pos = len;
    let mut newlines = 0usize;
    let mut buf = vec![0u8; 64 * 1024];
    // The file ends with a newline: that one closes the last line.
    let mut skip_last = true;
    while pos > 0 {
        let step = (pos as usize).min(buf.len());
        pos -= step as u64;
        file.seek(SeekFrom::Start(pos))?;
        file.read_exact(&mut buf[..step])?;
        for i in (0..step).rev() {
            if buf[i] == b'\n' {
                if skip_last && pos + i as u64 + 1 == len {
                    skip_last = false;
                    continue;
                }
                skip_last = false;
                newlines += 1;
                if newlines == n {
                    return Ok(pos + i as u64 + 1);
                }
            }
        }
    }
    Ok(0)
}

fn emit(
    line: &[u8],
    opts: &LogOptions,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> io::Result<()> {
    let Ok(record) = serde_json::from_slice::<LogRecord>(line) else {
        // A damaged line (disk full, crash mid-write): skip it.
        return Ok(());
    };
    let out: &mut dyn Write = match record.stream {
        LogStream::Stdout => stdout,
        LogStream::Stderr => stderr,
    };
    if opts.timestamps {
        write!(
            out,
            "{} ",
            record.time.to_rfc3339_opts(SecondsFormat::Nanos, true)
        )?;
    }
    out.write_all(record.log.as_bytes())?;
    out.flush()
}

/// Prints a container's log. `running` tells whether more may come (for
/// `follow`); it is checked before the last read, so nothing written
/// before the container stopped is missed.
pub fn print_logs(
    path: &Path,
    opts: &LogOptions,
    running: &mut dyn FnMut() -> bool,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> io::Result<()> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if !opts.follow {
                return Ok(());
            }
            // Not written yet: wait for it while the container runs.
            loop {
                if !running() {
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(100));
                if let Ok(f) = File::open(path) {
                    break f;
                }
            }
        }
        Err(e) => return Err(e),
    };
    let start = match opts.tail {
        Some(n) => tail_offset(&mut file, n)?,
        None => 0,
    };
    file.seek(SeekFrom::Start(start))?;
    let mut reader = BufReader::new(file);
    let mut partial: Vec<u8> = Vec::new();
    loop {
        let was_running = opts.follow && running();
        loop {
            let n = reader.read_until(b'\n', &mut partial)?;
            if n == 0 {
                break;
            }
            if partial.ends_with(b"\n") {
                emit(&partial, opts, stdout, stderr)?;
                partial.clear();
            }
        }
        if !was_running {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(path: &Path, opts: &LogOptions) -> (String, String) {
        let mut out = Vec::new();
        let mut err = Vec::new();
        print_logs(path, opts, &mut || false, &mut out, &mut err).unwrap();
        (
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    #[test]
    fn streams_are_kept_apart_and_bytes_exact() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let w = LogWriter::open(&path).unwrap();
        w.copy_from(LogStream::Stdout, &b"one\ntwo\nno newline"[..])
            .unwrap();
        w.copy_from(LogStream::Stderr, &b"oops\n"[..]).unwrap();
        let (out, err) = read_all(&path, &LogOptions::default());
        assert_eq!(out, "one\ntwo\nno newline");
        assert_eq!(err, "oops\n");
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 4);
        assert!(text.starts_with("{\"log\":\"one\\n\",\"stream\":\"stdout\",\"time\":\""));
    }

    #[test]
    fn long_lines_are_cut() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let w = LogWriter::open(&path).unwrap();
        let long = "x".repeat(MAX_RECORD * 2 + 10) + "\n";
        w.copy_from(LogStream::Stdout, long.as_bytes()).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 3);
        assert_eq!(read_all(&path, &LogOptions::default()).0, long);
    }

    #[test]
    fn tail_counts_records_from_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let w = LogWriter::open(&path).unwrap();
        let text: String = (1..=1000).map(|i| format!("line {i}\n")).collect();
        w.copy_from(LogStream::Stdout, text.as_bytes()).unwrap();
        let tail = |n| {
            read_all(
                &path,
                &LogOptions {
                    tail: Some(n),
                    ..LogOptions::default()
                },
            )
            .0
        };
        assert_eq!(tail(2), "line 999\nline 1000\n");
        assert_eq!(tail(0), "");
        assert_eq!(tail(5000), text);
        assert_eq!(tail(1000), text);
    }

    #[test]
    fn timestamps_prefix_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        LogWriter::open(&path)
            .unwrap()
            .write(LogStream::Stdout, b"hi\n")
            .unwrap();
        let (out, _) = read_all(
            &path,
            &LogOptions {
                timestamps: true,
                ..LogOptions::default()
            },
        );
        let (time, rest) = out.split_once(' ').unwrap();
        assert!(time.ends_with('Z') && time.contains('T'), "{out}");
        assert_eq!(rest, "hi\n");
    }

    #[test]
    fn follow_reads_until_the_container_stops() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let w = LogWriter::open(&path).unwrap();
        w.write(LogStream::Stdout, b"first\n").unwrap();
        let writer = std::thread::spawn({
            let w = w.clone();
            move || {
                std::thread::sleep(Duration::from_millis(150));
                w.write(LogStream::Stdout, b"second\n").unwrap();
            }
        });
        let started = std::time::Instant::now();
        let mut out = Vec::new();
        let mut checks = 0;
        print_logs(
            &path,
            &LogOptions {
                follow: true,
                ..LogOptions::default()
            },
            &mut || {
                checks += 1;
                started.elapsed() < Duration::from_millis(400)
            },
            &mut out,
            &mut Vec::new(),
        )
        .unwrap();
        writer.join().unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "first\nsecond\n");
        assert!(checks > 1);
    }

    #[test]
    fn missing_log_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let (out, err) = read_all(&dir.path().join("nope"), &LogOptions::default());
        assert!(out.is_empty() && err.is_empty());
    }
}
