#!/usr/bin/env bash
# Builds the images' Debian 12 base from Debian's own packages (no image registry needed):
# debootstrap a minimal bookworm and import it as pdv/debian:bookworm.
set -euo pipefail
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
rootfs=$(mktemp -d /var/tmp/pdv-rootfs.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT
command -v debootstrap >/dev/null || apt-get install -y --no-install-recommends debootstrap
debootstrap --variant=minbase bookworm "$rootfs" "$mirror"
tar -C "$rootfs" -c . | docker import - pdv/debian:bookworm
echo "imported pdv/debian:bookworm"
