#!/bin/sh
# Build the sg-tests initramfs for a kernel unpacked by kernel.sh: busybox-static, the SCSI,
# LIO, iSCSI, 9p, ext4 and dm-multipath modules with their dependencies (decompressed: busybox modprobe cannot read
# .ko.xz), and scripts/vm/init.sh as /init. Everything else the tests use (sg3-utils, mt-st,
# tgt, open-iscsi, xcopy/xcopyd) comes from the host's root, shared read-only over virtio-9p.
#
# usage: scripts/vm/initramfs.sh KVER        writes $VMT/initrd-KVER.cpio.gz
set -eu
KVER=$1
VMT=${VMT:-${TMPDIR:-/tmp}/xcopyd-vm}
HERE=$(cd "$(dirname "$0")" && pwd)
K=$VMT/k/$KVER
R=$VMT/root-$KVER
OUT=$VMT/initrd-$KVER.cpio.gz
rm -rf "$R"
mkdir -p "$R/bin" "$R/sbin" "$R/proc" "$R/sys" "$R/dev" "$R/tmp" "$R/etc" "$R/lib/modules/$KVER"
cp /bin/busybox "$R/bin/busybox"
MODULES="scsi_mod sd_mod sg st scsi_debug configfs target_core_mod target_core_file
         target_core_iblock target_core_pscsi target_core_user uio tcm_loop
         iscsi_tcp libiscsi scsi_transport_iscsi 9p 9pnet_virtio virtio_pci overlay
         ext4 dm_multipath dm_round_robin"
for m in $MODULES; do
    modprobe -d "$K" -S "$KVER" --show-depends "$m" | awk '$1=="insmod"{print $2}'
done | sort -u | while read -r f; do
    rel=${f#"$K/lib/modules/$KVER/"}
    mkdir -p "$R/lib/modules/$KVER/$(dirname "$rel")"
    case $f in
        *.xz) xz -dc "$f" > "$R/lib/modules/$KVER/${rel%.xz}" ;;
        *.zst) zstd -dcq "$f" > "$R/lib/modules/$KVER/${rel%.zst}" ;;
        *) cp "$f" "$R/lib/modules/$KVER/$rel" ;;
    esac
done
cp "$K/lib/modules/$KVER/modules.builtin" "$K/lib/modules/$KVER/modules.order" "$R/lib/modules/$KVER/" 2>/dev/null || true
depmod -b "$R" "$KVER" 2>&1 | grep -v modules.builtin.modinfo || true
cp "$HERE/init.sh" "$R/init"
chmod +x "$R/init"
(cd "$R" && find . | cpio -o -H newc --quiet) | gzip -1 > "$OUT"
echo "initramfs: $OUT ($(du -h "$OUT" | cut -f1))"
