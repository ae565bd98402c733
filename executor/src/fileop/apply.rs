//! Writing what a source selected into the destination root, with `cp -a`
//! semantics as BuildKit's copier has them: directories merged, files
//! replaced, symlinks copied as symlinks, hard links within one copy kept,
//! device nodes and FIFOs recreated, sockets turned into empty files,
//! owner/mode/times/xattrs copied or overridden.

use std::collections::HashMap;
use std::fs::{File, Metadata, OpenOptions};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::meta;
use super::select::{Entry, Event, Filters, Match, walk};
use super::{Chmod, CopyStats, FileOpError, Owner};

/// How copied entries get their metadata.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct MetaPolicy<'a> {
    /// Owner of every copied entry; `None` keeps the source's.
    pub(crate) owner: Option<Owner>,
    /// `--chmod` for every copied entry; `None` keeps the source's mode.
    pub(crate) mode: Option<&'a Chmod>,
    /// Timestamp of every copied entry; `None` keeps the source's.
    pub(crate) time: Option<SystemTime>,
}

impl MetaPolicy<'_> {
    fn owner_of(&self, m: &Metadata) -> Owner {
        self.owner.unwrap_or(Owner {
            uid: m.uid(),
            gid: m.gid(),
        })
    }

    /// Applies owner, mode, times and xattrs of `src` (as overridden) to
    /// `dst`.
    pub(crate) fn apply(&self, src: &Path, m: &Metadata, dst: &Path) -> Result<(), FileOpError> {
        meta::chown(dst, self.owner_of(m))?;
        if !m.file_type().is_symlink() {
            let own = m.mode() & 0o7777;
            let mode = self.mode.map_or(own, |c| c.apply(own, m.is_dir()));
            meta::chmod(dst, mode)?;
        }
        meta::copy_xattrs(src, dst)?;
        match self.time {
            Some(t) => meta::set_time(dst, t),
            None => {
                let (a, mt) = meta::source_times(m);
                meta::set_times(dst, a, mt)
            }
        }
    }
}

/// State of one copy operation (one COPY/ADD instruction): hard links seen
/// so far and counters.
pub(crate) struct Copier<'a> {
    pub(crate) policy: MetaPolicy<'a>,
    links: HashMap<(u64, u64), PathBuf>,
    pub(crate) stats: CopyStats,
}

