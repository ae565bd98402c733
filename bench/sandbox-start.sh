#!/bin/sh
# Sandbox start-to-exit of /bin/true (target: under 10 ms median), measured
# with hyperfine on the busybox rootfs; includes kiln's own start, the
# helper re-exec, namespaces, mounts, pivot_root and the cleanup.
# usage: bench/sandbox-start.sh [path/to/kiln]     (needs root, hyperfine)
set -eu
cd "$(dirname "$0")/.."
kiln=${1:-target/release/kiln}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sh testdata/mkrootfs.sh "$work/rootfs.tar" >/dev/null
mkdir "$work/rootfs"
tar -xf "$work/rootfs.tar" -C "$work/rootfs"
hyperfine -N --warmup 20 --runs 200 \
  "$kiln debug sandbox --rootfs $work/rootfs -- /bin/true" \
  "$kiln debug sandbox --rootfs $work/rootfs --network host -- /bin/true" \
  "$kiln debug sandbox --rootfs $work/rootfs --memory 64m --pids-limit 100 -- /bin/true"
