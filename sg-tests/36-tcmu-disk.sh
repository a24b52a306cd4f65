#!/bin/sh
# Runs INSIDE a Linux guest with LIO (target_core_user, tcm_loop) as root. Two emulated disks as LIO user backstores
# (TCMU) served by xcopyd, reached through tcm_loop: sg_inq/sg_readcap/sg_vpd/sg_copy_results,
# dd through /dev/sdX, sg_xcopy between the LUNs (4 MiB, then 16 MiB with COPY STATUS asked
# while it runs), backstore removal while xcopyd runs, and the stop order.
# Prints RESULT name PASS|FAIL lines; exits non-zero on any failure.
# Run by sg-tests/run.sh inside the sg-tests VM (scripts/vm/run.sh), xcopyd on PATH.
O=$PWD
REPO=$(cd "$(dirname "$0")/.." && pwd)
BIN=${XCOPYD:-$(command -v xcopyd)}
T=/sys/kernel/config/target
W=$PWD
FAILS=0
modprobe target_core_user; modprobe tcm_loop
[ -d $T ] || mount -t configfs none /sys/kernel/config
ls $T
ok() { echo "RESULT ${SGT_NAME:-36-tcmu-disk}.$1 PASS"; }
bad() { echo "RESULT ${SGT_NAME:-36-tcmu-disk}.$1 FAIL"; FAILS=$((FAILS+1)); }
chk() { n=$1; shift; if "$@"; then ok $n; else bad $n; fi; }
. "$SGT_LIB"    # wait_for
cat > $W/cfg.toml <<EOF
[iscsi]
listen = "127.0.0.1:3261"
[tcmu]
subtype = "xcopyd"
[[device]]
name = "disk0"
kind = "disk"
path = "disk0.img"
block_size = 512
size = "16MiB"
designator = "naa.5001405a1b2c3d01"
[[device]]
name = "disk1"
kind = "disk"
path = "disk1.img"
block_size = 512
size = "16MiB"
designator = "naa.5001405a1b2c3d02"
EOF
for d in 0 1; do
  mkdir -p $T/core/user_1/dev$d
  echo dev_config=xcopyd/disk$d,dev_size=16777216 > $T/core/user_1/dev$d/control
  echo 300 > $T/core/user_1/dev$d/attrib/cmd_time_out || echo "cmd_time_out not set"
  echo 1 > $T/core/user_1/dev$d/enable
