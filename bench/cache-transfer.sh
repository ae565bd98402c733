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
reg_pid=""
cleanup() {
  if [ -n "$reg_pid" ]; then kill "$reg_pid" 2>/dev/null || true; wait "$reg_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat > "$work/config.yml" <<YAML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $work/registry
http:
  addr: 127.0.0.1:$port
YAML
docker-registry serve "$work/config.yml" > "$work/registry.log" 2>&1 &
reg_pid=$!
i=0
until python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 1)" 2>/dev/null; do
  i=$((i + 1)); [ $i -lt 100 ] || { cat "$work/registry.log"; exit 1; }
  sleep 0.1
done

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
