//! Measures context checksumming and copying of a directory, the way a
//! `COPY <dir> /dest/` step does it: cold (empty file-hash cache), warm
//! (cache filled, one stat per file), and the copy into an empty rootfs.
//!
//! `cargo run --release -p kiln-executor --example context_hash -- DIR [SCRATCH]`
//! (see bench/context-hash.sh, which builds bigcopy's context first).

use std::path::PathBuf;
use std::time::Instant;

use kiln_executor::{
    CopyOptions, CopyRequest, FileHashCache, Source, SourceTree, TreeKind, checksum, copy,
};

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next().map(PathBuf::from) else {
        eprintln!("usage: context_hash DIR [SCRATCH]");
        std::process::exit(2);
    };
    let scratch = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("kiln-context-hash"));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).expect("create scratch dir");
    let sources = [Source::Path(".".into())];
    let req = CopyRequest {
        tree: SourceTree {
            root: &dir,
            kind: TreeKind::Context,
            ignore: None,
        },
        sources: &sources,
        dest: "/app/src/",
        workdir: "/",
        options: CopyOptions::copy(),
    };
    let kiln_root = scratch.join("root");
    let cache = FileHashCache::open(&kiln_root).expect("open cache");
    let t = Instant::now();
    let cold = checksum(&req, &cache).expect("checksum");
    let cold_t = t.elapsed();
    cache.save().expect("save cache");
    println!(
        "cold:  {:>8.1} ms  {} entries, {} files read, {:.1} MB, {:.0} MB/s  {}",
        cold_t.as_secs_f64() * 1e3,
        cold.entries,
        cold.files_read,
        cold.bytes_read as f64 / 1e6,
        cold.bytes_read as f64 / 1e6 / cold_t.as_secs_f64(),
        cold.digest
    );
    let t = Instant::now();
    let cache = FileHashCache::open(&kiln_root).expect("open cache");
    let warm = checksum(&req, &cache).expect("checksum");
    let warm_t = t.elapsed();
    println!(
        "warm:  {:>8.1} ms  {} files read (cache load included; files changed < 1 s ago are never cached)",
        warm_t.as_secs_f64() * 1e3,
        warm.files_read
    );
    assert_eq!(warm.digest, cold.digest);
    let rootfs = scratch.join("rootfs");
    std::fs::create_dir_all(&rootfs).expect("create rootfs");
    let t = Instant::now();
    let stats = copy(&rootfs, &req).expect("copy");
    let copy_t = t.elapsed();
    println!(
        "copy:  {:>8.1} ms  {} files, {} dirs, {:.1} MB",
        copy_t.as_secs_f64() * 1e3,
        stats.files,
        stats.dirs,
        stats.bytes as f64 / 1e6
    );
    let _ = std::fs::remove_dir_all(&scratch);
}
