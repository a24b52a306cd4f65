# xcopyd's iSCSI target logged in by the guest kernel's initiator (open-iscsi): sg3_utils,
# ddpt and the st driver against xcopyd's LUNs (lun-checks.sh).
. "$SGT_LIB"
truncate -s 64M disk0.img disk1.img
cat > xcopyd.toml <<EOT
[iscsi]
listen = "127.0.0.1:3261"
target = "iqn.2026-11.org.xcopyd:vm"
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
[[lun]]
device = "disk0"
[[lun]]
device = "tape0"
[[lun]]
device = "disk1"
EOT
xcopyd --config xcopyd.toml > xcopyd.log 2>&1 &
XPID=$!
check xcopyd_listening wait_for 20 grep -q 3261 xcopyd.log
mkdir -p /etc/iscsi /var/lib/iscsi /run/lock/iscsi
echo "InitiatorName=iqn.2026-11.org.xcopyd:vm-initiator" > /etc/iscsi/initiatorname.iscsi
iscsid -f > iscsid.log 2>&1 &
# iscsid is ready when discovery through it works (polled, not slept for).
check iscsi_discovery wait_for 20 iscsiadm -m discovery -t st -p 127.0.0.1:3261
check iscsi_login iscsiadm -m node -T iqn.2026-11.org.xcopyd:vm -p 127.0.0.1:3261 --login
wait_for 20 sh -c '[ "$(ls /sys/class/scsi_generic | wc -l)" -ge 3 ] && ls /sys/class/scsi_tape | grep -q nst'
lsscsi -g
D0=$(sg_of XCOPYD "EMULATEDDISK" | head -n1)
for d in /sys/class/scsi_generic/sg*; do
    [ "$(tr -d ' ' < $d/device/vendor)" = XCOPYD ] || continue
    lun=$(basename "$(readlink -f $d/device)"); lun=${lun##*:}
    case $lun in 0) D0=/dev/${d##*/} ;; 1) T0=/dev/${d##*/} ;; 2) D1=/dev/${d##*/} ;; esac
done
check three_luns test -n "$D0" -a -n "$T0" -a -n "$D1"
. "$(dirname "$SGT_LIB")/lun-checks.sh"
iscsiadm -m node -T iqn.2026-11.org.xcopyd:vm -p 127.0.0.1:3261 --logout
kill $XPID; wait $XPID
cat xcopyd.log | tail -20
finish
