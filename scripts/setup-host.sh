#!/bin/sh
# Installs the Debian packages kiln's tests and examples need. Idempotent:
# installs only what is missing. Needs root (apt-get).
set -eu
pkgs="busybox-static skopeo umoci runc docker-registry apache2-utils curl time bc iproute2 util-linux passt slirp4netns python3"
# kiln build --ssh tests: ssh-agent, ssh-add, ssh-keygen
pkgs="$pkgs openssh-client"
missing=""
for p in $pkgs; do
  dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "installing:$missing" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
