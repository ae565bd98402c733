#!/bin/sh
# Compression throughput for the push/save path (target: gzip at least
# 110 MB/s on 2 cores; zstd reported too) on a 260 MB layer of real files:
# shared libraries and binaries from /usr/lib/x86_64-linux-gnu and text
# from /usr/share (each inode once, none over 8 MB), by name, up to 260 MB,
# tarred once. Runs kiln-registry's layer_bench example — compress_stream
# from memory for both algorithms (wall and CPU time), unpacking, then
# Store::compressed_layer: read the blob, compress, hash, fsync, rename —
# with every core and with one thread, then GNU gzip -6 and zstd -3 (the C
# tools, one thread) on the same bytes for scale. Last, end to end with
# the release kiln: `kiln import` of the tar (stored uncompressed), then
# `kiln save --compression gzip|zstd` (compress from the store, hash,
# fsync, remember, write the archive) with its wall time and peak RSS.
# Wall-clock figures need a quiet machine: it waits for one (quiet.sh).
# usage: bench/compress.sh [THREADS]      (builds the example in release mode)
set -eu
cd "$(dirname "$0")/.."
. bench/quiet.sh
kiln=${KILN:-target/release/kiln}
threads=${1:-$(nproc)}
work=$(mktemp -d -p "${BENCH_DIR:-/var/tmp}")
trap 'rm -rf "$work"' EXIT
layer=$work/layer.tar
find /usr/lib/x86_64-linux-gnu /usr/share -path /usr/share/package-lists -prune -o \
    -type f -size +0 -size -8M -printf '%p\t%s\t%i\n' 2>/dev/null \
  | LC_ALL=C sort \
  | awk -F'\t' '{ if (seen[$3]++ || total + $2 > 260000000) next; total += $2; print $1 }' \
  > "$work/files"
tar -cf "$layer" --files-from="$work/files" 2>/dev/null || true
size=$(stat -c %s "$layer")
echo "layer: $size bytes, $(wc -l < "$work/files") files"
cargo build --release -q -p kiln-registry --example layer_bench
echo "machine: $(nproc) cores"
wait_quiet
bin=target/release/examples/layer_bench
"$bin" "$layer" "$threads"
[ "$threads" = 1 ] || "$bin" "$layer" 1 | grep '^compress'
for tool in "gzip -6" "zstd -3 -q --single-thread"; do
  start=$(date +%s%N)
  $tool -c < "$layer" > /dev/null
  end=$(date +%s%N)
  echo "$tool (C, 1 thread): $((size * 1000 / (end - start))) MB/s"
done
if [ -x "$kiln" ]; then
  "$kiln" --root "$work/root" import "$layer" bench >/dev/null
  for alg in gzip zstd; do
    wait_quiet
    start=$(date +%s%N)
    /usr/bin/time -f "peak RSS %M KiB" -o "$work/time" \
      "$kiln" --root "$work/root" save --compression $alg -o "$work/out.tar" bench
    end=$(date +%s%N)
    echo "kiln save --compression $alg: $((size * 1000 / (end - start))) MB/s end to end," \
      "$(cat "$work/time"), archive $(stat -c %s "$work/out.tar") bytes"
    rm -f "$work/out.tar"
  done
fi
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
