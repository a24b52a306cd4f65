# A LUN hypervisors and clusters share, driven by the guest kernel's iSCSI initiator over two
# sessions (two I_T nexuses to one LUN): sg_persist with every PERSISTENT RESERVE action and
# type, sg_compare_and_write, sg_write_same, sg_unmap, sg_get_lba_status; blkdiscard and
# fstrim through the block layer (the image's allocated size shrinks); and dm-multipath over
# the two sessions (a table made with dmsetup: the kernel's dm-multipath, no multipathd)
# with a path failed in the middle of a write, the data exact.
. "$SGT_LIB"
for m in ext4 dm_multipath dm_round_robin; do modprobe $m || echo "modprobe $m failed"; done
TARGET=iqn.2026-11.org.xcopyd:san
truncate -s 64M disk0.img
cat > xcopyd.toml <<EOT
[iscsi]
listen = "127.0.0.1:3262"
target = "$TARGET"
[daemon]
state_dir = "$PWD/state"
[[device]]
name = "disk0"
kind = "disk"
path = "$PWD/disk0.img"
block_size = 512
designator = "naa.5001405a1b2c3d61"
[[lun]]
device = "disk0"
EOT
xcopyd --config xcopyd.toml > xcopyd.log 2>&1 &
XPID=$!
check xcopyd_listening wait_for 20 grep -q 3262 xcopyd.log
mkdir -p /etc/iscsi /var/lib/iscsi /run/lock/iscsi
echo "InitiatorName=iqn.2026-11.org.xcopyd:vm-san" > /etc/iscsi/initiatorname.iscsi
pgrep iscsid >/dev/null || { iscsid -f > iscsid.log 2>&1 & sleep 1; }
iscsiadm -m discovery -t st -p 127.0.0.1:3262 >/dev/null
check login iscsiadm -m node -T $TARGET -p 127.0.0.1:3262 --login
SID=$(iscsiadm -m session | awk -v t=$TARGET '$4==t {gsub(/[\[\]]/,"",$2); print $2; exit}')
check second_session iscsiadm -m session -r "$SID" --op new
# The two sg nodes of the LUN, one per session.
paths() {
    for d in /sys/class/scsi_generic/sg*; do
        [ "$(tr -d ' ' < $d/device/vendor 2>/dev/null)" = XCOPYD ] || continue
        [ "$(tr -d ' ' < $d/device/model 2>/dev/null)" = EMULATEDDISK ] && echo /dev/${d##*/}
    done
}
wait_for 30 sh -c "[ \$(ls /sys/class/scsi_generic | wc -l) -ge 2 ]"
set -- $(paths)
A=$1 B=$2
check two_paths test -n "$A" -a -n "$B" -a "$A" != "$B"
lsscsi -g
settle $A; settle $B
W=$PWD/w; mkdir -p $W
head -c 512 /dev/zero > $W/zero
# wr SG LBA: WRITE(10) of one block of zeros, printing sg_raw's exit status (24 =
# RESERVATION CONFLICT). rd SG: READ(10) of LBA 0, the same way.
wr() { sg_raw -s 512 -i $W/zero "$1" 2a 00 00 00 00 $(printf %02x "${2:-0}") 00 00 01 00 >/dev/null 2>&1; echo $?; }
rd() { sg_raw -r 512 "$1" 28 00 00 00 00 00 00 00 01 00 >/dev/null 2>&1; echo $?; }
# The iSCSI initiator port (TransportID text) registered with KEY, from READ FULL STATUS.
tid_of() { awk -v k="Key=0x$1" 'index($0,k){f=1} f && /,i,0x/{match($0,/iqn[^ ]*,i,0x[0-9a-fA-F]*/); print substr($0,RSTART,RLENGTH); exit}' full.txt; }

# --- persistent reservations across the two I_T nexuses ---
check register_a sg_persist -n -o -G -S a1 $A
check register_b sg_persist -n -o -G -S b2 $B
sg_persist -n -i -k $A > keys.txt 2>&1
expect read_keys "0xa1 0xb2" "$(grep -o '0x[0-9a-f]*$' keys.txt | tail -n 2 | tr '\n' ' ' | sed 's/ $//')"
sg_persist -n -i -c $A > caps.txt 2>&1
check report_capabilities grep -q "Compatible Reservation Handling(CRH): 1" caps.txt
check caps_types grep -q "Exclusive Access, all registrants: 1" caps.txt
# Each type, held by A: what registered B may do (write, read) per SPC-4's tables.
for t in "1 24 0" "3 24 24" "5 0 0" "6 0 0" "7 0 0" "8 0 0"; do
    set -- $t
    check reserve_type$1 sg_persist -n -o -R -K a1 -T $1 $A
    sg_persist -n -i -r $A > res.txt 2>&1
    key=$( [ $1 -ge 7 ] && echo 0x0 || echo 0xa1)
    check read_reservation_type$1 grep -q "Key=$key" res.txt
    expect b_write_type$1 $2 "$(wr $B 8)"
    expect b_read_type$1 $3 "$(rd $B)"
    expect a_write_type$1 0 "$(wr $A 8)"
    check release_type$1 sg_persist -n -o -L -K a1 -T $1 $A
    # A registrants-only or all-registrants release tells B: RESERVATIONS RELEASED.
    if [ $1 -ge 5 ]; then
        sg_turs -v $B > ua.txt 2>&1
        check released_ua_type$1 grep -qi "reservations released" ua.txt
    fi
done
# Write Exclusive by A: an unregistered nexus... B unregisters, is refused, registers again.
check reserve_we sg_persist -n -o -R -K a1 -T 1 $A
check unregister_b sg_persist -n -o -G -K b2 -S 0 $B
expect unregistered_write 24 "$(wr $B 8)"
expect unregistered_read 0 "$(rd $B)"
check register_ignore_b sg_persist -n -o -I -S b3 $B
sg_persist -n -i -s $A > full.txt 2>&1
check full_status_holder grep -q "Reservation holder" full.txt
# (an iscsid another test started keeps its own initiator name)
check full_status_tid grep -q "iqn\.[^ ]*,i,0x[0-9a-fA-F]\{12\}" full.txt
# B preempts A (PREEMPT, SA key a1): A's registration goes, A is told, B holds EA.
check preempt sg_persist -n -o -P -K b3 -S a1 -T 3 $B
sg_turs -v $A > ua.txt 2>&1
check preempted_ua grep -qi "registrations preempted" ua.txt
expect preempted_read 24 "$(rd $A)"
check register_a_again sg_persist -n -o -G -S a4 $A
check preempt_abort sg_persist -n -o -A -K b3 -S a4 -T 1 $B
sg_turs -v $A > ua.txt 2>&1
check preempt_abort_ua grep -qi "registrations preempted" ua.txt
# REGISTER AND MOVE: B moves its reservation to A's initiator port (from full status).
check register_a_third sg_persist -n -o -G -S a5 $A
sg_persist -n -i -s $A > full.txt 2>&1
TID_A=$(tid_of a5) TID_B=$(tid_of b3)
check two_tids test -n "$TID_A" -a -n "$TID_B" -a "$TID_A" != "$TID_B"
check register_move sg_persist -n -o -M -K b3 -S a6 -T 1 -Q 1 -X "$TID_A" $B
sg_persist -n -i -r $A > res.txt 2>&1
check moved grep -q "Key=0xa6" res.txt
expect moved_write_a 0 "$(wr $A 8)"
expect moved_write_b 24 "$(wr $B 8)"
# CLEAR by A: everything goes; B is told RESERVATIONS PREEMPTED.
check clear sg_persist -n -o -C -K a6 $A
sg_turs -v $B > ua.txt 2>&1
check cleared_ua grep -qi "reservations preempted" ua.txt
expect cleared_write_b 0 "$(wr $B 8)"
# SPEC_I_PT (sg_persist sets it when TransportIDs come with REGISTER) and ALL_TG_PT: A
# registers itself and B's port in one command.
check spec_i_pt sg_persist -n -o -G -S c7 --param-alltgpt -X "$TID_B" $A
sg_persist -n -i -s $B > full.txt 2>&1
expect spec_i_pt_keys 2 "$(grep -c 'Key=0xc7' full.txt)"
check all_tg_pt grep -q "All target ports bit set" full.txt
check clear_again sg_persist -n -o -C -K c7 $B
settle $A    # its RESERVATIONS PREEMPTED
# APTPL: the registration and reservation outlive a restart of xcopyd.
check aptpl_register sg_persist -n -o -G -S d8 --param-aptpl $A
check aptpl_reserve sg_persist -n -o -R -K d8 -T 3 $A
check aptpl_file test -s state/reservations/disk0.toml
kill $XPID; wait $XPID 2>/dev/null
xcopyd --config xcopyd.toml >> xcopyd.log 2>&1 &
XPID=$!
wait_for 90 sh -c "sg_turs $B >/dev/null 2>&1"
settle $A
sg_persist -n -i -r $B > res.txt 2>&1
check aptpl_survives grep -q "Key=0xd8" res.txt
expect aptpl_conflict 24 "$(rd $B)"
check aptpl_clear sg_persist -n -o -C -K d8 $A
# SPC-2 RESERVE(6)/RELEASE(6) between the two nexuses.
check reserve6 sg_raw $A 16 00 00 00 00 00
expect reserve6_b 24 "$(rd $B)"
check release6 sg_raw $A 17 00 00 00 00 00
expect released6_b 0 "$(rd $B)"

# --- ATS, WRITE SAME, UNMAP, GET LBA STATUS ---
printf 'A%.0s' $(seq 512) > $W/a; printf 'B%.0s' $(seq 512) > $W/b
sg_raw -s 512 -i $W/a $A 2a 00 00 00 00 20 00 00 01 00 >/dev/null
cat $W/a $W/b > $W/ab
check caw_match sg_compare_and_write --in=$W/ab --lba=32 --num=1 $A
sg_compare_and_write --in=$W/ab --lba=32 --num=1 $A > caw.txt 2>&1
expect caw_miscompare 14 $?
check caw_data sh -c "sg_raw -r 512 -o $W/out $A 28 00 00 00 00 20 00 00 01 00 >/dev/null 2>&1 && cmp -s $W/out $W/b"
head -c 512 /dev/zero | tr '\0' Z > $W/z
check write_same sg_write_same --lba=1000 --num=100 --in=$W/z $A
check write_same_data sh -c "sg_dd if=$A skip=1099 bs=512 count=1 of=$W/out 2>/dev/null; cmp -s $W/out $W/z"
check write_same16_unmap sg_write_same --16 --unmap --lba=1000 --num=96 --in=$W/zero $A
# 4 KiB-aligned run of 96 blocks deallocated: GET LBA STATUS says so.
sg_get_lba_status --lba=1000 --maxlen=24 $A > lba.txt 2>&1
cat lba.txt
check lba_status_deallocated grep -qi deallocated lba.txt
sg_get_lba_status --lba=1096 --maxlen=24 $A > lba.txt 2>&1
check lba_status_mapped sh -c "grep -qi mapped lba.txt && ! grep -qi deallocated lba.txt"
sg_write_same --lba=2048 --num=2048 --in=$W/z $A
alloc() { stat -c %b disk0.img; }
before=$(alloc)
check unmap sg_unmap --lba=2048 --num=2048 $A
after=$(alloc)
check unmap_freed test "$after" -lt "$before"
sg_get_lba_status --lba=2048 $A > lba.txt 2>&1
check unmap_status grep -qi deallocated lba.txt

# --- blkdiscard and fstrim through the block layer ---
SDA=/dev/$(block_of $A)
check discard_limits sh -c "[ \$(cat /sys/block/${SDA#/dev/}/queue/discard_max_bytes) -gt 0 ]"
dd if=/dev/urandom of=$SDA bs=1M seek=8 count=8 oflag=direct 2>/dev/null
before=$(alloc)
check blkdiscard blkdiscard -o $((8 << 20)) -l $((8 << 20)) $SDA
after=$(alloc)
check blkdiscard_freed test $((before - after)) -ge $((8 << 20 >> 9))
echo "allocated 512-byte blocks: before $before after $after"
mkdir -p $W/mnt
check mkfs mkfs.ext4 -q -F -E nodiscard $SDA
check mount mount -o nodiscard $SDA $W/mnt
dd if=/dev/urandom of=$W/mnt/big bs=1M count=24 2>/dev/null; sync
before=$(alloc)
rm $W/mnt/big; sync
check fstrim fstrim -v $W/mnt
after=$(alloc)
echo "fstrim: allocated 512-byte blocks before $before after $after"
check fstrim_freed test $((before - after)) -ge $((16 << 20 >> 9))
umount $W/mnt

# --- dm-multipath over the two sessions, a path failed mid-write ---
SDB=/dev/$(block_of $B)
SECTORS=$(blockdev --getsz $SDA)
echo "0 $SECTORS multipath 0 0 1 1 round-robin 0 2 1 $SDA 1 $SDB 1" > table
check dm_multipath dmsetup create xmp table
# No udev here: the device node is /dev/dm-MINOR (devtmpfs), not /dev/mapper/xmp.
MP=/dev/dm-$(dmsetup info -c --noheadings -o minor xmp | tr -d ' ')
check dm_node test -b $MP
dd if=/dev/urandom of=$W/src bs=1M count=24 2>/dev/null
dd if=$W/src of=$MP bs=64k oflag=direct 2>dd.err &
DD=$!
# Mid-write: once dd has written 2 MiB, path A goes offline.
written() { awk '/^wchar/ {print $2}' /proc/$DD/io 2>/dev/null || echo 0; }
check mid_write wait_for 120 sh -c "[ \$(awk '/^wchar/ {print \$2}' /proc/$DD/io) -ge 2097152 ]"
echo "failing path $SDA after $(written) bytes"
echo offline > /sys/block/${SDA#/dev/}/device/state
check dd_through_failover wait $DD
cat dd.err
dmsetup status xmp > mpstatus.txt; cat mpstatus.txt
check path_failed grep -q " F " mpstatus.txt
check data_exact_multipath sh -c "dd if=$MP of=$W/mp bs=64k count=384 iflag=direct 2>/dev/null && cmp $W/src $W/mp"
check data_exact_path_b sh -c "sg_dd if=$B of=$W/back bs=512 count=$((24 << 11)) 2>/dev/null && cmp $W/src $W/back"
check data_exact_image cmp -n $((24 << 20)) $W/src disk0.img
ls -li disk0.img; ls -l /proc/$XPID/fd | grep disk0 || true
od -A d -t x1 -N 16 $W/src; od -A d -t x1 -N 16 disk0.img
dmsetup remove xmp
echo running > /sys/block/${SDA#/dev/}/device/state

iscsiadm -m node -T $TARGET -p 127.0.0.1:3262 --logout >/dev/null 2>&1
iscsiadm -m session 2>/dev/null | grep -q $TARGET && iscsiadm -m session -r "$SID" -u
kill $XPID; wait $XPID 2>/dev/null
tail -n 20 xcopyd.log
finish
