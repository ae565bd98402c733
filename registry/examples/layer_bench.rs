//! Throughput of the layer paths on a real tarball: compression (gzip via
//! gzp, zstd via zstdmt) as `save` and `push` use it, and unpacking as an
//! overlay lower dir.
//!
//! usage: cargo run --release -p kiln-registry --example layer_bench -- LAYER.tar [THREADS]

use std::io::Read;
use std::time::Instant;

use kiln_registry::store::compress::{CompressOptions, compress_stream};
use kiln_registry::{Compression, Layer, Store, UnpackMode, unpack_stream};
use oci_spec::image::{Descriptor, MediaType};

fn mb_s(bytes: u64, secs: f64) -> f64 {
    bytes as f64 / 1e6 / secs
}

/// CPU seconds (user + system) this process has used, all threads.
fn cpu_secs() -> f64 {
    use nix::sys::resource::{UsageWho, getrusage};
    getrusage(UsageWho::RUSAGE_SELF)
        .map(|u| {
            let t = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 / 1e6;
            t(u.user_time()) + t(u.system_time())
        })
        .unwrap_or(0.0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .ok_or("usage: layer_bench LAYER.tar [THREADS]")?;
    let threads: usize = args.next().map(|t| t.parse()).transpose()?.unwrap_or(2);
    let mut data = Vec::new();
    std::fs::File::open(&path)?.read_to_end(&mut data)?;
    let size = data.len() as u64;
    println!(
        "layer: {path}, {:.1} MB, {threads} threads",
        size as f64 / 1e6
    );
    for algorithm in [Compression::Gzip, Compression::Zstd] {
        let (start, cpu) = (Instant::now(), cpu_secs());
        let out = compress_stream(
            &data[..],
            Vec::new(),
            CompressOptions { algorithm, threads },
        )?;
        let secs = start.elapsed().as_secs_f64();
        let cpu = cpu_secs() - cpu;
        println!(
            "compress {algorithm}: {:.0} MB/s ({:.1} MB -> {:.1} MB; {:.1} s wall, {:.1} s CPU = {:.0} MB per CPU-second)",
            mb_s(size, secs),
            size as f64 / 1e6,
            out.len() as f64 / 1e6,
            secs,
            cpu,
            mb_s(size, cpu)
        );
        let dir = tempfile::tempdir()?;
        let start = Instant::now();
        let stats = unpack_stream(
            &out[..],
            dir.path(),
            UnpackMode::OverlayLower,
            None,
            "bench",
        )?;
        let secs = start.elapsed().as_secs_f64();
        println!(
            "unpack from {algorithm}: {:.0} MB/s of tar ({} files)",
            mb_s(size, secs),
            stats.files
        );
    }
    // the store path: blob in, snapshot out (diffID check, syncfs, rename)
    let root = tempfile::tempdir()?;
    let store = Store::open(root.path())?;
    let info = store.write_blob(&data)?;
    let layer = Layer {
        descriptor: Descriptor::new(MediaType::ImageLayer, info.size, info.digest.clone()),
        diff_id: info.digest,
    };
    let start = Instant::now();
    store.unpack_layer(&layer)?;
    println!(
        "Store::unpack_layer (uncompressed, verified, synced): {:.0} MB/s",
        mb_s(size, start.elapsed().as_secs_f64())
    );
    let start = Instant::now();
    store.compressed_layer(&layer.diff_id, Compression::Gzip)?;
    println!(
        "Store::compressed_layer gzip (first time): {:.0} MB/s",
        mb_s(size, start.elapsed().as_secs_f64())
    );
    let start = Instant::now();
    store.compressed_layer(&layer.diff_id, Compression::Gzip)?;
    println!(
        "Store::compressed_layer gzip (remembered): {:.3} s",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
