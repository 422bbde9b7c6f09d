#!/bin/sh
# The tools image's root filesystem: Debian's static busybox (package busybox-static) with a
# symlink per applet (sh, nc, httpd, wget, sleep, cat, id, dmesg, uname, ...), for test pods.
# Run by `kube-testbed build` as `sh rootfs.sh ROOTFS BUSYBOX` into an empty folder.
set -eu

ROOTFS=$1
BUSYBOX=$2

mkdir -p "$ROOTFS/bin" "$ROOTFS/usr/bin" "$ROOTFS/etc" "$ROOTFS/root" "$ROOTFS/tmp" \
    "$ROOTFS/var/www" "$ROOTFS/proc" "$ROOTFS/sys" "$ROOTFS/dev"
chmod 1777 "$ROOTFS/tmp"
chmod 700 "$ROOTFS/root"
cp "$BUSYBOX" "$ROOTFS/bin/busybox"
chmod 755 "$ROOTFS/bin/busybox"
for applet in $("$BUSYBOX" --list); do
    [ -e "$ROOTFS/bin/$applet" ] || ln -s busybox "$ROOTFS/bin/$applet"
done
# For `#!/usr/bin/env` scripts.
ln -s /bin/busybox "$ROOTFS/usr/bin/env"

# Users for `id` and for pods that run as nobody.
cat >"$ROOTFS/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PASSWD
cat >"$ROOTFS/etc/group" <<'GROUP'
root:x:0:
nogroup:x:65534:
GROUP
