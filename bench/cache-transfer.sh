#!/bin/sh
# The build cache through a registry: a cold build that exports its cache
# (`--cache-to ...,mode=max`) against a fresh root (a CI runner) that
# imports it (`--cache-from`) and so runs nothing, only fetches the layers
# the image needs. Wall time and peak RSS of each with GNU time; the second
# must print the same image id. The builder stage sleeps SLEEP seconds and
# writes SIZE_MB of random data (copied into the image).
#
#   sh bench/cache-transfer.sh                 # builds and uses target/release/kiln
#   KILN=target/debug/kiln sh bench/cache-transfer.sh
#   SIZE_MB=200 SLEEP=10 sh bench/cache-transfer.sh
set -eu
cd "$(dirname "$0")/.."
SIZE_MB=${SIZE_MB:-50}
SLEEP=${SLEEP:-3}
if [ -z "${KILN:-}" ]; then
  cargo build --release --quiet --bin kiln
  KILN=target/release/kiln
fi
KILN=$(realpath "$KILN")
ROOTFS=${ROOTFS:-target/testdata/busybox-rootfs.tar}
[ -f "$ROOTFS" ] || sh testdata/mkrootfs.sh "$ROOTFS"
ROOTFS=$(realpath "$ROOTFS")

work=$(mktemp -d /tmp/kiln-bench-cache.XXXXXX)
. bench/registry.sh
cleanup() {
  stop_registry
  rm -rf "$work"
}
trap cleanup EXIT INT TERM
start_registry

mkdir -p "$work/ctx"
cat > "$work/ctx/Dockerfile" <<DF
FROM busybox AS build
RUN sleep $SLEEP && head -c ${SIZE_MB}000000 /dev/urandom > /blob
FROM busybox
COPY --from=build /blob /blob
RUN echo done > /done
DF
for r in a b; do
  SOURCE_DATE_EPOCH=0 "$KILN" --root "$work/$r" import "$ROOTFS" busybox > /dev/null
done
cache="127.0.0.1:$port/bench/app:buildcache"

measure() { # label, then the command
  label=$1; shift
  /usr/bin/time -v "$@" > "$work/$label.out" 2> "$work/$label.time" || {
    cat "$work/$label.out" "$work/$label.time"; exit 1; }
  rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$work/$label.time")
  wall=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$work/$label.time")
  printf '%-28s wall %8s  peak RSS %6d KB\n' "$label" "$wall" "$rss"
}

measure "cold + --cache-to mode=max" "$KILN" --root "$work/a" build -q \
  --cache-to "type=registry,ref=$cache,mode=max" "$work/ctx"
measure "fresh root + --cache-from" "$KILN" --root "$work/b" build -q \
  --cache-from "$cache" "$work/ctx"
if [ "$(cat "$work/cold + --cache-to mode=max.out")" = "$(cat "$work/fresh root + --cache-from.out")" ]; then
  echo "same image: $(cat "$work/fresh root + --cache-from.out")"
else
  echo "DIFFERENT images"; exit 1
fi
