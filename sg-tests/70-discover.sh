# xcopy discover: finds a scsi_debug disk and an iSCSI disk and tape of xcopyd's (logged in by
# open-iscsi) behind /dev/sg*, with the designators sg_vpd reads; writes an inventory; merging
# again keeps it; and a backup runs unchanged on the inventory it wrote (scsi_debug disk ->
# xcopyd's tape LUN through SG_IO), read back by the st driver byte for byte.
. "$SGT_LIB"
modprobe scsi_debug dev_size_mb=16 num_tgts=1 max_luns=1 sector_size=512
check scsi_debug_present wait_for 10 sg_of Linux scsi_debug
SD_SG=$(sg_of Linux scsi_debug) SD=/dev/$(block_of "$(sg_of Linux scsi_debug)")
settle "$SD_SG"
head -c 1048576 /dev/urandom > pat.bin
dd if=pat.bin of="$SD" bs=1M oflag=direct status=none
truncate -s 16M disk0.img
cat > xcopyd.toml <<EOT
[iscsi]
listen = "127.0.0.1:3263"
target = "iqn.2026-11.org.xcopyd:discover"
[[device]]
name = "disk0"
kind = "disk"
path = "$PWD/disk0.img"
designator = "naa.5001405a1b2c3d71"
[[device]]
name = "tape0"
kind = "tape"
path = "$PWD/tape0.tap"
designator = "naa.5001405a1b2c3d72"
[[lun]]
device = "disk0"
[[lun]]
device = "tape0"
EOT
xcopyd --config xcopyd.toml > xcopyd.log 2>&1 &
XPID=$!
check xcopyd_listening wait_for 20 grep -q 3263 xcopyd.log
mkdir -p /etc/iscsi /var/lib/iscsi /run/lock/iscsi
echo "InitiatorName=iqn.2026-11.org.xcopyd:vm-initiator" > /etc/iscsi/initiatorname.iscsi
pgrep -x iscsid >/dev/null || { iscsid -f > iscsid.log 2>&1 & }
check iscsi_discovery wait_for 20 iscsiadm -m discovery -t st -p 127.0.0.1:3263
check iscsi_login iscsiadm -m node -T iqn.2026-11.org.xcopyd:discover -p 127.0.0.1:3263 --login
wait_for 20 sh -c 'ls /sys/class/scsi_tape | grep -q nst'
for d in /sys/class/scsi_generic/sg*; do
    [ "$(tr -d ' ' < $d/device/vendor)" = XCOPYD ] || continue
    lun=$(basename "$(readlink -f $d/device)"); lun=${lun##*:}
    case $lun in 0) D0=/dev/${d##*/} ;; 1) T0=/dev/${d##*/} ;; esac
done
settle "$D0"; settle "$T0"
lsscsi -g

# The listing: every device, with its type and the designator VPD 83h gives.
xcopy discover --json > found.json 2> found.txt; cat found.txt
expect discover_exit 0 $?
has() { # PATH TYPE DESIGNATOR
    python3 - "$@" <<'PY'
import json, sys
devs = json.loads(open('found.json').read().splitlines()[-1])['devices']
ok = any(d['path'] == sys.argv[1] and d['type'] == sys.argv[2] and sys.argv[3] in d['designators'] for d in devs)
sys.exit(0 if ok else 1)
PY
}
sd_naa=naa.$(sg_vpd -p di "$SD_SG" | sed -n '/Addressed logical unit/,/Target port/p' | grep -oiE '0x[0-9a-f]{16}' | head -n1 | cut -c3- | tr 'A-F' 'a-f')
check finds_scsi_debug_disk has "$SD_SG" disk "$sd_naa"
check finds_iscsi_disk has "$D0" disk naa.5001405a1b2c3d71
check finds_iscsi_tape has "$T0" tape naa.5001405a1b2c3d72

# An inventory written from nothing but a comment, then merged again: nothing added.
echo "# discovered" > san.toml
xcopy discover -d san.toml --write 2> merge1.txt; cat merge1.txt san.toml
n=$(tail -n1 found.json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["devices"]))')
expect every_device_added "$n" "$(grep -c '^added: ' merge1.txt)"
cp san.toml san.first
xcopy discover -d san.toml --write 2> merge2.txt; cat merge2.txt
expect second_merge_adds_nothing 0 "$(grep -c '^added: ' merge2.txt)"
check second_merge_keeps_the_file cmp -s san.toml san.first
name_of() { grep -B3 "path = \"$1\"" san.toml | sed -n 's/^name = "\(.*\)"/\1/p'; }
DISK=$(name_of "$SD_SG") TAPE=$(name_of "$T0")
check names_given test -n "$DISK" -a -n "$TAPE"

# The inventory it wrote runs a backup unchanged: 1 MiB of the scsi_debug disk to xcopyd's
# tape, in 16 records of 64 KiB, then read back through the st driver.
NST=/dev/$(tape_of "$T0")
mt-st -f "$NST" rewind
xcopy backup -d san.toml --from "$DISK:0+2048" --to "$TAPE" -t 64k --filemark --json -q > backup.out
expect backup_exit 0 $?
expect backup_bytes 1048576 "$(json bytes backup.out)"
mt-st -f "$NST" rewind
dd if="$NST" of=back.bin bs=64k 2> dd.txt; cat dd.txt
check tape_holds_the_disk cmp back.bin pat.bin

iscsiadm -m node -T iqn.2026-11.org.xcopyd:discover -p 127.0.0.1:3263 --logout
kill $XPID; wait $XPID
tail -5 xcopyd.log
rmmod scsi_debug
finish
