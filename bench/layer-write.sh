#!/bin/sh
# Layer write throughput and peak RSS for a 260 MB diff (targets: at least
# 300 MB/s to the store, under 100 MB RSS): an upper directory with 150
# files of 1 MiB of random data, 6,000 files of 7 KiB and 60 MB in one
# file (260 MB), written by `kiln debug layer` (diff walk + PAX tar +
# sha256 + fsync + rename into the store). Run on a warm page cache, as a
# step's fresh upper directory is. Waits for a quiet machine (see
# quiet.sh), runs five times; the figure is the median.
# usage: bench/layer-write.sh [path/to/kiln]
set -eu
cd "$(dirname "$0")/.."
. bench/quiet.sh
kiln=${1:-target/release/kiln}
work=$(mktemp -d -p "${BENCH_DIR:-/var/tmp}")
trap 'rm -rf "$work"' EXIT
up=$work/upper
mkdir -p "$up/big" "$up/small"
head -c $((150 * 1048576)) /dev/urandom > "$work/blob"
i=0
while [ $i -lt 150 ]; do
  dd if="$work/blob" of="$up/big/f$i" bs=1048576 skip=$i count=1 status=none
  i=$((i + 1))
done
head -c 60000000 /dev/urandom > "$up/one-60mb"
python3 - "$up/small" <<'PY'
import os, sys
d = sys.argv[1]
data = os.urandom(7168)
for i in range(6000):
    with open(os.path.join(d, "s%05d" % i), "wb") as f:
        f.write(data)
PY
rm "$work/blob"
du -sb "$up"
sync
wait_quiet
for run in 1 2 3 4 5; do
  rm -rf "$work/root"
  out=$(/usr/bin/time -f "peak RSS %M KiB, wall %e s" "$kiln" --root "$work/root" debug layer --upper "$up" 2>&1 >/dev/null \
    | tr '\n' ' ')
  echo "$out" | tee -a "$work/runs"
done
echo "median: $(sed 's/.*: \([0-9]*\) MB\/s.*/\1/' "$work/runs" | sort -n | sed -n 3p) MB/s; \
peak RSS max $(sed 's/.*peak RSS \([0-9]*\) KiB.*/\1/' "$work/runs" | sort -n | tail -1) KiB"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
