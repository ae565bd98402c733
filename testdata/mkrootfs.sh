#!/bin/sh
# Makes a busybox root filesystem tarball from Debian's busybox-static, offline
# and byte-for-byte reproducible: /bin/busybox, every applet as a symlink at
# its usual path, /etc/passwd and /etc/group with root, nobody and a uid-1000
# user "app", and the usual empty directories.
# usage: testdata/mkrootfs.sh OUT.tar     (needs /bin/busybox: apt-get install busybox-static)
set -eu
out=${1:?usage: mkrootfs.sh OUT.tar}
bb=${BUSYBOX:-/bin/busybox}
[ -x "$bb" ] || { echo "mkrootfs.sh: $bb not found (apt-get install busybox-static)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
r=$work/rootfs
mkdir -p "$r"
for d in bin sbin usr/bin usr/sbin usr/local/bin etc root home/app proc sys dev tmp var/tmp var/log run mnt opt srv; do
  mkdir -p "$r/$d"
done
chmod 1777 "$r/tmp" "$r/var/tmp"
chmod 700 "$r/root"
cp "$bb" "$r/bin/busybox"
chmod 755 "$r/bin/busybox"
"$bb" --list-full | while read -r applet; do
  [ "$applet" = bin/busybox ] && continue
  [ -e "$r/$applet" ] || [ -L "$r/$applet" ] && continue
  ln -s /bin/busybox "$r/$applet"
done
cat > "$r/etc/passwd" <<'PW'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
app:x:1000:1000:app:/home/app:/bin/sh
PW
cat > "$r/etc/group" <<'GR'
root:x:0:
nogroup:x:65534:
app:x:1000:
GR
chmod 644 "$r/etc/passwd" "$r/etc/group"
chown 1000:1000 "$r/home/app" 2>/dev/null || true
# Reproducible: sorted names, fixed owners (app's home belongs to app), mtime 0.
( cd "$r" && find . -mindepth 1 | LC_ALL=C sort | sed 's|^\./||' > "$work/list" )
tar --create --file="$out" --directory="$r" --no-recursion --verbatim-files-from --files-from="$work/list" \
  --numeric-owner --mtime=@0 --format=pax --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime
echo "$out"