done
cat /sys/class/uio/*/name
RUST_LOG=info $BIN --config $W/cfg.toml > $O/xcopyd.log 2>&1 &
XP=$!
wait_for 10 sh -c "[ \$(grep -c 'tcmu: serving' $O/xcopyd.log) = 2 ]"
grep 'tcmu: serving' $O/xcopyd.log
chk serving_line [ "$(grep -c 'tcmu: serving' $O/xcopyd.log)" = 2 ]
L=$T/loopback/naa.5001405000000001/tpgt_1
mkdir -p $L
echo naa.5001405000000002 > $L/nexus
for d in 0 1; do
  mkdir -p $L/lun/lun_$d
  ln -s $T/core/user_1/dev$d $L/lun/lun_$d/xcopyd_port$d
done
chk luns_present wait_for 30 sh -c "[ \$(lsscsi -g | grep -c XCOPYD) -ge 2 ]"
lsscsi -g
# the tcm_loop LUNs: vendor XCOPYD, LUN 0 and 1 of the loopback target
lun() { lsscsi -g | awk -v l=":$1]" '/XCOPYD/ && index($1, l) {print $(NF-'$2')}'; }
SD0=$(lun 0 1); SG0=$(lun 0 0); SD1=$(lun 1 1); SG1=$(lun 1 0)
echo "disk0=$SD0 $SG0 disk1=$SD1 $SG1"
for i in 1 2 3; do sg_turs $SG0; sg_turs $SG1; done
sg_inq $SG0; chk sg_inq_3pc sh -c "sg_inq $SG0 | grep -q '3PC=1'"
sg_readcap $SG0; chk sg_readcap sh -c "sg_readcap $SG0 | grep -q 'Last LBA=32767'"
sg_vpd -p di $SG0; chk sg_vpd_di sh -c "sg_vpd -p di $SG0 | grep -qi '0x5001405a1b2c3d01'"
sg_vpd -p tpc $SG0; chk sg_vpd_tpc sg_vpd -p tpc $SG0
sg_copy_results --params $SG0; chk sg_copy_results_params sg_copy_results --params $SG0
head -c 4194304 /dev/urandom > $W/pattern
dd if=$W/pattern of=$SD0 bs=64k oflag=direct 2>&1 | tail -1
chk dd_write_disk0_image cmp -n 4194304 $W/pattern $W/disk0.img
dd if=$SD0 of=$W/back bs=64k count=64 iflag=direct 2>&1 | tail -1
chk dd_read_back cmp $W/pattern $W/back
t0=$(date +%s.%N)
sg_xcopy if=$SG0 of=$SG1 bs=512 count=8192 list_id=1 -v; rc=$?
echo "sg_xcopy rc=$rc $(awk -v a=$(date +%s.%N) -v b=$t0 'BEGIN{print a-b}') s"
chk sg_xcopy_rc [ $rc = 0 ]
chk sg_xcopy_data cmp -n 4194304 $W/pattern $W/disk1.img
dd if=$SD1 of=$W/back1 bs=64k count=64 iflag=direct 2>&1 | tail -1
chk read_disk1_via_lio cmp $W/pattern $W/back1
# results held for the I_T nexus: the copy went to disk1 (sg_xcopy sends it to of=), asked on disk0
sg_copy_results --status --list_id=1 $SG0; chk sg_copy_results_status sg_copy_results --status --list_id=1 $SG0
# a long copy and COPY STATUS on the same ring while it runs
head -c 16777216 /dev/urandom > $W/big; dd if=$W/big of=$SD0 bs=1M oflag=direct 2>&1 | tail -1
t0=$(date +%s.%N)
sg_xcopy if=$SG0 of=$SG1 bs=512 count=32768 list_id=2 > $W/x2.log 2>&1 &
XC=$!
# Proven in progress before it is polled: COPY STATUS says "in progress" while sg_xcopy
# still runs (asked back to back, at most 3000 times: no sleep to guess the copy's pace).
inprog=0
for i in $(seq 1 3000); do
  sg_copy_results --status --list_id=2 $SG1 > $W/st2.txt 2>&1; st=$?
  grep -q 'Copy manager status: Operation in progress' $W/st2.txt && { inprog=1; break; }
  kill -0 $XC 2>/dev/null || break
done
cat $W/st2.txt
chk rcr_during_copy_exit_0 [ $st = 0 ]
chk rcr_during_copy_in_progress [ $inprog = 1 ]
chk copy_still_running kill -0 $XC
wait $XC; xrc=$?
echo "sg_xcopy 16 MiB rc=$xrc $(awk -v a=$(date +%s.%N) -v b=$t0 'BEGIN{print a-b}') s"
chk long_xcopy [ $xrc = 0 ]
chk long_xcopy_data cmp $W/big $W/disk1.img
sg_copy_results --status --list_id=2 $SG1
grep 'EXTENDED COPY' $O/xcopyd.log
# removal: unlink LUN 1, remove its backstore; xcopyd must log it and keep serving disk0
rm $L/lun/lun_1/xcopyd_port1; rmdir $L/lun/lun_1
rmdir $T/core/user_1/dev1
chk removal_logged wait_for 20 grep -q 'uio1 .*removed' $O/xcopyd.log
grep 'removed' $O/xcopyd.log
sg_turs $SG0   # LIO raises REPORTED LUNS DATA HAS CHANGED itself
chk disk0_still_served sg_turs $SG0
# stop order: unlink the LUN, then stop the handler (a linked LUN without handler hangs I/O)
rm $L/lun/lun_0/xcopyd_port0; rmdir $L/lun/lun_0
kill -TERM $XP; wait $XP; chk xcopyd_exit_0 [ $? = 0 ]
chk xcopyd_exits grep -q 'xcopyd stopped' $O/xcopyd.log
rmdir $T/core/user_1/dev0
tail -20 $O/xcopyd.log
dmesg | tail -20
echo "FAILS=$FAILS"
[ $FAILS = 0 ]
