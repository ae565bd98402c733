#!/bin/sh
# Peak memory of pushing and pulling an image with a 100 MB layer through a
# real registry (Debian's docker-registry on a free loopback port), measured
# with GNU time (`/usr/bin/time -v`). Target: peak RSS under 100 MB for the
# push (which also gzips the layer) and for the pull.
#
#   sh bench/registry-rss.sh              # builds and uses target/release/kiln
#   KILN=target/debug/kiln sh bench/registry-rss.sh
#   SIZE_MB=500 sh bench/registry-rss.sh  # a bigger layer
#
# The layer is random data, so it does not shrink when compressed: what goes
# over the wire is as big as the layer.
set -eu
cd "$(dirname "$0")/.."
SIZE_MB=${SIZE_MB:-100}
LIMIT_KB=${LIMIT_KB:-102400}
if [ -z "${KILN:-}" ]; then
  cargo build --release --quiet --bin kiln
  KILN=target/release/kiln
fi
KILN=$(realpath "$KILN")

work=$(mktemp -d /tmp/kiln-bench-rss.XXXXXX)
. bench/registry.sh
cleanup() {
  stop_registry
  rm -rf "$work"
}
trap cleanup EXIT INT TERM
start_registry

mkdir -p "$work/rootfs"
head -c "${SIZE_MB}M" /dev/urandom > "$work/rootfs/big.bin"
tar -C "$work/rootfs" -cf "$work/layer.tar" .
image="127.0.0.1:$port/bench/big:1"
"$KILN" --root "$work/root1" import "$work/layer.tar" "$image" > /dev/null

measure() { # label, then the command
  label=$1; shift
  /usr/bin/time -v "$@" > "$work/$label.out" 2> "$work/$label.time" || {
    cat "$work/$label.out" "$work/$label.time"; exit 1; }
  rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$work/$label.time")
  wall=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$work/$label.time")
  verdict=ok; [ "$rss" -lt "$LIMIT_KB" ] || verdict=OVER
  printf '%-5s %4s MB layer: peak RSS %6d KB (%3d MB), wall %s  [%s, limit %d KB]\n' \
    "$label" "$SIZE_MB" "$rss" $((rss / 1024)) "$wall" "$verdict" "$LIMIT_KB"
  [ "$verdict" = ok ]
}

status=0
measure push "$KILN" --root "$work/root1" push "$image" || status=1
measure pull "$KILN" --root "$work/root2" pull "$image" || status=1
exit $status
