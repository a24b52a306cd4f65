# xcopyd as a tape library (an SMC-3 changer and two LTO drives) logged in by the guest
# kernel's iSCSI initiator: lsscsi, mtx (inquiry, status, load, unload, transfer, first,
# next), mt-st and tar on the drive mtx loaded, an EXTENDED COPY sent with sg_raw that
# writes a disk onto a cartridge mtx loaded (read back through the st driver), a cartridge
# given two partitions by mt-st, and Bacula's btape (test, autochanger, fill) through its
# mtx-changer script.
. "$SGT_LIB"
export XCOPYD_STATE_DIR="$PWD/state"
truncate -s 64M disk0.img
head -c 8388608 /dev/urandom > pat.bin
dd if=pat.bin of=disk0.img conv=notrunc status=none
cat > xcopyd.toml <<EOT
[iscsi]
listen = "127.0.0.1:3261"
target = "iqn.2026-11.org.xcopyd:vtl"
[[device]]
name = "drive0"
kind = "tape"
designator = "naa.5001405a1b2c3d20"
[[device]]
name = "drive1"
kind = "tape"
designator = "naa.5001405a1b2c3d21"
[[device]]
name = "disk0"
kind = "disk"
path = "$PWD/disk0.img"
designator = "naa.5001405a1b2c3d01"
[[library]]
name = "vtl0"
designator = "naa.5001405a1b2c3d10"
drives = ["drive0", "drive1"]
slots = 8
import_export = 1
media = "$PWD/media"
[[lun]]
device = "vtl0"
[[lun]]
device = "drive0"
[[lun]]
device = "drive1"
[[lun]]
device = "disk0"
EOT
# Cartridges before the daemon starts: the CLI owns the library then.
check create_cartridges xcopy library -d xcopyd.toml create XC0001 XC0002 XC0003
# btape's fill re-reads 10000 records (about 330 MB) from its first tape: 400 MiB; the
# second gets 1000 blocks.
check create_small_cartridges sh -c 'xcopy library -d xcopyd.toml create --capacity 400MiB SMALL1 &&
    xcopy library -d xcopyd.toml create --capacity 48MiB SMALL2'
