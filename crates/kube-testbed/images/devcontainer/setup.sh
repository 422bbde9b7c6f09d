#!/bin/sh
# The devcontainer image's system setup, on the debootstrap root filesystem (run as root by
# `kube-testbed build` as `sh setup.sh ROOTFS`): what the devcontainers base image
# (mcr.microsoft.com/devcontainers/base) and the sshd feature leave in an image.
set -eu

ROOTFS=$1

# The base image's non-root user: vscode, uid and gid 1000, home /home/vscode, bash, passwordless
# sudo. Its password is `*` (matches nothing) rather than useradd's locking `!`, so that sshd lets
# it in with a key whatever its UsePAM setting.
chroot "$ROOTFS" groupadd --gid 1000 vscode
chroot "$ROOTFS" useradd --uid 1000 --gid 1000 --create-home --home-dir /home/vscode \
    --shell /bin/bash --password '*' vscode
printf 'vscode ALL=(root) NOPASSWD:ALL\n' >"$ROOTFS/etc/sudoers.d/vscode"
chmod 0440 "$ROOTFS/etc/sudoers.d/vscode"

# The CA store (ca-certificates' postinst made it already; made again in case the list changed).
chroot "$ROOTFS" update-ca-certificates --fresh >/dev/null

# sshd's privilege separation folder (the sshd feature's image has it).
mkdir -p "$ROOTFS/run/sshd"

# What a container runtime provides is not the build machine's.
: >"$ROOTFS/etc/resolv.conf"
: >"$ROOTFS/etc/hostname"

# No apt lists, caches or logs in the image.
rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/*.bin \
    "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/cache/apt/archives/partial/* \
    "$ROOTFS"/var/cache/debconf/*-old "$ROOTFS"/var/log/apt/* "$ROOTFS"/var/log/dpkg.log \
    "$ROOTFS"/var/log/alternatives.log "$ROOTFS"/var/log/bootstrap.log "$ROOTFS"/tmp/* \
    "$ROOTFS"/root/.bash_history
