#!/bin/sh
# kiln's walk-through, one command on a fresh machine (offline but for the
# Debian packages setup-host.sh installs): build kiln, make the busybox
# base image from testdata/, build examples/echo, run it with port 9000
# published, ask it something with curl, then stop and remove it.
# usage: sh examples/echo/demo.sh          (as root; KILN_ROOT to use another root)
set -eu
cd "$(dirname "$0")/../.."
if [ "$(id -u)" != 0 ]; then
  echo "demo.sh: kiln runs containers as root (rootless is not supported yet): run it with sudo" >&2
  exit 1
fi
step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "installing the host packages kiln uses (scripts/setup-host.sh)"
sh scripts/setup-host.sh

step "building kiln (cargo build --release)"
cargo build --release --quiet --bin kiln
KILN=$PWD/target/release/kiln
export KILN

step "making the busybox base image (testdata/mkbase.sh)"
sh testdata/mkbase.sh ${KILN_ROOT:+"$KILN_ROOT"}

step "kiln build -t example/echo examples/echo"
"$KILN" build -t example/echo examples/echo

"$KILN" rm -f echo-demo >/dev/null 2>&1 || true
trap '"$KILN" rm -f echo-demo >/dev/null 2>&1 || true' EXIT
step "kiln run -d --name echo-demo -p 9000:8080 example/echo"
"$KILN" run -d --name echo-demo -p 9000:8080 example/echo
"$KILN" ps

step "curl http://localhost:9000"
tries=0
until curl -fsS http://localhost:9000; do
  tries=$((tries + 1))
  [ "$tries" -lt 50 ] || { echo "demo.sh: the echo server did not answer" >&2; exit 1; }
  sleep 0.1
done

step "kiln stop echo-demo && kiln rm echo-demo"
"$KILN" stop echo-demo
"$KILN" rm echo-demo
trap - EXIT
step "done"
