#!/bin/sh
# Context checksum and copy throughput on bigcopy's context (4,000 small
# files + 8 x 32 MB, ~260 MB), built as ../shared/bench/make-scenarios.sh
# builds it. Usage: bench/context-hash.sh [CONTEXT_DIR]
set -eu
ctx=${1:-/tmp/kiln-bench-bigcopy/src}
if [ ! -d "$ctx" ]; then
    mkdir -p "$ctx"
    for d in $(seq 1 40); do
        mkdir -p "$ctx/m$d"
        for f in $(seq 1 100); do echo "module $d file $f $(date +%N)" > "$ctx/m$d/f$f.txt"; done
    done
    for b in 1 2 3 4 5 6 7 8; do
        head -c 16000000 /dev/urandom > "$ctx/blob$b.bin"
        head -c 16000000 /dev/zero | tr '\0' 'x' >> "$ctx/blob$b.bin"
    done
    sleep 1.5 # older than the file-hash cache's racy window
fi
cargo build --release -q -p kiln-executor --example context_hash
exec target/release/examples/context_hash "$ctx"
