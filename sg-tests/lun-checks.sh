# Checks run against xcopyd's LUNs as the guest kernel sees them, whatever the transport
# (xcopyd's iSCSI target logged in by open-iscsi, or TCMU behind tcm_loop). Sourced after
# lib.sh with D0 D1 (sg nodes of two 64 MiB emulated disks with designators ...d01/...d03)
# and T0 (sg node of the emulated tape) set.
settle "$D0"; settle "$D1"; settle "$T0"
B0=/dev/$(block_of "$D0") B1=/dev/$(block_of "$D1") NST=/dev/$(tape_of "$T0")
echo "disk0 $D0 $B0, disk1 $D1 $B1, tape $T0 $NST"

sg_inq "$D0" > inq.txt; cat inq.txt
check sg_inq_3pc grep -q '3PC=1' inq.txt
check sg_inq_vendor grep -q 'Vendor identification: XCOPYD' inq.txt
sg_vpd -p di "$D0" > di.txt; cat di.txt
check sg_vpd_di_naa grep -qi '0x5001405a1b2c3d01' di.txt
sg_vpd -p tpc "$D0" > tpc.txt; expect sg_vpd_tpc_exit 0 $?; cat tpc.txt
check sg_vpd_tpc_lists_extended_copy grep -qi 'Extended copy' tpc.txt
sg_opcodes "$D0" > op.txt; cat op.txt
check sg_opcodes_83 grep -qE '^ *83 .*(Extended copy|Third party copy out)' op.txt
for sa in 0 1 3 4; do check sg_opcodes_84_$sa grep -qE "^ *84 +$sa .*Receive copy" op.txt; done
sg_copy_results --params "$D0" > params.txt; expect rcr_params_exit 0 $?; cat params.txt
check rcr_params grep -qi 'Maximum target descriptor count: 64' params.txt

# sg_xcopy: 8 MiB disk0 -> disk1 at LBA 8192 (one 02h segment), then the data.
head -c 8388608 /dev/urandom > pat.bin
dd if=pat.bin of="$B0" bs=1M oflag=direct status=none
check sg_xcopy sg_xcopy if="$D0" of="$D1" bs=512 count=16384 seek=8192 list_id=5
dd if="$B1" bs=512 skip=8192 count=16384 iflag=direct status=none of=x.bin
check sg_xcopy_data cmp x.bin pat.bin
sg_copy_results --status --list_id=5 "$D0" > st.txt; expect rcr_status_exit 0 $?; cat st.txt
check rcr_copy_status_held grep -qi 'Copy manager status: Operation completed without errors' st.txt
sg_copy_results --failed --list_id=5 "$D0" > failed.txt 2>&1; expect rcr_failed_exit 0 $?; cat failed.txt
check rcr_failed_none_after_success grep -q 'no segment details' failed.txt
sg_copy_results --receive --list_id=5 "$D0" > recv.txt 2>&1; expect rcr_receive_exit 0 $?; head -2 recv.txt
# RECEIVE DATA for a 02h list: nothing held, AVAILABLE DATA (bytes 0-3) is 0.
check rcr_receive_data_nothing_held grep -qE '^ 00 +00 00 00 00 ' recv.txt
# A copy past disk1's end (131072 blocks) fails: sg_xcopy gets COPY ABORTED, and FAILED
# SEGMENT DETAILS for its list ID carries the sense.
sg_xcopy if="$D0" of="$D1" bs=512 count=16 seek=131070 list_id=6 > bad.txt 2>&1
expect sg_xcopy_past_end_exit 10 $?
cat bad.txt
sg_copy_results --status --list_id=6 "$D0" > st6.txt; expect rcr_status6_exit 0 $?; cat st6.txt
check rcr_status_failed grep -qi 'Copy manager status: Operation completed with errors' st6.txt
sg_copy_results --failed --list_id=6 "$D0" > failed6.txt; expect rcr_failed6_exit 0 $?; cat failed6.txt
check rcr_failed_details_sense grep -qi 'copy aborted' failed6.txt

# ddpt, the same copy through its xcopy mode, to LBA 40960.
check ddpt_xcopy ddpt if="$D0" of="$D1" bs=512 count=16384 seek=40960 oflag=xcopy
dd if="$B1" bs=512 skip=40960 count=16384 iflag=direct status=none of=y.bin
check ddpt_xcopy_data cmp y.bin pat.bin

