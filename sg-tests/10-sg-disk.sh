# The SG_IO device layer against a kernel disk (scsi_debug): discovery by VPD 83h, backup of a
# disk range to an emulated tape and restore onto the kernel disk, a block-to-block list, and
# the sense of a read past the end forwarded inside COPY ABORTED.
. "$SGT_LIB"
# Two targets: their LUs share target-port designators (relative port 1), which must not
# make the inventory ambiguous: only logical-unit designators name a device.
modprobe scsi_debug dev_size_mb=64 num_tgts=2 max_luns=1 sector_size=512
check scsi_debug_present wait_for 10 sg_of Linux scsi_debug
SG=$(sg_of Linux scsi_debug) SD=/dev/$(block_of "$(sg_of Linux scsi_debug)")
SG2=$(for d in /sys/class/scsi_generic/sg*; do [ "$(tr -d ' ' < $d/device/model)" = scsi_debug ] && echo /dev/${d##*/}; done | grep -vx "$SG" | head -n1)
settle "$SG"; settle "$SG2"
head -c 8388608 /dev/urandom > pat.bin
dd if=pat.bin of="$SD" bs=1M oflag=direct status=none
truncate -s 16M disk1.img
cat > inv.toml <<EOT
[[device]]
name = "sd"
kind = "sg"
path = "$SG"
[[device]]
name = "sd2"
kind = "sg"
path = "$SG2"
[[device]]
name = "tape0"
kind = "tape"
path = "tape0.tap"
[[device]]
name = "disk1"
kind = "disk"
path = "disk1.img"
block_size = 512
designator = "naa.5001405a1b2c3d11"
EOT

# Discovery: xcopy lists the designators the kernel's sg_vpd sees in VPD 83h.
sg_vpd -p di "$SG" > vpd.txt; cat vpd.txt
xcopy devices -d inv.toml > devices.txt; cat devices.txt
naa=$(sed -n '/Addressed logical unit/,/Target port/p' vpd.txt | grep -oiE '0x[0-9a-f]{16}' | head -n1 | tr 'A-F' 'a-f')
check vpd83_naa_found test -n "$naa"
check devices_lists_naa grep -qi "naa.${naa#0x}" devices.txt

# Backup: 8 MiB in 64 KiB records and a filemark; the tape image is read independently.
xcopy backup -d inv.toml --from sd:0+16384 --to tape0 -t 64k --filemark --json -q > backup.out
expect backup_exit 0 $?
cat backup.out
expect backup_bytes 8388608 "$(json bytes backup.out)"
simh tape0.tap data.bin > records.txt
expect tape_records "128 R 65536|1 M" "$(uniq -c records.txt | awk '{print $1, $2, $3}' | sed 's/ $//' | paste -sd'|')"
check tape_data_equals_disk cmp data.bin pat.bin

# Restore onto the kernel disk at LBA 32768, then compare what the kernel reads there.
xcopy restore -d inv.toml --from tape0 --rewind --to sd:32768+16384 -t 64k --json -q > restore.out
expect restore_exit 0 $?
cat restore.out
dd if="$SD" bs=512 skip=32768 count=16384 iflag=direct status=none of=back.bin
check restore_data_on_kernel_disk cmp back.bin pat.bin

# Block to block (02h) from the kernel disk to an emulated disk, through xcopy run.
cat > list.toml <<EOT
list_identifier = 7
list_id_usage = "hold"
[[cscd]]
peripheral_device_type = 0
identifier = { type = "identification", designator = "naa.${naa#0x}" }
parameters = { class = "block", pad = false, block_length = 512 }
[[cscd]]
peripheral_device_type = 0
identifier = { type = "identification", designator = "naa.5001405a1b2c3d11" }
parameters = { class = "block", pad = false, block_length = 512 }
[[segment]]
type = "block_to_block"
source = 0
destination = 1
blocks = 16384
source_lba = 0
destination_lba = 2048
EOT
xcopy encode list.toml -o list.bin
xcopy run -d inv.toml list.bin --json -q > run.out
expect run_02h_exit 0 $?
cat run.out
dd if=disk1.img bs=512 skip=2048 count=16384 status=none of=d1.bin
check run_02h_data cmp d1.bin pat.bin

# Past the end of the kernel disk (131072 blocks): COPY ABORTED with no additional sense and
# the field pointer on the segment's source LBA (byte 12 of the 02h descriptor), as libiscsi's
# ExtendedCopy.ValidSegDescr expects; nothing is written.
sed -e 's/^blocks = 16384/blocks = 1024/' -e 's/^source_lba = 0/source_lba = 131000/' list.toml > past.toml
xcopy encode past.toml -o past.bin
xcopy run -d inv.toml past.bin --json -q > past.out
expect past_end_exit 10 $?; cat past.out
expect past_end_sense_key 10 "$(json sense_key past.out)"
expect past_end_asc 0 "$(json asc past.out)"
expect past_end_segment 0 "$(json segment past.out)"
expect past_end_field_pointer 12 "$(json field_pointer past.out)"
rmmod scsi_debug
finish
