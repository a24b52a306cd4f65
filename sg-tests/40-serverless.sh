# Serverless backup end to end: an EXTENDED COPY sent from the guest with sg_raw to a xcopyd
# LUN copies a kernel disk (a LIO fileio LUN behind tcm_loop, which xcopyd reaches through its
# /dev/sg) onto a kernel tape (tgt's SSC tape over open-iscsi, through its /dev/sg); the tape
# is read back through the st driver and compared, then restored with 01h.
. "$SGT_LIB"
T=/sys/kernel/config/target
truncate -s 64M lio0.img
mkdir -p $T/core/fileio_0/lio0
echo "fd_dev_name=$PWD/lio0.img,fd_dev_size=67108864" > $T/core/fileio_0/lio0/control
echo xcopyd-lio0 > $T/core/fileio_0/lio0/wwn/vpd_unit_serial    # LIO's NAA designator needs it
echo 1 > $T/core/fileio_0/lio0/enable
mkdir -p $T/loopback/naa.5001405000000011/tpgt_1/lun/lun_0
echo naa.5001405000000012 > $T/loopback/naa.5001405000000011/tpgt_1/nexus
ln -s $T/core/fileio_0/lio0 $T/loopback/naa.5001405000000011/tpgt_1/lun/lun_0/port
check lio_disk_present wait_for 20 sg_of LIO-ORG FILEIO
KD=$(sg_of LIO-ORG FILEIO) KB=/dev/$(block_of "$(sg_of LIO-ORG FILEIO)")
settle "$KD"
head -c 8388608 /dev/urandom > pat.bin
dd if=pat.bin of="$KB" bs=1M oflag=direct status=none

tgtd -f > tgtd.log 2>&1 &
check tgtd_up wait_for 20 tgtadm --lld iscsi --op show --mode target
tgtimg --op new --device-type tape --barcode XC0001 --size 64 --type data --file "$PWD/ktape.img"
tgtadm --lld iscsi --op new --mode target --tid 1 -T iqn.2026-11.test:ktape
tgtadm --lld iscsi --op new --mode logicalunit --tid 1 --lun 1 --device-type tape --bstype ssc -b "$PWD/ktape.img"
tgtadm --lld iscsi --op bind --mode target --tid 1 -I ALL
mkdir -p /etc/iscsi /var/lib/iscsi /run/lock/iscsi
echo "InitiatorName=iqn.2026-11.org.xcopyd:vm-initiator" > /etc/iscsi/initiatorname.iscsi
pgrep iscsid >/dev/null || { iscsid -f > iscsid.log 2>&1 & }
check tgt_discovery wait_for 20 iscsiadm -m discovery -t st -p 127.0.0.1:3260
check tgt_login iscsiadm -m node -T iqn.2026-11.test:ktape -p 127.0.0.1:3260 --login
check kernel_tape_present wait_for 20 sg_of IET VIRTUAL-TAPE
KT=$(sg_of IET VIRTUAL-TAPE) KNST=/dev/$(tape_of "$(sg_of IET VIRTUAL-TAPE)")
settle "$KT"
lsscsi -g
designator() { sg_vpd -p di "$1" | sed -n '/Addressed logical unit/,/Target port/p' | grep -oiE '0x[0-9a-f]{16,32}' | head -n1 | tr 'A-F' 'a-f'; }
KD_NAA=$(designator "$KD") KT_NAA=$(designator "$KT")
sg_vpd -p di "$KT"
echo "kernel disk $KD naa $KD_NAA, kernel tape $KT $KNST naa $KT_NAA"
check designators_found test -n "$KD_NAA" -a -n "$KT_NAA"