# sg_raw: an EXTENDED COPY list built by `xcopy encode`, disk0 -> tape0 (00h) + filemark.
cat > list.toml <<EOT
list_identifier = 9
list_id_usage = "hold"
[[cscd]]
peripheral_device_type = 0
identifier = { type = "identification", designator = "naa.5001405a1b2c3d01" }
parameters = { class = "block", pad = false, block_length = 512 }
[[cscd]]
peripheral_device_type = 1
identifier = { type = "identification", designator = "naa.5001405a1b2c3d02" }
parameters = { class = "stream", pad = true, fixed = false, block_length = 0 }
[[segment]]
type = "block_to_stream"
source = 0
destination = 1
stream_transfer_length = 262144
blocks = 16384
lba = 0
[[segment]]
type = "write_filemarks"
destination = 1
count = 1
EOT
xcopy encode list.toml -o list.bin
len=$(stat -c %s list.bin)
mt-st -f "$NST" rewind
check sg_raw_extended_copy sg_raw -s "$len" -i list.bin "$T0" 83 00 00 00 00 00 00 00 00 00 \
    00 00 00 "$(printf %02x "$len")" 00 00
sg_copy_results --status --list_id=9 "$T0" > st9.txt; cat st9.txt
mt-st -f "$NST" rewind
dd if="$NST" of=tape.bin bs=256k 2> dd.txt; cat dd.txt
expect st_reads_backup "32+0 records in" "$(grep 'records in' dd.txt)"
check st_backup_data cmp tape.bin pat.bin

# The st driver (it writes a filemark itself when a device written to is closed): two
# variable-length records and a filemark, then a second file; read back, fsf, bsf, eod.
mt-st -f "$NST" rewind
mt-st -f "$NST" setblk 0
head -c 100000 /dev/urandom > r1.bin; head -c 3000 /dev/urandom > r2.bin
{ dd if=r1.bin bs=100000 status=none; dd if=r2.bin bs=3000 status=none; } > "$NST"
dd if=r2.bin of="$NST" bs=3000 status=none
mt-st -f "$NST" rewind
{ dd of=a.bin bs=256k count=1 status=none; dd of=b.bin bs=256k count=1 status=none; } < "$NST"
check st_variable_record_1 cmp a.bin r1.bin
check st_variable_record_2 cmp b.bin r2.bin
mt-st -f "$NST" fsf 1
dd if="$NST" of=c.bin bs=256k count=1 status=none
check st_fsf_to_file_1 cmp c.bin r2.bin
mt-st -f "$NST" status > s1.txt; cat s1.txt
expect st_file_1_block_1 "File number=1, block number=1" "$(grep -o 'File number=[0-9]*, block number=[0-9]*' s1.txt)"
mt-st -f "$NST" bsf 1
mt-st -f "$NST" status > s2.txt; cat s2.txt
expect st_bsf "File number=0" "$(grep -o 'File number=[0-9]*' s2.txt)"
mt-st -f "$NST" eod
mt-st -f "$NST" status > s3.txt; cat s3.txt
check st_eod grep -q 'EOD' s3.txt
# fixed mode: 512-byte blocks, a 64 KiB write is 128 blocks
mt-st -f "$NST" rewind
mt-st -f "$NST" setblk 512
head -c 65536 /dev/urandom > f.bin
dd if=f.bin of="$NST" bs=65536 status=none
mt-st -f "$NST" weof 1
mt-st -f "$NST" rewind
dd if="$NST" of=fb.bin bs=65536 status=none
check st_fixed_mode_data cmp fb.bin f.bin
mt-st -f "$NST" status > s4.txt; cat s4.txt
mt-st -f "$NST" setblk 0
# tar to tape and back
mt-st -f "$NST" rewind
mkdir -p src && head -c 300000 /dev/urandom > src/one && head -c 7 /dev/urandom > src/two
check tar_to_tape tar -cf "$NST" -b 20 src
mt-st -f "$NST" rewind
mkdir -p restored && check tar_from_tape tar -xf "$NST" -b 20 -C restored
check tar_data diff -r src restored/src