impl<'a> Copier<'a> {
    pub(crate) fn new(policy: MetaPolicy<'a>) -> Copier<'a> {
        Copier {
            policy,
            links: HashMap::new(),
            stats: CopyStats::default(),
        }
    }

    /// Copies everything below `m` that `filters` let through to `target`
    /// (the destination path for the match itself, already resolved inside
    /// the destination root). `shown` is `target` as seen inside the image.
    /// When `m` is a directory, `target` must be a directory already: its
    /// own metadata is left as it is (BuildKit copies a directory's
    /// contents).
    ///
    /// A directory's regular files are copied by a few threads (see
    /// [`copy_threads`]) while this one walks: the walk creates each
    /// directory before handing out its files, in batches of one directory
    /// each (creating entries in one directory serialises on its lock), and
    /// directories get their metadata once every file is in, deepest first,
    /// as a serial copy gives them. Hard-linked files, symlinks and special
    /// files stay on the walking thread, so a link always finds its first
    /// copy.
    pub(crate) fn copy_match(
        &mut self,
        m: &Match,
        filters: &Filters<'_>,
        target: &Path,
        shown: &str,
    ) -> Result<(), FileOpError> {
        let threads = copy_threads();
        if threads <= 1 || !m.meta.is_dir() {
            return self.copy_match_serial(m, filters, target, shown);
        }
        let policy = self.policy;
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<FileJob>>(threads * 2);
        let rx = std::sync::Mutex::new(rx);
        let failed = std::sync::atomic::AtomicBool::new(false);
        let (walked, results, dirs) = std::thread::scope(|s| {
            let workers: Vec<_> = (0..threads)
                .map(|_| s.spawn(|| copy_worker(&policy, &rx, &failed)))
                .collect();
            let mut batch: Vec<FileJob> = Vec::new();
            let mut dirs: Vec<(PathBuf, Metadata, PathBuf)> = Vec::new();
            let flush = |batch: &mut Vec<FileJob>| {
                if !batch.is_empty() {
                    // A send fails only once every worker is gone (a panic):
                    // the join below reports it.
                    let _ = tx.send(std::mem::take(batch));
                }
            };
            let walked = walk(m, filters, &mut |ev| {
                if failed.load(std::sync::atomic::Ordering::Relaxed) {
                    return Err(FileOpError::CopyAborted);
                }
                match ev {
                    Event::EnterDir(e) => {
                        flush(&mut batch);
                        if e.sub.is_empty() {
                            return Ok(());
                        }
                        self.enter_dir(e, &target.join(e.sub_raw), shown)
                    }
                    Event::LeaveDir(e) => {
                        flush(&mut batch);
                        if !e.sub.is_empty() {
                            dirs.push((
                                e.abs.to_path_buf(),
                                e.meta.clone(),
                                target.join(e.sub_raw),
                            ));
                        }
                        Ok(())
                    }
                    Event::Leaf(e) if e.meta.is_file() && e.meta.nlink() == 1 => {
                        batch.push(FileJob {
                            src: e.abs.to_path_buf(),
                            meta: e.meta.clone(),
                            dst: target.join(e.sub_raw),
                            shown: join_shown(shown, e.sub),
                        });
                        if batch.len() >= FILE_BATCH {
                            flush(&mut batch);
                        }
                        Ok(())
                    }
                    Event::Leaf(e) => {
                        let dst = if e.sub.is_empty() {
                            target.to_path_buf()
                        } else {
                            target.join(e.sub_raw)
                        };
                        self.leaf(e, &dst, shown)
                    }
                }
            });
            flush(&mut batch);
            drop(tx);
            let results: Vec<Result<CopyStats, FileOpError>> = workers
                .into_iter()
                .map(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect();
            (walked, results, dirs)
        });
        let mut worker_error = None;
        for r in results {
            match r {
                Ok(stats) => {
                    self.stats.files += stats.files;
                    self.stats.bytes += stats.bytes;
                }
                Err(e) => worker_error = worker_error.or(Some(e)),
            }
        }
        match (walked, worker_error) {
            // a worker's error is the cause of the walk's abort
            (_, Some(e)) | (Err(e), None) => return Err(e),
            (Ok(()), None) => {}
        }
        for (src, meta, dst) in &dirs {
            self.policy.apply(src, meta, dst)?;
        }
        Ok(())
    }

    /// [`Copier::copy_match`] on this thread alone.
    fn copy_match_serial(
        &mut self,
        m: &Match,
        filters: &Filters<'_>,
        target: &Path,
        shown: &str,
    ) -> Result<(), FileOpError> {
        walk(m, filters, &mut |ev| match ev {
            Event::EnterDir(e) => {
                if e.sub.is_empty() {
                    return Ok(());
                }
                self.enter_dir(e, &target.join(e.sub_raw), shown)
            }
            Event::LeaveDir(e) => {
                if e.sub.is_empty() {
                    return Ok(());
                }
                self.policy.apply(e.abs, e.meta, &target.join(e.sub_raw))
            }
            Event::Leaf(e) => {
                let dst = if e.sub.is_empty() {
                    target.to_path_buf()
                } else {
                    target.join(e.sub_raw)
                };
                self.leaf(e, &dst, shown)
            }
        })
    }

    fn enter_dir(&mut self, e: &Entry<'_>, dst: &Path, shown: &str) -> Result<(), FileOpError> {
        match std::fs::symlink_metadata(dst) {
            Ok(d) if d.is_dir() => Ok(()),
            Ok(_) => Err(FileOpError::CopyDirOntoFile {
                path: join_shown(shown, e.sub),
            }),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir(dst).map_err(FileOpError::io("create directory", dst))?;
                self.stats.dirs += 1;
                Ok(())
            }
            Err(err) => Err(FileOpError::io("stat", dst)(err)),
        }
    }

    fn leaf(&mut self, e: &Entry<'_>, dst: &Path, shown: &str) -> Result<(), FileOpError> {
        let shown = join_shown(shown, e.sub);
        if e.meta.file_type().is_socket() {
            // A layer cannot hold a socket: COPY makes it an empty file
            // with the socket's permission bits, as BuildKit does.
            remove_file_target(dst, &shown)?;
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(dst)
                .map_err(FileOpError::io("create", dst))?;
            self.stats.files += 1;
            return self.policy.apply(e.abs, e.meta, dst);
        }
        self.copy_leaf(e.abs, e.meta, dst, &shown)
    }

    /// Copies the non-directory `src` (metadata `meta`) to `dst` (shown
    /// as `shown` in errors), replacing a file there, keeping hard links
    /// among what this copier copied, then applies the metadata policy.
    pub(crate) fn copy_leaf(
        &mut self,
        src: &Path,
        meta: &Metadata,
        dst: &Path,
        shown: &str,
    ) -> Result<(), FileOpError> {
        remove_file_target(dst, shown)?;
        let ft = meta.file_type();
        if ft.is_file() {
            if meta.nlink() > 1 {
                let key = (meta.dev(), meta.ino());
                if let Some(first) = self.links.get(&key) {
                    std::fs::hard_link(first, dst)
                        .map_err(FileOpError::io("create hard link", dst))?;
                    self.stats.files += 1;
                    return Ok(());
                }
                self.links.insert(key, dst.to_path_buf());
            }
            self.stats.bytes += copy_file_data(src, dst)?;
            self.stats.files += 1;
        } else if ft.is_symlink() {
            let target = std::fs::read_link(src).map_err(FileOpError::io("read link", src))?;
            std::os::unix::fs::symlink(&target, dst)
                .map_err(FileOpError::io("create symlink", dst))?;
            self.stats.files += 1;
        } else {
            meta::make_special(dst, meta)?;
            self.stats.files += 1;
        }
        self.policy.apply(src, meta, dst)
    }
}

/// Regular files handed to a copying thread at once (all from one
/// directory).
const FILE_BATCH: usize = 32;

/// Threads copying file data in [`Copier::copy_match`]: the core count, at
/// most 4 (past that the disk, not the CPU, sets the pace).
fn copy_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(4)
}