truncate -s 16M cm.img
cat > xcopyd.toml <<EOT
[iscsi]
listen = "127.0.0.1:3261"
target = "iqn.2026-11.org.xcopyd:mover"
[[device]]
name = "cm"
kind = "disk"
path = "$PWD/cm.img"
block_size = 512
designator = "naa.5001405a1b2c3d21"
[[device]]
name = "kdisk"
kind = "sg"
path = "$KD"
[[device]]
name = "ktape"
kind = "sg"
path = "$KT"
[[lun]]
device = "cm"
EOT
xcopyd --config xcopyd.toml > xcopyd.log 2>&1 &
XPID=$!
wait_for 20 grep -q 3261 xcopyd.log
iscsiadm -m discovery -t st -p 127.0.0.1:3261 >/dev/null
check xcopyd_login iscsiadm -m node -T iqn.2026-11.org.xcopyd:mover -p 127.0.0.1:3261 --login
check copy_manager_lun wait_for 20 sg_of XCOPYD EMULATEDDISK
CM=$(sg_of XCOPYD EMULATEDDISK)
settle "$CM"
xcopy devices -d xcopyd.toml

# 1) backup: 00h, 8 MiB in 64 KiB records, then a filemark (10h)
cat > backup.toml <<EOT
list_identifier = 1
list_id_usage = "hold"
[[cscd]]
peripheral_device_type = 0
identifier = { type = "identification", designator = "naa.${KD_NAA#0x}" }
parameters = { class = "block", pad = false, block_length = 512 }
[[cscd]]
peripheral_device_type = 1
identifier = { type = "identification", designator = "naa.${KT_NAA#0x}" }
parameters = { class = "stream", pad = true, fixed = false, block_length = 0 }
[[segment]]
type = "block_to_stream"
source = 0
destination = 1
stream_transfer_length = 65536
blocks = 16384
lba = 0
[[segment]]
type = "write_filemarks"
destination = 1
count = 1
EOT
xcopy encode backup.toml -o backup.bin
mt-st -f "$KNST" rewind
len=$(stat -c %s backup.bin)
check sg_raw_backup sg_raw -s "$len" -i backup.bin "$CM" 83 00 00 00 00 00 00 00 00 00 00 00 00 "$(printf %02x "$len")" 00 00
sg_copy_results --status --list_id=1 "$CM" | tee status1.txt
check backup_status_good grep -q 'Operation completed without errors' status1.txt
mt-st -f "$KNST" rewind
dd if="$KNST" of=tape.bin bs=64k 2> dd.txt; cat dd.txt
expect st_reads_128_records "128+0 records in" "$(grep 'records in' dd.txt)"
check tape_data_equals_kernel_disk cmp tape.bin pat.bin

# 2) restore: 01h from the kernel tape's beginning to the kernel disk at LBA 32768
sed -e 's/list_identifier = 1/list_identifier = 2/' > restore.toml <<EOT
list_identifier = 2
list_id_usage = "hold"
[[cscd]]
peripheral_device_type = 1
identifier = { type = "identification", designator = "naa.${KT_NAA#0x}" }
parameters = { class = "stream", pad = true, fixed = false, block_length = 0 }
[[cscd]]
peripheral_device_type = 0
identifier = { type = "identification", designator = "naa.${KD_NAA#0x}" }
parameters = { class = "block", pad = false, block_length = 512 }
[[segment]]
type = "stream_to_block"
source = 0
destination = 1
stream_transfer_length = 65536
blocks = 16384
lba = 32768
EOT
xcopy encode restore.toml -o restore.bin
mt-st -f "$KNST" rewind
len=$(stat -c %s restore.bin)
check sg_raw_restore sg_raw -s "$len" -i restore.bin "$CM" 83 00 00 00 00 00 00 00 00 00 00 00 00 "$(printf %02x "$len")" 00 00
dd if="$KB" bs=512 skip=32768 count=16384 iflag=direct status=none of=back.bin
check restore_data_on_kernel_disk cmp back.bin pat.bin

iscsiadm -m node --logoutall=all
kill $XPID; wait $XPID
tail -n 20 xcopyd.log
finish