xcopy library -d xcopyd.toml status
xcopyd --config xcopyd.toml > xcopyd.log 2>&1 &
XPID=$!
check xcopyd_listening wait_for 20 grep -q 3261 xcopyd.log
mkdir -p /etc/iscsi /var/lib/iscsi /run/lock/iscsi
echo "InitiatorName=iqn.2026-11.org.xcopyd:vm-initiator" > /etc/iscsi/initiatorname.iscsi
pgrep iscsid >/dev/null || { iscsid -f > iscsid.log 2>&1 & sleep 1; }
iscsiadm -m discovery -t st -p 127.0.0.1:3261 >/dev/null
check iscsi_login iscsiadm -m node -T iqn.2026-11.org.xcopyd:vtl -p 127.0.0.1:3261 --login
wait_for 30 sh -c '[ "$(ls /sys/class/scsi_tape | grep -c "^nst[0-9]*$")" -ge 2 ]'
lsscsi -g | tee lsscsi.txt
check lsscsi_shows_the_changer grep -q 'mediumx *XCOPYD *VIRTUAL LIBRARY' lsscsi.txt
check lsscsi_shows_two_lto9_drives test "$(grep -c 'tape *IBM *ULT3580-TD9' lsscsi.txt)" = 2
CH=$(sg_of XCOPYD VIRTUALLIBRARY)
CM=$(sg_of XCOPYD EMULATEDDISK)
for d in /sys/class/scsi_generic/sg*; do
    [ "$(tr -d ' ' < $d/device/vendor)" = IBM ] || continue
    lun=$(basename "$(readlink -f $d/device)"); lun=${lun##*:}
    case $lun in 1) DR0=/dev/${d##*/} ;; 2) DR1=/dev/${d##*/} ;; esac
done
NST0=/dev/$(tape_of "$DR0") NST1=/dev/$(tape_of "$DR1")
echo "changer $CH, drive0 $DR0 $NST0, drive1 $DR1 $NST1, copy manager $CM"
check devices_found test -n "$CH" -a -n "$CM" -a -n "$DR0" -a -n "$DR1"
for s in "$CH" "$CM" "$DR0" "$DR1"; do settle "$s"; done

# mtx
mtx -f "$CH" inquiry | tee inq.txt
check mtx_inquiry grep -q 'Product Type: Medium Changer' inq.txt
mtx -f "$CH" status | tee st.txt
check mtx_status_layout grep -q "Storage Changer $CH:2 Drives, 9 Slots ( 1 Import/Export )" st.txt
check mtx_status_barcodes grep -q 'Storage Element 1:Full :VolumeTag=XC0001L9' st.txt
check mtx_status_import_export grep -q 'Storage Element 9 IMPORT/EXPORT:Empty' st.txt
check mtx_load mtx -f "$CH" load 1 0
mtx -f "$CH" status | tee st.txt
check mtx_drive_loaded grep -q 'Data Transfer Element 0:Full (Storage Element 1 Loaded):VolumeTag = XC0001L9' st.txt

# mt-st and tar on the loaded drive
mt-st -f "$NST0" status | tee mt.txt
check mt_status_online grep -q ONLINE mt.txt
mkdir -p data x
head -c 3000000 /dev/urandom > data/f1
seq 1 100000 > data/f2
check tar_write tar cf "$NST0" data
check mt_rewind mt-st -f "$NST0" rewind
check tar_read_back tar xf "$NST0" -C x
check tar_files_equal sh -c 'cmp data/f1 x/data/f1 && cmp data/f2 x/data/f2'
check mt_offline mt-st -f "$NST0" offline
mtx -f "$CH" status | tee st.txt
check unloaded_drive_still_full grep -q 'Data Transfer Element 0:Full' st.txt
check mtx_unload mtx -f "$CH" unload 1 0
check mtx_transfer mtx -f "$CH" transfer 2 6
mtx -f "$CH" status | tee st.txt
check transfer_moved grep -q 'Storage Element 6:Full :VolumeTag=XC0002L9' st.txt
check mtx_first mtx -f "$CH" first 0
mtx -f "$CH" status | tee st.txt
check first_loads_slot_1 grep -q 'Data Transfer Element 0:Full (Storage Element 1 Loaded)' st.txt
check mtx_next mtx -f "$CH" next 0
mtx -f "$CH" status | tee st.txt
check next_loads_slot_3 grep -q 'Data Transfer Element 0:Full (Storage Element 3 Loaded):VolumeTag = XC0003L9' st.txt
check next_put_back_slot_1 grep -q 'Storage Element 1:Full :VolumeTag=XC0001L9' st.txt
check mtx_unload_next mtx -f "$CH" unload

# EXTENDED COPY (sg_raw) from the disk to the cartridge mtx loaded into drive 1
check mtx_load_for_copy mtx -f "$CH" load 6 1
settle "$DR1"
cat > backup.toml <<EOT
list_identifier = 1
list_id_usage = "hold"
[[cscd]]
peripheral_device_type = 0
identifier = { type = "identification", designator = "naa.5001405a1b2c3d01" }
parameters = { class = "block", pad = false, block_length = 512 }
[[cscd]]
peripheral_device_type = 1
identifier = { type = "identification", designator = "naa.5001405a1b2c3d21" }
parameters = { class = "stream", pad = false, fixed = false, block_length = 0 }
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
len=$(stat -c %s backup.bin)
check sg_raw_backup_to_cartridge sg_raw -s "$len" -i backup.bin "$CM" 83 00 00 00 00 00 00 00 00 00 00 00 00 "$(printf %02x "$len")" 00 00
sg_copy_results --status --list_id=1 "$CM" | tee status1.txt
check copy_status_good grep -q 'Operation completed without errors' status1.txt
mt-st -f "$NST1" rewind
dd if="$NST1" of=tape.bin bs=64k 2> dd.txt; cat dd.txt
expect st_reads_128_records "128+0 records in" "$(grep 'records in' dd.txt)"
check cartridge_equals_disk cmp tape.bin pat.bin
check mtx_unload_copy mtx -f "$CH" unload 6 1
simh media/XC0002L9.tap simh.bin > simh.txt
check image_read_without_xcopyd_equals_disk cmp simh.bin pat.bin

# Two partitions through the st driver: mkpartition (MODE SENSE and MODE SELECT of page
# 11h in megabytes, FORMAT MEDIUM), setpartition/partseek (LOCATE with CP), a tar archive
# in each partition, read back; partition 1 is its own SIMH image.
check mtx_load_for_partitions mtx -f "$CH" load 3 1
check mt_can_partitions mt-st -f "$NST1" stsetoptions can-partitions
check mt_mkpartition mt-st -f "$NST1" mkpartition 100
check mt_setpartition_1 mt-st -f "$NST1" setpartition 1
check tar_write_partition_1 tar cf "$NST1" data/f1
mt-st -f "$NST1" status | tee mtp.txt
check mt_status_partition_1 grep -q 'partition=1' mtp.txt
check mt_setpartition_0 mt-st -f "$NST1" setpartition 0
check tar_write_partition_0 tar cf "$NST1" data/f2
mkdir -p p0 p1
check mt_partseek_1 mt-st -f "$NST1" partseek 1 0
check tar_read_partition_1 tar xf "$NST1" -C p1
check mt_partseek_0 mt-st -f "$NST1" partseek 0 0
check tar_read_partition_0 tar xf "$NST1" -C p0
check partitions_hold_their_archives sh -c 'cmp data/f1 p1/data/f1 && cmp data/f2 p0/data/f2 &&
    [ ! -e p1/data/f2 ] && [ ! -e p0/data/f1 ]'
check mtx_unload_partitions mtx -f "$CH" unload 3 1
simh media/XC0003L9.p1.tap p1.bin > p1.txt
check partition_1_image_holds_its_archive sh -c 'tar tf p1.bin | grep -qx data/f1'

# Bacula btape through mtx-changer (16 KiB blocks keep its 20000-block tests in the guest's
# RAM). btape opens the drive when it starts: a cartridge is loaded first.
if command -v btape >/dev/null 2>&1 && [ -x /etc/bacula/scripts/mtx-changer ]; then
    mkdir -p bacula
    cat > sd.conf <<EOT
Storage {
  Name = vm-sd
  WorkingDirectory = "$PWD/bacula"
  Pid Directory = "$PWD/bacula"
}
Director {
  Name = vm-dir
  Password = "unused-password"
}
Messages {
  Name = Standard
  console = all
}
Autochanger {
  Name = vtl0
  Device = Drive-0
  Changer Device = $CH
  Changer Command = "/etc/bacula/scripts/mtx-changer %c %o %S %a %d"
}
Device {
  Name = Drive-0
  Drive Index = 0
  Media Type = LTO-9
  Archive Device = $NST0
  AutomaticMount = yes
  AlwaysOpen = yes
  RemovableMedia = yes
  RandomAccess = no
  AutoChanger = yes
  Maximum Block Size = 16384
  Changer Device = $CH
  Changer Command = "/etc/bacula/scripts/mtx-changer %c %o %S %a %d"
}
EOT
    check mtx_load_for_btape mtx -f "$CH" load 1 0
    printf 'test\ny\nquit\n' | timeout 1800 btape -c "$PWD/sd.conf" Drive-0 > btape-test.txt 2>&1
    cat btape-test.txt; echo
    check btape_test_write_reread grep -q '=== Test Succeeded. End Write, rewind, and re-read test ===' btape-test.txt
    check btape_test_append grep -q 'We should be in file 3. I am at file 3. This is correct!' btape-test.txt
    check btape_test_fsf grep -q '=== End Forward space files test ===' btape-test.txt
    check btape_test_autochanger grep -q 'The test autochanger worked!!' btape-test.txt
    check btape_test_nothing_wrong sh -c '! grep -q "NOT correct\|Test failed\|FAILED" btape-test.txt'
    printf 'autochanger\ny\nquit\n' | timeout 600 btape -c "$PWD/sd.conf" Drive-0 > btape-ac.txt 2>&1
    cat btape-ac.txt; echo
    check btape_autochanger grep -q 'The test autochanger worked!!' btape-ac.txt
    # The test's 330 MB go (ERASE cuts the image), the guest's /tmp is RAM.
    mt-st -f "$NST0" rewind && mt-st -f "$NST0" erase
    # fill, the complete two-tape test: the small cartridges in slots 1 and 2, the first
    # written to its end, the changer swapping in the second, both read back.
    mtx -f "$CH" unload
    mtx -f "$CH" transfer 1 7 && mtx -f "$CH" transfer 4 1 && mtx -f "$CH" transfer 5 2
    mtx -f "$CH" status
    check mtx_load_small mtx -f "$CH" load 1 0
    printf 'fill\nm\nquit\n' | timeout 1800 btape -c "$PWD/sd.conf" Drive-0 > btape-fill.txt 2>&1
    grep -av 'Orphaned buffer' btape-fill.txt | tail -n 60; echo
    check btape_fill_first_tape grep -q 'The last block of the first tape matches.' btape-fill.txt
    check btape_fill_second_tape grep -q 'The last block on the second tape matches. Test succeeded.' btape-fill.txt
    mtx -f "$CH" status
else
    fail btape_present "btape or /etc/bacula/scripts/mtx-changer missing on the host"
fi

iscsiadm -m node -T iqn.2026-11.org.xcopyd:vtl -p 127.0.0.1:3261 --logout
kill $XPID; wait $XPID
tail -n 30 xcopyd.log
finish
