# A source disk deleted mid-copy (sysfs delete): COPY ABORTED, COPY TARGET DEVICE NOT
# REACHABLE (0D/02) naming the segment, and the tape holds exactly the bytes reported done.
. "$SGT_LIB"
# 100 ms per command (delay is in jiffies; Debian's HZ is 250): the copy takes seconds.
modprobe scsi_debug dev_size_mb=64 num_tgts=1 max_luns=1 delay=25
check scsi_debug_present wait_for 10 sg_of Linux scsi_debug
SG=$(sg_of Linux scsi_debug) SD=/dev/$(block_of "$(sg_of Linux scsi_debug)")
settle "$SG"
head -c 67108864 /dev/urandom > pat.bin
dd if=pat.bin of="$SD" bs=4M oflag=direct status=none
cat > inv.toml <<EOT
[[device]]
name = "sd"
kind = "sg"
path = "$SG"
[[device]]
name = "tape0"
kind = "tape"
path = "tape0.tap"
EOT
xcopy backup -d inv.toml --from sd:0+131072 --to tape0 -t 64k --filemark --json -q > out.txt &
CP=$!
# The copy is proven in progress before the disk goes: a whole record of the disk's data is
# on the tape (read strictly, as the loader reads it), and the copy has not ended. (The
# disk's own I/O counter is no proof: the copy's INQUIRY and READ CAPACITY count too.)
on_tape() { [ "$(simh tape0.tap 2>/dev/null | grep -c '^R 65536$')" -ge 1 ]; }
check copy_in_progress wait_for 60 on_tape
check copy_still_running kill -0 $CP
echo 1 > "/sys/class/scsi_generic/${SG##*/}/device/delete"
wait $CP
# The CLI's exit status is the sense key: COPY ABORTED (0Ah).
expect backup_exit 10 $?
cat out.txt
expect sense_key_copy_aborted 10 "$(json sense_key out.txt)"
expect asc_0d 13 "$(json asc out.txt)"
expect ascq_02 2 "$(json ascq out.txt)"
# Segment 0 is the SPACE to end of data an appending backup starts with; the disk fails
# in segment 1, the first data segment.
expect segment_1 1 "$(json segment out.txt)"
# xcopy backup cuts the range into segments of 511 records (65535 blocks at most, whole
# 64 KiB records): segment 1 would have written 511 x 65536 bytes, and INFORMATION holds
# its residue in bytes (variable-mode tape), so done = 33488896 - residue.
residue=$(sed -n 's/^ *information \([0-9]*\)$/\1/p' out.txt)
bytes=$((33488896 - ${residue:-33488896}))
simh tape0.tap data.bin > records.txt
records=$(grep -c '^R 65536$' records.txt)
echo "residue $residue: $bytes bytes reported written, $records records on tape"
check some_but_not_all_copied test "$bytes" -gt 0 -a "$bytes" -lt 33488896
expect tape_holds_reported_bytes "$bytes" "$((records * 65536))"
expect nothing_else_on_tape "$records" "$(wc -l < records.txt)"
head -c "$bytes" pat.bin > want.bin
check tape_data_is_the_disk_prefix cmp data.bin want.bin
rmmod scsi_debug
finish