/// One regular file (not hard-linked) to copy.
struct FileJob {
    src: PathBuf,
    meta: Metadata,
    dst: PathBuf,
    shown: String,
}

/// A copying thread: takes batches until the walk is over. After an error
/// it keeps draining (so the walk never waits on a full queue) without
/// copying, and returns the error.
fn copy_worker(
    policy: &MetaPolicy<'_>,
    rx: &std::sync::Mutex<std::sync::mpsc::Receiver<Vec<FileJob>>>,
    failed: &std::sync::atomic::AtomicBool,
) -> Result<CopyStats, FileOpError> {
    let mut stats = CopyStats::default();
    let mut error = None;
    loop {
        let next = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
        let Ok(batch) = next else {
            return error.map_or(Ok(stats), Err);
        };
        if error.is_some() || failed.load(std::sync::atomic::Ordering::Relaxed) {
            continue;
        }
        for job in &batch {
            let copied = remove_file_target(&job.dst, &job.shown)
                .and_then(|()| copy_file_data(&job.src, &job.dst))
                .and_then(|bytes| {
                    policy.apply(&job.src, &job.meta, &job.dst)?;
                    Ok(bytes)
                });
            match copied {
                Ok(bytes) => {
                    stats.files += 1;
                    stats.bytes += bytes;
                }
                Err(e) => {
                    failed.store(true, std::sync::atomic::Ordering::Relaxed);
                    error = Some(e);
                    break;
                }
            }
        }
    }
}

fn join_shown(shown: &str, sub: &str) -> String {
    if sub.is_empty() {
        shown.to_owned()
    } else if shown.ends_with('/') {
        format!("{shown}{sub}")
    } else {
        format!("{shown}/{sub}")
    }
}

/// Makes room for a file at `dst`: an existing file or symlink is removed
/// (never followed); a directory is an error.
pub(crate) fn remove_file_target(dst: &Path, shown: &str) -> Result<(), FileOpError> {
    match std::fs::symlink_metadata(dst) {
        Ok(m) if m.is_dir() => Err(FileOpError::ReplaceDirWithFile {
            path: shown.to_owned(),
        }),
        Ok(_) => std::fs::remove_file(dst).map_err(FileOpError::io("remove", dst)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(FileOpError::io("stat", dst)(e)),
    }
}

/// Streams a regular file's bytes into a new file (`copy_file_range` where
/// the kernel offers it). Returns the byte count.
pub(crate) fn copy_file_data(src: &Path, dst: &Path) -> Result<u64, FileOpError> {
    let mut from = File::open(src).map_err(FileOpError::io("open", src))?;
    let mut to = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(dst)
        .map_err(FileOpError::io("create", dst))?;
    std::io::copy(&mut from, &mut to).map_err(FileOpError::io("copy to", dst))
}
