#!/bin/sh
# Sandbox start-to-exit of /bin/true (target: under 10 ms median), measured
# with hyperfine on the busybox rootfs; includes kiln's own start, the
# helper re-exec, namespaces, mounts, pivot_root and the cleanup. Prints
# hyperfine's summary and the median of each command; the load before and
# after (the figure needs a quiet machine: it waits for one, see quiet.sh).
# Then the same without kiln's CLI start, as a build pays it per RUN step:
# kiln-executor's sandbox_bench example times LinuxSandbox::spawn to the
# outcome inside one process (the kiln binary still the helper).
# usage: bench/sandbox-start.sh [path/to/kiln]     (needs root, hyperfine)
set -eu
cd "$(dirname "$0")/.."
. bench/quiet.sh
kiln=${1:-target/release/kiln}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sh testdata/mkrootfs.sh "$work/rootfs.tar" >/dev/null
mkdir "$work/rootfs"
tar -xf "$work/rootfs.tar" -C "$work/rootfs"
wait_quiet
hyperfine -N --warmup 20 --runs 300 --export-json "$work/result.json" \
  "$kiln debug sandbox --rootfs $work/rootfs -- /bin/true" \
  "$kiln debug sandbox --rootfs $work/rootfs --network host -- /bin/true" \
  "$kiln debug sandbox --rootfs $work/rootfs --memory 64m --pids-limit 100 -- /bin/true"
python3 - "$work/result.json" <<'PY'
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    words = r["command"].split(" -- ")[0].split()
    opts = " ".join(words[words.index("--rootfs") + 2:])
    print(f"median {r['median'] * 1000:.2f} ms  ({opts or 'defaults'})")
PY
cargo build --release -q -p kiln-executor --example sandbox_bench
wait_quiet
target/release/examples/sandbox_bench "$work/rootfs" "$kiln" 300
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
