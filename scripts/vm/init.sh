#!/bin/busybox sh
# /init of the sg-tests VM. Loads the SCSI, LIO and iSCSI modules, mounts the host's root
# (virtio-9p, read-only) under a tmpfs overlay at /host, and runs the command named by
# `xcopyd.run=PATH` chrooted there, so the tests use the host's own tools and the project's
# build. Prints "@@ <uptime> <what>" markers and "@@ exit <rc>", then powers off.
#   xcopyd.run=PATH   a script on the host's file system (no spaces), run with its args:
#   xcopyd.args=A,B   comma-separated arguments for it
#   xcopyd.out=DIR    the host directory exported read-write (tag hostout), same path inside
/bin/busybox --install -s /bin
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
mkdir -p /dev/pts /run /etc && mount -t devpts devpts /dev/pts
ln -sf /bin/busybox /sbin/modprobe        # the kernel's request_module() runs /sbin/modprobe
mark() { echo "@@ $(cut -d' ' -f1 /proc/uptime) $*"; }
arg() { tr ' ' '\n' < /proc/cmdline | sed -n "s/^$1=//p"; }
mark "init: kernel $(uname -r)"
ip link set lo up
for m in scsi_mod sd_mod sg st configfs target_core_mod target_core_file target_core_iblock \
         target_core_user uio tcm_loop iscsi_tcp virtio_pci 9pnet_virtio 9p overlay; do
    modprobe "$m" || mark "modprobe $m failed"
done
mount -t configfs none /sys/kernel/config
mkdir -p /hostro /ovl /host
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144,cache=loose hostroot /hostro || { mark "no host share"; poweroff -f; }
mount -t tmpfs ovl /ovl && mkdir -p /ovl/upper /ovl/work
mount -t overlay overlay -o lowerdir=/hostro,upperdir=/ovl/upper,workdir=/ovl/work /host
# /tmp stays the overlay's: the repository may live under the host's /tmp (CI clones)
for d in proc dev dev/pts; do mount --bind /$d /host/$d; done
mount --rbind /sys /host/sys
mkdir -p "/host/lib/modules/$(uname -r)" && mount --bind "/lib/modules/$(uname -r)" "/host/lib/modules/$(uname -r)"
OUT=$(arg xcopyd.out)
if [ -n "$OUT" ]; then
    mkdir -p "/host$OUT" && mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 hostout "/host$OUT"
fi
# iscsid refuses clients whose uid has no passwd entry; the host's passwd is there already.
RUN=$(arg xcopyd.run)
ARGS=$(arg xcopyd.args | tr ',' ' ')
rc=0
if [ -n "$RUN" ]; then
    mark "run $RUN $ARGS"
    # shellcheck disable=SC2086
    chroot /host /bin/sh "$RUN" $ARGS
    rc=$?
fi
mark "exit $rc"
sync
poweroff -f
