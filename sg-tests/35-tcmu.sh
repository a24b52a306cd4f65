# xcopyd as the handler of LIO user backstores (target_core_user) behind tcm_loop: the guest
# kernel sees its devices as /dev/sd*, /dev/st*, /dev/sg*, and the same checks as over iSCSI
# run against them (lun-checks.sh). The handler starts before the LUNs are linked, and the
# LUNs are unlinked before it stops (a LUN without a handler hangs the SCSI scan).
. "$SGT_LIB"
T=/sys/kernel/config/target
truncate -s 64M disk0.img disk1.img
cat > xcopyd.toml <<EOT
[iscsi]
listen = "127.0.0.1:3262"
[tcmu]
subtype = "xcopyd"
[[device]]
name = "disk0"
kind = "disk"
path = "$PWD/disk0.img"
block_size = 512
designator = "naa.5001405a1b2c3d01"
[[device]]
name = "tape0"
kind = "tape"
path = "$PWD/tape0.tap"
block_size = 0
designator = "naa.5001405a1b2c3d02"
[[device]]
name = "disk1"
kind = "disk"
path = "$PWD/disk1.img"
block_size = 512
designator = "naa.5001405a1b2c3d03"
EOT
for dev in disk0 tape0 disk1; do
    mkdir -p $T/core/user_7/$dev
    echo "dev_config=xcopyd/$dev,dev_size=67108864" > $T/core/user_7/$dev/control
    # EXTENDED COPY runs as long as the copy does: no kernel-side command timeout
    echo 0 > $T/core/user_7/$dev/attrib/cmd_time_out 2>/dev/null || true
    echo 1 > $T/core/user_7/$dev/enable
done
check uio_devices test "$(grep -l 'xcopyd/' /sys/class/uio/uio*/name | wc -l)" = 3
RUST_LOG=info xcopyd --config xcopyd.toml > xcopyd.log 2>&1 &
XPID=$!
check handler_serving_3 wait_for 20 sh -c '[ "$(grep -c "tcmu: serving" xcopyd.log)" = 3 ]'
cat xcopyd.log
W=naa.5001405000000031
mkdir -p $T/loopback/$W/tpgt_1
echo naa.5001405000000032 > $T/loopback/$W/tpgt_1/nexus
i=0
for dev in disk0 tape0 disk1; do
    mkdir -p $T/loopback/$W/tpgt_1/lun/lun_$i
    ln -s $T/core/user_7/$dev $T/loopback/$W/tpgt_1/lun/lun_$i/port
    i=$((i + 1))
done
check three_luns_seen wait_for 30 sh -c '[ "$(for d in /sys/class/scsi_generic/sg*; do cat $d/device/vendor; done 2>/dev/null | grep -c XCOPYD)" = 3 ] && ls /sys/class/scsi_tape | grep -q nst'
lsscsi -g
for d in /sys/class/scsi_generic/sg*; do
    [ "$(tr -d ' ' < $d/device/vendor)" = XCOPYD ] || continue
    lun=$(basename "$(readlink -f $d/device)"); lun=${lun##*:}
    case $lun in 0) D0=/dev/${d##*/} ;; 1) T0=/dev/${d##*/} ;; 2) D1=/dev/${d##*/} ;; esac
done
check luns_mapped test -n "${D0:-}" -a -n "${T0:-}" -a -n "${D1:-}"
. "$(dirname "$SGT_LIB")/lun-checks.sh"
# Tear down in the safe order: unlink the LUNs, then stop the handler, then the backstores.
for i in 0 1 2; do rm -f $T/loopback/$W/tpgt_1/lun/lun_$i/port; rmdir $T/loopback/$W/tpgt_1/lun/lun_$i; done
rm -f $T/loopback/$W/tpgt_1/nexus 2>/dev/null
kill $XPID; wait $XPID
check handler_exit_clean test $? -le 143
for dev in disk0 tape0 disk1; do rmdir $T/core/user_7/$dev; done
tail -n 20 xcopyd.log
finish
