# The SG_IO device layer against a kernel tape (scsi_debug ptype=1; kernel >= 6.15): backup
# from an emulated disk onto it, positioning (LOCATE, filemarks) and restore. scsi_debug keeps
# only the first 4 bytes of each tape block, so data checks compare those 4 bytes per record.
. "$SGT_LIB"
modprobe scsi_debug ptype=1 num_tgts=1 max_luns=1
check scsi_debug_tape_present wait_for 10 sg_of Linux scsi_debug
SG=$(sg_of Linux scsi_debug)
NST=/dev/$(tape_of "$SG")
settle "$SG"
check read_block_limits sg_read_block_limits "$SG"
head -c 1048576 /dev/urandom > pat.bin
cp pat.bin disk0.img && truncate -s 4M disk0.img
truncate -s 4M disk1.img
cat > inv.toml <<EOT
[[device]]
name = "disk0"
kind = "disk"
path = "disk0.img"
block_size = 512
[[device]]
name = "disk1"
kind = "disk"
path = "disk1.img"
block_size = 512
[[device]]
name = "st"
kind = "sg"
path = "$SG"
EOT
xcopy devices -d inv.toml

# 1 MiB in 16 records of 64 KiB, then a filemark, written through SG_IO.
xcopy backup -d inv.toml --from disk0:0+2048 --to st -t 64k --filemark --json -q > backup.out
expect backup_exit 0 $?
cat backup.out
expect backup_bytes 1048576 "$(json bytes backup.out)"
# The kernel's st driver reads it back: 16 records, then the filemark ends the file.
mt-st -f "$NST" rewind
dd if="$NST" of=back.bin bs=64k 2> dd.txt; cat dd.txt
expect st_reads_16_records "16+0 records in" "$(grep 'records in' dd.txt)"
ok=0
for i in $(seq 0 15); do
    a=$(dd if=pat.bin bs=65536 skip="$i" count=1 status=none | head -c4 | od -An -tx1)
    b=$(dd if=back.bin bs=65536 skip="$i" count=1 status=none | head -c4 | od -An -tx1)
    [ "$a" = "$b" ] || ok=1
done
expect first_4_bytes_of_each_record 0 $ok
mt-st -f "$NST" status > status.txt; cat status.txt
expect st_after_filemark "File number=1, block number=0" "$(grep -o 'File number=[0-9]*, block number=[0-9]*' status.txt)"

# Restore from the beginning (LOCATE 0): 16 records land on disk1.
xcopy restore -d inv.toml --from st --rewind --to disk1:0+2048 -t 64k --json -q > restore.out
expect restore_exit 0 $?
cat restore.out
ok=0
for i in $(seq 0 15); do
    a=$(dd if=pat.bin bs=65536 skip="$i" count=1 status=none | head -c4 | od -An -tx1)
    b=$(dd if=disk1.img bs=65536 skip="$i" count=1 status=none | head -c4 | od -An -tx1)
    [ "$a" = "$b" ] || ok=1
done
expect restore_first_4_bytes 0 $ok

# Asking for more than the file holds: segment 1 (after the LOCATE) wants 4096 blocks; the
# filemark after record 16 ends it with COPY ABORTED, THIRD PARTY DEVICE FAILURE (0D/01),
# residue 2048 destination blocks, and the drive's own sense forwarded (NO SENSE, FILEMARK,
# 00/01 FILEMARK DETECTED).
xcopy restore -d inv.toml --from st --rewind --to disk1:0+4096 -t 64k --json -q > fm.out
expect filemark_exit 10 $?
cat fm.out
expect filemark_sense "10 13 1 1" "$(json sense_key fm.out) $(json asc fm.out) $(json ascq fm.out) $(json segment fm.out)"
expect filemark_residue 2048 "$(sed -n 's/^ *information \([0-9]*\);.*/\1/p' fm.out)"
check filemark_forwarded grep -q 'copy source status 0x02 \[0h NO SENSE 00/01 FILEMARK DETECTED' fm.out
rmmod scsi_debug
finish
