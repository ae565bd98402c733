#!/bin/sh
# Makes the offline busybox base image: builds the root filesystem tarball
# with testdata/mkrootfs.sh and imports it as `busybox`
# (docker.io/library/busybox:latest) with docker's busybox config
# (CMD ["sh"], the usual PATH).
# usage: testdata/mkbase.sh [KILN_ROOT]     (kiln from $KILN, else PATH)
# The image id is reproducible: the creation time is SOURCE_DATE_EPOCH
# (default 0).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
kiln=${KILN:-kiln}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sh "$here/mkrootfs.sh" "$work/busybox-rootfs.tar" >/dev/null
if [ $# -ge 1 ]; then set -- --root "$1"; fi
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-0} "$kiln" "$@" import \
  --change 'CMD ["sh"]' \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --message 'busybox base from Debian busybox-static' \
  "$work/busybox-rootfs.tar" busybox
