#!/bin/sh
# Boot a kernel unpacked by kernel.sh with the initramfs.sh image under qemu (software
# emulation: KVM on this kind of host cannot run a stock kernel) and run one script inside.
# The console goes to stdout, each line prefixed with seconds since start.
#
# usage: scripts/vm/boot.sh KVER SCRIPT [ARG,ARG...]
# env:   VMT work dir; OUTDIR host dir the guest may write (same path inside); TMO seconds
set -u
KVER=$1 SCRIPT=$2 ARGS=${3:-}
VMT=${VMT:-${TMPDIR:-/tmp}/xcopyd-vm}
TMO=${TMO:-1800}
APPEND="console=ttyS0 panic=-1 loglevel=4 xcopyd.run=$SCRIPT"
[ -n "$ARGS" ] && APPEND="$APPEND xcopyd.args=$ARGS"
SHARE="-virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap"
if [ -n "${OUTDIR:-}" ]; then
    SHARE="$SHARE -virtfs local,path=$OUTDIR,mount_tag=hostout,security_model=none,multidevs=remap"
    APPEND="$APPEND xcopyd.out=$OUTDIR"
fi
T0=$(date +%s.%N); export T0
# -no-reboot with panic=-1: a guest panic ends qemu instead of looping.
# shellcheck disable=SC2086
timeout --foreground -k 10 "$TMO" \
    qemu-system-x86_64 -accel tcg -cpu max -m "${MEM:-2048}" -smp 2 \
    -nodefaults -no-reboot -display none -monitor none -serial stdio \
    -kernel "$VMT/k/$KVER/boot/vmlinuz-$KVER" -initrd "$VMT/initrd-$KVER.cpio.gz" \
    -append "$APPEND" $SHARE </dev/null 2>&1 |
    perl -MTime::HiRes=time -ne 'BEGIN{$|=1} s/\r//g; printf "%7.2f %s", time-$ENV{T0}, $_'
