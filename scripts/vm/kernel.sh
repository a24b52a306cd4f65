#!/bin/sh
# Download a stock Debian kernel from trixie-backports and unpack it (apt-get download +
# dpkg-deb -x): nothing is installed, /boot and the host's apt sources are left alone.
#
# usage: scripts/vm/kernel.sh [PACKAGE|auto]     prints KVER=<version> as its last line
# env:   VMT     work dir (default ${TMPDIR:-/tmp}/xcopyd-vm)
#        MIRROR  Debian mirror (default: the one the host's apt sources name)
#
# The kernel must have scsi_debug's SSC emulation (6.15 and later) and LIO with
# target_core_user and tcm_loop: trixie-backports' 6.18 is pinned, its newest as fallback.
set -eu
PKG=${1:-linux-image-6.18.15+deb13-amd64}
VMT=${VMT:-${TMPDIR:-/tmp}/xcopyd-vm}
MIRROR=$("$(dirname "$0")/mirror.sh")
A=$VMT/apt
mkdir -p "$A/lists/partial" "$A/cache/archives/partial" "$A/parts" "$VMT/debs" "$VMT/k"
[ -e "$A/status" ] || : > "$A/status"
echo "deb $MIRROR trixie-backports main" > "$A/sources.list"
# A private apt configuration: the host's apt.conf.d is not read (Debian images carry a
# docker-clean hook that deletes downloaded .debs after every update), and the mirror may be a
# snapshot whose Release file has expired.
cat > "$A/apt.conf" <<EOC
Dir::State::Lists "$A/lists";
Dir::State::status "$A/status";
Dir::Cache "$A/cache";
Dir::Etc::SourceList "$A/sources.list";
Dir::Etc::SourceParts "$A/parts";
Dir::Etc::Parts "$A/parts";
Dir::Etc::Preferences "/dev/null";
Debug::NoLocking "1";
Acquire::Check-Valid-Until "false";
Acquire::Languages "none";
APT::Sandbox::User "root";
EOC
export APT_CONFIG=$A/apt.conf
ls "$A"/lists/*Packages* >/dev/null 2>&1 || apt-get update -q >&2
depends() { apt-cache depends "$1" 2>/dev/null | awk '$1=="Depends:"{print $2}'; }
if [ "$PKG" = auto ] || ! apt-cache show "$PKG" >/dev/null 2>&1; then
    PKG=$(depends linux-image-amd64 | grep '^linux-image-' | head -n1)
fi
KVER=${PKG#linux-image-}
# From 7.x on linux-image-<v> is a metapackage over linux-binary/-modules/-base-<v>.
PKGS="$PKG $(depends "$PKG" | grep -xE "linux-(binary|modules|base)-$KVER" || true)"
cd "$VMT/debs"
for p in $PKGS; do
    ls "${p}"_*.deb >/dev/null 2>&1 || apt-get download -q "$p" >&2
done
D=$VMT/k/$KVER
if [ ! -e "$D/.unpacked" ]; then
    rm -rf "$D"; mkdir -p "$D"
    for p in $PKGS; do dpkg-deb -x "$(ls "${p}"_*.deb | head -n1)" "$D"; done
    touch "$D/.unpacked"
fi
# trixie puts modules under usr/lib/modules; depmod -b wants lib/modules
[ -e "$D/lib/modules/$KVER" ] || { mkdir -p "$D/lib"; ln -sfn ../usr/lib/modules "$D/lib/modules"; }
[ -e "$D/boot/vmlinuz-$KVER" ] || { mkdir -p "$D/boot"; ln -sfn "../usr/lib/modules/$KVER/vmlinuz" "$D/boot/vmlinuz-$KVER"; }
[ -e "$D/lib/modules/$KVER/modules.dep" ] || depmod -b "$D" "$KVER"
echo "KVER=$KVER"
