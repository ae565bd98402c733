#!/bin/sh
# Container start-to-exit: `kiln run --rm busybox true` (default network:
# own namespace with pasta; and --network none / host) against
# `runc run` of the same busybox root filesystem (runc's default spec: new
# namespaces, no network setup). Needs root, hyperfine and runc.
# usage: bench/run.sh [RUNS]      (KILN=path/to/kiln, default target/release/kiln)
set -eu
cd "$(dirname "$0")/.."
runs=${1:-50}
KILN=${KILN:-$PWD/target/release/kiln}
[ -x "$KILN" ] || cargo build --release --quiet --bin kiln
work=$(mktemp -d /tmp/kiln-bench-run.XXXXXX)
cleanup() {
  "$KILN" --root "$work/root" rm -f $("$KILN" --root "$work/root" ps -aq 2>/dev/null) >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# The same rootfs for both: kiln imports it, runc gets it unpacked.
sh testdata/mkrootfs.sh "$work/rootfs.tar" >/dev/null
KILN=$KILN sh testdata/mkbase.sh "$work/root" >/dev/null
"$KILN" --root "$work/root" run --rm busybox true   # unpack the layer once
mkdir -p "$work/bundle/rootfs"
tar -xf "$work/rootfs.tar" -C "$work/bundle/rootfs"
(cd "$work/bundle" && runc spec)
python3 - "$work/bundle/config.json" <<'PY'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
c["process"]["terminal"] = False
c["process"]["args"] = ["true"]
json.dump(c, open(p, "w"))
PY

k="$KILN --root $work/root"
# The image by id as well: the difference is what resolving a *name* (parsing
# the reference, reading the tag) costs.
id=$("$KILN" --root "$work/root" images -q --no-trunc | head -1)
. bench/quiet.sh
wait_quiet
hyperfine --warmup 5 --runs "$runs" -N \
  --export-markdown "$work/result.md" --export-json "$work/result.json" \
  -n "kiln run --rm busybox true" "$k run --rm busybox true" \
  -n "kiln run --rm --network none busybox true" "$k run --rm --network none busybox true" \
  -n "kiln run --rm --network host busybox true" "$k run --rm --network host busybox true" \
  -n "kiln run --rm IMAGE-ID true" "$k run --rm $id true" \
  -n "kiln run --rm --network none IMAGE-ID true" "$k run --rm --network none $id true" \
  -n "kiln images (name resolution alone)" "$k images" \
  -n "runc run (same rootfs)" "runc --root $work/runc run --bundle $work/bundle kiln-bench"
cat "$work/result.md"
# The issue's target is a median; hyperfine's table shows means.
python3 - "$work/result.json" <<'PY'
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    print("median %7.1f ms  %s" % (r["median"] * 1000, r["command"]))
PY
